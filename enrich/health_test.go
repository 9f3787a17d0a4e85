package enrich

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/health"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

func TestProviderStatusRules(t *testing.T) {
	failing := health.RecentCounts{Calls: 5, Failed: 3, FailedInARow: 3}
	someFailed := health.RecentCounts{Calls: 5, Failed: 1}
	fine := health.RecentCounts{Calls: 5}
	for _, tc := range []struct {
		name string
		s    providerState
		want string
	}{
		{"never asked", providerState{}, health.StatusOK},
		{"answering", providerState{recent: fine}, health.StatusOK},
		{"a recent error", providerState{recent: someFailed}, health.StatusDegraded},
		{"quota past the warning ratio", providerState{recent: fine, quotaWarning: true}, health.StatusDegraded},
		{"breaker half-open, probing", providerState{breaker: gobreaker.StateHalfOpen, recent: fine}, health.StatusDegraded},
		{"a local file failed to reload", providerState{recent: fine, fileError: true}, health.StatusDegraded},
		{"latest calls all failed", providerState{recent: failing}, health.StatusFailing},
		{"breaker open", providerState{breaker: gobreaker.StateOpen, recent: fine}, health.StatusFailing},
		{"breaker open beats a quota warning", providerState{breaker: gobreaker.StateOpen, quotaWarning: true}, health.StatusFailing},
		{"quota exhausted beats failing", providerState{exhausted: true, breaker: gobreaker.StateOpen, recent: failing}, health.StatusQuotaExhausted},
		{"disabled beats everything", providerState{disabled: true, exhausted: true, breaker: gobreaker.StateOpen, recent: failing}, health.StatusDisabled},
	} {
		if got := providerStatus(tc.s); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

type netTimeout struct{}

func (netTimeout) Error() string   { return "i/o timeout" }
func (netTimeout) Timeout() bool   { return true }
func (netTimeout) Temporary() bool { return true }

var _ net.Error = netTimeout{}

func TestClassifyCall(t *testing.T) {
	live := context.Background()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	transient := &Error{Provider: "p", Kind: KindTransient, Status: 503}
	for _, tc := range []struct {
		name      string
		ctx, actx context.Context
		err       error
		want      string
	}{
		{"answer", live, live, nil, "ok"},
		{"5xx", live, live, transient, "transient"},
		{"attempt deadline", live, expired, &Error{Provider: "p", Kind: KindTransient, Message: "request timed out", Err: context.DeadlineExceeded}, "timeout"},
		{"deadline error without the attempt's context", live, live, fmt.Errorf("wrapped: %w", context.DeadlineExceeded), "timeout"},
		{"transport timeout", live, live, &Error{Provider: "p", Kind: KindTransient, Err: netTimeout{}}, "timeout"},
		{"429", live, live, &Error{Provider: "p", Kind: KindRateLimited, Status: 429}, "rate_limited"},
		{"402", live, live, &Error{Provider: "p", Kind: KindQuotaExhausted, Status: 402}, "quota_exhausted"},
		{"401", live, live, &Error{Provider: "p", Kind: KindUnauthorized, Status: 401}, "unauthorized"},
		{"400", live, live, &Error{Provider: "p", Kind: KindPermanent, Status: 400}, "permanent"},
		{"breaker open", live, live, gobreaker.ErrOpenState, "breaker_open"},
		{"breaker half-open, busy", live, live, gobreaker.ErrTooManyRequests, "breaker_open"},
		{"shutdown", cancelled, cancelled, &Error{Provider: "p", Kind: KindTransient, Err: context.Canceled}, "canceled"},
		{"not an *Error", live, live, errors.New("connection reset"), "transient"},
	} {
		o := classifyCall(tc.ctx, tc.err, attemptTimedOut(tc.actx, tc.err))
		if got := callOutcomeNames[o]; got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	for o := range numCallOutcomes {
		if callOutcomeNames[o] == "" {
			t.Errorf("outcome %d has no name", o)
		}
	}
}

func TestProviderHealthCountersUnderConcurrency(t *testing.T) {
	var h providerHealth
	now := time.Now()
	outcomes := []callOutcome{callOK, callTransient, callTimeout, callBreakerOpen}
	const goroutines, per = 8, 2000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				o := outcomes[(g+i)%len(outcomes)]
				var err error
				if o.failed() {
					err = fmt.Errorf("boom %d", i)
				}
				h.observe(now, o, err)
				h.seeQuota(now, int64(i))
				_ = h.quotaUsed(now)
				_, _ = h.last.Get()
			}
		}()
	}
	wg.Wait()
	each := int64(goroutines * per / len(outcomes))
	for _, o := range outcomes {
		if got := h.calls[o].Load(); got != each {
			t.Errorf("%s: %d, want %d", callOutcomeNames[o], got, each)
		}
	}
	if h.errors.Load() != 2*each || h.timeouts.Load() != each {
		t.Errorf("errors %d timeouts %d, want %d and %d", h.errors.Load(), h.timeouts.Load(), 2*each, each)
	}
	if text, _ := h.last.Get(); !strings.HasPrefix(text, "boom ") {
		t.Errorf("last error %q", text)
	}
}

