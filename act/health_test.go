package act

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/health"
	"github.com/threatpipe/threatpipe/sinks"
)

func TestSinkHealthStatusFromOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		outcomes []Outcome // oldest first
		status   string
		errors   int64
	}{
		{"nothing yet", nil, health.StatusOK, 0},
		{"actions done", []Outcome{OutcomeDone, OutcomeCommented, OutcomeRecovered}, health.StatusOK, 0},
		{"lifts and resolves", []Outcome{OutcomeLifted, OutcomeResolved}, health.StatusOK, 0},
		{"one failure among successes", []Outcome{OutcomeDone, OutcomeFailed, OutcomeDone}, health.StatusDegraded, 1},
		{"a failed lift", []Outcome{OutcomeLifted, OutcomeLiftFailed}, health.StatusDegraded, 1},
		{"two failures are not yet failing", []Outcome{OutcomeFailed, OutcomeFailed}, health.StatusDegraded, 2},
		{"the latest three failed", []Outcome{OutcomeDone, OutcomeFailed, OutcomeLiftFailed, OutcomeFailed}, health.StatusFailing, 3},
		{"recovered", []Outcome{OutcomeFailed, OutcomeFailed, OutcomeFailed, OutcomeDone}, health.StatusDegraded, 3},
		// Outcomes that never reached the sink say nothing of its health.
		{"guardrails and suppressions only", []Outcome{OutcomeKillSwitch, OutcomeRateCapped, OutcomeNeverBlock, OutcomeDuplicate,
			OutcomeSuppressed, OutcomeDryRun}, health.StatusOK, 0},
		{"failing stays failing through suppressions", []Outcome{OutcomeFailed, OutcomeFailed, OutcomeFailed, OutcomeDuplicate,
			OutcomeKillSwitch}, health.StatusFailing, 3},
	} {
		h := NewSinkHealth()
		now := time.Now()
		for i, o := range tc.outcomes {
			rec := &Record{Sink: "edl", Outcome: o}
			if o == OutcomeFailed || o == OutcomeLiftFailed {
				rec.Error = fmt.Sprintf("edl: failure %d", i)
			}
			h.Observe(rec, now.Add(time.Duration(i-len(tc.outcomes))*time.Second))
		}
		s := h.Snapshot("edl", now)
		if s.Status != tc.status || s.Errors != tc.errors {
			t.Errorf("%s: status %s errors %d, want %s and %d", tc.name, s.Status, s.Errors, tc.status, tc.errors)
		}
		var total int64
		for _, n := range s.Calls {
			total += n
		}
		if total != int64(len(tc.outcomes)) {
			t.Errorf("%s: calls %v, want every outcome counted", tc.name, s.Calls)
		}
		if tc.errors > 0 && !strings.HasPrefix(s.LastError, "edl: failure ") {
			t.Errorf("%s: last error %q", tc.name, s.LastError)
		}
	}
}

func TestSinkHealthIgnoresWhatIsNotASinkOutcome(t *testing.T) {
	h := NewSinkHealth()
	now := time.Now()
	h.Observe(nil, now)
	h.Observe(&Record{Outcome: OutcomeBadCondition}, now)                       // a playbook bug, no sink
	h.Observe(&Record{Sink: "edl"}, now)                                        // a step cut short by shutdown
	(*SinkHealth)(nil).Observe(&Record{Sink: "edl", Outcome: OutcomeDone}, now) // no health wired
	if names := h.Names(); len(names) != 0 {
		t.Errorf("names %v", names)
	}
	s := h.Snapshot("edl", now)
	if s.Component != health.ComponentSink || s.Name != "edl" || s.Status != health.StatusOK || s.Calls == nil || len(s.Calls) != 0 {
		t.Errorf("snapshot of a sink that did nothing: %+v", s)
	}
}

