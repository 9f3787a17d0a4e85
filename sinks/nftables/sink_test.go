package nftables

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/threatpipe/threatpipe/sinks"
)

var fixedNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeNFT records what the sink runs and answers listings from fixtures.
type fakeNFT struct {
	mu       sync.Mutex
	calls    []string          // args, then the script after a newline
	listings map[string][]byte // "family table set" -> output
	failOn   string            // fail any call whose args or script contain this
}

func (f *fakeNFT) run(_ context.Context, stdin []byte, args ...string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	call := strings.Join(args, " ") + "\n" + string(stdin)
	f.calls = append(f.calls, call)
	if f.failOn != "" && strings.Contains(call, f.failOn) {
		return nil, errors.New("nft -f -: exit status 1: Error: Could not process rule: Operation not permitted")
	}
	if len(args) == 6 && args[0] == "-j" && args[1] == "list" && args[2] == "set" {
		out, ok := f.listings[strings.Join(args[3:], " ")]
		if !ok {
			return nil, errors.New("exit status 1: Error: No such file or directory")
		}
		return out, nil
	}
	return nil, nil
}

func (f *fakeNFT) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func newFake(t *testing.T) *fakeNFT {
	return &fakeNFT{listings: map[string][]byte{
		"inet threatpipe blocklist_v4": fixture(t, "list_v4_mixed.json"),
		"inet threatpipe blocklist_v6": fixture(t, "list_v6.json"),
	}}
}

func newTestSink(t *testing.T, cfg *Config, f *fakeNFT) *Sink {
	t.Helper()
	s, err := New(context.Background(), cfg, f, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return fixedNow }
	f.takeCalls()
	return s
}

func TestNew(t *testing.T) {
	f := newFake(t)
	if _, err := New(context.Background(), testConfig("inet"), f, nil); err != nil {
		t.Fatal(err)
	}
	calls := f.takeCalls()
	want := []string{
		"-f -\n" + string(setupScript(testConfig("inet"))),
		"-j list set inet threatpipe blocklist_v4\n",
		"-j list set inet threatpipe blocklist_v6\n",
	}
	if strings.Join(calls, "|") != strings.Join(want, "|") {
		t.Fatalf("calls:\n%q\nwant:\n%q", calls, want)
	}

	cfg := testConfig("inet")
	cfg.Create = false
	if _, err := New(context.Background(), cfg, f, nil); err != nil {
		t.Fatal(err)
	}
	if calls := f.takeCalls(); len(calls) != 2 || strings.HasPrefix(calls[0], "-f") {
		t.Fatalf("CREATE=false ran %q", calls)
	}
}

func TestNewChecksSets(t *testing.T) {
	tests := []struct {
		name     string
		listings map[string]string
		failOn   string
		want     string
	}{
		{"setup fails", nil, "add table", "creating table inet threatpipe (THREATPIPE_SINK_NFTABLES_CREATE): nft -f -: exit status 1: Error: Could not process rule: Operation not permitted"},
		{"missing set", map[string]string{"inet threatpipe blocklist_v4": "list_v4_mixed.json"}, "", "listing set inet threatpipe blocklist_v6 (does it exist?"},
		{"wrong type", map[string]string{"inet threatpipe blocklist_v4": "list_v6.json", "inet threatpipe blocklist_v6": "list_v6.json"}, "",
			"set inet threatpipe blocklist_v4 has type ipv6_addr and flags [timeout]; the sink needs type ipv4_addr with flags timeout"},
		{"no timeout flag", map[string]string{"inet threatpipe blocklist_v4": "list_no_timeout_flag.json"}, "", "the sink needs type ipv4_addr with flags timeout"},
		{"interval set", map[string]string{"inet threatpipe blocklist_v4": "list_interval.json"}, "", "unexpected nft -j output"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeNFT{listings: map[string][]byte{}, failOn: tt.failOn}
			for k, file := range tt.listings {
				f.listings[k] = fixture(t, file)
			}
			_, err := New(context.Background(), testConfig("inet"), f, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v\nwant %q", err, tt.want)
			}
		})
	}
}

