package enrich

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// collectedRevisions is a RevisionPublisher that keeps what it was given.
type collectedRevisions struct {
	mu      sync.Mutex
	evs     []event.Scored
	changes []*event.Change
	fail    bool
}

func (c *collectedRevisions) PublishRevisions(_ context.Context, evs []*event.Scored, changes []*event.Change) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail {
		return context.DeadlineExceeded
	}
	for _, ev := range evs {
		c.evs = append(c.evs, *ev)
	}
	c.changes = append(c.changes, changes...)
	return nil
}

func (c *collectedRevisions) all() []event.Scored {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]event.Scored(nil), c.evs...)
}

// TestParkedLookupEndsInARevision: a provider that fails its first call leaves the event
// pending and parked; the Retrier's lookup answers, and a revision with the answer and a higher
// revision number is published for every event that waited, once; the queue is then empty.
func TestParkedLookupEndsInARevision(t *testing.T) {
	r := newRig(t)
	failing := &fakeProvider{name: providerName(t), answer: func(call int64, _ event.Indicator) (*event.Intel, error) {
		if call <= 2 {
			return nil, &Error{Kind: KindRateLimited, RetryAfter: 300 * time.Millisecond, Message: "slow down"}
		}
		return &event.Intel{Verdict: event.VerdictMalicious, Score: 85, Detail: "bad"}, nil
	}}
	pol := testPolicy()
	pol.RetryBudget = 0 // the event path gives up at once: the lookup is parked
	l := NewLookuper(LookuperOptions{Provider: failing, Policy: pol, Redis: r.rdb, Keys: testKeys, Cache: startedCache(t, r),
		Metrics: r.metrics, Log: zaptest.NewLogger(t), Owner: "a", Defer: true})
	t.Cleanup(l.Close)
	parking := NewParking(r.rdb, testKeys, ParkingOptions{})
	e := NewEnricher(OneStage(l), nil, r.metrics).ParkWith(parking)

	evs := []*event.Scored{scoredFor(t, "185.220.104.1"), scoredFor(t, "185.220.104.1")}
	evs[1].EventID = "e2"
	for _, ev := range evs {
		if err := e.Process(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		if o := ev.Providers[failing.name]; o.Status != event.StatusPending || o.RetryAt == nil || ev.Revision != 0 {
			t.Fatalf("outcome %+v revision %d: want pending and parked", o, ev.Revision)
		}
	}
	if n, _ := parking.Pending(context.Background(), failing.name); n != 1 {
		t.Fatalf("%d parked lookups for one address", n)
	}
	pub := &collectedRevisions{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ret := NewRetrier(RetrierOptions{Parking: parking, Enricher: e, Lookupers: []*Lookuper{l}, Publisher: pub, Metrics: r.metrics,
		Log: zaptest.NewLogger(t), Owner: "a", Interval: 50 * time.Millisecond})
	go func() { done <- ret.Run(ctx) }()
	pipelinetest.WaitFor(t, 10*time.Second, "both revisions", func() bool { return len(pub.all()) == 2 })
	time.Sleep(300 * time.Millisecond) // nothing more may come
	cancel()
	<-done
	got := pub.all()
	if len(got) != 2 {
		t.Fatalf("%d revisions, want one per waiting event", len(got))
	}
	for _, ev := range got {
		o := ev.Providers[failing.name]
		if ev.Revision != 1 || o.Status != event.StatusOK || o.Result.Score != 85 || ev.Score < 85 || o.RetryAt != nil {
			t.Errorf("revision %d outcome %+v score %d", ev.Revision, o, ev.Score)
		}
	}
	if n, _ := parking.Pending(context.Background(), failing.name); n != 0 {
		t.Errorf("%d lookups still parked", n)
	}
	if left, _ := parking.Events(context.Background(), "185.220.104.1"); len(left) != 0 {
		t.Errorf("%d events still kept", len(left))
	}
	// Pending scored 0 (info); the answer makes it critical: one change for the indicator.
	if len(pub.changes) != 1 || pub.changes[0].Direction != event.Escalated || pub.changes[0].Old.Severity != event.SeverityInfo ||
		pub.changes[0].New.Severity != event.SeverityCritical || pub.changes[0].Event == nil {
		t.Errorf("changes %+v", pub.changes)
	}
	if failing.calls.Load() != 3 {
		t.Errorf("%d provider calls: two rate-limited, then one answer", failing.calls.Load())
	}
}

// TestParkingFailureIsReportedNotLeftPending: without a working Redis an event cannot be parked,
// so it says its lookup failed and why instead of waiting for a revision that cannot come.
func TestParkingFailureIsReportedNotLeftPending(t *testing.T) {
	r := newRig(t)
	p := &fakeProvider{name: providerName(t), answer: func(int64, event.Indicator) (*event.Intel, error) {
		return nil, &Error{Kind: KindTransient, Message: "503"}
	}}
	pol := testPolicy()
	pol.RetryBudget = 0
	l := NewLookuper(LookuperOptions{Provider: p, Policy: pol, Redis: r.rdb, Keys: testKeys, Cache: startedCache(t, r),
		Metrics: r.metrics, Log: zaptest.NewLogger(t), Owner: "a", Defer: true})
	t.Cleanup(l.Close)
	parking := NewParking(r.rdb, testKeys, ParkingOptions{MaxEventsPerAddress: 1})
	e := NewEnricher(OneStage(l), nil, r.metrics).ParkWith(parking)
	first, second := scoredFor(t, "185.220.104.2"), scoredFor(t, "185.220.104.2")
	second.EventID = "other"
	_ = e.Process(context.Background(), first)
	_ = e.Process(context.Background(), second) // the address's parking is full
	if first.Providers[p.name].Status != event.StatusPending {
		t.Fatalf("first: %+v", first.Providers[p.name])
	}
	if o := second.Providers[p.name]; o.Status != event.StatusFailed || o.RetryAt != nil {
		t.Fatalf("second: %+v, want failed with why", o)
	}
}

// startedCache is a cache with its loader running until the test ends.
func startedCache(t *testing.T, r *rig) *Cache {
	t.Helper()
	cache := NewCache(r.rdb, CacheOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = cache.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return cache
}
