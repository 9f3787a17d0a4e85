package neverblock

import (
	"net/netip"
	"testing"

	"github.com/threatpipe/threatpipe/pipeline/gate"
)

// testList has an own range and a configured never-block range, as act builds it from
// THREATPIPE_GATE_OWN_CIDRS and THREATPIPE_ACT_NEVER_BLOCK_CIDRS.
func testList() *List {
	return New(
		[]netip.Prefix{netip.MustParsePrefix("45.155.205.0/24"), netip.MustParsePrefix("2a01:4f8:100::/48")},
		[]netip.Prefix{netip.MustParsePrefix("8.8.8.8/32"), netip.MustParsePrefix("9.9.9.9/32")},
	)
}

func TestCheck(t *testing.T) {
	l := testList()
	tests := []struct {
		name, addr string
		reason     string // "" means blockable
		prefix     string
		form       gate.Form // set when an embedded address matched
		embedded   string    // that address
	}{
		// The address itself.
		{"private", "10.0.0.1", "private", "10.0.0.0/8", "", ""},
		{"loopback", "127.0.0.1", "loopback", "127.0.0.0/8", "", ""},
		{"link-local metadata", "169.254.169.254", "link_local", "169.254.0.0/16", "", ""},
		{"own range", "45.155.205.233", "own_range", "45.155.205.0/24", "", ""},
		{"own IPv6 range", "2a01:4f8:100::1", "own_range", "2a01:4f8:100::/48", "", ""},
		{"configured", "8.8.8.8", ReasonNeverBlockCIDRs, "8.8.8.8/32", "", ""},
		{"unique local", "fd00::1", "private", "fc00::/7", "", ""},
		{"zone ignored", "fe80::1%eth0", "link_local", "fe80::/10", "", ""},
		{"NAT64 local-use whole", "64:ff9b:1::b9dc:6501", "private", "64:ff9b:1::/48", "", ""},
		{"public IPv4", "185.220.101.1", "", "", "", ""},
		{"public IPv6", "2606:4700::1111", "", "", "", ""},

		// IPv4-mapped.
		{"mapped private", "::ffff:10.0.0.1", "private", "10.0.0.0/8", gate.FormIPv4Mapped, "10.0.0.1"},
		{"mapped own", "::ffff:45.155.205.1", "own_range", "45.155.205.0/24", gate.FormIPv4Mapped, "45.155.205.1"},
		{"mapped configured", "::ffff:8.8.8.8", ReasonNeverBlockCIDRs, "8.8.8.8/32", gate.FormIPv4Mapped, "8.8.8.8"},
		{"mapped public", "::ffff:185.220.101.1", "", "", "", ""},

		// IPv4-compatible and IPv4-translated.
		{"compatible loopback", "::127.0.0.1", "loopback", "127.0.0.0/8", gate.FormIPv4Compatible, "127.0.0.1"},
		{"compatible private", "::10.0.0.1", "private", "10.0.0.0/8", gate.FormIPv4Compatible, "10.0.0.1"},
		{"compatible public", "::185.220.101.1", "", "", "", ""},
		{"unspecified stays reserved", "::", "reserved", "::/128", "", ""},
		{"loopback stays loopback", "::1", "loopback", "::1/128", "", ""},
		{"translated private", "::ffff:0:10.0.0.1", "private", "10.0.0.0/8", gate.FormIPv4Translated, "10.0.0.1"},
		{"translated public", "::ffff:0:185.220.101.1", "", "", "", ""},

		// NAT64 well-known prefix.
		{"NAT64 private", "64:ff9b::10.0.0.1", "private", "10.0.0.0/8", gate.FormNAT64, "10.0.0.1"},
		{"NAT64 loopback", "64:ff9b::127.0.0.1", "loopback", "127.0.0.0/8", gate.FormNAT64, "127.0.0.1"},
		{"NAT64 metadata", "64:ff9b::169.254.169.254", "link_local", "169.254.0.0/16", gate.FormNAT64, "169.254.169.254"},
		{"NAT64 own", "64:ff9b::45.155.205.233", "own_range", "45.155.205.0/24", gate.FormNAT64, "45.155.205.233"},
		{"NAT64 configured", "64:ff9b::8.8.8.8", ReasonNeverBlockCIDRs, "8.8.8.8/32", gate.FormNAT64, "8.8.8.8"},
		{"NAT64 public", "64:ff9b::185.220.101.1", "", "", "", ""},
		{"not NAT64: bits 32-95 set", "64:ff9b:0:1::a00:1", "", "", "", ""},

		// 6to4.
		{"6to4 private", "2002:a00:1::1", "private", "10.0.0.0/8", gate.Form6to4, "10.0.0.1"},
		{"6to4 loopback", "2002:7f00:1:2:3:4:5:6", "loopback", "127.0.0.0/8", gate.Form6to4, "127.0.0.1"},
		{"6to4 own", "2002:2d9b:cde9::1", "own_range", "45.155.205.0/24", gate.Form6to4, "45.155.205.233"},
		{"6to4 CGNAT", "2002:6440:1::", "cgnat", "100.64.0.0/10", gate.Form6to4, "100.64.0.1"},
		{"6to4 public", "2002:b9dc:6501::1", "", "", "", ""},

		// Teredo: server in bits 32-63, client in the last 32 bits inverted.
		{"Teredo client private", "2001:0:4136:e378:8000:63bf:f5ff:fffe", "private", "10.0.0.0/8", gate.FormTeredoClient, "10.0.0.1"},
		{"Teredo client own", "2001:0:4136:e378:8000:63bf:d264:3216", "own_range", "45.155.205.0/24", gate.FormTeredoClient, "45.155.205.233"},
		{"Teredo server private", "2001:0:a00:1:8000:63bf:4623:9afe", "private", "10.0.0.0/8", gate.FormTeredoServer, "10.0.0.1"},
		{"Teredo client all ones is broadcast", "2001:0:4136:e378::", "reserved", "240.0.0.0/4", gate.FormTeredoClient, "255.255.255.255"},
		{"Teredo public both", "2001:0:4136:e378:8000:63bf:4623:9afe", "", "", "", ""},
		{"not Teredo: 2001:1::/32", "2001:1::f5ff:fffe", "", "", "", ""},

		// ISATAP interface identifiers, behind any prefix.
		{"ISATAP private", "2a00:1450:4001::5efe:a00:1", "private", "10.0.0.0/8", gate.FormISATAP, "10.0.0.1"},
		{"ISATAP u bit loopback", "2a00:1450:4001::200:5efe:7f00:1", "loopback", "127.0.0.0/8", gate.FormISATAP, "127.0.0.1"},
		{"ISATAP public", "2a00:1450:4001::200:5efe:b9dc:6501", "", "", "", ""},
		{"not ISATAP", "2a00:1450:4001::400:5efe:a00:1", "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, never := l.Check(netip.MustParseAddr(tt.addr))
			if tt.reason == "" {
				if never {
					t.Fatalf("Check(%s) = %v, want blockable", tt.addr, v)
				}
				return
			}
			if !never {
				t.Fatalf("Check(%s) blockable, want %s %s", tt.addr, tt.reason, tt.prefix)
			}
			if v.Reason != tt.reason || v.Prefix != netip.MustParsePrefix(tt.prefix) {
				t.Errorf("Check(%s) = %v, want %s %s", tt.addr, v, tt.reason, tt.prefix)
			}
			var want gate.Embedding
			if tt.form != "" {
				want = gate.Embedding{Form: tt.form, Addr: netip.MustParseAddr(tt.embedded)}
			}
			if v.Embedded != want {
				t.Errorf("Check(%s) embedded %+v, want %+v", tt.addr, v.Embedded, want)
			}
		})
	}
}

