package event

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseIP(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string // canonical Value; "" means an error is expected
		typ     IndicatorType
		wantErr string // substring of the error when want == ""
	}{
		// IPv4.
		{name: "ipv4", in: "192.0.2.1", want: "192.0.2.1", typ: IPv4},
		{name: "ipv4 zero", in: "0.0.0.0", want: "0.0.0.0", typ: IPv4},
		{name: "ipv4 broadcast", in: "255.255.255.255", want: "255.255.255.255", typ: IPv4},
		{name: "ipv4 surrounding whitespace", in: " \t192.0.2.1\r\n", want: "192.0.2.1", typ: IPv4},

		// IPv6 and canonical form.
		{name: "ipv6 canonical upper and padded", in: "2001:DB8::0001", want: "2001:db8::1", typ: IPv6},
		{name: "ipv6 fully expanded", in: "2001:0db8:0000:0000:0000:0000:0000:0001", want: "2001:db8::1", typ: IPv6},
		{name: "ipv6 longest zero run compressed", in: "2001:db8:0:0:1:0:0:1", want: "2001:db8::1:0:0:1", typ: IPv6},
		{name: "ipv6 unspecified", in: "::", want: "::", typ: IPv6},
		{name: "ipv6 loopback", in: "0:0:0:0:0:0:0:1", want: "::1", typ: IPv6},
		{name: "ipv6 bracketed", in: "[2001:db8::1]", want: "2001:db8::1", typ: IPv6},
		{name: "ipv6 bracketed with whitespace outside", in: "  [2606:4700::1111] ", want: "2606:4700::1111", typ: IPv6},
		{name: "ipv4-compatible (not mapped) stays ipv6", in: "::1.2.3.4", want: "::102:304", typ: IPv6},
		{name: "nat64 stays ipv6", in: "64:ff9b::192.0.2.1", want: "64:ff9b::c000:201", typ: IPv6},

		// IPv4-mapped IPv6 becomes the IPv4 address.
		{name: "mapped dotted", in: "::ffff:192.0.2.1", want: "192.0.2.1", typ: IPv4},
		{name: "mapped hex upper", in: "::FFFF:C000:0201", want: "192.0.2.1", typ: IPv4},
		{name: "mapped expanded", in: "0:0:0:0:0:ffff:10.0.0.1", want: "10.0.0.1", typ: IPv4},
		{name: "mapped bracketed", in: "[::ffff:10.0.0.1]", want: "10.0.0.1", typ: IPv4},

		// Zones are dropped.
		{name: "zone dropped", in: "fe80::1%eth0", want: "fe80::1", typ: IPv6},
		{name: "zone numeric dropped", in: "fe80::abcd%3", want: "fe80::abcd", typ: IPv6},
		{name: "zone in brackets dropped", in: "[fe80::1%25en0]", want: "fe80::1", typ: IPv6},
		{name: "zone on mapped dropped", in: "::ffff:1.2.3.4%eth0", want: "1.2.3.4", typ: IPv4},

		// Errors.
		{name: "empty", in: "", wantErr: "empty IP address"},
		{name: "only whitespace", in: " \t\n ", wantErr: "empty IP address"},
		{name: "empty brackets", in: "[]", wantErr: "invalid IP address"},
		{name: "brackets around space", in: "[  ]", wantErr: "invalid IP address"},
		{name: "leading zero octet", in: "010.0.0.1", wantErr: "invalid IP address \"010.0.0.1\""},
		{name: "leading zero last octet", in: "1.2.3.04", wantErr: "invalid IP address"},
		{name: "ipv4 with port", in: "192.0.2.1:80", wantErr: "invalid IP address"},
		{name: "ipv6 with port", in: "[2001:db8::1]:443", wantErr: "invalid IP address"},
		{name: "ipv4 cidr", in: "192.0.2.0/24", wantErr: "invalid IP address"},
		{name: "ipv4 host /32", in: "192.0.2.1/32", wantErr: "invalid IP address"},
		{name: "ipv6 cidr", in: "2001:db8::/32", wantErr: "invalid IP address"},
		{name: "garbage", in: "not-an-ip", wantErr: "invalid IP address"},
		{name: "hostname", in: "example.com", wantErr: "invalid IP address"},
		{name: "three octets", in: "1.2.3", wantErr: "invalid IP address"},
		{name: "five octets", in: "1.2.3.4.5", wantErr: "invalid IP address"},
		{name: "octet overflow", in: "256.1.1.1", wantErr: "invalid IP address"},
		{name: "hex ipv4", in: "0x7f.0.0.1", wantErr: "invalid IP address"},
		{name: "integer ipv4", in: "2130706433", wantErr: "invalid IP address"},
		{name: "two addresses", in: "1.2.3.4 5.6.7.8", wantErr: "invalid IP address"},
		{name: "unbalanced open bracket", in: "[2001:db8::1", wantErr: "invalid IP address"},
		{name: "unbalanced close bracket", in: "2001:db8::1]", wantErr: "invalid IP address"},
		{name: "double brackets", in: "[[::1]]", wantErr: "invalid IP address"},
		{name: "space inside brackets", in: "[ ::1 ]", wantErr: "invalid IP address"},
		{name: "empty zone", in: "fe80::1%", wantErr: "invalid IP address"},
		{name: "zone on ipv4", in: "1.2.3.4%eth0", wantErr: "invalid IP address"},
		{name: "ipv6 too many groups", in: "1:2:3:4:5:6:7:8:9", wantErr: "invalid IP address"},
		{name: "ipv6 two double colons", in: "1::2::3", wantErr: "invalid IP address"},
		{name: "nul byte", in: "1.2.3.4\x00", wantErr: "invalid IP address"},
		{name: "fullwidth digits", in: "１.２.３.４", wantErr: "invalid IP address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseIP(tt.in)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("ParseIP(%q) = %+v, want error containing %q", tt.in, got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseIP(%q) error = %q, want it to contain %q", tt.in, err, tt.wantErr)
				}
				if got != (Indicator{}) {
					t.Fatalf("ParseIP(%q) returned non-zero indicator %+v with error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseIP(%q) error: %v", tt.in, err)
			}
			if got.Value != tt.want || got.Type != tt.typ {
				t.Fatalf("ParseIP(%q) = {%s %s}, want {%s %s}", tt.in, got.Type, got.Value, tt.typ, tt.want)
			}
			if want := netip.MustParseAddr(tt.want); got.Addr != want {
				t.Fatalf("ParseIP(%q).Addr = %v, want %v", tt.in, got.Addr, want)
			}
			if got.Addr.Zone() != "" || got.Addr.Is4In6() {
				t.Fatalf("ParseIP(%q).Addr = %v keeps a zone or a mapping", tt.in, got.Addr)
			}
			// The canonical value is a fixed point.
			again, err := ParseIP(got.Value)
			if err != nil || again != got {
				t.Fatalf("ParseIP(%q) = %+v, %v; want %+v", got.Value, again, err, got)
			}
		})
	}
}