func TestSinkHealthUnderConcurrency(t *testing.T) {
	h := NewSinkHealth()
	now := time.Now()
	names := []string{"edl", "slack", "jira"}
	outcomes := []Outcome{OutcomeDone, OutcomeFailed, OutcomeDuplicate, OutcomeLifted}
	const goroutines, per = 8, 1000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range per {
				h.Observe(&Record{Sink: names[(g+i)%len(names)], Outcome: outcomes[i%len(outcomes)], Error: "boom"}, now)
			}
		}()
		go func() {
			defer wg.Done()
			for range 100 {
				for _, n := range h.Names() {
					_ = h.Snapshot(n, now)
				}
			}
		}()
	}
	wg.Wait()
	var total, errs int64
	for _, n := range names {
		s := h.Snapshot(n, now)
		for _, c := range s.Calls {
			total += c
		}
		errs += s.Errors
		if s.Calls[string(OutcomeFailed)] != s.Errors || s.LastError != "boom" {
			t.Errorf("%s: %+v", n, s)
		}
	}
	if total != goroutines*per || errs != goroutines*per/int64(len(outcomes)) {
		t.Errorf("counted %d outcomes and %d errors, want %d and %d", total, errs, goroutines*per, goroutines*per/len(outcomes))
	}
	if got := strings.Join(h.Names(), ","); got != "edl,jira,slack" {
		t.Errorf("names %s", got)
	}
}

func TestWorkerFailingSinkShowsFailingWithItsLastError(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	block := r.worker(sinks.KindBlock)
	r.f.edl.setFailDo(3)
	for i := range 3 {
		h := r.handle(block, scored(fmt.Sprint("e", i), attacker, 90))
		if got := h.outcomes(); len(got) != 1 || got[0] != OutcomeFailed {
			t.Fatalf("event %d: %v", i, got)
		}
	}
	s := r.metrics.Health.Snapshot("edl", time.Now())
	if s.Status != health.StatusFailing || s.LastError != errSinkDown.Error() || s.Errors != 3 || s.Calls[string(OutcomeFailed)] != 3 {
		t.Fatalf("after three failed blocks: %+v", s)
	}
	if time.Since(s.LastErrorAt) > 5*time.Second {
		t.Errorf("last error at %s", s.LastErrorAt)
	}
	raw, err := json.Marshal(s)
	if err != nil || !strings.Contains(string(raw), `"status":"failing"`) || !strings.Contains(string(raw), `"last_error":"sink down: HTTP 503"`) {
		t.Errorf("snapshot JSON %s (%v)", raw, err)
	}

	// The sink comes back: the latest call worked, the failures are still recent.
	if rec := r.handle(block, scored("e3", attacker, 90)).only(t); rec.Outcome != OutcomeDone {
		t.Fatalf("after the sink came back: %+v", rec)
	}
	// A redelivery never reaches the sink; it is counted, and changes nothing.
	if rec := r.handle(block, scored("e3", attacker, 90)).only(t); rec.Outcome != OutcomeDuplicate {
		t.Fatalf("redelivery: %+v", rec)
	}
	s = r.metrics.Health.Snapshot("edl", time.Now())
	if s.Status != health.StatusDegraded || s.Calls[string(OutcomeDone)] != 1 || s.Calls[string(OutcomeDuplicate)] != 1 || s.Errors != 3 || s.LastError != errSinkDown.Error() {
		t.Errorf("after a success: %+v", s)
	}
	if s := r.metrics.Health.Snapshot("edl", time.Now().Add(health.RecentWindow+time.Second)); s.Status != health.StatusOK || s.Errors != 3 {
		t.Errorf("once the failures are over: %+v", s)
	}
	// Other sinks are not affected.
	if names := strings.Join(r.metrics.Health.Names(), ","); names != "edl" {
		t.Errorf("sinks with outcomes: %s", names)
	}
}

