package gate

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestCheckBuiltinRanges(t *testing.T) {
	g := New(nil, nil)
	tests := []struct {
		addr   string
		reason string // "" means not gated
		prefix string
	}{
		// Private (RFC 1918) and edges.
		{"10.0.0.0", ReasonPrivate, "10.0.0.0/8"},
		{"10.1.2.3", ReasonPrivate, "10.0.0.0/8"},
		{"10.255.255.255", ReasonPrivate, "10.0.0.0/8"},
		{"9.255.255.255", "", ""},
		{"11.0.0.0", "", ""},
		{"172.16.0.0", ReasonPrivate, "172.16.0.0/12"},
		{"172.20.10.5", ReasonPrivate, "172.16.0.0/12"},
		{"172.31.255.255", ReasonPrivate, "172.16.0.0/12"},
		{"172.15.255.255", "", ""},
		{"172.32.0.0", "", ""},
		{"192.168.0.1", ReasonPrivate, "192.168.0.0/16"},
		{"192.168.255.255", ReasonPrivate, "192.168.0.0/16"},
		{"192.169.0.1", "", ""},
		{"64:ff9b:1::1", ReasonPrivate, "64:ff9b:1::/48"},

		// Loopback.
		{"127.0.0.1", ReasonLoopback, "127.0.0.0/8"},
		{"127.255.255.254", ReasonLoopback, "127.0.0.0/8"},
		{"::1", ReasonLoopback, "::1/128"},

		// Link-local.
		{"169.254.0.1", ReasonLinkLocal, "169.254.0.0/16"},
		{"169.254.169.254", ReasonLinkLocal, "169.254.0.0/16"},
		{"169.255.0.1", "", ""},
		{"fe80::1", ReasonLinkLocal, "fe80::/10"},
		{"febf:ffff::1", ReasonLinkLocal, "fe80::/10"},

		// CGNAT (RFC 6598) and both edges.
		{"100.64.0.0", ReasonCGNAT, "100.64.0.0/10"},
		{"100.100.100.100", ReasonCGNAT, "100.64.0.0/10"},
		{"100.127.255.255", ReasonCGNAT, "100.64.0.0/10"},
		{"100.63.255.255", "", ""},
		{"100.128.0.0", "", ""},

		// Multicast.
		{"224.0.0.1", ReasonMulticast, "224.0.0.0/4"},
		{"239.255.255.250", ReasonMulticast, "224.0.0.0/4"},
		{"ff02::1", ReasonMulticast, "ff00::/8"},
		{"ff05::1:3", ReasonMulticast, "ff00::/8"},

		// Reserved, "this network" and broadcast.
		{"240.0.0.1", ReasonReserved, "240.0.0.0/4"},
		{"255.255.255.255", ReasonReserved, "240.0.0.0/4"},
		{"0.0.0.0", ReasonReserved, "0.0.0.0/8"},
		{"0.255.255.255", ReasonReserved, "0.0.0.0/8"},
		{"192.0.0.8", ReasonReserved, "192.0.0.0/24"},
		{"192.88.99.1", ReasonReserved, "192.88.99.0/24"},
		{"198.18.0.1", ReasonReserved, "198.18.0.0/15"},
		{"198.19.255.255", ReasonReserved, "198.18.0.0/15"},
		{"198.20.0.0", "", ""},
		{"::", ReasonReserved, "::/128"},
		{"100::1", ReasonReserved, "100::/64"},

		// Documentation.
		{"192.0.2.1", ReasonDocumentation, "192.0.2.0/24"},
		{"198.51.100.255", ReasonDocumentation, "198.51.100.0/24"},
		{"203.0.113.7", ReasonDocumentation, "203.0.113.0/24"},
		{"2001:db8::1", ReasonDocumentation, "2001:db8::/32"},
		{"2001:db8:ffff::1", ReasonDocumentation, "2001:db8::/32"},
		{"3fff:fff:ffff::1", ReasonDocumentation, "3fff::/20"},
		{"3fff:1000::1", "", ""},

		// Unique local fc00::/7.
		{"fc00::1", ReasonPrivate, "fc00::/7"},
		{"fd12:3456:789a::1", ReasonPrivate, "fc00::/7"},
		{"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ReasonPrivate, "fc00::/7"},
		{"fbff::1", "", ""},

		// IPv4-mapped IPv6 is checked as the IPv4 address it maps.
		{"::ffff:10.0.0.1", ReasonPrivate, "10.0.0.0/8"},
		{"::ffff:127.0.0.1", ReasonLoopback, "127.0.0.0/8"},
		{"::ffff:8.8.8.8", "", ""},

		// Public addresses.
		{"8.8.8.8", "", ""},
		{"1.1.1.1", "", ""},
		{"9.9.9.9", "", ""},
		{"185.220.101.1", "", ""},
		{"2606:4700::1111", "", ""},
		{"2001:4860:4860::8888", "", ""},
		{"2a00:1450:4001::1", "", ""},
		// IPv6 ways of writing an IPv4 host are gated when the host is.
		{"::10.1.2.3", ReasonPrivate, "10.0.0.0/8"},
		{"::ffff:0:127.0.0.1", ReasonLoopback, "127.0.0.0/8"},
		{"64:ff9b::10.0.0.1", ReasonPrivate, "10.0.0.0/8"},
		{"64:ff9b::169.254.169.254", ReasonLinkLocal, "169.254.0.0/16"},
		{"64:ff9b::185.220.101.1", "", ""},
		{"2002:c0a8:101::1", ReasonPrivate, "192.168.0.0/16"},
		{"2002:b9dc:6501::1", "", ""},
		{"2001:0:a00:1:8000:63bf:4623:9afe", ReasonPrivate, "10.0.0.0/8"},     // Teredo server 10.0.0.1
		{"2001:0:4136:e378:8000:63bf:f5ff:fffe", ReasonPrivate, "10.0.0.0/8"}, // Teredo client 10.0.0.1
		{"2001:0:4136:e378:8000:63bf:4623:9afe", "", ""},                      // both public
		{"2a00:1450:4001::5efe:10.0.0.1", "", ""},                             // ISATAP under a global /64
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			v, ok := g.Check(netip.MustParseAddr(tt.addr))
			if tt.reason == "" {
				if ok {
					t.Fatalf("Check(%s) = %+v, want not gated", tt.addr, v)
				}
				return
			}
			if !ok {
				t.Fatalf("Check(%s) not gated, want %s", tt.addr, tt.reason)
			}
			want := Verdict{Reason: tt.reason, Prefix: netip.MustParsePrefix(tt.prefix)}
			if v != want {
				t.Fatalf("Check(%s) = %+v, want %+v", tt.addr, v, want)
			}
		})
	}
}

