// Package neverblock decides which addresses automated response must never block: the
// special-purpose ranges of pipeline/gate (private, loopback, link-local...), the operator's own
// ranges, the configured never-block CIDRs, and every IPv6 address that carries one of those as
// an embedded IPv4 address.
//
// An IPv6 address can name an IPv4 host: IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible
// (::a.b.c.d) addresses, SIIT's IPv4-translated form (::ffff:0:a.b.c.d), NAT64's well-known
// prefix (64:ff9b::a.b.c.d, RFC 6052), 6to4 (2002:AABB:CCDD::/48, RFC 3056), Teredo
// (2001:0:SSSS:SSSS:flags:port:~client, RFC 4380) and ISATAP interface identifiers
// (::0:5efe:a.b.c.d and ::200:5efe:a.b.c.d, RFC 5214). A firewall or translator in the path may
// treat such an address as the IPv4 host it embeds, and a legitimate one never embeds a private
// or loopback address, so a block of 64:ff9b::10.0.0.1 is refused just like a block of 10.0.0.1.
//
// Transition ranges are not never-blocked whole: 64:ff9b::/96, 2002::/16 and 2001::/32 are how
// hostile IPv4 hosts reach IPv6-only networks, and blocking 64:ff9b::185.220.101.1 is as right as
// blocking 185.220.101.1. Only the local-use NAT64 prefix 64:ff9b:1::/48 (RFC 8215), which names
// the operator's own translator, is never blocked whole (gate lists it as private).
package neverblock

import (
	"fmt"
	"net/netip"
	"sync"

	"github.com/gaissmai/bart"

	"github.com/threatpipe/threatpipe/pipeline/gate"
)

// ReasonNeverBlockCIDRs is the reason of an address in the configured never-block CIDRs
// (THREATPIPE_ACT_NEVER_BLOCK_CIDRS); the other reasons are gate's.
const ReasonNeverBlockCIDRs = "never_block_cidrs"

// ReasonUnparseable is the reason a target that is not an IP address is never blocked.
const ReasonUnparseable = "unparseable"

// Verdict says why an address is never blocked.
type Verdict struct {
	// Reason and Prefix are the never-block range that matched (gate's reasons, or
	// ReasonNeverBlockCIDRs).
	gate.Verdict
	// Embedded is the IPv4 address that matched when the address itself did not; zero otherwise.
	Embedded gate.Embedding
}

// String is the verdict for people: "private 10.0.0.0/8", or "private 10.0.0.0/8: embeds
// 10.0.0.1 (nat64)".
func (v Verdict) String() string {
	s := v.Reason
	if v.Prefix.IsValid() {
		s += " " + v.Prefix.String()
	}
	if v.Embedded.Addr.IsValid() {
		s += fmt.Sprintf(": embeds %s (%s)", v.Embedded.Addr, v.Embedded.Form)
	}
	return s
}

// List is an immutable never-block list; it is safe for concurrent use. The zero value and nil
// are not usable: build one with New, or use Builtin.
type List struct {
	gate  *gate.Gate
	never *bart.Table[gate.Verdict]
}

// New builds the list: gate's special ranges, the operator's own ranges (reason own_range) and
// the configured never-block CIDRs (reason never_block_cidrs).
func New(own, never []netip.Prefix) *List {
	t := new(bart.Table[gate.Verdict])
	for _, p := range never {
		p = p.Masked()
		t.Insert(p, gate.Verdict{Reason: ReasonNeverBlockCIDRs, Prefix: p})
	}
	return &List{gate: gate.New(own, nil), never: t}
}

// builtin is built once: it is immutable, so sharing it is safe.
var builtin = sync.OnceValue(func() *List { return New(nil, nil) })

// Builtin is the list of the special-purpose ranges alone, for sinks built without the
// operator's list.
func Builtin() *List { return builtin() }

// Check reports whether a block of addr must be refused, and why. The zone is ignored.
func (l *List) Check(addr netip.Addr) (Verdict, bool) {
	addr = addr.WithZone("")
	if addr.Is4In6() {
		e := gate.Embedding{Form: gate.FormIPv4Mapped, Addr: addr.Unmap()}
		if v, ok := l.lookup(e.Addr); ok {
			return Verdict{Verdict: v, Embedded: e}, true
		}
		return Verdict{}, false
	}
	if v, ok := l.lookup(addr); ok {
		return Verdict{Verdict: v}, true
	}
	var buf [3]gate.Embedding
	for _, e := range gate.Embedded(addr, buf[:0]) {
		if v, ok := l.lookup(e.Addr); ok {
			return Verdict{Verdict: v, Embedded: e}, true
		}
	}
	return Verdict{}, false
}

// CheckTarget is Check on a target string; a target that is not an IP address (spaces
// included) is refused.
func (l *List) CheckTarget(target string) (Verdict, bool) {
	addr, err := netip.ParseAddr(target)
	if err != nil {
		return Verdict{Verdict: gate.Verdict{Reason: ReasonUnparseable}}, true
	}
	return l.Check(addr)
}

func (l *List) lookup(a netip.Addr) (gate.Verdict, bool) {
	if v, ok := l.gate.Match(a); ok { // Check follows embedded addresses itself, saying which
		return v, true
	}
	return l.never.Lookup(a.Unmap())
}