func TestLifterOutcomesCountForTheirSinks(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	ctx := context.Background()
	past := time.Now().Add(-time.Second)
	for _, b := range []ActiveBlock{
		{Sink: "edl", Target: "185.220.101.1", Key: "k1", Until: past},
		{Sink: "palo", Target: "185.220.101.2", Key: "k2", Until: past}, // no longer configured
	} {
		if err := r.ledger.AddBlock(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	r.f.edl.setFailUndo(1)
	var pub published
	r.lifter(r.ledger, &pub).liftDue(ctx)
	if len(pub.all()) != 2 {
		t.Fatalf("records %+v", pub.all())
	}
	edl := r.metrics.Health.Snapshot("edl", time.Now())
	if edl.Calls[string(OutcomeLiftFailed)] != 1 || edl.Errors != 1 || edl.LastError != errSinkDown.Error() || edl.Status != health.StatusDegraded {
		t.Errorf("edl: %+v", edl)
	}
	palo := r.metrics.Health.Snapshot("palo", time.Now())
	if palo.Calls[string(OutcomeLiftFailed)] != 1 || !strings.Contains(palo.LastError, "no longer configured") {
		t.Errorf("palo: %+v", palo)
	}
}

func TestHealthReporterWritesEverySinkWithTheGuardrails(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	ctx := context.Background()
	store := health.NewStore(r.rdb, r.prefix)
	// The lifter failed on a sink this process's workers do not use: reported too.
	r.metrics.Health.Observe(&Record{Sink: "palo", Outcome: OutcomeLiftFailed, Error: "sink palo is no longer configured; lift it by hand"}, time.Now())
	if err := r.ledger.SetKillSwitch(ctx, true, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ledger.Trip(ctx, false, time.Minute, "test"); err != nil {
		t.Fatal(err)
	}
	rep := &HealthReporter{
		Store: store, Health: r.metrics.Health, Ledger: r.ledger,
		Sinks:    map[string]sinks.Sink{"edl": r.f.byName["edl"], "pagerduty": r.f.byName["pagerduty"]},
		Interval: 50 * time.Millisecond, Log: r.log,
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rep.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v when its context ended", err)
		}
	}()

	byName := func() map[string]health.Snapshot {
		got, err := store.All(ctx, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]health.Snapshot{}
		for _, s := range got {
			m[s.Name] = s
		}
		return m
	}
	var snaps map[string]health.Snapshot
	waitUp(t, "three sink snapshots", func() bool { snaps = byName(); return len(snaps) == 3 })
	for name, s := range snaps {
		if s.Owner != "test-owner" || s.Role != "act" || s.Component != health.ComponentSink {
			t.Errorf("%s: %+v", name, s)
		}
		if s.Calls[FlagKillSwitchOn] != 1 {
			t.Errorf("%s: the kill switch is on: %v", name, s.Calls)
		}
	}
	if snaps["edl"].Calls[FlagRateCapTripped] != 1 {
		t.Errorf("edl is a block sink under a tripped cap: %v", snaps["edl"].Calls)
	}
	for _, n := range []string{"pagerduty", "palo"} {
		if _, ok := snaps[n].Calls[FlagRateCapTripped]; ok {
			t.Errorf("%s is not a (configured) block sink: %v", n, snaps[n].Calls)
		}
	}
	if p := snaps["palo"]; p.Status != health.StatusDegraded || p.Errors != 1 || !strings.Contains(p.LastError, "no longer configured") {
		t.Errorf("palo: %+v", p)
	}

	// The switch goes off and the trip is lifted: the next round says so.
	if err := r.ledger.SetKillSwitch(ctx, false, ""); err != nil {
		t.Fatal(err)
	}
	if err := r.rdb.Del(ctx, r.ledger.tripKey(false)).Err(); err != nil {
		t.Fatal(err)
	}
	waitUp(t, "the guardrails off", func() bool {
		snaps = byName()
		_, kill := snaps["edl"].Calls[FlagKillSwitchOn]
		_, trip := snaps["edl"].Calls[FlagRateCapTripped]
		return !kill && !trip
	})

	// The switch in the environment holds whatever the ledger says.
	rep2 := *rep
	rep2.KillSwitch = true
	for _, s := range rep2.snapshots(ctx, time.Now()) {
		if s.Calls[FlagKillSwitchOn] != 1 {
			t.Errorf("%s with THREATPIPE_ACT_KILL_SWITCH set: %v", s.Name, s.Calls)
		}
	}
}

// waitUp waits up to five seconds for cond.
func waitUp(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitFor(t, 5*time.Second, what, cond)
}
