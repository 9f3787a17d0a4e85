package enrich

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/encoding/json"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Shaper is implemented by providers whose request has options that change the answer; the
// shape is part of the cache key.
type Shaper interface{ Shape() string }

// OpsEvent is an operational event for the ops topic: something an operator must act on.
type OpsEvent struct {
	Type     string    `json:"type"` // quota_warning, quota_exhausted, provider_disabled
	Provider string    `json:"provider"`
	At       time.Time `json:"at"`
	Detail   string    `json:"detail"`
	Used     int64     `json:"used,omitempty"`
	Limit    int64     `json:"limit,omitempty"`
}

// OpsNotifier delivers ops events. Notify must not block the lookup path.
type OpsNotifier interface{ Notify(OpsEvent) }

// LookuperOptions wires a Lookuper.
type LookuperOptions struct {
	Provider Provider
	Policy   *Policy
	Redis    redis.UniversalClient
	Keys     Keys
	Cache    *Cache
	Metrics  *Metrics
	Log      *zap.Logger
	Ops      OpsNotifier
	// Fields extracts the enrichment rules' mapped fields from a fresh answer's response body;
	// nil maps none.
	Fields FieldExtractor
	// MaxAge, when set, makes a cached answer older than this be looked up again (the old answer
	// is served if that lookup fails); otherwise an answer is used until its TTL ends.
	MaxAge time.Duration
	// Defer makes a lookup that cannot finish within its budget (rate, Retry-After, outages, an
	// open breaker, a spent quota that resets) pending instead of failed: the Enricher parks it
	// and a revision carries the answer (docs/lifecycle.md).
	Defer bool
	// FirstSight, when set, makes the source look an address up only the first time it is seen
	// within this long: a later cache miss is skipped rather than paid for.
	FirstSight time.Duration
	// Owner identifies this replica in leases (host name and process id, say).
	Owner string
	// LeaseTTL bounds how long a crashed replica's lookup blocks the others (renewed while the
	// holder works). Default 3s.
	LeaseTTL time.Duration
	Now      func() time.Time
}

// FieldExtractor reads mapped fields out of a provider's response body.
type FieldExtractor interface {
	Extract(raw []byte) map[string]json.RawMessage
}

// Lookuper makes one provider's lookups frugal and safe: the shared answer cache, single-flight
// within the process and across replicas (a Redis lease), and the provider's middleware chain
// (retries, concurrency, key guard, shared rate limit, quota ledger, breaker; chain.go). It
// turns every outcome into a status, so an event is published whatever the provider does.
// Offline sources (local databases) skip the cache and the lease: their answers cost nothing.
type Lookuper struct {
	o     LookuperOptions
	name  string
	shape string
	chain *Chain

	// Counters of the per-event path, resolved once: a label lookup per event is measurable.
	cacheHit, cacheMiss, cacheErr, savedHit, savedJoin, savedGated prometheus.Counter
	outcomes                                                       map[event.ProviderStatus]prometheus.Counter
	flights                                                        singleflight.Group
	log                                                            *zap.Logger

	// Flights outlive the caller that started them (others may have joined) but not the
	// Lookuper: Close cancels them and waits.
	lifetime context.Context
	closeAll context.CancelFunc
	mu       sync.Mutex
	closed   bool
	running  sync.WaitGroup // flights in progress

	hot             hotCounts    // sightings of answers near their expiry (refresh.go)
	waitingForRedis atomic.Bool  // lookups are waiting for Redis to take the lease (lease.go)
	reconciled      atomic.Int64 // when the provider's own quota count last corrected the ledger (unix ns)
}

// NewLookuper builds a Lookuper; the provider's Policy must be validated.
func NewLookuper(o LookuperOptions) *Lookuper {
	if o.LeaseTTL == 0 {
		o.LeaseTTL = 3 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	name := o.Provider.Name()
	l := &Lookuper{o: o, name: name, shape: "default", log: o.Log.With(zap.String("provider", name))}
	l.lifetime, l.closeAll = context.WithCancel(context.Background())
	m := o.Metrics
	l.cacheHit, l.cacheMiss, l.cacheErr = m.Cache.WithLabelValues(name, "hit"), m.Cache.WithLabelValues(name, "miss"), m.Cache.WithLabelValues(name, "error")
	l.savedHit, l.savedJoin = m.Saved.WithLabelValues(name, "cache_hit"), m.Saved.WithLabelValues(name, "singleflight")
	l.savedGated = m.Saved.WithLabelValues(name, "gated")
	l.outcomes = make(map[event.ProviderStatus]prometheus.Counter)
	for _, s := range []event.ProviderStatus{event.StatusOK, event.StatusNotFound, event.StatusQuotaExhausted,
		event.StatusRateLimited, event.StatusFailed, event.StatusDisabled, event.StatusSkipped, event.StatusPending} {
		l.outcomes[s] = m.Outcomes.WithLabelValues(name, string(s))
	}
	if s, ok := o.Provider.(Shaper); ok {
		l.shape = s.Shape()
	}
	l.chain = NewChain(o.Provider, o.Policy, ChainOptions{Redis: o.Redis, Keys: o.Keys, Metrics: m, Log: o.Log, Notify: l.notify, Now: o.Now})
	return l
}

// Name is the provider's name.
func (l *Lookuper) Name() string { return l.name }

// enter registers a flight unless the Lookuper is closed.
func (l *Lookuper) enter() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.running.Add(1)
	return true
}

