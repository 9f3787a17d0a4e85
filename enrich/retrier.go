package enrich

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/semaphore"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// RevisionPublisher publishes revised scored events (to the scored topic, keyed by indicator)
// and the verdict changes they carry (to the changes topic), and returns once every one is
// acknowledged.
type RevisionPublisher interface {
	PublishRevisions(ctx context.Context, evs []*event.Scored, changes []*event.Change) error
}

// RetrierOptions wire a Retrier.
type RetrierOptions struct {
	Parking   *Parking
	Enricher  *Enricher
	Lookupers []*Lookuper
	Publisher RevisionPublisher
	Metrics   *Metrics
	Log       *zap.Logger
	Owner     string
	// Interval between looks at the queues when nothing was due (default 250ms).
	Interval time.Duration
	// Batch is how many due lookups one look claims per provider (default 64).
	Batch int
	// Concurrency bounds the parked lookups in flight from this replica (default 32).
	Concurrency int64
	// Lease is how long a claim keeps other replicas off a lookup (default 2 minutes): a
	// replica that dies holding it leaves the lookup due again when it ends.
	Lease time.Duration
	Now   func() time.Time
}

// Retrier finishes parked lookups (docs/lifecycle.md): it claims those that are due, asks the
// provider through the same cache, single-flight and middleware as the event path (so a parked
// lookup costs one paid call, across replicas and restarts), and when an answer (or a final
// failure) comes, publishes a revision of every event that waited on it. Every enricher runs
// one; they share the queues in Redis.
type Retrier struct {
	o         RetrierOptions
	lookupers map[string]*Lookuper
	slots     *semaphore.Weighted
	failing   map[string]bool // providers whose queue could not be read last round (Run's goroutine only)
}

// NewRetrier builds a Retrier.
func NewRetrier(o RetrierOptions) *Retrier {
	if o.Interval <= 0 {
		o.Interval = 250 * time.Millisecond
	}
	if o.Batch <= 0 {
		o.Batch = 64
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 32
	}
	if o.Lease <= 0 {
		o.Lease = 2 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &Retrier{o: o, lookupers: make(map[string]*Lookuper), slots: semaphore.NewWeighted(o.Concurrency), failing: map[string]bool{}}
	for _, l := range o.Lookupers {
		if l.chain.Keys != nil { // offline sources never defer
			r.lookupers[l.Name()] = l
		}
	}
	return r
}

// Run works the queues until ctx ends; it waits for the lookups it started.
func (r *Retrier) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		busy := false
		for name, l := range r.lookupers {
			busy = r.round(ctx, &wg, name, l) || busy
		}
		next := r.o.Interval
		if busy {
			next = 10 * time.Millisecond
		}
		t.Reset(next)
	}
}

// round claims what is due at one provider and starts its lookups; it reports whether it
// claimed a full batch (more may be due).
func (r *Retrier) round(ctx context.Context, wg *sync.WaitGroup, provider string, l *Lookuper) bool {
	addrs, err := r.o.Parking.Claim(ctx, provider, r.o.Now(), r.o.Batch, r.o.Lease)
	if err != nil {
		// Logged when the queue becomes unreadable and when it is back, not every round.
		if ctx.Err() == nil && !r.failing[provider] {
			r.failing[provider] = true
			r.o.Log.Warn("parked lookups unavailable; trying again every round until Redis answers", zap.String("provider", provider), zap.Error(err))
		}
		return false
	}
	if r.failing[provider] {
		delete(r.failing, provider)
		r.o.Log.Info("parked lookups available again", zap.String("provider", provider))
	}
	if n, err := r.o.Parking.Pending(ctx, provider); err == nil {
		r.o.Metrics.ParkedNow.WithLabelValues(provider).Set(float64(n))
	}
	for _, addr := range addrs {
		if err := r.slots.Acquire(ctx, 1); err != nil {
			return false
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.slots.Release(1)
			r.finish(ctx, provider, l, addr)
		}()
	}
	return len(addrs) == r.o.Batch
}