// Two spellings of one address must give the same Value: it is a cache and partition key.
func TestParseIPSpellingsAgree(t *testing.T) {
	groups := [][]string{
		{"192.0.2.1", "::ffff:192.0.2.1", "::FFFF:C000:201", "[::ffff:192.0.2.1]", " 192.0.2.1 "},
		{"2001:db8::1", "2001:DB8::0001", "2001:0db8:0:0:0:0:0:1", "[2001:db8::1]", "2001:db8::1%eth0"},
	}
	for _, g := range groups {
		first, err := ParseIP(g[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range g[1:] {
			got, err := ParseIP(s)
			if err != nil {
				t.Fatalf("ParseIP(%q): %v", s, err)
			}
			if got != first {
				t.Errorf("ParseIP(%q) = %+v, want %+v (same as %q)", s, got, first, g[0])
			}
		}
	}
}

func TestParseIPErrorTruncatesLongInput(t *testing.T) {
	in := strings.Repeat("a", 500)
	_, err := ParseIP(in)
	if err == nil {
		t.Fatal("want error")
	}
	if strings.Contains(err.Error(), in) {
		t.Fatalf("error echoes the whole 500-byte input: %q", err)
	}
	if !strings.Contains(err.Error(), strings.Repeat("a", 64)+"…") {
		t.Fatalf("error %q does not hold the 64-byte prefix and an ellipsis", err)
	}
}
