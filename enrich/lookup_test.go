package enrich

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// fakeProvider answers from a function and counts calls per indicator.
type fakeProvider struct {
	name   string
	delay  time.Duration
	answer func(call int64, ind event.Indicator) (*event.Intel, error)
	calls  atomic.Int64
	mu     sync.Mutex
	perIP  map[string]int
}

func (p *fakeProvider) Name() string { return p.name }
func (p *fakeProvider) Cost() Cost   { return CostPaid }
func (p *fakeProvider) Lookup(ctx context.Context, ind event.Indicator) (*event.Intel, error) {
	n := p.calls.Add(1)
	p.mu.Lock()
	if p.perIP == nil {
		p.perIP = map[string]int{}
	}
	p.perIP[ind.Value]++
	p.mu.Unlock()
	if p.delay > 0 {
		select {
		case <-time.After(p.delay):
		case <-ctx.Done():
			return nil, &Error{Provider: p.name, Kind: KindTransient, Err: ctx.Err()}
		}
	}
	if p.answer == nil {
		return &event.Intel{Verdict: event.VerdictMalicious, Score: 85, Detail: "bad", Tags: []string{"tor"}}, nil
	}
	return p.answer(n, ind)
}

type recordingOps struct {
	mu     sync.Mutex
	events []OpsEvent
}

func (r *recordingOps) Notify(e OpsEvent) { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() }
func (r *recordingOps) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Type)
	}
	return out
}

var testKeys = Keys{Prefix: "tp-test"}

func testPolicy() *Policy {
	return &Policy{Enabled: true, RateLimit: 1000, RateBurst: 1000, MaxConcurrent: 64, QuotaWarnRatio: 0.8,
		TTLMalicious: time.Hour, TTLBenign: 24 * time.Hour, TTLNotFound: 6 * time.Hour,
		AttemptTimeout: 2 * time.Second, RetryBudget: 3 * time.Second}
}

type rig struct {
	rdb     redis.UniversalClient
	metrics *Metrics
	ops     *recordingOps
}