func TestQuotaSeenIsTodaysOnly(t *testing.T) {
	var h providerHealth
	day := time.Date(2026, 3, 14, 23, 59, 0, 0, time.UTC)
	h.seeQuota(day, 870)
	if got := h.quotaUsed(day.Add(30 * time.Second)); got != 870 {
		t.Errorf("same day: %d", got)
	}
	if got := h.quotaUsed(day.Add(2 * time.Minute)); got != 0 {
		t.Errorf("after midnight the ledger starts at zero: %d", got)
	}
	h.seeQuota(day, -3)
	if got := h.quotaUsed(day); got != 0 {
		t.Errorf("negative usage: %d", got)
	}
}

func TestSnapshotOfAHealthyProvider(t *testing.T) {
	r := newRig(t)
	p := &fakeProvider{name: providerName(t)}
	pol := testPolicy()
	pol.Quota = 100
	l := r.lookuper(t, p, pol, "a")
	for i := range 3 {
		l.Lookup(context.Background(), ip(fmt.Sprintf("120.0.0.%d", i+1)))
	}
	l.Lookup(context.Background(), ip("120.0.0.1")) // a cache hit: no call
	now := time.Now()
	s := l.Snapshot(now)
	if s.Component != health.ComponentProvider || s.Name != p.name || s.Status != health.StatusOK || s.Breaker != "closed" ||
		s.Calls["ok"] != 3 || len(s.Calls) != 1 || s.Errors != 0 || s.Timeouts != 0 || s.LastError != "" || !s.LastErrorAt.IsZero() {
		t.Errorf("snapshot %+v", s)
	}
	midnight := now.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	if s.QuotaUsed != 3 || s.QuotaLimit != 100 || s.QuotaWarnRatio != 0.8 || !s.QuotaReset.Equal(midnight) || !s.At.Equal(now) {
		t.Errorf("quota %d/%d resets %s (want %s), at %s", s.QuotaUsed, s.QuotaLimit, s.QuotaReset, midnight, s.At)
	}
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"component", "name", "status", "breaker", "quota_used", "quota_limit", "quota_reset", "calls", "errors", "timeouts"} {
		if _, ok := back[k]; !ok {
			t.Errorf("%s missing from %s", k, raw)
		}
	}
	for _, k := range []string{"last_error", "last_error_at"} {
		if _, ok := back[k]; ok {
			t.Errorf("%s present without an error: %s", k, raw)
		}
	}
}

// fileSource is an offline source reporting its files.
type fileSource struct {
	fakeProvider
	files []health.File
}

func (p *fileSource) Files() []health.File { return p.files }

var _ FileReporter = (*fileSource)(nil)

func TestSnapshotCarriesTheFilesOfAnOfflineSource(t *testing.T) {
	r := newRig(t)
	p := &fileSource{fakeProvider: fakeProvider{name: providerName(t)},
		files: []health.File{{Name: "drop", Kind: "block", Path: "/lists/drop.txt", Entries: 1200, LoadedAt: time.Now()}}}
	l := r.lookuper(t, p, testPolicy(), "a")
	s := l.Snapshot(time.Now())
	if s.Status != health.StatusOK || len(s.Files) != 1 || s.Files[0].Entries != 1200 {
		t.Fatalf("snapshot %s %+v", s.Status, s.Files)
	}
	p.files = append(p.files, health.File{Name: "tor", Path: "/lists/tor.txt", LastError: `lists: list "tor": line 2 is longer than 64 bytes`})
	if s := l.Snapshot(time.Now()); s.Status != health.StatusDegraded || len(s.Files) != 2 {
		t.Fatalf("with a file that failed to reload: %s %+v", s.Status, s.Files)
	}
}

