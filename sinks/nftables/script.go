package nftables

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// MaxTimeout is the longest element timeout the sink sets. nft 1.0.6 refuses timeouts of 100
// million seconds and more; a year is far below that and above any sensible block. Longer
// blocks are clamped: the ledger's Undo and Reconcile still govern them.
const MaxTimeout = 365 * 24 * time.Hour

// Chain names created by CREATE. They carry the threatpipe prefix so that a TABLE shared with
// other rules is never confused with ours.
const (
	chainInput   = "threatpipe_input"
	chainForward = "threatpipe_forward"
)

// chunk bounds the elements of one add/delete statement, keeping statements (and nft's error
// echo of a failing one) a manageable size.
const chunk = 512

// setRef names one set.
type setRef struct{ family, table, name string }

func (s setRef) String() string { return s.family + " " + s.table + " " + s.name }

// timed is an element with its timeout in whole seconds.
type timed struct {
	addr netip.Addr
	secs int64
}

// timeoutSecs turns a remaining duration into an element timeout: whole seconds rounded up (so
// a block never lapses early), at least 1s, at most MaxTimeout.
func timeoutSecs(d time.Duration) int64 {
	d = min(max(d, time.Second), MaxTimeout)
	return int64((d + time.Second - 1) / time.Second)
}

// setupScript creates the table, sets and drop chains. Every statement is idempotent: add on an
// existing table, set or chain is a no-op (and fails if the existing set has another type, which
// is what we want), and the chains are flushed before their rules are added, in the same
// transaction, so rules are never duplicated and never missing.
func setupScript(c *Config) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "add table %s %s\n", c.Family, c.Table)
	if c.hasV4() {
		fmt.Fprintf(&b, "add set %s %s %s { type ipv4_addr; flags timeout; }\n", c.Family, c.Table, c.SetV4)
	}
	if c.hasV6() {
		fmt.Fprintf(&b, "add set %s %s %s { type ipv6_addr; flags timeout; }\n", c.Family, c.Table, c.SetV6)
	}
	for _, ch := range []struct{ name, hook string }{{chainInput, "input"}, {chainForward, "forward"}} {
		fmt.Fprintf(&b, "add chain %s %s %s { type filter hook %s priority -10; policy accept; }\n", c.Family, c.Table, ch.name, ch.hook)
		fmt.Fprintf(&b, "flush chain %s %s %s\n", c.Family, c.Table, ch.name)
		if c.hasV4() {
			fmt.Fprintf(&b, "add rule %s %s %s ip saddr @%s counter drop\n", c.Family, c.Table, ch.name, c.SetV4)
		}
		if c.hasV6() {
			fmt.Fprintf(&b, "add rule %s %s %s ip6 saddr @%s counter drop\n", c.Family, c.Table, ch.name, c.SetV6)
		}
	}
	return b.Bytes()
}

// setChanges is what one set needs: puts are added or have their timeout replaced, dels are
// removed.
type setChanges struct {
	set  setRef
	puts []timed
	dels []netip.Addr
}

func (c setChanges) empty() bool { return len(c.puts) == 0 && len(c.dels) == 0 }

// changeScript writes the changes as one transaction (nft -f applies a file atomically) that
// succeeds whatever the set holds, so that a concurrent expiry cannot fail it:
//
//	add element ... { puts with their timeouts, dels with 1s }   # now every element exists
//	delete element ... { puts, dels }                            # now none does
//	add element ... { puts with their timeouts }                 # the wanted state
//
// Deleting and re-adding is how a timeout is replaced: older kernels' add leaves an existing
// element's timeout alone. Since the kernel commits the batch as a whole, a put address is never
// unblocked in between.
func changeScript(changes ...setChanges) []byte {
	var b bytes.Buffer
	for _, c := range changes {
		if c.empty() {
			continue
		}
		puts := slices.Clone(c.puts)
		slices.SortFunc(puts, func(x, y timed) int { return x.addr.Compare(y.addr) })
		dels := slices.Clone(c.dels)
		slices.SortFunc(dels, netip.Addr.Compare)

		ensure := slices.Clone(puts)
		for _, a := range dels {
			ensure = append(ensure, timed{addr: a, secs: 1})
		}
		writeTimed(&b, "add", c.set, ensure)
		all := make([]netip.Addr, 0, len(puts)+len(dels))
		for _, p := range puts {
			all = append(all, p.addr)
		}
		all = append(all, dels...)
		for part := range slices.Chunk(all, chunk) {
			fmt.Fprintf(&b, "delete element %s {", c.set)
			for i, a := range part {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteByte(' ')
				b.WriteString(a.String())
			}
			b.WriteString(" }\n")
		}
		writeTimed(&b, "add", c.set, puts)
	}
	return b.Bytes()
}

func writeTimed(b *bytes.Buffer, verb string, set setRef, els []timed) {
	for part := range slices.Chunk(els, chunk) {
		fmt.Fprintf(b, "%s element %s {", verb, set)
		for i, e := range part {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(b, " %s timeout %ds", e.addr, e.secs)
		}
		b.WriteString(" }\n")
	}
}