func newRig(t *testing.T) *rig {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: pipelinetest.Redis(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	return &rig{rdb: rdb, metrics: NewMetrics(prometheus.NewRegistry()), ops: &recordingOps{}}
}

// lookuper builds a Lookuper with its own running cache loader.
func (r *rig) lookuper(t *testing.T, p Provider, pol *Policy, owner string) *Lookuper {
	t.Helper()
	cache := NewCache(r.rdb, CacheOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = cache.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	l := NewLookuper(LookuperOptions{Provider: p, Policy: pol, Redis: r.rdb, Keys: testKeys, Cache: cache, Metrics: r.metrics,
		Log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), Ops: r.ops, Owner: owner, LeaseTTL: time.Second})
	t.Cleanup(l.Close) // runs before the cache loader stops: cleanups run last-in first-out
	return l
}

func providerName(t *testing.T) string {
	return strings.ReplaceAll(pipelinetest.Name(t, "p"), ".", "-")
}

func ip(s string) event.Indicator {
	ind, err := event.ParseIP(s)
	if err != nil {
		panic(err)
	}
	return ind
}

func TestCacheHitAfterFirstLookupWithTTLByVerdict(t *testing.T) {
	r := newRig(t)
	p := &fakeProvider{name: providerName(t), answer: func(_ int64, ind event.Indicator) (*event.Intel, error) {
		switch ind.Value {
		case "1.1.1.1":
			return &event.Intel{Verdict: event.VerdictBenign, Score: 10, Detail: "fine"}, nil
		case "2.2.2.2":
			return &event.Intel{Verdict: event.VerdictNotFound, Detail: "unknown"}, nil
		}
		return &event.Intel{Verdict: event.VerdictMalicious, Score: 95, Detail: "bad"}, nil
	}}
	l := r.lookuper(t, p, testPolicy(), "a")
	ctx := context.Background()
	for _, tc := range []struct {
		ip     string
		status event.ProviderStatus
		ttl    time.Duration
	}{{"1.1.1.1", event.StatusOK, 24 * time.Hour}, {"2.2.2.2", event.StatusNotFound, 6 * time.Hour}, {"3.3.3.3", event.StatusOK, time.Hour}} {
		first := l.Lookup(ctx, ip(tc.ip))
		if first.Status != tc.status || first.Cache != nil {
			t.Fatalf("%s: first lookup %+v", tc.ip, first)
		}
		second := l.Lookup(ctx, ip(tc.ip))
		if second.Status != tc.status || second.Cache == nil || !second.Cache.Hit || second.Result.Detail != first.Result.Detail {
			t.Fatalf("%s: second lookup must be a cache hit: %+v", tc.ip, second)
		}
		ttl := r.rdb.TTL(ctx, testKeys.Cache(p.name, "default", tc.ip)).Val()
		if ttl <= tc.ttl-time.Minute || ttl > tc.ttl {
			t.Errorf("%s: TTL %s, want about %s", tc.ip, ttl, tc.ttl)
		}
	}
	if got := p.calls.Load(); got != 3 {
		t.Fatalf("provider calls = %d, want 3 (one per IP)", got)
	}
	if hits := testutil.ToFloat64(r.metrics.Saved.WithLabelValues(p.name, "cache_hit")); hits != 3 {
		t.Errorf("saved cache hits = %v", hits)
	}
}

func TestErrorsAreNeverCached(t *testing.T) {
	r := newRig(t)
	// As on a freshly started Redis: no script cached, so a pipelined EVALSHA would fail.
	if err := r.rdb.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	p := &fakeProvider{name: providerName(t), answer: func(call int64, _ event.Indicator) (*event.Intel, error) {
		if call == 1 {
			return nil, &Error{Provider: "x", Kind: KindPermanent, Status: 400, Message: "bad request"}
		}
		return &event.Intel{Verdict: event.VerdictBenign, Detail: "ok"}, nil
	}}
	l := r.lookuper(t, p, testPolicy(), "a")
	if out := l.Lookup(context.Background(), ip("8.8.8.8")); out.Status != event.StatusFailed {
		t.Fatalf("first: %+v", out)
	}
	if n := r.rdb.Exists(context.Background(), testKeys.Cache(p.name, "default", "8.8.8.8")).Val(); n != 0 {
		t.Fatal("an error was cached")
	}
	if out := l.Lookup(context.Background(), ip("8.8.8.8")); out.Status != event.StatusOK {
		t.Fatalf("second: %+v, want a fresh lookup", out)
	}
}

func TestSingleFlightInProcessAndAcrossReplicas(t *testing.T) {
	r := newRig(t)
	p := &fakeProvider{name: providerName(t), delay: 150 * time.Millisecond}
	replicas := []*Lookuper{r.lookuper(t, p, testPolicy(), "r1"), r.lookuper(t, p, testPolicy(), "r2"), r.lookuper(t, p, testPolicy(), "r3")}
	var wg sync.WaitGroup
	outs := make(chan *event.ProviderOutcome, 90)
	for i := range 90 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs <- replicas[i%3].Lookup(context.Background(), ip("45.1.2.3"))
		}()
	}
	wg.Wait()
	close(outs)
	joined := 0
	for out := range outs {
		if out.Status != event.StatusOK || out.Result.Score != 85 {
			t.Fatalf("outcome %+v", out)
		}
		if out.Cache != nil && (out.Cache.Joined || out.Cache.Hit) {
			joined++
		}
	}
	if got := p.calls.Load(); got != 1 {
		t.Fatalf("90 concurrent lookups on 3 replicas made %d provider calls, want 1", got)
	}
	if joined != 89 {
		t.Errorf("%d outcomes marked joined or cached, want 89", joined)
	}
}

func TestCrashedLeaseHolderDoesNotBlockForLong(t *testing.T) {
	r := newRig(t)
	p := &fakeProvider{name: providerName(t)}
	l := r.lookuper(t, p, testPolicy(), "alive")
	// A replica took the lease and died: nobody renews it.
	if err := r.rdb.Set(context.Background(), testKeys.Lease(testKeys.Cache(p.name, l.shape, "9.9.9.9")), "dead-replica:tok", time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out := l.Lookup(context.Background(), ip("9.9.9.9"))
	if out.Status != event.StatusOK || p.calls.Load() != 1 {
		t.Fatalf("outcome %+v calls %d", out, p.calls.Load())
	}
	if waited := time.Since(start); waited < 700*time.Millisecond || waited > 3*time.Second {
		t.Errorf("waited %s for an abandoned lease of 1s", waited)
	}
}

func TestWaitersGetTheHoldersFailure(t *testing.T) {
	r := newRig(t)
	p := &fakeProvider{name: providerName(t), delay: 200 * time.Millisecond, answer: func(int64, event.Indicator) (*event.Intel, error) {
		return nil, &Error{Provider: "x", Kind: KindPermanent, Status: 400}
	}}
	a, b := r.lookuper(t, p, testPolicy(), "a"), r.lookuper(t, p, testPolicy(), "b")
	var wg sync.WaitGroup
	var outB *event.ProviderOutcome
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(50 * time.Millisecond)
		outB = b.Lookup(context.Background(), ip("7.7.7.7"))
	}()
	outA := a.Lookup(context.Background(), ip("7.7.7.7"))
	wg.Wait()
	if outA.Status != event.StatusFailed || outB.Status != event.StatusFailed || outB.Cache == nil || !outB.Cache.Joined {
		t.Fatalf("holder %+v, waiter %+v", outA, outB)
	}
	if p.calls.Load() != 1 {
		t.Fatalf("calls %d, want 1: the waiter takes the holder's failure", p.calls.Load())
	}
}