// Every built-in range gates its first and last address with its own reason.
func TestCheckBuiltinRangeEdges(t *testing.T) {
	g := New(nil, nil)
	for _, r := range specialRanges {
		p := netip.MustParsePrefix(r.prefix)
		first := p.Addr()
		last := lastAddr(p)
		for _, a := range []netip.Addr{first, last} {
			v, ok := g.Check(a)
			if !ok || v.Reason != r.reason || v.Prefix != p {
				t.Errorf("Check(%s) = %+v, %v; want %s from %s", a, v, ok, r.reason, p)
			}
		}
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func TestOwnRangesAndAllowlist(t *testing.T) {
	own := []netip.Prefix{
		netip.MustParsePrefix("8.8.0.0/16"),
		netip.MustParsePrefix("1.1.1.0/24"),
		netip.MustParsePrefix("9.9.9.0/24"),
		netip.MustParsePrefix("10.0.0.0/8"),    // same as a built-in range
		netip.MustParsePrefix("172.16.5.0/24"), // inside a built-in range
		netip.MustParsePrefix("5.6.7.8/16"),    // not masked
		netip.MustParsePrefix("2a00:1450::/32"),
		netip.MustParsePrefix("185.1.2.3/32"),
	}
	allow := []netip.Prefix{
		netip.MustParsePrefix("8.8.8.0/24"), // more specific than an own range
		netip.MustParsePrefix("1.0.0.0/8"),  // less specific than an own range
		netip.MustParsePrefix("9.9.9.0/24"), // identical to an own range
		netip.MustParsePrefix("192.168.1.1/32"),
		netip.MustParsePrefix("2a00:1450:4001::/48"),
		netip.MustParsePrefix("185.1.2.3/32"), // identical host
	}
	g := New(own, allow)
	tests := []struct {
		addr, reason, prefix string
	}{
		{"8.8.8.8", ReasonAllowlist, "8.8.8.0/24"},
		{"8.8.4.4", ReasonOwnRange, "8.8.0.0/16"},
		{"1.1.1.1", ReasonOwnRange, "1.1.1.0/24"},
		{"1.2.3.4", ReasonAllowlist, "1.0.0.0/8"},
		{"9.9.9.9", ReasonAllowlist, "9.9.9.0/24"},
		{"185.1.2.3", ReasonAllowlist, "185.1.2.3/32"},
		{"185.1.2.4", "", ""},
		{"10.20.30.40", ReasonOwnRange, "10.0.0.0/8"},
		{"172.16.5.1", ReasonOwnRange, "172.16.5.0/24"},
		{"172.16.6.1", ReasonPrivate, "172.16.0.0/12"},
		{"192.168.1.1", ReasonAllowlist, "192.168.1.1/32"},
		{"192.168.1.2", ReasonPrivate, "192.168.0.0/16"},
		{"5.6.200.1", ReasonOwnRange, "5.6.0.0/16"},
		{"5.7.0.1", "", ""},
		{"2a00:1450:1::1", ReasonOwnRange, "2a00:1450::/32"},
		{"2a00:1450:4001::1", ReasonAllowlist, "2a00:1450:4001::/48"},
		{"::ffff:8.8.4.4", ReasonOwnRange, "8.8.0.0/16"},
		{"127.0.0.1", ReasonLoopback, "127.0.0.0/8"},
		{"2606:4700::1111", "", ""},
	}
	for _, tt := range tests {
		v, ok := g.Check(netip.MustParseAddr(tt.addr))
		if tt.reason == "" {
			if ok {
				t.Errorf("Check(%s) = %+v, want not gated", tt.addr, v)
			}
			continue
		}
		want := Verdict{Reason: tt.reason, Prefix: netip.MustParsePrefix(tt.prefix)}
		if !ok || v != want {
			t.Errorf("Check(%s) = %+v, %v; want %+v", tt.addr, v, ok, want)
		}
	}
}

// A later gate does not see an earlier gate's ranges: the table is per Gate.
func TestGatesAreIndependent(t *testing.T) {
	a := New([]netip.Prefix{netip.MustParsePrefix("8.8.8.0/24")}, nil)
	b := New(nil, nil)
	if _, ok := a.Check(netip.MustParseAddr("8.8.8.8")); !ok {
		t.Fatal("own range not gated")
	}
	if v, ok := b.Check(netip.MustParseAddr("8.8.8.8")); ok {
		t.Fatalf("second gate gates 8.8.8.8: %+v", v)
	}
}

func TestParsePrefixes(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"nil", nil, []string{}},
		{"cidr", []string{"10.0.0.0/8"}, []string{"10.0.0.0/8"}},
		{"masked", []string{"10.1.2.3/8", "2001:db8::1/32"}, []string{"10.0.0.0/8", "2001:db8::/32"}},
		{"bare ipv4 is /32", []string{"1.2.3.4"}, []string{"1.2.3.4/32"}},
		{"bare ipv6 is /128", []string{"2001:DB8::0001"}, []string{"2001:db8::1/128"}},
		{"bare mapped is unmapped", []string{"::ffff:1.2.3.4"}, []string{"1.2.3.4/32"}},
		{"bare zone dropped", []string{"fe80::1%eth0"}, []string{"fe80::1/128"}},
		{"blank items skipped and items trimmed", []string{"", "  ", " 10.0.0.0/8 ", "\t192.0.2.1\n"}, []string{"10.0.0.0/8", "192.0.2.1/32"}},
		{"order kept", []string{"2001:db8::/32", "0.0.0.0/0", "::/0"}, []string{"2001:db8::/32", "0.0.0.0/0", "::/0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePrefixes(tt.in)
			if err != nil {
				t.Fatalf("ParsePrefixes(%q): %v", tt.in, err)
			}
			want := make([]netip.Prefix, len(tt.want))
			for i, s := range tt.want {
				want[i] = netip.MustParsePrefix(s)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("ParsePrefixes(%q) = %v, want %v", tt.in, got, want)
			}
		})
	}
}