func TestSnapshotFailingWhenOutagesOpenTheBreaker(t *testing.T) {
	r := newRig(t)
	pol := testPolicy()
	pol.RetryBudget = 100 * time.Millisecond
	p := &fakeProvider{name: providerName(t), answer: func(call int64, _ event.Indicator) (*event.Intel, error) {
		if call == 1 {
			return &event.Intel{Verdict: event.VerdictBenign, Detail: "ok"}, nil
		}
		return nil, &Error{Provider: "x", Kind: KindTransient, Status: 503, Message: "upstream unavailable"}
	}}
	l := r.lookuper(t, p, pol, "a")
	l.Lookup(context.Background(), ip("130.0.0.1"))
	l.Lookup(context.Background(), ip("130.0.0.2"))
	if s := l.Snapshot(time.Now()); s.Status != health.StatusDegraded || s.Errors == 0 {
		t.Fatalf("after one failed lookup: %s, %d errors; want degraded", s.Status, s.Errors)
	}
	for i := 0; i < 10 && l.chain.Breaker.State() != gobreaker.StateOpen; i++ {
		l.Lookup(context.Background(), ip(fmt.Sprintf("130.0.1.%d", i)))
	}
	l.Lookup(context.Background(), ip("130.0.2.1")) // held back by the open breaker
	s := l.Snapshot(time.Now())
	if s.Status != health.StatusFailing || s.Breaker != "open" {
		t.Fatalf("with the breaker open: status %s breaker %s", s.Status, s.Breaker)
	}
	if s.Calls["ok"] != 1 || s.Calls["transient"] != p.calls.Load()-1 || s.Calls["breaker_open"] < 1 || s.Errors != s.Calls["transient"] {
		t.Errorf("calls %v errors %d after %d provider calls", s.Calls, s.Errors, p.calls.Load())
	}
	if !strings.Contains(s.LastError, "status 503") || !strings.Contains(s.LastError, "upstream unavailable") || time.Since(s.LastErrorAt) > 5*time.Second {
		t.Errorf("last error %q at %s", s.LastError, s.LastErrorAt)
	}
	// Five minutes on, the breaker is what still says failing (its timeout is 30 s, but the
	// failures are what is recent): the failures alone have aged out.
	if got := l.chain.health.recent.Counts(time.Now().Add(health.RecentWindow+time.Second), health.RecentWindow).Status(); got != health.StatusOK {
		t.Errorf("failures older than the window still count: %s", got)
	}
}

func TestSnapshotCountsAnAttemptDeadlineAsATimeout(t *testing.T) {
	r := newRig(t)
	pol := testPolicy()
	pol.AttemptTimeout = 30 * time.Millisecond
	pol.RetryBudget = 100 * time.Millisecond
	p := &fakeProvider{name: providerName(t), delay: time.Second}
	l := r.lookuper(t, p, pol, "a")
	if out := l.Lookup(context.Background(), ip("140.0.0.1")); out.Status != event.StatusFailed {
		t.Fatalf("%+v", out)
	}
	s := l.Snapshot(time.Now())
	if s.Timeouts < 1 || s.Calls["timeout"] != s.Timeouts || s.Calls["transient"] != 0 || s.Errors != s.Timeouts {
		t.Errorf("calls %v errors %d timeouts %d: every attempt ran out of time", s.Calls, s.Errors, s.Timeouts)
	}
	if s.Status != health.StatusDegraded && s.Status != health.StatusFailing {
		t.Errorf("status %s", s.Status)
	}
}

func TestSnapshotDisabledAfterAKeyRejectionWithoutTheSecret(t *testing.T) {
	r := newRig(t)
	const key = "k3y-5ecret-value"
	p := &fakeProvider{name: providerName(t), answer: func(int64, event.Indicator) (*event.Intel, error) {
		// What a careless provider might wrap: the request URL with the key in its query.
		return nil, &Error{Provider: "x", Kind: KindUnauthorized, Status: 401, Message: "invalid api key",
			Err: fmt.Errorf(`Get "https://api.example.com/v1/ip?api_key=%s": rejected`, key)}
	}}
	l := r.lookuper(t, p, testPolicy(), "a")
	l.Lookup(context.Background(), ip("150.0.0.1"))
	l.Lookup(context.Background(), ip("150.0.0.2"))
	s := l.Snapshot(time.Now())
	if s.Status != health.StatusDisabled || s.Calls["unauthorized"] != 1 || s.Errors != 1 {
		t.Fatalf("status %s calls %v errors %d", s.Status, s.Calls, s.Errors)
	}
	if !strings.Contains(s.LastError, "invalid api key") || strings.Contains(s.LastError, key) || !strings.Contains(s.LastError, "https://api.example.com") {
		t.Errorf("last error %q", s.LastError)
	}
}

