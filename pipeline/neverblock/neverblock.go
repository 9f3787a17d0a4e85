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

// Form names how an IPv6 address embeds an IPv4 address.
type Form string

// Embedding forms.
const (
	FormIPv4Mapped     Form = "ipv4_mapped"     // ::ffff:a.b.c.d
	FormIPv4Compatible Form = "ipv4_compatible" // ::a.b.c.d (deprecated, RFC 4291)
	FormIPv4Translated Form = "ipv4_translated" // ::ffff:0:a.b.c.d (SIIT, RFC 2765)
	FormNAT64          Form = "nat64"           // 64:ff9b::a.b.c.d (RFC 6052 well-known prefix)
	Form6to4           Form = "6to4"            // 2002:AABB:CCDD::/48 (RFC 3056)
	FormTeredoServer   Form = "teredo_server"   // 2001:0:AABB:CCDD::/64 (RFC 4380)
	FormTeredoClient   Form = "teredo_client"   // the last 32 bits, inverted
	FormISATAP         Form = "isatap"          // interface identifier [02]00:5efe:a.b.c.d (RFC 5214)
)

// Embedding is an IPv4 address an IPv6 address carries, and how.
type Embedding struct {
	Form Form
	Addr netip.Addr
}

// Verdict says why an address is never blocked.
type Verdict struct {
	// Reason and Prefix are the never-block range that matched (gate's reasons, or
	// ReasonNeverBlockCIDRs).
	gate.Verdict
	// Embedded is the IPv4 address that matched when the address itself did not; zero otherwise.
	Embedded Embedding
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
		e := Embedding{Form: FormIPv4Mapped, Addr: addr.Unmap()}
		if v, ok := l.lookup(e.Addr); ok {
			return Verdict{Verdict: v, Embedded: e}, true
		}
		return Verdict{}, false
	}
	if v, ok := l.lookup(addr); ok {
		return Verdict{Verdict: v}, true
	}
	var buf [3]Embedding
	for _, e := range Embedded(addr, buf[:0]) {
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
	if v, ok := l.gate.Check(a); ok {
		return v, true
	}
	return l.never.Lookup(a.Unmap())
}

// Embedded appends to dst the IPv4 addresses an IPv6 address embeds (none for an IPv4
// address): at most three, since a Teredo address names a server and a client, and its
// interface identifier can also look like ISATAP's.
func Embedded(a netip.Addr, dst []Embedding) []Embedding {
	if !a.Is6() {
		return dst
	}
	b := a.As16()
	v4 := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{b[i], b[i+1], b[i+2], b[i+3]}) }
	zero := func(from, to int) bool {
		for _, x := range b[from:to] {
			if x != 0 {
				return false
			}
		}
		return true
	}
	switch {
	case a.Is4In6():
		dst = append(dst, Embedding{FormIPv4Mapped, v4(12)})
	case zero(0, 12):
		dst = append(dst, Embedding{FormIPv4Compatible, v4(12)})
	case zero(0, 8) && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0:
		dst = append(dst, Embedding{FormIPv4Translated, v4(12)})
	case b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && zero(4, 12):
		dst = append(dst, Embedding{FormNAT64, v4(12)})
	case b[0] == 0x20 && b[1] == 0x02:
		dst = append(dst, Embedding{Form6to4, v4(2)})
	case b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0:
		client := netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
		dst = append(dst, Embedding{FormTeredoServer, v4(4)}, Embedding{FormTeredoClient, client})
	}
	// ISATAP is an interface identifier, so it can follow any /64 (the u and g bits may be set).
	if b[8]&^0x03 == 0 && b[9] == 0 && b[10] == 0x5e && b[11] == 0xfe {
		dst = append(dst, Embedding{FormISATAP, v4(12)})
	}
	return dst
}
