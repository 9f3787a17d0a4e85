package gate

import "net/netip"

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