func TestSnapshotQuotaWarningThenExhausted(t *testing.T) {
	r := newRig(t)
	p := &fakeProvider{name: providerName(t)}
	pol := testPolicy()
	pol.Quota = 5
	l := r.lookuper(t, p, pol, "a")
	for i := range 3 {
		l.Lookup(context.Background(), ip(fmt.Sprintf("160.0.0.%d", i+1)))
	}
	if s := l.Snapshot(time.Now()); s.Status != health.StatusOK || s.QuotaUsed != 3 {
		t.Fatalf("3 of 5: %s, used %d", s.Status, s.QuotaUsed)
	}
	l.Lookup(context.Background(), ip("160.0.0.4"))
	if s := l.Snapshot(time.Now()); s.Status != health.StatusDegraded || s.QuotaUsed != 4 || !s.QuotaWarning() {
		t.Fatalf("4 of 5 (past 80%%): %s, used %d", s.Status, s.QuotaUsed)
	}
	l.Lookup(context.Background(), ip("160.0.0.5"))
	l.Lookup(context.Background(), ip("160.0.0.6")) // spent: not sent
	now := time.Now()
	s := l.Snapshot(now)
	midnight := now.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	if s.Status != health.StatusQuotaExhausted || s.QuotaUsed != 5 || s.QuotaLimit != 5 || !s.QuotaReset.Equal(midnight) {
		t.Fatalf("spent: %s, used %d/%d, reset %s (want %s)", s.Status, s.QuotaUsed, s.QuotaLimit, s.QuotaReset, midnight)
	}
	if s.Calls["ok"] != 5 || s.Errors != 0 {
		t.Errorf("a lookup the spent quota held back is not a call: %v, %d errors", s.Calls, s.Errors)
	}
	// The day after, the cache-only spell is over.
	if s := l.Snapshot(midnight.Add(time.Minute)); s.Status != health.StatusOK || s.QuotaUsed != 0 {
		t.Errorf("after the reset: %s, used %d", s.Status, s.QuotaUsed)
	}
}

func TestSnapshotQuotaFromTheProvidersReport(t *testing.T) {
	r := newRig(t)
	reset := time.Now().Add(3 * time.Hour).UTC().Truncate(time.Second)
	p := &fakeProvider{name: providerName(t), answer: func(int64, event.Indicator) (*event.Intel, error) {
		return &event.Intel{Verdict: event.VerdictBenign, Detail: "ok", Quota: &event.QuotaReport{Limit: 1000, Remaining: 120, Reset: reset}}, nil
	}}
	l := r.lookuper(t, p, testPolicy(), "a")
	l.Lookup(context.Background(), ip("170.0.0.1"))
	s := l.Snapshot(time.Now())
	if s.QuotaUsed != 880 || s.QuotaLimit != 1000 || !s.QuotaReset.Equal(reset) || s.Status != health.StatusDegraded {
		t.Errorf("quota %d/%d reset %s (want %s), status %s", s.QuotaUsed, s.QuotaLimit, s.QuotaReset, reset, s.Status)
	}
	// Once the provider's reset has passed, the next UTC midnight is the best guess.
	later := reset.Add(time.Minute)
	if got := l.Snapshot(later).QuotaReset; !got.Equal(later.Truncate(24 * time.Hour).Add(24 * time.Hour)) {
		t.Errorf("after the reported reset: %s", got)
	}
}

func TestSnapshotWhileLookupsRun(t *testing.T) {
	r := newRig(t)
	p := &fakeProvider{name: providerName(t), answer: func(call int64, _ event.Indicator) (*event.Intel, error) {
		if call%3 == 0 {
			return nil, &Error{Provider: "x", Kind: KindPermanent, Status: 400, Message: fmt.Sprint("bad request ", call)}
		}
		return &event.Intel{Verdict: event.VerdictBenign, Detail: "ok"}, nil
	}}
	l := r.lookuper(t, p, testPolicy(), "a")
	ctx, cancel := context.WithCancel(context.Background())
	var snaps sync.WaitGroup
	snaps.Add(1)
	go func() {
		defer snaps.Done()
		for ctx.Err() == nil {
			_ = l.Snapshot(time.Now())
		}
	}()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				l.Lookup(context.Background(), ip(fmt.Sprintf("180.0.%d.%d", g, i)))
			}
		}()
	}
	wg.Wait()
	cancel()
	snaps.Wait()
	s := l.Snapshot(time.Now())
	if got := s.Calls["ok"] + s.Calls["permanent"]; got != p.calls.Load() || s.Errors != s.Calls["permanent"] || s.Calls["permanent"] == 0 {
		t.Errorf("calls %v errors %d; the provider saw %d", s.Calls, s.Errors, p.calls.Load())
	}
}

