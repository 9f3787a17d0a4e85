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

type collectedChanges struct{ got []*event.Change }

func (c *collectedChanges) PublishChanges(_ context.Context, changes []*event.Change) error {
	c.got = append(c.got, changes...)
	return nil
}

// TestRefreshThatChangesTheVerdictIsPublished: a refresh whose new answer moves the indicator's
// severity publishes a change record, from every source's cached answers.
func TestRefreshThatChangesTheVerdictIsPublished(t *testing.T) {
	r := newRig(t)
	p := &fakeProvider{name: providerName(t), answer: func(call int64, _ event.Indicator) (*event.Intel, error) {
		if call == 1 {
			return &event.Intel{Verdict: event.VerdictMalicious, Score: 90, Detail: "bad"}, nil
		}
		return &event.Intel{Verdict: event.VerdictBenign, Score: 5, Detail: "cleaned up"}, nil
	}}
	pol := testPolicy()
	pol.TTLMalicious, pol.RefreshWindow, pol.RefreshMinHits, pol.RefreshShare = 2*time.Second, 0.5, 1, 1
	l := NewLookuper(LookuperOptions{Provider: p, Policy: pol, Redis: r.rdb, Keys: testKeys, Cache: startedCache(t, r),
		Metrics: r.metrics, Log: testLog(t), Owner: "a", Defer: true})
	t.Cleanup(l.Close)
	e := NewEnricher(OneStage(l), nil, r.metrics)
	pub := &collectedChanges{}
	ref := NewRefresher(RefresherOptions{Lookupers: []*Lookuper{l}, Redis: r.rdb, Keys: testKeys, Log: testLog(t), Metrics: r.metrics,
		Changed: e.RefreshChanges(pub, testLog(t))})
	ctx := context.Background()
	l.Lookup(ctx, ip("185.220.108.1"))
	time.Sleep(1100 * time.Millisecond)
	l.Lookup(ctx, ip("185.220.108.1")) // a hit near expiry: hot
	ref.round(ctx, l)
	if len(pub.got) != 1 {
		t.Fatalf("%d changes", len(pub.got))
	}
	c := pub.got[0]
	if c.Cause != event.CauseRefresh || c.Direction != event.Deescalated || c.Old.Severity != event.SeverityCritical ||
		c.New.Severity != event.SeverityInfo || c.Event != nil || c.Indicator.Value != "185.220.108.1" {
		t.Errorf("change %+v", c)
	}
}
