package sim

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/enrich"
)

// TestFaultModes: each fault reaches a real provider client as the failure it stands for (a
// transient error the middleware retries), is counted, and spends no quota.
func TestFaultModes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    Options
		message string // in the client's error
		count   func(Stats) int64
	}{
		{"garbage", Options{GarbageRate: 1}, "malformed response", func(st Stats) int64 { return st.Garbage }},
		{"reset", Options{ResetRate: 1}, "request failed", func(st Stats) int64 { return st.Resets }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(tc.opts)
			_, c := start(t, s, key)
			ip := findIP(t, found)
			for range len(garbageBodies) { // every garbage body
				_, err := c.Lookup(context.Background(), indicator(ip))
				if enrich.KindOf(err) != enrich.KindTransient || !strings.Contains(err.Error(), tc.message) {
					t.Fatalf("lookup: %v, want a transient error with %q", err, tc.message)
				}
			}
			st := s.Stats()
			if n := int64(len(garbageBodies)); tc.count(st) != n || st.Lookups != n || st.Answered != 0 || st.QuotaUsed != 0 {
				t.Fatalf("stats %+v: want %d faults, %d lookups, none answered", st, n, n)
			}
			// Switched off at run time, the provider answers again.
			if err := errors.Join(s.SetGarbageRate(0), s.SetResetRate(0)); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Lookup(context.Background(), indicator(ip)); err != nil {
				t.Fatalf("after the fault: %v", err)
			}
		})
	}
}

func TestStallHoldsEveryRequestUntilItEnds(t *testing.T) {
	const stall = 300 * time.Millisecond
	s := New(Options{})
	_, c := start(t, s, key)
	ip := findIP(t, found)
	if err := s.StallFor(stall); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if _, err := c.Lookup(context.Background(), indicator(ip)); err != nil {
		t.Fatalf("a stalled request is answered once the stall ends: %v", err)
	}
	if took := time.Since(began); took < stall-50*time.Millisecond {
		t.Fatalf("answered after %s, inside a %s stall", took, stall)
	}
	// A client that gives up first gets nothing; the stall is counted either way.
	if err := s.StallFor(time.Minute); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Lookup(ctx, indicator(ip)); enrich.KindOf(err) != enrich.KindTransient {
		t.Fatalf("a client that gives up during a stall: %v, want a transient error", err)
	}
	if err := s.StallFor(0); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Stalled != 2 || st.Answered != 1 {
		t.Fatalf("stats %+v: want 2 stalled, 1 answered", st)
	}
}

func TestFaultKnobsThroughTheAdminAPI(t *testing.T) {
	s := New(Options{})
	srv, _ := start(t, s, key)
	status, body, _ := post(t, srv.URL+"/_sim/config", `{"garbage_rate":0.5,"reset_rate":0.25,"stall_for":"1m"}`)
	if status != 200 || !strings.Contains(body, `"garbage_rate":0.5`) || !strings.Contains(body, `"reset_rate":0.25`) ||
		!strings.Contains(body, `"stall_for":"`) {
		t.Fatalf("POST config: %d %s", status, body)
	}
	if o := s.Options(); o.GarbageRate != 0.5 || o.ResetRate != 0.25 || o.StallFor < 59*time.Second {
		t.Fatalf("options after patch: %+v", o)
	}
	for _, bad := range []string{`{"garbage_rate":1.5}`, `{"reset_rate":-0.1}`, `{"stall_for":"-1s"}`} {
		if status, body, _ := post(t, srv.URL+"/_sim/config", bad); status != 400 || !strings.Contains(body, "error") {
			t.Errorf("patch %s: %d %s", bad, status, body)
		}
	}
	if status, body, _ := post(t, srv.URL+"/_sim/config", `{"stall_for":"0s"}`); status != 200 || s.Options().StallFor != 0 {
		t.Fatalf("ending the stall: %d %s", status, body)
	}
}