func TestCheckTarget(t *testing.T) {
	l := testList()
	for _, target := range []string{"", " 10.0.0.1", "not-an-ip", "10.0.0.0/8", "1.2.3.4:80", "010.0.0.1"} {
		if v, never := l.CheckTarget(target); !never || v.Reason != ReasonUnparseable {
			t.Errorf("CheckTarget(%q) = %v, %v; want unparseable", target, v, never)
		}
	}
	if v, never := l.CheckTarget("64:ff9b::a00:1"); !never || v.Embedded.Form != gate.FormNAT64 {
		t.Errorf("CheckTarget(NAT64 private) = %v, %v", v, never)
	}
	if v, never := l.CheckTarget("185.220.101.1"); never {
		t.Errorf("CheckTarget(public) = %v", v)
	}
}

func TestVerdictString(t *testing.T) {
	l := testList()
	for addr, want := range map[string]string{
		"10.0.0.1":          "private 10.0.0.0/8",
		"64:ff9b::a00:1":    "private 10.0.0.0/8: embeds 10.0.0.1 (nat64)",
		"2002:2d9b:cde9::1": "own_range 45.155.205.0/24: embeds 45.155.205.233 (6to4)",
	} {
		v, _ := l.Check(netip.MustParseAddr(addr))
		if got := v.String(); got != want {
			t.Errorf("%s: %q, want %q", addr, got, want)
		}
	}
	if v, _ := l.CheckTarget("x"); v.String() != ReasonUnparseable {
		t.Errorf("unparseable: %q", v.String())
	}
}

// Every built-in gate range is never blocked, whichever way an address of it is written.
func TestBuiltinCoversGateAndEmbeddedForms(t *testing.T) {
	l := Builtin()
	if Builtin() != l {
		t.Error("Builtin builds a new list per call")
	}
	for _, s := range []string{"10.0.0.1", "172.16.0.1", "192.168.1.1", "127.0.0.1", "169.254.1.1", "100.64.0.1", "0.0.0.0", "224.0.0.1", "192.0.2.1"} {
		a := netip.MustParseAddr(s)
		b := a.As4()
		forms := []netip.Addr{
			a,
			netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: b[0], 13: b[1], 14: b[2], 15: b[3]}),
			netip.AddrFrom16([16]byte{12: b[0], 13: b[1], 14: b[2], 15: b[3]}),
			netip.AddrFrom16([16]byte{1: 0x64, 2: 0xff, 3: 0x9b, 12: b[0], 13: b[1], 14: b[2], 15: b[3]}),
			netip.AddrFrom16([16]byte{0: 0x20, 1: 0x02, 2: b[0], 3: b[1], 4: b[2], 5: b[3], 15: 1}),
			netip.AddrFrom16([16]byte{0: 0x20, 1: 0x01, 4: 65, 5: 54, 6: 227, 7: 120, 12: ^b[0], 13: ^b[1], 14: ^b[2], 15: ^b[3]}),
		}
		for _, f := range forms {
			if v, never := l.Check(f); !never {
				t.Errorf("%s (embedding %s) is blockable", f, a)
			} else if v.Reason == "" {
				t.Errorf("%s: verdict without a reason: %+v", f, v)
			}
		}
	}
}