func block(v4, v6 string) func(addr string, secs int) string {
	return func(addr string, secs int) string {
		set := v4
		if strings.Contains(addr, ":") {
			set = v6
		}
		return fmt.Sprintf("-f -\nadd element inet threatpipe %[1]s { %[2]s timeout %[3]ds }\ndelete element inet threatpipe %[1]s { %[2]s }\nadd element inet threatpipe %[1]s { %[2]s timeout %[3]ds }\n", set, addr, secs)
	}
}

func TestDo(t *testing.T) {
	want := block("blocklist_v4", "blocklist_v6")
	tests := []struct {
		name   string
		target string
		until  time.Time
		call   string // "" when nothing runs
		detail string
	}{
		{"v4 until", "203.0.114.7", fixedNow.Add(time.Hour), want("203.0.114.7", 3600), "blocked 203.0.114.7 in nftables set inet threatpipe blocklist_v4 for 3600s"},
		{"v6 default ttl", "2001:db9::7", time.Time{}, want("2001:db9::7", 86400), "blocked 2001:db9::7 in nftables set inet threatpipe blocklist_v6 for 86400s"},
		{"v6 written long", "2001:0db9:0000::0007", fixedNow.Add(90 * time.Second), want("2001:db9::7", 90), "for 90s"},
		{"v4-mapped goes to the v4 set", "::ffff:198.51.101.1", fixedNow.Add(time.Minute), want("198.51.101.1", 60), "blocked 198.51.101.1 in nftables set inet threatpipe blocklist_v4"},
		{"rounded up", "192.0.3.1", fixedNow.Add(1500 * time.Millisecond), want("192.0.3.1", 2), "for 2s"},
		{"clamped", "192.0.3.1", fixedNow.Add(2 * MaxTimeout), want("192.0.3.1", 31536000), "for 31536000s (clamped from 17520h0m0s)"},
		{"lapsed", "192.0.3.1", fixedNow.Add(-time.Second), "", "not blocked: the block of 192.0.3.1 lapsed at 2025-03-01T11:59:59Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			s := newTestSink(t, testConfig("inet"), f)
			res, err := s.Do(context.Background(), &sinks.Action{Target: tt.target, Until: tt.until})
			if err != nil {
				t.Fatal(err)
			}
			calls := f.takeCalls()
			if tt.call == "" && len(calls) != 0 || tt.call != "" && (len(calls) != 1 || calls[0] != tt.call) {
				t.Fatalf("calls %q\nwant %q", calls, tt.call)
			}
			if !strings.Contains(res.Detail, tt.detail) || res.Ref == "" {
				t.Fatalf("result %+v, want detail %q", res, tt.detail)
			}
		})
	}
}

func TestDoRefuses(t *testing.T) {
	tests := []struct {
		family, target, want string
	}{
		{"inet", "", `target "" is not an IP address`},
		{"inet", "example.com", `target "example.com" is not an IP address`},
		{"inet", "192.0.3.1; flush ruleset", "is not an IP address"},
		{"inet", "192.0.3.0/24", "is not an IP address"},
		{"inet", "fe80::1%eth0", "has an IPv6 zone"},
		{"inet", "127.0.0.1", "refusing to block 127.0.0.1"},
		{"inet", "::1", "refusing to block ::1"},
		{"inet", "0.0.0.0", "refusing to block 0.0.0.0"},
		{"inet", "224.0.0.1", "refusing to block 224.0.0.1"},
		{"ip", "2001:db9::1", "a table of THREATPIPE_SINK_NFTABLES_FAMILY=ip holds no IPv6 addresses"},
		{"ip6", "192.0.3.1", "a table of THREATPIPE_SINK_NFTABLES_FAMILY=ip6 holds no IPv4 addresses"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			f := &fakeNFT{listings: map[string][]byte{
				"inet threatpipe blocklist_v4": fixture(t, "list_v4_mixed.json"), "inet threatpipe blocklist_v6": fixture(t, "list_v6.json"),
				"ip threatpipe blocklist_v4": fixture(t, "list_v4_mixed.json"), "ip6 threatpipe blocklist_v6": fixture(t, "list_v6.json"),
			}}
			s := newTestSink(t, testConfig(tt.family), f)
			_, err := s.Do(context.Background(), &sinks.Action{Target: tt.target})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if calls := f.takeCalls(); len(calls) != 0 {
				t.Fatalf("ran %q", calls)
			}
		})
	}
}

