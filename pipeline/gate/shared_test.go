package gate

import (
	"net/netip"
	"testing"
)

func TestSharedAfterStaticRanges(t *testing.T) {
	t.Parallel()
	shared := NewShared()
	base := New([]netip.Prefix{netip.MustParsePrefix("185.220.0.0/16")}, nil)
	g := base.WithShared(shared)
	public := netip.MustParseAddr("45.33.32.156")
	if _, gated := g.Check(public); gated {
		t.Fatal("gated with an empty shared allowlist")
	}
	shared.Replace([]netip.Prefix{netip.MustParsePrefix("45.33.32.156/32"), netip.MustParsePrefix("185.220.101.0/24"),
		netip.MustParsePrefix("10.0.0.0/24")})
	for addr, want := range map[string]string{
		"45.33.32.156":        ReasonAllowlist,
		"::ffff:45.33.32.156": ReasonAllowlist,
		"185.220.101.7":       ReasonOwnRange, // the static range is consulted first
		"10.0.0.1":            ReasonPrivate,
	} {
		if v, gated := g.Check(netip.MustParseAddr(addr)); !gated || v.Reason != want {
			t.Errorf("Check(%s) = %+v, %v; want %s", addr, v, gated, want)
		}
	}
	if _, gated := base.Check(public); gated {
		t.Error("WithShared changed the gate it was called on")
	}
	if shared.Len() != 3 {
		t.Errorf("Len = %d", shared.Len())
	}
	shared.Replace(nil)
	if _, gated := g.Check(public); gated {
		t.Error("still gated after the entry left the shared allowlist")
	}
}