// finish asks the provider about addr again and revises its events when the answer is final.
func (r *Retrier) finish(ctx context.Context, provider string, l *Lookuper, addr string) {
	ind, err := event.ParseIP(addr)
	if err != nil { // not an address: nothing can ever answer; drop it
		_ = r.o.Parking.Settle(ctx, provider, addr, nil, nil)
		return
	}
	out := l.Retry(ctx, ind)
	if ctx.Err() != nil {
		return // shutting down: the claim's lease hands it to whoever runs next
	}
	if out.Status == event.StatusPending {
		r.later(ctx, provider, addr, *out.RetryAt)
		return
	}
	out.Cache = nil // the revision reports the lookup, not how this replica got it
	if err := r.revise(ctx, provider, addr, out); err != nil {
		r.o.Log.Warn("revision not published; trying again shortly", zap.String("provider", provider), zap.String("indicator", addr), zap.Error(err))
		r.later(ctx, provider, addr, r.o.Now().Add(2*time.Second))
	}
}

// later reschedules a lookup, with jitter so a wave of failures does not come back as one.
func (r *Retrier) later(ctx context.Context, provider, addr string, at time.Time) {
	at = at.Add(time.Duration(rand.Int64N(int64(500 * time.Millisecond))))
	if err := r.o.Parking.Reschedule(ctx, provider, addr, at); err != nil && ctx.Err() == nil {
		r.o.Log.Warn("parked lookup not rescheduled; its lease will bring it back", zap.String("provider", provider), zap.String("indicator", addr), zap.Error(err))
	}
}

// revise publishes a revision of every event of addr still waiting on provider, then records
// them (kept while they wait on another provider, dropped otherwise) and takes the lookup off
// the queue. Under the address's lock, so revisions of one event are numbered one at a time.
func (r *Retrier) revise(ctx context.Context, provider, addr string, out *event.ProviderOutcome) error {
	lockCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	unlock, err := r.o.Parking.Lock(lockCtx, addr, r.o.Owner, 30*time.Second)
	cancel()
	if err != nil {
		return err
	}
	defer unlock()
	evs, err := r.o.Parking.Events(ctx, addr)
	if err != nil {
		return err
	}
	var revised []*event.Scored
	var change *event.Change
	keep := map[string]*event.Scored{}
	var drop []string
	now := r.o.Now().UTC()
	for id, ev := range evs {
		if o := ev.Providers[provider]; o == nil || o.Status != event.StatusPending {
			continue
		}
		old := event.RatingOf(ev)
		outcome := *out
		still := r.o.Enricher.Revise(ev, provider, &outcome)
		ev.Revision++
		ev.ProcessedAt = now
		revised = append(revised, ev)
		if c := changeOf(ev, old, now); c != nil && (change == nil || ev.ObservedAt.After(change.Event.ObservedAt)) {
			change = c // one change per indicator: the newest event's
		}
		if still {
			keep[id] = ev
		} else {
			drop = append(drop, id)
		}
	}
	if len(revised) > 0 {
		var changes []*event.Change
		if change != nil {
			changes = append(changes, change)
		}
		if err := r.o.Publisher.PublishRevisions(ctx, revised, changes); err != nil {
			return err
		}
		r.o.Metrics.Revisions.WithLabelValues(provider, string(out.Status)).Add(float64(len(revised)))
	}
	return r.o.Parking.Settle(ctx, provider, addr, keep, drop)
}

// changeOf is the verdict change a revision of ev made, or nil when its severity stayed.
func changeOf(ev *event.Scored, old event.Rating, at time.Time) *event.Change {
	now := event.RatingOf(ev)
	dir, changed := event.ChangeBetween(old, now)
	if !changed {
		return nil
	}
	return &event.Change{SchemaVersion: event.SchemaVersion, Indicator: ev.Indicator, EventID: ev.EventID, Revision: ev.Revision,
		At: at, Cause: event.CauseRevision, Direction: dir, Old: old, New: now, Reasons: ev.Reasons, Event: ev}
}
