package enrich

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

func TestRank(t *testing.T) {
	for _, tc := range []struct {
		sightings int64
		h         Hint
		want      int
	}{
		{1, Hint{}, 22},                       // first sight, nothing known: 12 + 10
		{1, Hint{Score: 90, Voters: 2}, 69},   // first sight, two sources agree it is bad
		{10, Hint{}, 40},                      // seen ten times
		{50, Hint{Score: 100, Voters: 5}, 90}, // everything but first sight
	} {
		if got := Rank(tc.sightings, tc.h); got != tc.want {
			t.Errorf("Rank(%d, %+v) = %d, want %d", tc.sightings, tc.h, got, tc.want)
		}
	}
}

// TestV6PrefixSprayCostsItsBudget: addresses sprayed from one /64 cost the /64's budget, the
// rest wait for the reset, pending; another /64 is not affected.
func TestV6PrefixSprayCostsItsBudget(t *testing.T) {
	r := newRig(t)
	p := &fakeProvider{name: providerName(t)}
	pol := testPolicy()
	pol.V6PrefixBudget, pol.Quota = 2, 1000
	l := NewLookuper(LookuperOptions{Provider: p, Policy: pol, Redis: r.rdb, Keys: testKeys, Cache: startedCache(t, r),
		Metrics: r.metrics, Log: testLog(t), Owner: "a", Defer: true})
	t.Cleanup(l.Close)
	held := 0
	for i := range 20 {
		out := l.Lookup(context.Background(), ip(fmt.Sprintf("2001:db8:aa:1::%x", i+1)))
		if out.Status == event.StatusPending {
			held++
			if out.RetryAt == nil || !strings.Contains(out.Error, "2001:db8:aa:1::/64") {
				t.Fatalf("held: %+v", out)
			}
		}
	}
	if p.calls.Load() != 2 || held != 18 {
		t.Fatalf("%d provider calls, %d held, want 2 and 18", p.calls.Load(), held)
	}
	if out := l.Lookup(context.Background(), ip("2001:db8:bb:1::1")); out.Status != event.StatusOK {
		t.Errorf("another /64: %+v", out)
	}
}

// TestFailedLookupsSpendNoBudget: a provider answering 429 again and again (a storm the
// lookups are retried through) costs a /64 and a source nothing: once it answers, the addresses
// are looked up instead of waiting for the period's reset.
func TestFailedLookupsSpendNoBudget(t *testing.T) {
	r := newRig(t)
	var storm atomic.Bool
	storm.Store(true)
	p := &fakeProvider{name: providerName(t), answer: func(int64, event.Indicator) (*event.Intel, error) {
		if storm.Load() {
			return nil, &Error{Kind: KindRateLimited, Message: "too many requests"}
		}
		return &event.Intel{Verdict: event.VerdictMalicious, Score: 85}, nil
	}}
	pol := testPolicy()
	pol.V6PrefixBudget, pol.Quota, pol.SourceShare = 2, 100, 0.02 // a share of 2 lookups
	pol.RetryBudget = 50 * time.Millisecond                       // one attempt per lookup
	l := NewLookuper(LookuperOptions{Provider: p, Policy: pol, Redis: r.rdb, Keys: testKeys, Cache: startedCache(t, r),
		Metrics: r.metrics, Log: testLog(t), Owner: "a", Defer: true})
	t.Cleanup(l.Close)
	addrs := []string{"2001:4860:4860::8888", "2001:4860:4860::8844"}
	for range 5 {
		for _, a := range addrs {
			if out := l.LookupFor(context.Background(), ip(a), Hint{Source: "fw"}); out.Status != event.StatusPending || strings.Contains(out.Error, "spent") {
				t.Fatalf("during the storm: %+v, want pending on the 429", out)
			}
		}
	}
	storm.Store(false)
	for _, a := range addrs {
		if out := l.Retry(context.Background(), ip(a)); out.Status != event.StatusOK {
			t.Errorf("%s after the storm: %+v, want the answer (no budget spent by the 429s)", a, out)
		}
	}
}

// TestSourceShare: one input source spends at most its share of the quota; others go on.
func TestSourceShare(t *testing.T) {
	r := newRig(t)
	p := &fakeProvider{name: providerName(t)}
	pol := testPolicy()
	pol.Quota, pol.SourceShare = 10, 0.3
	l := NewLookuper(LookuperOptions{Provider: p, Policy: pol, Redis: r.rdb, Keys: testKeys, Cache: startedCache(t, r),
		Metrics: r.metrics, Log: testLog(t), Owner: "a", Defer: true})
	t.Cleanup(l.Close)
	var statuses []event.ProviderStatus
	for i := range 5 {
		statuses = append(statuses, l.LookupFor(context.Background(), ip(fmt.Sprintf("185.220.105.%d", i+1)), Hint{Source: "noisy-fw"}).Status)
	}
	want := []event.ProviderStatus{event.StatusOK, event.StatusOK, event.StatusOK, event.StatusPending, event.StatusPending}
	if fmt.Sprint(statuses) != fmt.Sprint(want) {
		t.Fatalf("noisy source: %v, want %v", statuses, want)
	}
	if out := l.LookupFor(context.Background(), ip("185.220.105.9"), Hint{Source: "quiet-edr"}); out.Status != event.StatusOK {
		t.Errorf("another source: %+v", out)
	}
}

// TestShortQuotaSpendsOnTheTopRanked: with 10% of the quota left (under the 20% reserve) the
// bar is 50: a lookup two sources already rate bad spends quota, an unremarkable one waits.
func TestShortQuotaSpendsOnTheTopRanked(t *testing.T) {
	r := newRig(t)
	p := &fakeProvider{name: providerName(t)}
	pol := testPolicy()
	pol.Quota, pol.QuotaReserve = 100, 0.2
	l := NewLookuper(LookuperOptions{Provider: p, Policy: pol, Redis: r.rdb, Keys: testKeys, Cache: startedCache(t, r),
		Metrics: r.metrics, Log: testLog(t), Owner: "a", Defer: true})
	t.Cleanup(l.Close)
	l.chain.health.seeQuota(l.o.Now(), 90)
	low := l.LookupFor(context.Background(), ip("185.220.106.1"), Hint{})
	high := l.LookupFor(context.Background(), ip("185.220.106.2"), Hint{Score: 90, Voters: 2})
	if low.Status != event.StatusPending || !strings.Contains(low.Error, "rank 22 is below the bar of 50") {
		t.Errorf("low rank: %+v", low)
	}
	if high.Status != event.StatusOK || p.calls.Load() != 1 {
		t.Errorf("high rank: %+v (%d calls)", high, p.calls.Load())
	}
}

func testLog(t *testing.T) *zap.Logger { return zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)) }