// Close cancels lookups still in flight and waits for them to end. Call it after the pipeline
// has drained.
func (l *Lookuper) Close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.closeAll()
	l.running.Wait()
}

// Lookup returns the provider's outcome for ind. It never fails: problems become the outcome's
// status, so the event is published either way. It returns within the policy's retry budget
// (plus a lease wait), or sooner if ctx ends.
func (l *Lookuper) Lookup(ctx context.Context, ind event.Indicator) *event.ProviderOutcome {
	return l.lookup(ctx, ind, Hint{}, false)
}

// LookupFor is Lookup with what the Enricher knows of the event, which spends the budgets of
// its input source and ranks it when quota is short (admission.go).
func (l *Lookuper) LookupFor(ctx context.Context, ind event.Indicator, h Hint) *event.ProviderOutcome {
	return l.lookup(ctx, ind, h, false)
}

// Retry is Lookup for a parked lookup: the rules' first-sight test does not apply (the address
// was looked up at its first sight; this is that lookup, finishing).
func (l *Lookuper) Retry(ctx context.Context, ind event.Indicator) *event.ProviderOutcome {
	return l.lookup(ctx, ind, Hint{}, true)
}

func (l *Lookuper) lookup(ctx context.Context, ind event.Indicator, h Hint, parked bool) *event.ProviderOutcome {
	if l.chain.Keys == nil { // offline: local data, nothing to cache or share
		return l.outcome(l.offline(ctx, ind))
	}
	if h.Fresh {
		return l.forced(ctx, ind, h)
	}
	key := l.o.Keys.Cache(l.name, l.shape, ind.Value)
	entry, err := l.o.Cache.Get(ctx, key)
	var stale *CacheEntry
	switch {
	case err != nil:
		l.cacheErr.Inc()
		l.log.Debug("cache read failed; treating as a miss", zap.Error(err))
	case entry != nil && !l.tooOld(entry):
		l.cacheHit.Inc()
		l.savedHit.Inc()
		l.noteHot(ind, entry)
		return l.outcome(l.hit(entry))
	case entry != nil:
		stale = entry // refreshed below; served again if the refresh fails
		l.cacheMiss.Inc()
	default:
		l.cacheMiss.Inc()
	}
	if out := l.unavailable(); out != nil {
		return l.outcome(l.orStale(out, stale))
	}
	if stale == nil && !parked && l.seenBefore(ctx, ind) {
		return l.skip("seen before: this source looks addresses up at first sight only")
	}

	return l.fly(ctx, ind.Value, key, ind, h, func(e *CacheEntry) bool { return !l.tooOld(e) }, stale)
}

// forced looks ind up although its cached answer may be fresh (Hint.Fresh): the cached answer
// is read only to be served if the lookup fails, and to recognise a newer answer another replica
// stored for the same forced lookup meanwhile, so that two replicas asked at once pay once.
func (l *Lookuper) forced(ctx context.Context, ind event.Indicator, h Hint) *event.ProviderOutcome {
	key := l.o.Keys.Cache(l.name, l.shape, ind.Value)
	before, err := l.o.Cache.Get(ctx, key)
	if err != nil {
		l.cacheErr.Inc()
	}
	l.cacheMiss.Inc()
	if out := l.unavailable(); out != nil {
		return l.outcome(l.orStale(out, before))
	}
	newer := func(e *CacheEntry) bool { return before == nil || e.StoredAt.After(before.StoredAt) }
	// Its own flight: joining an ordinary lookup's flight could take an answer it refused.
	return l.fly(ctx, "fresh:"+ind.Value, key, ind, h, newer, before)
}

