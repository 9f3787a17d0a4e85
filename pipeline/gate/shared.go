package gate

import (
	"net/netip"
	"sync/atomic"

	"github.com/gaissmai/bart"
)

// Shared is a run-time allowlist that changes while the gate is in use: the analysts' false
// positives (pipeline/allowlist), reloaded into it by a refresher on every replica. Readers see
// one whole table or the next, never a half-built one: Replace swaps a new table in.
type Shared struct {
	table atomic.Pointer[bart.Table[Verdict]]
}

// NewShared returns an empty shared allowlist.
func NewShared() *Shared {
	s := &Shared{}
	s.table.Store(new(bart.Table[Verdict]))
	return s
}

// Replace makes prefixes the shared allowlist.
func (s *Shared) Replace(prefixes []netip.Prefix) {
	t := new(bart.Table[Verdict])
	for _, p := range prefixes {
		p = p.Masked()
		t.Insert(p, Verdict{Reason: ReasonAllowlist, Prefix: p})
	}
	s.table.Store(t)
}

// Len is the number of prefixes in the shared allowlist.
func (s *Shared) Len() int { return s.table.Load().Size() }

func (s *Shared) lookup(addr netip.Addr) (Verdict, bool) { return s.table.Load().Lookup(addr) }

// WithShared returns a gate that consults s after its static ranges: a static range (private,
// own, the configured allowlist) keeps its reason; an address only s lists is gated as
// allowlist. g itself is left as it is.
func (g *Gate) WithShared(s *Shared) *Gate {
	return &Gate{table: g.table, shared: s}
}
