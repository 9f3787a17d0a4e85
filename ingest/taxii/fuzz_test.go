package taxii

import (
	"bytes"
	"net/netip"
	"testing"
)

// FuzzAddresses: the parser never panics, and every address it returns is one canonical IP
// address found in the pattern's text.
func FuzzAddresses(f *testing.F) {
	for _, s := range []string{
		"[ipv4-addr:value = '1.2.3.4']",
		"[ipv4-addr:value = '1.2.3.4' OR ipv6-addr:value = '::1']",
		"[ipv4-addr:value IN ('1.2.3.4', '5.6.7.8')] AND [domain-name:value = 'x']",
		"[network-traffic:src_ref.value ISSUBSET '10.0.0.0/32'] WITHIN 5 SECONDS",
		"[file:hashes.'SHA-256' = 'a\\'b'] REPEATS 2 TIMES",
		"[x:y[0].z = 1.5e3] START t'2026-01-01T00:00:00Z' STOP t'2026-01-02T00:00:00Z'",
		"[ipv4-addr:value NOT MATCHES '^1\\\\.']",
		"((([a:b=h'00'])))", "[", "]", "'", "[a:b = '", "[a:b IN (", "[a:b !", "[a:b[",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		ips, _, err := Addresses(pattern)
		if err != nil && len(ips) > 0 {
			t.Fatalf("error %v with addresses %q", err, ips)
		}
		for _, ip := range ips {
			a, perr := netip.ParseAddr(ip)
			if perr != nil || a.String() != ip {
				t.Fatalf("returned %q, not a canonical address", ip)
			}
		}
	})
}

// FuzzDecodeEnvelope: any body decodes or fails cleanly, and every indicator decoded has a
// value and the collection's context.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"more":false,"objects":[]}`,
		`{"more":true,"next":"abc","objects":[{"type":"indicator","spec_version":"2.1","id":"indicator--1","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '1.2.3.4']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}]}`,
		`{"objects":[{"type":"indicator","id":"indicator--2","pattern":"[ipv4-addr:value = '1.2.3.4' OR domain-name:value = 'x']","labels":["a"],"confidence":80}]}`,
		`{"objects":[{"type":"malware","id":"malware--1"},{"type":"indicator","pattern_type":"sigma","pattern":"x"},{"type":"indicator","revoked":true}]}`,
		`{"objects":[1,"x",null,{"type":"indicator","pattern":"[broken"}]}`,
		`{"more":true}`, `[]`, `null`, `{"objects":{}}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := decodeEnvelope(bytes.NewReader(body))
		if err != nil {
			return
		}
		for _, ind := range indicators(env, "c") {
			if ind.Value == "" || ind.Context["collection"] != "c" {
				t.Fatalf("indicator %+v", ind)
			}
		}
	})
}