func TestDoRunFailure(t *testing.T) {
	f := newFake(t)
	s := newTestSink(t, testConfig("inet"), f)
	f.failOn = "203.0.114.7"
	_, err := s.Do(context.Background(), &sinks.Action{Target: "203.0.114.7"})
	if err == nil || !strings.Contains(err.Error(), "nftables: blocking 203.0.114.7: nft -f -: exit status 1: Error: Could not process rule: Operation not permitted") {
		t.Fatalf("got %v", err)
	}
}

func TestUndo(t *testing.T) {
	f := newFake(t)
	s := newTestSink(t, testConfig("inet"), f)
	if err := s.Undo(context.Background(), &sinks.Action{Target: "2001:db9::7"}, "2001:db9::7"); err != nil {
		t.Fatal(err)
	}
	// Without a target the ref says what to lift.
	if err := s.Undo(context.Background(), &sinks.Action{}, "203.0.114.7"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"-f -\nadd element inet threatpipe blocklist_v6 { 2001:db9::7 timeout 1s }\ndelete element inet threatpipe blocklist_v6 { 2001:db9::7 }\n",
		"-f -\nadd element inet threatpipe blocklist_v4 { 203.0.114.7 timeout 1s }\ndelete element inet threatpipe blocklist_v4 { 203.0.114.7 }\n",
	}
	if calls := f.takeCalls(); strings.Join(calls, "|") != strings.Join(want, "|") {
		t.Fatalf("calls %q", calls)
	}
	if err := s.Undo(context.Background(), &sinks.Action{Target: "bogus"}, ""); err == nil {
		t.Fatal("undid an invalid target")
	}

	// A table that cannot hold the family never blocked the address: nothing to do.
	f4 := &fakeNFT{listings: map[string][]byte{"ip threatpipe blocklist_v4": fixture(t, "list_v4_mixed.json")}}
	s4 := newTestSink(t, testConfig("ip"), f4)
	if err := s4.Undo(context.Background(), &sinks.Action{Target: "2001:db9::7"}, ""); err != nil {
		t.Fatal(err)
	}
	if calls := f4.takeCalls(); len(calls) != 0 {
		t.Fatalf("ran %q", calls)
	}
}

func TestReconcile(t *testing.T) {
	f := newFake(t)
	s := newTestSink(t, testConfig("inet"), f)
	// The fixtures hold 192.0.3.1 (86396s left), 198.51.101.7 (3596s), 203.0.114.9 (no timeout)
	// and 2001:db9::1 (596s), 2001:db9:0:1::abcd (604796s).
	active := map[string]time.Time{
		"192.0.3.1":    fixedNow.Add(86398 * time.Second), // within the slack: kept as is
		"198.51.101.7": fixedNow.Add(2 * time.Hour),       // timeout replaced
		"203.0.114.9":  fixedNow.Add(time.Minute),         // permanent: given its timeout
		"192.0.3.200":  fixedNow.Add(time.Minute),         // missing: added
		"192.0.3.201":  fixedNow.Add(-time.Second),        // expired: skipped
		"2001:db9::1":  fixedNow.Add(596 * time.Second),   // kept
		"2001:db9::99": fixedNow.Add(30 * time.Minute),    // added
		"not-an-ip":    fixedNow.Add(time.Hour),           // reported
	}
	err := s.Reconcile(context.Background(), active)
	if err == nil || !strings.Contains(err.Error(), `target "not-an-ip" is not an IP address`) {
		t.Fatalf("error %v", err)
	}
	calls := f.takeCalls()
	want := []string{
		"-j list set inet threatpipe blocklist_v4\n",
		"-j list set inet threatpipe blocklist_v6\n",
		`-f -
add element inet threatpipe blocklist_v4 { 192.0.3.200 timeout 60s, 198.51.101.7 timeout 7200s, 203.0.114.9 timeout 60s }
delete element inet threatpipe blocklist_v4 { 192.0.3.200, 198.51.101.7, 203.0.114.9 }
add element inet threatpipe blocklist_v4 { 192.0.3.200 timeout 60s, 198.51.101.7 timeout 7200s, 203.0.114.9 timeout 60s }
add element inet threatpipe blocklist_v6 { 2001:db9::99 timeout 1800s, 2001:db9:0:1::abcd timeout 1s }
delete element inet threatpipe blocklist_v6 { 2001:db9::99, 2001:db9:0:1::abcd }
add element inet threatpipe blocklist_v6 { 2001:db9::99 timeout 1800s }
`,
	}
	if strings.Join(calls, "|") != strings.Join(want, "|") {
		t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(calls, "|"), strings.Join(want, "|"))
	}
}

