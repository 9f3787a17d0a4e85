package enrich

import (
	"context"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// TestRefreshKeepsAHotAnswerWarm: an answer asked for near its expiry is refreshed before it
// expires, so later events still hit the cache; a cold one is not refreshed; and the refresh
// budget (a share of the quota) is never exceeded.
func TestRefreshKeepsAHotAnswerWarm(t *testing.T) {
	r := newRig(t)
	p := &fakeProvider{name: providerName(t)}
	pol := testPolicy()
	pol.TTLMalicious, pol.RefreshWindow, pol.RefreshMinHits, pol.RefreshShare = 2*time.Second, 0.5, 2, 0.2
	pol.Quota = 10 // a budget of 0.2 x 10 = 2 refreshes this period
	l := NewLookuper(LookuperOptions{Provider: p, Policy: pol, Redis: r.rdb, Keys: testKeys, Cache: startedCache(t, r),
		Metrics: r.metrics, Log: testLog(t), Owner: "a", Defer: true})
	t.Cleanup(l.Close)
	ref := NewRefresher(RefresherOptions{Lookupers: []*Lookuper{l}, Redis: r.rdb, Keys: testKeys, Log: testLog(t), Metrics: r.metrics})
	ctx := context.Background()
	hot, cold := []string{"185.220.107.1", "185.220.107.2", "185.220.107.3"}, "185.220.107.9"
	for _, a := range append(hot, cold) {
		l.Lookup(ctx, ip(a))
	}
	time.Sleep(1200 * time.Millisecond) // into the last half of the answers' 2 s lives
	for range 3 {
		for _, a := range hot {
			if out := l.Lookup(ctx, ip(a)); out.Cache == nil || !out.Cache.Hit {
				t.Fatalf("%s: %+v", a, out)
			}
		}
	}
	l.Lookup(ctx, ip(cold)) // one sighting: not hot
	ref.round(ctx, l)
	if got := p.calls.Load(); got != 4+2 {
		t.Fatalf("%d provider calls: 4 lookups and 2 refreshes (the budget), want 6", got)
	}
	time.Sleep(1200 * time.Millisecond) // past the first answers' expiry
	refreshed := 0
	for _, a := range hot {
		if out := l.Lookup(ctx, ip(a)); out.Cache != nil && out.Cache.Hit {
			refreshed++
		}
	}
	if refreshed != 2 {
		t.Errorf("%d of the hot answers still cached after their first expiry, want the 2 refreshed", refreshed)
	}
	if out := l.Lookup(ctx, ip(cold)); out.Status != event.StatusOK || (out.Cache != nil && out.Cache.Hit) {
		t.Errorf("the cold answer must have expired and been looked up again: %+v", out)
	}
}
