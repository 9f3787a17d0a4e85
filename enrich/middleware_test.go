package enrich

import (
	"cmp"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// scripted answers each call with the next error of its script (nil: an answer), repeating
// the last one.
type scripted struct {
	name   string // per test where it names shared Redis keys
	script []error
	calls  atomic.Int64
	report *QuotaReport
}

func (s *scripted) Name() string { return cmp.Or(s.name, "scripted") }
func (s *scripted) Cost() Cost   { return CostPaid }
func (s *scripted) Lookup(context.Context, event.Indicator) (*Result, error) {
	n := int(s.calls.Add(1)) - 1
	err := s.script[min(n, len(s.script)-1)]
	if err != nil {
		return nil, err
	}
	return &Result{Verdict: VerdictBenign, Detail: "ok", Quota: s.report}, nil
}

func kindErr(k ErrorKind) error { return &Error{Provider: "scripted", Kind: k} }

func TestRetry(t *testing.T) {
	cases := []struct {
		name      string
		script    []error
		budget    time.Duration
		wantCalls int64
		wantKind  ErrorKind // "" = success
	}{
		{"transient then answer", []error{kindErr(KindTransient), kindErr(KindTransient), nil}, 5 * time.Second, 3, ""},
		{"rate limited then answer", []error{kindErr(KindRateLimited), nil}, 5 * time.Second, 2, ""},
		{"a rejected key is final", []error{kindErr(KindUnauthorized), nil}, 5 * time.Second, 1, KindUnauthorized},
		{"a spent quota is final", []error{kindErr(KindQuotaExhausted), nil}, 5 * time.Second, 1, KindQuotaExhausted},
		{"an open breaker is final", []error{kindErr(KindUnavailable), nil}, 5 * time.Second, 1, KindUnavailable},
		{"a bad request is final", []error{kindErr(KindPermanent), nil}, 5 * time.Second, 1, KindPermanent},
		{"a Retry-After past the budget is final", []error{&Error{Kind: KindRateLimited, RetryAfter: time.Minute}, nil}, time.Second, 1, KindRateLimited},
		{"outages outlast the budget", []error{kindErr(KindTransient)}, 700 * time.Millisecond, -1, KindTransient},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := &scripted{script: c.script}
			_, err := Retry(c.budget)(p).Lookup(context.Background(), ip("192.0.2.1"))
			if (err == nil) != (c.wantKind == "") || (err != nil && KindOf(err) != c.wantKind) {
				t.Fatalf("err %v, want kind %q", err, c.wantKind)
			}
			if c.wantCalls >= 0 && p.calls.Load() != c.wantCalls {
				t.Errorf("%d calls, want %d", p.calls.Load(), c.wantCalls)
			}
			if c.wantCalls < 0 && p.calls.Load() < 2 {
				t.Errorf("%d calls: transient failures must be retried within the budget", p.calls.Load())
			}
		})
	}
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	p := &scripted{script: []error{&Error{Kind: KindRateLimited, RetryAfter: 300 * time.Millisecond}, nil}}
	start := time.Now()
	if _, err := Retry(5*time.Second)(p).Lookup(context.Background(), ip("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("retried after %v, before the provider's Retry-After of 300ms", took)
	}
}

func TestKeyGuardDisablesOnceAndStopsCalling(t *testing.T) {
	p := &scripted{script: []error{kindErr(KindUnauthorized)}}
	var alerts int
	g := NewKeyGuard(p, func(error) { alerts++ })
	for range 3 {
		if _, err := g.Lookup(context.Background(), ip("192.0.2.1")); KindOf(err) != KindUnauthorized {
			t.Fatalf("err %v", err)
		}
	}
	if off, reason := g.Disabled(); !off || reason == "" || p.calls.Load() != 1 || alerts != 1 {
		t.Errorf("disabled %v (%q), %d provider calls, %d alerts; want one call and one alert", off, reason, p.calls.Load(), alerts)
	}
}

func TestBreakerOpensOnOutagesOnly(t *testing.T) {
	var states []gobreaker.State
	p := &scripted{script: []error{kindErr(KindRateLimited), kindErr(KindRateLimited), kindErr(KindRateLimited), kindErr(KindRateLimited),
		kindErr(KindRateLimited), kindErr(KindTransient)}}
	b := NewBreaker(p, func(_, to gobreaker.State) { states = append(states, to) })
	for range 5 { // rate limits say the provider is up
		_, _ = b.Lookup(context.Background(), ip("192.0.2.1"))
	}
	if b.State() != gobreaker.StateClosed {
		t.Fatalf("rate limits opened the breaker")
	}
	for range 5 {
		_, _ = b.Lookup(context.Background(), ip("192.0.2.1"))
	}
	calls := p.calls.Load()
	_, err := b.Lookup(context.Background(), ip("192.0.2.1"))
	if b.State() != gobreaker.StateOpen || KindOf(err) != KindUnavailable || !errors.Is(err, gobreaker.ErrOpenState) || p.calls.Load() != calls {
		t.Errorf("after 5 outages: state %s, err %v, provider called again: %v", b.State(), err, p.calls.Load() != calls)
	}
	if len(states) != 1 || states[0] != gobreaker.StateOpen {
		t.Errorf("state changes %v", states)
	}
}