func TestReconcileConverged(t *testing.T) {
	f := newFake(t)
	s := newTestSink(t, testConfig("inet"), f)
	f.listings["inet threatpipe blocklist_v4"] = fixture(t, "list_empty.json")
	f.listings["inet threatpipe blocklist_v4"] = []byte(strings.ReplaceAll(string(f.listings["inet threatpipe blocklist_v4"]), "ipv6_addr", "ipv4_addr"))
	err := s.Reconcile(context.Background(), map[string]time.Time{
		"2001:db9::1":        fixedNow.Add(596 * time.Second),
		"2001:db9:0:1::abcd": fixedNow.Add(604796 * time.Second),
		"192.0.3.9":          fixedNow.Add(-time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls := f.takeCalls(); len(calls) != 2 {
		t.Fatalf("a converged reconcile applied something: %q", calls)
	}
}

func TestReconcileFamilyAndFailures(t *testing.T) {
	f := &fakeNFT{listings: map[string][]byte{"ip threatpipe blocklist_v4": fixture(t, "list_v4_mixed.json")}}
	s := newTestSink(t, testConfig("ip"), f)
	err := s.Reconcile(context.Background(), map[string]time.Time{
		"2001:db9::1": fixedNow.Add(time.Hour), "192.0.3.1": fixedNow.Add(86396 * time.Second),
	})
	if err == nil || !strings.Contains(err.Error(), "1 active blocks are not of a family table ip threatpipe holds") {
		t.Fatalf("error %v", err)
	}
	calls := f.takeCalls()
	if len(calls) != 2 || !strings.Contains(calls[1], "delete element ip threatpipe blocklist_v4 { 198.51.101.7, 203.0.114.9 }") {
		t.Fatalf("calls %q", calls)
	}

	f.failOn = "delete element"
	err = s.Reconcile(context.Background(), nil)
	if err == nil || !strings.HasPrefix(err.Error(), "nftables: reconciling: nft -f -: exit status 1") {
		t.Fatalf("apply failure: %v", err)
	}
	f.failOn = "list set"
	if err := s.Reconcile(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "listing set ip threatpipe blocklist_v4") {
		t.Fatalf("list failure: %v", err)
	}
}

func TestValidateParams(t *testing.T) {
	s := newTestSink(t, testConfig("inet"), newFake(t))
	if err := s.ValidateParams(nil); err != nil {
		t.Fatal(err)
	}
	if err := s.ValidateParams(map[string]string{"ttl": "1h"}); err == nil || !strings.Contains(err.Error(), `unknown param "ttl"`) {
		t.Fatalf("got %v", err)
	}
	if s.Name() != "nftables" || s.Kind() != sinks.KindBlock {
		t.Fatal("identity")
	}
}

func TestValidateParamsListsEveryKey(t *testing.T) {
	s := newTestSink(t, testConfig("inet"), newFake(t))
	err := s.ValidateParams(map[string]string{"ttl": "1h", "set": "x"})
	if err == nil || !strings.Contains(err.Error(), `nftables: unknown param "set"`) || !strings.Contains(err.Error(), `nftables: unknown param "ttl"`) {
		t.Fatalf("got %v", err)
	}
	if i, j := strings.Index(err.Error(), `"set"`), strings.Index(err.Error(), `"ttl"`); i > j {
		t.Fatalf("keys not sorted: %v", err)
	}
}

func TestDoNilAction(t *testing.T) {
	f := newFake(t)
	s := newTestSink(t, testConfig("inet"), f)
	if _, err := s.Do(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "nftables: nil action") {
		t.Fatalf("got %v", err)
	}
	if calls := f.takeCalls(); len(calls) != 0 {
		t.Fatalf("nft run for a nil action: %q", calls)
	}
}