func TestReportHealthWritesSnapshotsTheStoreReturns(t *testing.T) {
	r := newRig(t)
	prefix := pipelinetest.Name(t, "health")
	t.Cleanup(func() { cleanPrefix(r.rdb, prefix) })
	store := health.NewStore(r.rdb, prefix)
	name := providerName(t)
	pol := testPolicy()
	pol.Quota = 1000
	a := r.lookuper(t, &fakeProvider{name: name}, pol, "replica-a")
	other := r.lookuper(t, &fakeProvider{name: name + "-other"}, testPolicy(), "replica-a")
	// Another replica of the same provider spends from the shared ledger.
	b := r.lookuper(t, &fakeProvider{name: name}, pol, "replica-b")
	for i := range 7 {
		b.Lookup(context.Background(), ip(fmt.Sprintf("190.0.0.%d", i+1)))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- ReportHealth(ctx, store, []*Lookuper{a, other}, "replica-a", "enrich", 50*time.Millisecond)
	}()
	var got []health.Snapshot
	pipelinetest.WaitFor(t, 5*time.Second, "both providers' snapshots", func() bool {
		var err error
		got, err = store.All(context.Background(), time.Minute)
		return err == nil && len(got) == 2
	})
	for _, s := range got {
		if s.Owner != "replica-a" || s.Role != "enrich" || s.Component != health.ComponentProvider || s.Status != health.StatusOK || time.Since(s.At) > time.Second {
			t.Errorf("snapshot %+v", s)
		}
	}
	if got[0].Name != name || got[0].QuotaUsed != 7 || got[0].QuotaLimit != 1000 {
		t.Errorf("%s: quota %d/%d, want the 7 lookups the other replica made, read from the ledger", got[0].Name, got[0].QuotaUsed, got[0].QuotaLimit)
	}
	if got[1].Name != name+"-other" {
		t.Errorf("second snapshot is %s", got[1].Name)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ReportHealth returned %v when its context ended", err)
	}
	// The replica stopped writing: once its snapshots are older than the reader's max age, it
	// drops out.
	const maxAge = 300 * time.Millisecond
	time.Sleep(maxAge + 100*time.Millisecond)
	if got, err := store.All(context.Background(), maxAge); err != nil || len(got) != 0 {
		t.Errorf("after the reporter stopped: %+v, %v", got, err)
	}
	if got, err := store.All(context.Background(), time.Minute); err != nil || len(got) != 2 {
		t.Errorf("a longer max age still sees them: %d, %v", len(got), err)
	}
}

func TestReportHealthWithoutProvidersReturns(t *testing.T) {
	if err := ReportHealth(context.Background(), nil, nil, "a", "enrich", time.Second); err != nil {
		t.Fatal(err)
	}
}

func cleanPrefix(rdb redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	iter := rdb.Scan(ctx, 0, prefix+":*", 500).Iterator()
	for iter.Next(ctx) {
		_ = rdb.Del(ctx, iter.Val()).Err()
	}
}

// reportingProvider reports its own count of credits left.
type reportingProvider struct {
	fakeProvider
	left int64
}

func (p *reportingProvider) QuotaLeft(context.Context) (int64, error) { return p.left, nil }

// TestLedgerReconcilesWithTheProvidersCount: a provider that says how many credits are left
// (Criminal IP's user/me) corrects the shared ledger, at most every few minutes.
func TestLedgerReconcilesWithTheProvidersCount(t *testing.T) {
	r := newRig(t)
	p := &reportingProvider{fakeProvider: fakeProvider{name: providerName(t)}, left: 640}
	pol := testPolicy()
	pol.Quota = 1000
	l := r.lookuper(t, p, pol, "a")
	l.refreshQuota(context.Background())
	if used, _ := l.chain.Quota.Ledger().Used(context.Background()); used != 360 {
		t.Fatalf("ledger %d, want the provider's 1000 - 640", used)
	}
	p.left = 100
	l.refreshQuota(context.Background()) // too soon: not asked again
	if used, _ := l.chain.Quota.Ledger().Used(context.Background()); used != 360 {
		t.Errorf("ledger %d: reconciled again within %s", used, reconcileEvery)
	}
}