func TestQuotaGuardRefundsWhatCostNothing(t *testing.T) {
	r := newRig(t)
	name := providerName(t)
	ledger := NewQuotaLedger(r.rdb, testKeys, name, 3, PeriodDay, time.Now)
	var events []string
	guard := func(p Provider) *QuotaGuard {
		return NewQuotaGuard(p, QuotaGuardOptions{Ledger: ledger, WarnAt: 0.5, Redis: r.rdb, Keys: testKeys, Log: zap.NewNop(),
			Notify: func(e OpsEvent) { events = append(events, e.Type) }, Observed: func(int64) {}})
	}
	ctx := context.Background()
	// Outages, rate limits and a rejected key cost nothing: refunded.
	for _, k := range []ErrorKind{KindTransient, KindRateLimited, KindUnavailable, KindUnauthorized} {
		_, _ = guard(&scripted{name: name, script: []error{kindErr(k)}}).Lookup(ctx, ip("192.0.2.1"))
	}
	if used, _ := ledger.Used(ctx); used != 0 {
		t.Fatalf("%d units spent on requests that cost nothing", used)
	}
	// Answers cost a unit each; the fourth is refused without a call, and the period is spent.
	ok := &scripted{name: name, script: []error{nil}}
	g := guard(ok)
	for range 4 {
		_, _ = g.Lookup(ctx, ip("192.0.2.2"))
	}
	if used, _ := ledger.Used(ctx); used != 3 || ok.calls.Load() != 3 || !g.Exhausted() {
		t.Fatalf("used %d, calls %d, exhausted %v; want 3, 3, true", used, ok.calls.Load(), g.Exhausted())
	}
	if g.ResetTime() != PeriodDay.Next(time.Now()) {
		t.Errorf("reset %s, want the next UTC midnight", g.ResetTime())
	}
	if len(events) != 2 || events[0] != "quota_warning" || events[1] != "quota_exhausted" {
		t.Errorf("ops events %v", events)
	}
}

func TestQuotaGuardTakesTheProvidersCount(t *testing.T) {
	r := newRig(t)
	ledger := NewQuotaLedger(r.rdb, testKeys, providerName(t), 0, PeriodMonth, time.Now)
	p := &scripted{name: providerName(t), script: []error{nil}, report: &QuotaReport{Limit: 1000, Remaining: 250}}
	g := NewQuotaGuard(p, QuotaGuardOptions{Ledger: ledger, WarnAt: 0.8, Redis: r.rdb, Keys: testKeys, Log: zap.NewNop(),
		Notify: func(OpsEvent) {}, Observed: func(int64) {}})
	res, err := g.Lookup(context.Background(), ip("192.0.2.3"))
	if err != nil || res.Quota != nil {
		t.Fatalf("answer %+v, %v: the report is consumed, not cached", res, err)
	}
	if used, _ := ledger.Used(context.Background()); used != 750 || ledger.Limit() != 1000 {
		t.Errorf("ledger %d of %d, want the provider's 750 of 1000", used, ledger.Limit())
	}
}

func TestQuotaPeriods(t *testing.T) {
	at := time.Date(2026, 12, 31, 23, 59, 0, 0, time.UTC)
	if PeriodDay.ID(at) != "2026-12-31" || PeriodMonth.ID(at) != "2026-12" {
		t.Errorf("ids %s %s", PeriodDay.ID(at), PeriodMonth.ID(at))
	}
	if !PeriodDay.Next(at).Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) || !PeriodMonth.Next(at).Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("next %s %s", PeriodDay.Next(at), PeriodMonth.Next(at))
	}
	if PeriodMonth.Index(at) == PeriodMonth.Index(at.Add(time.Minute)) || PeriodDay.Index(at) == PeriodDay.Index(at.Add(time.Minute)) {
		t.Error("a new year is a new period")
	}
	if _, err := ParseQuotaPeriod("week"); err == nil {
		t.Error("week accepted")
	}
}

func TestInstrumentCountsEveryAttempt(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	c := NewChain(&scripted{script: []error{kindErr(KindTransient), nil}}, testPolicy(),
		ChainOptions{Redis: newRig(t).rdb, Keys: testKeys, Metrics: m, Log: zap.NewNop()})
	if _, err := c.Lookup(context.Background(), ip("192.0.2.4")); err != nil {
		t.Fatal(err)
	}
	if got := c.health.calls[callTransient].Load() + c.health.calls[callOK].Load(); got != 2 {
		t.Errorf("health counted %d attempts, want 2 (one outage, one answer)", got)
	}
}