func TestQuotaWarningThenExhaustion(t *testing.T) {
	r := newRig(t)
	p := &fakeProvider{name: providerName(t)}
	pol := testPolicy()
	pol.Quota = 5
	l := r.lookuper(t, p, pol, "a")
	for i := range 5 {
		if out := l.Lookup(context.Background(), ip(fmt.Sprintf("50.0.0.%d", i+1))); out.Status != event.StatusOK {
			t.Fatalf("lookup %d: %+v", i, out)
		}
	}
	out := l.Lookup(context.Background(), ip("50.0.0.99"))
	if out.Status != event.StatusQuotaExhausted || p.calls.Load() != 5 {
		t.Fatalf("6th distinct IP: %+v after %d calls, want quota_exhausted without a call", out, p.calls.Load())
	}
	if cached := l.Lookup(context.Background(), ip("50.0.0.1")); cached.Status != event.StatusOK || !cached.Cache.Hit {
		t.Fatalf("cache must still serve while the quota is spent: %+v", cached)
	}
	if got := strings.Join(r.ops.types(), ","); got != "quota_warning,quota_exhausted" {
		t.Errorf("ops events %q, want one warning (at 4 of 5) then exhausted", got)
	}
	if w := testutil.ToFloat64(r.metrics.QuotaWarnings.WithLabelValues(p.name)); w != 1 {
		t.Errorf("quota warnings metric %v", w)
	}
	if used, left := testutil.ToFloat64(r.metrics.QuotaUsed.WithLabelValues(p.name)), testutil.ToFloat64(r.metrics.QuotaLeft.WithLabelValues(p.name)); used != 5 || left != 0 {
		t.Errorf("quota gauges used %v remaining %v, want 5 and 0", used, left)
	}
}

func TestProviderQuotaReportCorrectsTheLedger(t *testing.T) {
	r := newRig(t)
	p := &fakeProvider{name: providerName(t), answer: func(int64, event.Indicator) (*event.Intel, error) {
		return &event.Intel{Verdict: event.VerdictBenign, Detail: "ok", Quota: &event.QuotaReport{Limit: 1000, Remaining: 120}}, nil
	}}
	l := r.lookuper(t, p, testPolicy(), "a")
	l.Lookup(context.Background(), ip("60.0.0.1"))
	used, err := l.chain.Quota.Ledger().Used(context.Background())
	if err != nil || used != 880 || l.chain.Quota.Ledger().Limit() != 1000 {
		t.Fatalf("ledger used %d limit %d (%v), want 880 of 1000 from the provider's headers", used, l.chain.Quota.Ledger().Limit(), err)
	}
	if got := strings.Join(r.ops.types(), ","); got != "quota_warning" {
		t.Errorf("ops events %q, want a warning at 88%%", got)
	}
}

func TestRateLimitedHonoursRetryAfter(t *testing.T) {
	r := newRig(t)
	p := &fakeProvider{name: providerName(t), answer: func(call int64, _ event.Indicator) (*event.Intel, error) {
		if call <= 2 {
			return nil, &Error{Provider: "x", Kind: KindRateLimited, Status: 429, RetryAfter: 300 * time.Millisecond}
		}
		return &event.Intel{Verdict: event.VerdictBenign, Detail: "ok"}, nil
	}}
	l := r.lookuper(t, p, testPolicy(), "a")
	start := time.Now()
	out := l.Lookup(context.Background(), ip("70.0.0.1"))
	if out.Status != event.StatusOK || p.calls.Load() != 3 {
		t.Fatalf("outcome %+v after %d calls", out, p.calls.Load())
	}
	if waited := time.Since(start); waited < 600*time.Millisecond {
		t.Errorf("finished after %s: two Retry-After waits of 300ms were not honoured", waited)
	}
	pol := testPolicy()
	pol.RetryBudget = 500 * time.Millisecond
	q := &fakeProvider{name: providerName(t) + "b", answer: func(int64, event.Indicator) (*event.Intel, error) {
		return nil, &Error{Provider: "x", Kind: KindRateLimited, Status: 429, RetryAfter: time.Minute}
	}}
	if out := r.lookuper(t, q, pol, "a").Lookup(context.Background(), ip("70.0.0.2")); out.Status != event.StatusRateLimited || q.calls.Load() != 1 {
		t.Fatalf("a Retry-After beyond the budget must give up at once: %+v, %d calls", out, q.calls.Load())
	}
}