// fly runs the lookup of ind as a flight named name, or joins the one in progress, and serves
// stale if it does not produce an answer.
func (l *Lookuper) fly(ctx context.Context, name, key string, ind event.Indicator, h Hint, usable func(*CacheEntry) bool, stale *CacheEntry) *event.ProviderOutcome {
	// The flight outlives the caller that started it: callers that join it must not see it
	// cancelled because the first one gave up. It is bounded by the retry budget and by Close.
	leader := false
	ch := l.flights.DoChan(name, func() (any, error) {
		leader = true
		if !l.enter() {
			return &event.ProviderOutcome{Status: event.StatusFailed, Error: "shutting down"}, nil
		}
		defer l.running.Done()
		return l.coordinated(key, ind, h, usable), nil
	})
	select {
	case r := <-ch:
		out := *r.Val.(*event.ProviderOutcome)
		if !leader {
			l.savedJoin.Inc()
			out.Cache = &event.CacheInfo{Joined: true}
		}
		return l.outcome(l.orStale(&out, stale))
	case <-ctx.Done():
		return l.outcome(l.orStale(&event.ProviderOutcome{Status: event.StatusFailed, Error: "gave up waiting: " + ctx.Err().Error()}, stale))
	}
}

// skip is the outcome of a source a rule did not ask.
func (l *Lookuper) skip(why string) *event.ProviderOutcome {
	return l.outcome(&event.ProviderOutcome{Status: event.StatusSkipped, Error: why})
}

// seenBefore records a sighting for a first-sight source and reports whether the address was
// seen before. Without Redis it counts as unseen: a lookup too many beats a verdict missed.
func (l *Lookuper) seenBefore(ctx context.Context, ind event.Indicator) bool {
	if l.o.FirstSight <= 0 {
		return false
	}
	first, err := l.o.Redis.SetNX(ctx, l.o.Keys.Seen(l.name, ind.Value), 1, l.o.FirstSight).Result()
	return err == nil && !first
}

// tooOld reports whether a cached answer is past the rules' refresh age.
func (l *Lookuper) tooOld(e *CacheEntry) bool {
	return l.o.MaxAge > 0 && l.o.Now().Sub(e.StoredAt) > l.o.MaxAge
}

// orStale serves the stale answer when its refresh did not produce a new one.
func (l *Lookuper) orStale(out *event.ProviderOutcome, stale *CacheEntry) *event.ProviderOutcome {
	if stale == nil || out.Status == event.StatusOK || out.Status == event.StatusNotFound {
		return out
	}
	return l.answer(stale, &event.CacheInfo{Hit: true, AgeSeconds: int64(l.o.Now().Sub(stale.StoredAt).Seconds())})
}

// unavailable is the outcome of a miss the provider cannot be asked about now: its key was
// rejected, or its quota is spent (cache-only until the reset); nil when it can be asked.
func (l *Lookuper) unavailable() *event.ProviderOutcome {
	if off, reason := l.chain.Keys.Disabled(); off {
		return &event.ProviderOutcome{Status: event.StatusDisabled, Error: reason}
	}
	if l.chain.Quota.Exhausted() {
		reset := l.chain.Quota.ResetTime()
		out := &event.ProviderOutcome{Status: event.StatusQuotaExhausted,
			Error: l.chain.Quota.Ledger().Period().Label() + " quota exhausted; not looked up until " + reset.Format(time.RFC3339)}
		if l.o.Defer {
			out.Status, out.RetryAt = event.StatusPending, &reset
		}
		return out
	}
	return nil
}

// deferral says whether a failed lookup can clear later and when to try it again: outages,
// rate limits and an open breaker soon, a spent quota at its reset; a rejected key or a bad
// request never.
func (l *Lookuper) deferral(err error) (time.Time, bool) {
	now := l.o.Now()
	var pe *Error
	errors.As(err, &pe)
	switch KindOf(err) {
	case KindUnauthorized, KindPermanent:
		return time.Time{}, false
	case KindQuotaExhausted:
		if l.chain.Quota != nil {
			if reset := l.chain.Quota.ResetTime(); reset.After(now) {
				return reset, true
			}
		}
		return now.Add(time.Minute), true
	case KindUnavailable:
		return now.Add(breakerTimeout), true
	case KindRateLimited:
		if pe != nil && pe.RetryAfter > 0 {
			return now.Add(pe.RetryAfter), true
		}
		return now.Add(time.Second), true
	default:
		return now.Add(2 * time.Second), true
	}
}

// failed is the outcome of a lookup that failed with err: pending when the Lookuper defers and
// the failure can clear.
func (l *Lookuper) failed(err error) *event.ProviderOutcome {
	out := &event.ProviderOutcome{Status: statusOf(err), Error: err.Error()}
	if l.o.Defer {
		if at, ok := l.deferral(err); ok {
			out.Status, out.RetryAt = event.StatusPending, &at
		}
	}
	return out
}

