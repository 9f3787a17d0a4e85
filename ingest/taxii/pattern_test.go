package taxii

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAddresses(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		ips     []string
		others  []string
		err     bool
	}{
		{pattern: "[ipv4-addr:value = '1.2.3.4']", ips: []string{"1.2.3.4"}},
		{pattern: "[ipv4-addr:value = '1.2.3.4' OR ipv4-addr:value = '5.6.7.8']", ips: []string{"1.2.3.4", "5.6.7.8"}},
		{pattern: "[ipv4-addr:value = '1.2.3.4'] OR [ipv6-addr:value = '2001:DB8::1']", ips: []string{"1.2.3.4", "2001:db8::1"}},
		{pattern: "[ipv4-addr:value = '1.2.3.4' OR ipv4-addr:value = '1.2.3.4']", ips: []string{"1.2.3.4"}},
		{pattern: "[ipv4-addr:value IN ('1.2.3.4', '5.6.7.8')]", ips: []string{"1.2.3.4", "5.6.7.8"}},
		{pattern: "[ipv4-addr:value = '10.0.0.0/8']", others: []string{"ipv4-addr:value = '10.0.0.0/8'"}},
		{pattern: "[ipv6-addr:value = '2001:db8::1/128']", ips: []string{"2001:db8::1"}},
		{pattern: "[ipv4-addr:value != '1.2.3.4']", others: []string{"ipv4-addr:value != '1.2.3.4'"}},
		{pattern: "[ipv4-addr:value NOT = '1.2.3.4']", others: []string{"ipv4-addr:value NOT = '1.2.3.4'"}},
		{pattern: "[network-traffic:dst_ref.value = '9.9.9.9' AND network-traffic:dst_port = 443]",
			ips: []string{"9.9.9.9"}, others: []string{"network-traffic:dst_port = '443'"}},
		{pattern: "[file:hashes.'SHA-256' = 'aa\\'bb']", others: []string{"file:hashes.'SHA-256' = 'aa'bb'"}},
		{pattern: "[domain-name:value = 'evil.example'] FOLLOWEDBY [ipv4-addr:value = '1.2.3.4'] WITHIN 300 SECONDS",
			ips: []string{"1.2.3.4"}, others: []string{"domain-name:value = 'evil.example'"}},
		{pattern: "[ipv4-addr:value = '1.2.3.4'] START t'2026-01-01T00:00:00Z' STOP t'2026-02-01T00:00:00Z'", ips: []string{"1.2.3.4"}},
		{pattern: "[x-acme:addrs[*].value = '1.2.3.4']", others: []string{"x-acme:addrs[*].value = '1.2.3.4'"}},
		{pattern: "[ipv4-addr:value = '01.2.3.4']", others: []string{"ipv4-addr:value = '01.2.3.4'"}},
		{pattern: "[ipv4-addr:value = '1.2.3.4'", err: true},
		{pattern: "[ipv4-addr:value = '1.2.3.4]", err: true},
		{pattern: "[ipv4-addr:value =]", err: true},
		{pattern: "", err: true},
		{pattern: "1.2.3.4", err: true},
		{pattern: "[ipv4-addr:value IN ('1.2.3.4'", err: true},
	} {
		ips, others, err := Addresses(tc.pattern)
		if (err != nil) != tc.err || !slices.Equal(ips, tc.ips) || !slices.Equal(others, tc.others) {
			t.Errorf("%s:\n ips %q others %q err %v\n want %q %q err=%v", tc.pattern, ips, others, err, tc.ips, tc.others, tc.err)
		}
	}
	if _, _, err := Addresses("[ipv4-addr:value = '" + strings.Repeat("1", maxPatternBytes) + "']"); err == nil {
		t.Error("an oversized pattern was parsed")
	}
}