func TestUnauthorizedDisablesTheProvider(t *testing.T) {
	r := newRig(t)
	p := &fakeProvider{name: providerName(t), answer: func(int64, event.Indicator) (*event.Intel, error) {
		return nil, &Error{Provider: "x", Kind: KindUnauthorized, Status: 401, Message: "invalid api key"}
	}}
	l := r.lookuper(t, p, testPolicy(), "a")
	for i := range 3 {
		if out := l.Lookup(context.Background(), ip(fmt.Sprintf("80.0.0.%d", i+1))); out.Status != event.StatusDisabled || !strings.Contains(out.Error, "invalid api key") {
			t.Fatalf("lookup %d: %+v", i, out)
		}
	}
	if p.calls.Load() != 1 {
		t.Fatalf("%d calls: a rejected key must switch the provider off after the first", p.calls.Load())
	}
	if d := testutil.ToFloat64(r.metrics.Disabled.WithLabelValues(p.name)); d != 1 {
		t.Error("disabled gauge not set")
	}
	if got := strings.Join(r.ops.types(), ","); got != "provider_disabled" {
		t.Errorf("ops events %q", got)
	}
}

func TestTransientErrorsRetryThenFailAndTripTheBreaker(t *testing.T) {
	r := newRig(t)
	pol := testPolicy()
	pol.RetryBudget = 800 * time.Millisecond
	p := &fakeProvider{name: providerName(t), answer: func(int64, event.Indicator) (*event.Intel, error) {
		return nil, &Error{Provider: "x", Kind: KindTransient, Status: 503}
	}}
	l := r.lookuper(t, p, pol, "a")
	start := time.Now()
	out := l.Lookup(context.Background(), ip("90.0.0.1"))
	if out.Status != event.StatusFailed || p.calls.Load() < 2 {
		t.Fatalf("outcome %+v after %d calls: transient errors must be retried, then reported failed", out, p.calls.Load())
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("gave up after %s; the retry budget is 800ms", took)
	}
	for i := 0; i < 6 && l.chain.Breaker.State().String() != "open"; i++ {
		l.Lookup(context.Background(), ip(fmt.Sprintf("90.0.1.%d", i)))
	}
	if l.chain.Breaker.State().String() != "open" || testutil.ToFloat64(r.metrics.Breaker.WithLabelValues(p.name)) != 2 {
		t.Fatalf("breaker %s after repeated outages", l.chain.Breaker.State())
	}
	before := p.calls.Load()
	if out := l.Lookup(context.Background(), ip("90.0.2.1")); out.Status != event.StatusFailed || !strings.Contains(out.Error, "circuit breaker open") || p.calls.Load() != before {
		t.Fatalf("with the breaker open: %+v, calls %d -> %d", out, before, p.calls.Load())
	}
}

// Without Redis there is no lease, no shared rate and no quota count: a paid lookup waits for
// Redis rather than risk paying twice, and goes ahead once it is back.
func TestRedisOutageHoldsLookupsUntilItIsBack(t *testing.T) {
	proxy := pipelinetest.NewProxy(t, pipelinetest.Redis(t))
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr(), DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer rdb.Close()
	r := &rig{rdb: rdb, metrics: NewMetrics(prometheus.NewRegistry()), ops: &recordingOps{}}
	p := &fakeProvider{name: providerName(t)}
	l := r.lookuper(t, p, testPolicy(), "a")
	proxy.Down()

	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	if out := l.Lookup(ctx, ip("100.100.100.100")); out.Status != event.StatusFailed || p.calls.Load() != 0 {
		t.Fatalf("with Redis down: %+v after %d calls; want no call and the caller let go", out, p.calls.Load())
	}
	if e := testutil.ToFloat64(r.metrics.Cache.WithLabelValues(p.name, "error")); e != 1 {
		t.Errorf("cache error metric %v", e)
	}
	done := make(chan *event.ProviderOutcome, 1)
	go func() { done <- l.Lookup(context.Background(), ip("100.100.100.100")) }()
	time.Sleep(500 * time.Millisecond)
	if n := p.calls.Load(); n != 0 {
		t.Fatalf("%d calls while Redis was down", n)
	}
	proxy.Up()
	select {
	case out := <-done:
		if out.Status != event.StatusOK || p.calls.Load() != 1 {
			t.Fatalf("once Redis is back: %+v after %d calls, want one call", out, p.calls.Load())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the lookup did not resume once Redis was back")
	}
}

func TestLookupReturnsWhenTheCallerGivesUp(t *testing.T) {
	r := newRig(t)
	p := &fakeProvider{name: providerName(t), delay: 2 * time.Second}
	l := r.lookuper(t, p, testPolicy(), "a")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	out := l.Lookup(ctx, ip("110.0.0.1"))
	if out.Status != event.StatusFailed || time.Since(start) > time.Second {
		t.Fatalf("%+v after %s", out, time.Since(start))
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("test setup")
	}
}
