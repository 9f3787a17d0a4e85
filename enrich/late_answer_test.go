package enrich

import (
	"context"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// TestLateAnswerIsKeptNotPaidAgain: a request that went out late in its event's budget (it
// waited on the shared rate) and is answered after the budget ended was still billed, so its
// answer is waited for, stored and served to the next event instead of being paid for again.
func TestLateAnswerIsKeptNotPaidAgain(t *testing.T) {
	r := newRig(t)
	p := &fakeProvider{name: providerName(t), delay: 400 * time.Millisecond}
	pol := testPolicy()
	// One request a second: the second address, asked at the same time as the first, waits about
	// a second for the rate, then its request outlasts the flight's deadline (retry budget +
	// attempt timeout = 1.05 s) but not the attempt's own timeout.
	pol.RateLimit, pol.RateBurst = 1, 1
	pol.RetryBudget, pol.AttemptTimeout = 50*time.Millisecond, time.Second
	l := NewLookuper(LookuperOptions{Provider: p, Policy: pol, Redis: r.rdb, Keys: testKeys, Cache: startedCache(t, r),
		Metrics: r.metrics, Log: testLog(t), Owner: "a"})
	t.Cleanup(l.Close)
	ctx := context.Background()
	done := make(chan *event.ProviderOutcome)
	go func() { done <- l.Lookup(ctx, ip("198.51.100.61")) }()
	time.Sleep(20 * time.Millisecond) // the first takes the rate's only token
	first := l.Lookup(ctx, ip("198.51.100.62"))
	if out := <-done; out.Status != event.StatusOK {
		t.Fatalf("first address: %+v", out)
	}
	again := l.Lookup(ctx, ip("198.51.100.62"))
	if n := p.perIP["198.51.100.62"]; n != 1 {
		t.Fatalf("the late-answered address was paid for %d times (outcomes %+v then %+v), want once", n, first, again)
	}
	if first.Status != event.StatusOK || again.Cache == nil || !again.Cache.Hit {
		t.Errorf("outcomes %+v then %+v: want the late answer, then a cache hit", first, again)
	}
}
