// Package gate decides which indicators need no lookup: special-purpose address ranges that no
// threat-intel provider knows, the operator's own ranges and an allowlist. Gating costs no quota;
// gated indicators are still published, marked with the gate's reason.
package gate

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/gaissmai/bart"
)

// Reasons a gate names. They appear in scored events and metric labels.
const (
	ReasonPrivate       = "private"
	ReasonLoopback      = "loopback"
	ReasonLinkLocal     = "link_local"
	ReasonCGNAT         = "cgnat"
	ReasonMulticast     = "multicast"
	ReasonReserved      = "reserved"
	ReasonDocumentation = "documentation"
	ReasonOwnRange      = "own_range"
	ReasonAllowlist     = "allowlist"
)

// Reasons lists every reason a gate can give.
var Reasons = []string{ReasonPrivate, ReasonLoopback, ReasonLinkLocal, ReasonCGNAT, ReasonMulticast,
	ReasonReserved, ReasonDocumentation, ReasonOwnRange, ReasonAllowlist}

// specialRanges follows the IANA IPv4 and IPv6 special-purpose address registries (RFC 6890 and
// successors): none of these addresses is routable on the public Internet.
var specialRanges = []struct {
	prefix, reason string
}{
	{"0.0.0.0/8", ReasonReserved},
	{"10.0.0.0/8", ReasonPrivate},
	{"100.64.0.0/10", ReasonCGNAT},
	{"127.0.0.0/8", ReasonLoopback},
	{"169.254.0.0/16", ReasonLinkLocal},
	{"172.16.0.0/12", ReasonPrivate},
	{"192.0.0.0/24", ReasonReserved},
	{"192.0.2.0/24", ReasonDocumentation},
	{"192.88.99.0/24", ReasonReserved},
	{"192.168.0.0/16", ReasonPrivate},
	{"198.18.0.0/15", ReasonReserved},
	{"198.51.100.0/24", ReasonDocumentation},
	{"203.0.113.0/24", ReasonDocumentation},
	{"224.0.0.0/4", ReasonMulticast},
	{"240.0.0.0/4", ReasonReserved},
	{"::/128", ReasonReserved},
	{"::1/128", ReasonLoopback},
	{"64:ff9b:1::/48", ReasonPrivate},
	{"100::/64", ReasonReserved},
	{"2001:db8::/32", ReasonDocumentation},
	{"3fff::/20", ReasonDocumentation},
	{"fc00::/7", ReasonPrivate},
	{"fe80::/10", ReasonLinkLocal},
	{"ff00::/8", ReasonMulticast},
}

// Verdict is the result of a gate check.
type Verdict struct {
	Reason string
	Prefix netip.Prefix
}

// Gate is an immutable CIDR table; it is safe for concurrent use.
type Gate struct {
	table *bart.Table[Verdict]
	// shared, when set, is consulted after table (shared.go).
	shared *Shared
}

// New builds a gate from the built-in special ranges plus the operator's own ranges and
// allowlist. The most specific prefix wins; for identical prefixes the allowlist wins over own
// ranges, which win over the built-in reason.
func New(ownRanges, allowlist []netip.Prefix) *Gate {
	t := new(bart.Table[Verdict])
	for _, r := range specialRanges {
		p := netip.MustParsePrefix(r.prefix)
		t.Insert(p, Verdict{Reason: r.reason, Prefix: p})
	}
	for _, p := range ownRanges {
		p = p.Masked()
		t.Insert(p, Verdict{Reason: ReasonOwnRange, Prefix: p})
	}
	for _, p := range allowlist {
		p = p.Masked()
		t.Insert(p, Verdict{Reason: ReasonAllowlist, Prefix: p})
	}
	return &Gate{table: t}
}

// Match reports whether addr itself (an IPv4-mapped address as its IPv4 address) is in a
// gated range, without following the IPv4 address an IPv6 address may embed.
func (g *Gate) Match(addr netip.Addr) (Verdict, bool) {
	return g.table.Lookup(addr.Unmap())
}

// Check reports whether addr is gated and why. An IPv6 address that is only a way of writing
// an IPv4 host (IPv4-compatible, SIIT, the NAT64 well-known prefix, 6to4, Teredo) is gated when
// that host is: 64:ff9b::10.0.0.1 is a private address no provider knows. ISATAP is not
// followed: its identifier sits under any global /64, so the address is routable whatever
// IPv4 address it names.
func (g *Gate) Check(addr netip.Addr) (Verdict, bool) {
	addr = addr.Unmap()
	if v, ok := g.checkStatic(addr); ok || g.shared == nil {
		return v, ok
	}
	return g.shared.lookup(addr)
}

// checkStatic is Check against the ranges the gate was built with.
func (g *Gate) checkStatic(addr netip.Addr) (Verdict, bool) {
	if v, ok := g.table.Lookup(addr); ok || !addr.Is6() {
		return v, ok
	}
	var buf [3]Embedding
	for _, e := range Embedded(addr, buf[:0]) {
		if e.Form == FormISATAP {
			continue
		}
		if v, ok := g.table.Lookup(e.Addr); ok {
			return v, true
		}
	}
	return Verdict{}, false
}

// ParsePrefixes parses a list of CIDRs or bare addresses (taken as /32 or /128).
func ParsePrefixes(items []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(items))
	for _, item := range items {
		s := strings.TrimSpace(item)
		if s == "" {
			continue
		}
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("invalid CIDR %q: %w", s, err)
			}
			if p.Addr().Is4In6() {
				return nil, fmt.Errorf("invalid CIDR %q: use the IPv4 form", s)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("invalid address %q: %w", s, err)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