// offline asks a local source; its answers are not cached.
func (l *Lookuper) offline(ctx context.Context, ind event.Indicator) *event.ProviderOutcome {
	res, err := l.chain.Lookup(ctx, ind)
	if err != nil {
		return &event.ProviderOutcome{Status: event.StatusFailed, Error: err.Error()}
	}
	fields := l.extract(res)
	out := l.answer(&CacheEntry{Result: res, Fields: fields}, nil)
	return out
}

// extract reads the mapped fields of a fresh answer and drops its body.
func (l *Lookuper) extract(res *event.Intel) map[string]json.RawMessage {
	raw := res.Raw
	res.Raw = nil
	if l.o.Fields == nil {
		return nil
	}
	if len(raw) == 0 { // sources without a response body (offline ones) map their normalised result
		raw, _ = json.Marshal(res)
	}
	return l.o.Fields.Extract(raw)
}

func (l *Lookuper) outcome(o *event.ProviderOutcome) *event.ProviderOutcome {
	l.outcomes[o.Status].Inc()
	return o
}

func (l *Lookuper) answer(e *CacheEntry, c *event.CacheInfo) *event.ProviderOutcome {
	status := event.StatusOK
	if e.Result.Verdict == event.VerdictNotFound {
		status = event.StatusNotFound
	}
	return &event.ProviderOutcome{Status: status, Result: e.Result, Cache: c, Fields: e.Fields}
}

// hitOutcome is a cache hit's outcome and its cache information in one allocation: a hit is
// the common path, and each allocation on it is paid per event.
type hitOutcome struct {
	out   event.ProviderOutcome
	cache event.CacheInfo
}

// hit is the outcome of an answer served from the cache.
func (l *Lookuper) hit(e *CacheEntry) *event.ProviderOutcome {
	h := &hitOutcome{cache: event.CacheInfo{Hit: true, AgeSeconds: int64(l.o.Now().Sub(e.StoredAt).Seconds())}}
	h.out = event.ProviderOutcome{Status: event.StatusOK, Result: e.Result, Cache: &h.cache, Fields: e.Fields}
	if e.Result.Verdict == event.VerdictNotFound {
		h.out.Status = event.StatusNotFound
	}
	return &h.out
}

// fetch asks the provider through its middleware chain (bounded by ctx) and stores a cacheable
// answer with store, which outlives ctx: an answer paid for is kept even when it came late.
// Alongside, in the same round trip, it runs the commands with queues (the lease release), if any.
func (l *Lookuper) fetch(ctx, store context.Context, key string, ind event.Indicator, with func(redis.Pipeliner)) *event.ProviderOutcome {
	res, err := l.chain.Lookup(ctx, ind)
	if err != nil {
		return l.failed(err)
	}
	entry := &CacheEntry{Fields: l.extract(res), Result: res, StoredAt: l.o.Now().UTC()}
	if err := l.store(store, key, entry, l.o.Policy.TTLFor(res.Verdict), with); err != nil {
		l.log.Warn("answer not stored in Redis; only this replica keeps it, in process", zap.Error(err))
	}
	return l.answer(entry, nil)
}

// storeRetryFor bounds how long a paid answer's store is retried: longer than a Sentinel or
// Cluster failover takes with their default timeouts.
const storeRetryFor = time.Minute

// store writes a paid answer to the shared cache, retrying while Redis refuses it: during a
// failover the old primary answers NOREPLICAS or READONLY, or drops the connection, until the
// client follows the new one. An answer not stored is paid for again by the next replica that
// misses it. The caller keeps the lease renewed meanwhile; the event waits, as misses do while
// Redis cannot give the lease.
func (l *Lookuper) store(ctx context.Context, key string, e *CacheEntry, ttl time.Duration, with func(redis.Pipeliner)) error {
	b := pipeline.DependencyBackOff()
	b.MaxElapsedTime = storeRetryFor
	b.Reset()
	return backoff.Retry(func() error { return l.o.Cache.Set(ctx, key, e, ttl, with) }, backoff.WithContext(b, ctx))
}

// statusOf is the scored-event status of a failed lookup.
func statusOf(err error) event.ProviderStatus {
	switch KindOf(err) {
	case KindUnauthorized:
		return event.StatusDisabled
	case KindQuotaExhausted:
		return event.StatusQuotaExhausted
	case KindRateLimited:
		return event.StatusRateLimited
	default:
		return event.StatusFailed
	}
}

func (l *Lookuper) notify(e OpsEvent) {
	if l.o.Ops == nil {
		return
	}
	e.Provider, e.At = l.name, l.o.Now().UTC()
	l.o.Ops.Notify(e)
}
