package neverblock

import (
	"net/netip"
	"testing"

	"github.com/threatpipe/threatpipe/pipeline/gate"
)

// FuzzCheck feeds arbitrary target strings (what act reads from scored events) to CheckTarget
// and arbitrary 16-byte addresses to Check. Invariants: nothing panics; a target that is not
// an address is refused; an address is refused whenever an IPv4 address it embeds is; an IPv4
// address and its IPv4-mapped form get the same answer.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		"10.0.0.1", "185.220.101.1", "::ffff:10.0.0.1", "::10.0.0.1", "::ffff:0:10.0.0.1",
		"64:ff9b::a00:1", "64:ff9b:1::1", "2002:a00:1::1", "2001:0:4136:e378:8000:63bf:f5ff:fffe",
		"2a00:1450:4001::5efe:a00:1", "fe80::1%eth0", "", "not-an-ip", "::", "ff02::1",
	} {
		f.Add(s)
	}
	l := testList()
	f.Fuzz(func(t *testing.T, target string) {
		v, never := l.CheckTarget(target)
		a, err := netip.ParseAddr(target)
		if err != nil {
			if !never || v.Reason != ReasonUnparseable {
				t.Fatalf("CheckTarget(%q) = %v, %v; want unparseable", target, v, never)
			}
			return
		}
		if never && v.Reason == "" {
			t.Fatalf("CheckTarget(%q): refused without a reason", target)
		}
		checkInvariants(t, l, a.WithZone(""), never)
	})
}

// FuzzEmbedded covers the whole IPv6 space, not only what ParseAddr's seeds reach.
func FuzzEmbedded(f *testing.F) {
	for _, s := range []string{"64:ff9b::a00:1", "2002:a00:1::1", "2001:0:4136:e378:8000:63bf:f5ff:fffe", "::ffff:0:a00:1"} {
		b := netip.MustParseAddr(s).As16()
		f.Add(b[:])
	}
	l := testList()
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) != 16 {
			return
		}
		a := netip.AddrFrom16([16]byte(raw))
		_, never := l.Check(a)
		checkInvariants(t, l, a, never)
	})
}

func checkInvariants(t *testing.T, l *List, a netip.Addr, never bool) {
	t.Helper()
	for _, e := range gate.Embedded(a, nil) {
		if !e.Addr.Is4() {
			t.Fatalf("%s embeds a non-IPv4 address %s", a, e.Addr)
		}
		if _, embeddedNever := l.Check(e.Addr); embeddedNever && !never {
			t.Fatalf("%s is blockable but embeds never-block %s (%s)", a, e.Addr, e.Form)
		}
	}
	if a.Is4() {
		_, mappedNever := l.Check(netip.AddrFrom16(a.As16()))
		if mappedNever != never {
			t.Fatalf("%s: never-block %v, but its mapped form %v", a, never, mappedNever)
		}
	}
}
