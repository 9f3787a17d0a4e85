package nftables

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func el(addr string, expires time.Duration) element {
	return element{addr: netip.MustParseAddr(addr), expires: expires}
}

func permanent(addr string) element {
	return element{addr: netip.MustParseAddr(addr), permanent: true}
}

// The fixtures are real `nft -j list set` output of nftables 1.0.6 (Debian 12).
func TestDecodeListing(t *testing.T) {
	tests := []struct {
		file  string
		typ   string
		flags []string
		elems []element
	}{
		{"list_v4_mixed.json", "ipv4_addr", []string{"timeout"}, []element{
			el("192.0.3.1", 86396*time.Second), el("198.51.101.7", 3596*time.Second), permanent("203.0.114.9")}},
		{"list_v6.json", "ipv6_addr", []string{"timeout"}, []element{
			el("2001:db9::1", 596*time.Second), el("2001:db9:0:1::abcd", 604796*time.Second)}},
		{"list_v6_mapped.json", "ipv6_addr", []string{"timeout"}, []element{el("::ffff:192.0.3.1", 59*time.Second)}},
		{"list_empty.json", "ipv6_addr", []string{"timeout"}, nil},
		// A set-wide default timeout: the element shows only its expiry.
		{"list_default_timeout.json", "ipv4_addr", []string{"timeout"}, []element{
			el("192.0.3.50", 3599*time.Second), el("192.0.3.51", 7199*time.Second)}},
		{"list_no_timeout_flag.json", "ipv4_addr", nil, []element{permanent("192.0.3.60")}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			l, err := decodeListing(fixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if l.family != "inet" || l.table != "threatpipe" || l.typ != tt.typ || !reflect.DeepEqual(l.flags, tt.flags) {
				t.Fatalf("got %s %s %s %v", l.family, l.table, l.typ, l.flags)
			}
			if !reflect.DeepEqual(l.elems, tt.elems) {
				t.Fatalf("elements\ngot  %+v\nwant %+v", l.elems, tt.elems)
			}
		})
	}
}

func TestDecodeListingRefuses(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"interval set", string(fixture(t, "list_interval.json"))},
		{"concatenation", string(fixture(t, "list_concat.json"))},
		{"not json", `Error: No such file or directory`},
		{"empty", ``},
		{"no set", `{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}]}`},
		{"two sets", `{"nftables": [{"set": {"name": "a", "type": "ipv4_addr"}}, {"set": {"name": "b", "type": "ipv4_addr"}}]}`},
		{"a table", `{"nftables": [{"table": {"family": "inet", "name": "threatpipe"}}]}`},
		{"map", `{"nftables": [{"set": {"name": "m", "type": "ipv4_addr", "map": "verdict"}}]}`},
		{"no type", `{"nftables": [{"set": {"name": "a", "elem": ["192.0.3.1"]}}]}`},
		{"hostname element", `{"nftables": [{"set": {"name": "a", "type": "ipv4_addr", "elem": ["example.com"]}}]}`},
		{"zoned element", `{"nftables": [{"set": {"name": "a", "type": "ipv6_addr", "elem": ["fe80::1%eth0"]}}]}`},
		{"numeric element", `{"nftables": [{"set": {"name": "a", "type": "ipv4_addr", "elem": [3221225985]}}]}`},
		{"negative expiry", `{"nftables": [{"set": {"name": "a", "type": "ipv4_addr", "elem": [{"elem": {"val": "192.0.3.1", "expires": -5}}]}}]}`},
		{"huge expiry", `{"nftables": [{"set": {"name": "a", "type": "ipv4_addr", "elem": [{"elem": {"val": "192.0.3.1", "expires": 1e300}}]}}]}`},
		{"other wrapper", `{"nftables": [{"set": {"name": "a", "type": "ipv4_addr", "elem": [{"range": ["192.0.3.1", "192.0.3.9"]}]}}]}`},
		{"trailing data", `{"nftables": []} {}`},
		{"numeric flag", `{"nftables": [{"set": {"name": "a", "type": "ipv4_addr", "flags": [1]}}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := decodeListing([]byte(tt.body))
			if err == nil {
				t.Fatalf("accepted: %+v", l)
			}
			if !errors.Is(err, errListing) {
				t.Fatalf("error %v is not errListing", err)
			}
		})
	}
}

// libnftables versions differ in printing a single flag or element as a bare value.
func TestDecodeListingSingleValues(t *testing.T) {
	l, err := decodeListing([]byte(`{"nftables": [{"set": {"family": "ip", "name": "s", "table": "t", "type": "ipv4_addr", "flags": "timeout",
		"elem": {"elem": {"val": "192.0.3.1", "timeout": 60, "expires": 12.5}}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !l.hasFlag("timeout") || len(l.elems) != 1 || l.elems[0] != el("192.0.3.1", 12500*time.Millisecond) {
		t.Fatalf("got %+v", l)
	}
}