func TestParsePrefixesErrors(t *testing.T) {
	tests := []struct {
		item, wantErr string
	}{
		{"10.0.0.0/33", `invalid CIDR "10.0.0.0/33"`},
		{"2001:db8::/129", `invalid CIDR "2001:db8::/129"`},
		{"10.0.0.0/", `invalid CIDR`},
		{"/8", `invalid CIDR`},
		{"300.0.0.0/8", `invalid CIDR`},
		{"010.0.0.0/8", `invalid CIDR`},
		{"10.0.0.0/8/1", `invalid CIDR`},
		{"fe80::1%eth0/64", `invalid CIDR`},
		{"::ffff:10.0.0.0/104", `invalid CIDR "::ffff:10.0.0.0/104": use the IPv4 form`},
		{"::ffff:1.2.3.4/128", `use the IPv4 form`},
		{"not-an-ip", `invalid address "not-an-ip"`},
		{"1.2.3.4:80", `invalid address`},
		{"010.1.1.1", `invalid address`},
		{"example.com", `invalid address`},
	}
	for _, tt := range tests {
		t.Run(tt.item, func(t *testing.T) {
			got, err := ParsePrefixes([]string{"192.0.2.0/24", tt.item, "10.0.0.0/8"})
			if err == nil {
				t.Fatalf("ParsePrefixes(%q) = %v, want error", tt.item, got)
			}
			if got != nil {
				t.Errorf("ParsePrefixes returned %v with the error", got)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

// ParsePrefixes output feeds New: a bare own address gates exactly itself.
func TestParsePrefixesIntoGate(t *testing.T) {
	own, err := ParsePrefixes([]string{"203.0.114.7", "2a01:4f8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	allow, err := ParsePrefixes([]string{"::ffff:203.0.114.7"})
	if err != nil {
		t.Fatal(err)
	}
	g := New(own, allow)
	if v, ok := g.Check(netip.MustParseAddr("203.0.114.7")); !ok || v.Reason != ReasonAllowlist {
		t.Errorf("203.0.114.7: %+v %v, want allowlist", v, ok)
	}
	if v, ok := g.Check(netip.MustParseAddr("203.0.114.8")); ok {
		t.Errorf("203.0.114.8 gated: %+v", v)
	}
	if v, ok := g.Check(netip.MustParseAddr("2a01:4f8:1::2")); !ok || v.Reason != ReasonOwnRange {
		t.Errorf("2a01:4f8:1::2: %+v %v, want own_range", v, ok)
	}
}

// TestReasonsListsEveryReason: metric counters are resolved once per reason in Reasons, so a
// reason missing from it would be counted nowhere.
func TestReasonsListsEveryReason(t *testing.T) {
	listed := map[string]bool{}
	for _, r := range Reasons {
		listed[r] = true
	}
	for _, sr := range specialRanges {
		if !listed[sr.reason] {
			t.Errorf("reason %q of %s is not in Reasons", sr.reason, sr.prefix)
		}
	}
	for _, r := range []string{ReasonOwnRange, ReasonAllowlist} {
		if !listed[r] {
			t.Errorf("reason %q is not in Reasons", r)
		}
	}
}
