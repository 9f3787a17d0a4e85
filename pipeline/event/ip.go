package event

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// ParseIP normalises one IP spelling into an Indicator. It accepts IPv4, IPv6 (with or without
// brackets) and IPv4-mapped IPv6, which becomes the IPv4 address it maps. Zones are dropped: a
// scope such as %eth0 has no meaning outside the host that logged it. Anything else, including
// IPv4 with leading zeros (ambiguous octal), ports and CIDR suffixes, is an error.
func ParseIP(s string) (Indicator, error) {
	v := strings.TrimSpace(s)
	if len(v) > 2 && v[0] == '[' && v[len(v)-1] == ']' {
		v = v[1 : len(v)-1]
	}
	if v == "" {
		return Indicator{}, fmt.Errorf("empty IP address")
	}
	addr, err := netip.ParseAddr(v)
	if err != nil {
		return Indicator{}, fmt.Errorf("invalid IP address %q", truncate(s, 64))
	}
	addr = addr.Unmap().WithZone("")
	ind := Indicator{Type: IPv6, Value: canonical(v, addr), Addr: addr}
	if addr.Is4() {
		ind.Type = IPv4
	}
	return ind, nil
}

// canonical is addr's canonical spelling: v itself when v is already spelt so (most are), which
// spares a string per indicator on the hot path.
func canonical(v string, addr netip.Addr) string {
	var buf [64]byte
	if string(addr.AppendTo(buf[:0])) == v {
		return v
	}
	return addr.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) { // cut on a rune boundary: the text goes into headers
		n--
	}
	return s[:n] + "…"
}
