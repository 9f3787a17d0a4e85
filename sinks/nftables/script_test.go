package nftables

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func testConfig(family string) *Config {
	return &Config{
		Enabled: true, NFTPath: "nft", Family: family, Table: "threatpipe", SetV4: "blocklist_v4", SetV6: "blocklist_v6",
		Create: true, DefaultTTL: 24 * time.Hour, CommandTimeout: 10 * time.Second,
	}
}

func TestSetupScript(t *testing.T) {
	tests := []struct {
		family string
		want   string
	}{
		{"inet", `add table inet threatpipe
add set inet threatpipe blocklist_v4 { type ipv4_addr; flags timeout; }
add set inet threatpipe blocklist_v6 { type ipv6_addr; flags timeout; }
add chain inet threatpipe threatpipe_input { type filter hook input priority -10; policy accept; }
flush chain inet threatpipe threatpipe_input
add rule inet threatpipe threatpipe_input ip saddr @blocklist_v4 counter drop
add rule inet threatpipe threatpipe_input ip6 saddr @blocklist_v6 counter drop
add chain inet threatpipe threatpipe_forward { type filter hook forward priority -10; policy accept; }
flush chain inet threatpipe threatpipe_forward
add rule inet threatpipe threatpipe_forward ip saddr @blocklist_v4 counter drop
add rule inet threatpipe threatpipe_forward ip6 saddr @blocklist_v6 counter drop
`},
		{"ip", `add table ip threatpipe
add set ip threatpipe blocklist_v4 { type ipv4_addr; flags timeout; }
add chain ip threatpipe threatpipe_input { type filter hook input priority -10; policy accept; }
flush chain ip threatpipe threatpipe_input
add rule ip threatpipe threatpipe_input ip saddr @blocklist_v4 counter drop
add chain ip threatpipe threatpipe_forward { type filter hook forward priority -10; policy accept; }
flush chain ip threatpipe threatpipe_forward
add rule ip threatpipe threatpipe_forward ip saddr @blocklist_v4 counter drop
`},
		{"ip6", `add table ip6 threatpipe
add set ip6 threatpipe blocklist_v6 { type ipv6_addr; flags timeout; }
add chain ip6 threatpipe threatpipe_input { type filter hook input priority -10; policy accept; }
flush chain ip6 threatpipe threatpipe_input
add rule ip6 threatpipe threatpipe_input ip6 saddr @blocklist_v6 counter drop
add chain ip6 threatpipe threatpipe_forward { type filter hook forward priority -10; policy accept; }
flush chain ip6 threatpipe threatpipe_forward
add rule ip6 threatpipe threatpipe_forward ip6 saddr @blocklist_v6 counter drop
`},
	}
	for _, tt := range tests {
		t.Run(tt.family, func(t *testing.T) {
			if got := string(setupScript(testConfig(tt.family))); got != tt.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestChangeScript(t *testing.T) {
	v4 := setRef{"inet", "threatpipe", "blocklist_v4"}
	v6 := setRef{"inet", "threatpipe", "blocklist_v6"}
	a := netip.MustParseAddr
	tests := []struct {
		name    string
		changes []setChanges
		want    string
	}{
		{"nothing", []setChanges{{set: v4}, {set: v6}}, ""},
		{"block", []setChanges{{set: v4, puts: []timed{{a("203.0.114.7"), 86400}}}}, `add element inet threatpipe blocklist_v4 { 203.0.114.7 timeout 86400s }
delete element inet threatpipe blocklist_v4 { 203.0.114.7 }
add element inet threatpipe blocklist_v4 { 203.0.114.7 timeout 86400s }
`},
		{"undo", []setChanges{{set: v6, dels: []netip.Addr{a("2001:db9::7")}}}, `add element inet threatpipe blocklist_v6 { 2001:db9::7 timeout 1s }
delete element inet threatpipe blocklist_v6 { 2001:db9::7 }
`},
		{"sorted, both sets", []setChanges{
			{set: v4, puts: []timed{{a("198.51.101.9"), 60}, {a("192.0.3.1"), 3600}}, dels: []netip.Addr{a("203.0.114.1"), a("10.0.0.1")}},
			{set: v6, puts: []timed{{a("2001:db9::2"), 5}}},
		}, `add element inet threatpipe blocklist_v4 { 192.0.3.1 timeout 3600s, 198.51.101.9 timeout 60s, 10.0.0.1 timeout 1s, 203.0.114.1 timeout 1s }
delete element inet threatpipe blocklist_v4 { 192.0.3.1, 198.51.101.9, 10.0.0.1, 203.0.114.1 }
add element inet threatpipe blocklist_v4 { 192.0.3.1 timeout 3600s, 198.51.101.9 timeout 60s }
add element inet threatpipe blocklist_v6 { 2001:db9::2 timeout 5s }
delete element inet threatpipe blocklist_v6 { 2001:db9::2 }
add element inet threatpipe blocklist_v6 { 2001:db9::2 timeout 5s }
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(changeScript(tt.changes...)); got != tt.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestChangeScriptChunks(t *testing.T) {
	v4 := setRef{"inet", "threatpipe", "blocklist_v4"}
	var puts []timed
	for i := range chunk + 3 {
		puts = append(puts, timed{netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 60})
	}
	got := string(changeScript(setChanges{set: v4, puts: puts}))
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	// Two statements for each of add, delete, add.
	if len(lines) != 6 {
		t.Fatalf("%d lines, want 6", len(lines))
	}
	for i, prefix := range []string{"add", "add", "delete", "delete", "add", "add"} {
		if !strings.HasPrefix(lines[i], prefix+" element inet threatpipe blocklist_v4 { ") {
			t.Fatalf("line %d: %.80s", i, lines[i])
		}
	}
	if n := strings.Count(lines[0], "timeout"); n != chunk {
		t.Fatalf("first statement has %d elements, want %d", n, chunk)
	}
	if n := strings.Count(lines[1], "timeout"); n != 3 {
		t.Fatalf("second statement has %d elements, want 3", n)
	}
}

func TestTimeoutSecs(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want int64
	}{
		{time.Nanosecond, 1},
		{time.Second, 1},
		{1500 * time.Millisecond, 2},
		{24 * time.Hour, 86400},
		{24*time.Hour - time.Millisecond, 86400},
		{MaxTimeout, int64(MaxTimeout / time.Second)},
		{10 * MaxTimeout, int64(MaxTimeout / time.Second)},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.in), func(t *testing.T) {
			if got := timeoutSecs(tt.in); got != tt.want {
				t.Fatalf("timeoutSecs(%s) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}
