package enrich

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/encoding/json"
	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sync/singleflight"

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
	// Owner identifies this replica in leases (host name and process id, say).
	Owner string
	// LeaseTTL bounds how long a crashed replica's lookup blocks the others (renewed while the
	// holder works). Default 3s.
	LeaseTTL time.Duration
	Now      func() time.Time
}

// Lookuper wraps one provider with everything that makes a paid lookup frugal and safe: the
// shared answer cache, single-flight within the process and across replicas (a Redis lease),
// the shared rate limit, the daily quota ledger, retries with backoff that honour Retry-After,
// a circuit breaker, and the policies for rejected keys and spent quotas.
type Lookuper struct {
	o       LookuperOptions
	name    string
	shape   string
	rate    *RateLimiter
	quota   *QuotaLedger
	breaker *gobreaker.CircuitBreaker[*event.Intel]
	slots   *semaphore.Weighted // requests in flight to the provider

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

	disabled       atomic.Bool
	disabledReason atomic.Pointer[string]
	exhaustedUntil atomic.Int64 // unix nanoseconds; 0 = not exhausted

	health providerHealth // what Snapshot reports
	// warnedDay is the UTC day whose quota warning this replica knows was sent.
	warnedDay atomic.Pointer[string]
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
		event.StatusRateLimited, event.StatusFailed, event.StatusDisabled} {
		l.outcomes[s] = m.Outcomes.WithLabelValues(name, string(s))
	}
	if s, ok := o.Provider.(Shaper); ok {
		l.shape = s.Shape()
	}
	l.slots = semaphore.NewWeighted(max(o.Policy.MaxConcurrent, 1))
	l.rate = NewRateLimiter(o.Redis, o.Keys, name, o.Policy.RateLimit, o.Policy.RateBurst)
	l.quota = NewQuotaLedger(o.Redis, o.Keys, name, o.Policy.DailyQuota, o.Now)
	o.Metrics.QuotaLimit.WithLabelValues(name).Set(float64(o.Policy.DailyQuota))
	o.Metrics.Disabled.WithLabelValues(name).Set(0)
	o.Metrics.Breaker.WithLabelValues(name).Set(0)
	l.breaker = gobreaker.NewCircuitBreaker[*event.Intel](gobreaker.Settings{
		Name:        name,
		MaxRequests: 1,
		Timeout:     30 * time.Second,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 5 },
		// Only outages trip the breaker; a rate limit or a rejected request says the provider
		// is up.
		IsSuccessful: func(err error) bool { return err == nil || KindOf(err) != KindTransient },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			o.Metrics.Breaker.WithLabelValues(name).Set(float64(to))
			l.log.Warn("circuit breaker changed state", zap.String("from", from.String()), zap.String("to", to.String()))
		},
	})
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
	if l.disabled.Load() {
		return l.outcome(&event.ProviderOutcome{Status: event.StatusDisabled, Error: *l.disabledReason.Load()})
	}
	key := l.o.Keys.Cache(l.name, l.shape, ind.Value)
	entry, err := l.o.Cache.Get(ctx, key)
	switch {
	case err != nil:
		l.cacheErr.Inc()
		l.log.Debug("cache read failed; treating as a miss", zap.Error(err))
	case entry != nil:
		l.cacheHit.Inc()
		l.savedHit.Inc()
		return l.outcome(l.answer(entry, &event.CacheInfo{Hit: true, AgeSeconds: int64(l.o.Now().Sub(entry.StoredAt).Seconds())}))
	default:
		l.cacheMiss.Inc()
	}
	if l.exhausted() {
		return l.outcome(&event.ProviderOutcome{Status: event.StatusQuotaExhausted, Error: "daily quota exhausted; not looked up until " + l.resetTime()})
	}

	// The flight outlives the caller that started it: callers that join it must not see it
	// cancelled because the first one gave up. It is bounded by the retry budget and by Close.
	leader := false
	ch := l.flights.DoChan(ind.Value, func() (any, error) {
		leader = true
		if !l.enter() {
			return &event.ProviderOutcome{Status: event.StatusFailed, Error: "shutting down"}, nil
		}
		defer l.running.Done()
		fctx, cancel := context.WithTimeout(l.lifetime, l.o.Policy.RetryBudget+l.o.Policy.AttemptTimeout)
		defer cancel()
		return l.sharedLookup(fctx, key, ind), nil
	})
	select {
	case r := <-ch:
		out := *r.Val.(*event.ProviderOutcome)
		if !leader {
			l.savedJoin.Inc()
			out.Cache = &event.CacheInfo{Joined: true}
		}
		return l.outcome(&out)
	case <-ctx.Done():
		return l.outcome(&event.ProviderOutcome{Status: event.StatusFailed, Error: "gave up waiting: " + ctx.Err().Error()})
	}
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
	return &event.ProviderOutcome{Status: status, Result: e.Result, Cache: c}
}

var (
	// acquireScript takes the lease (KEYS[1]) and, in the same step, reads the answer (KEYS[2])
	// that a previous holder may have stored between our cache read and now: {1, answer} when
	// taken, {0, holder token} when another replica holds it.
	acquireScript = redis.NewScript(`if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1, redis.call('GET', KEYS[2])} end return {0, redis.call('GET', KEYS[1])}`)
	releaseScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)
	renewScript   = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`)
)

// sharedLookup makes sure one replica looks ind up: it takes the lease and looks up, or waits
// for the holder's answer. A holder that fails leaves its outcome under its lease token for
// the replicas that waited on it, and nothing for later events: errors are not cached.
func (l *Lookuper) sharedLookup(ctx context.Context, key string, ind event.Indicator) *event.ProviderOutcome {
	leaseKey := l.o.Keys.Lease(key)
	var waitingOn string
	poll := 20 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if out := l.joinResult(ctx, key, waitingOn); out != nil {
				return out
			}
		}
		token := l.o.Owner + ":" + randomToken()
		reply, err := acquireScript.Run(ctx, l.o.Redis, []string{leaseKey, key}, token, l.o.LeaseTTL.Milliseconds()).Slice()
		if err != nil || len(reply) != 2 {
			// Without Redis there is no cross-replica coordination; in-process single-flight
			// still holds, and the event must not wait for Redis to come back.
			l.log.Warn("lease unavailable; looking up without cross-replica single-flight", zap.Error(err))
			return l.fetch(ctx, key, ind, nil)
		}
		value, _ := reply[1].(string)
		if acquired, _ := reply[0].(int64); acquired == 1 {
			// The answer may have landed between our cache read and the lease: its holder
			// stores it before releasing. Reading it under the lease makes the lookup exactly-once.
			if e := parseEntry([]byte(value)); e != nil {
				_ = releaseScript.Run(ctx, l.o.Redis, []string{leaseKey}, token).Err()
				l.savedJoin.Inc()
				return l.answer(e, &event.CacheInfo{Joined: true})
			}
			return l.holdAndFetch(ctx, key, ind, leaseKey, token)
		}
		waitingOn = value
		t := time.NewTimer(poll)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return &event.ProviderOutcome{Status: event.StatusFailed, Error: "timed out waiting for another replica's lookup"}
		}
		poll = min(poll*2, 250*time.Millisecond)
	}
}

// joinResult reads the answer another replica stored, or its failure under token.
func (l *Lookuper) joinResult(ctx context.Context, key, token string) *event.ProviderOutcome {
	pipe := l.o.Redis.Pipeline()
	cacheCmd := pipe.Get(ctx, key)
	var failCmd *redis.StringCmd
	if token != "" {
		failCmd = pipe.Get(ctx, l.o.Keys.LeaseFailed(token))
	}
	_, _ = pipe.Exec(ctx)
	if rep := decodeEntry(cacheCmd); rep.entry != nil {
		l.savedJoin.Inc()
		return l.answer(rep.entry, &event.CacheInfo{Joined: true})
	}
	if failCmd != nil {
		if raw, err := failCmd.Bytes(); err == nil {
			var out event.ProviderOutcome
			if json.Unmarshal(raw, &out) == nil && out.Status != "" {
				out.Cache = &event.CacheInfo{Joined: true}
				return &out
			}
		}
	}
	return nil
}

func (l *Lookuper) holdAndFetch(ctx context.Context, key string, ind event.Indicator, leaseKey, token string) *event.ProviderOutcome {
	renewCtx, stopRenew := context.WithCancel(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(l.o.LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = renewScript.Run(renewCtx, l.o.Redis, []string{leaseKey}, token, l.o.LeaseTTL.Milliseconds()).Err()
			case <-renewCtx.Done():
				return
			}
		}
	}()
	// An answer is stored and the lease released in one round trip; a failure is left under the
	// token for the replicas waiting on it, in the same round trip as the release.
	release := func(pipe redis.Pipeliner) {
		// EVAL, not EVALSHA: a pipeline cannot fall back when a fresh Redis has not cached the
		// script yet (NOSCRIPT), and the lease would then stay until it lapses.
		releaseScript.Eval(ctx, pipe, []string{leaseKey}, token)
	}
	out := l.fetch(ctx, key, ind, release)
	stopRenew()
	<-renewed
	if out.Status != event.StatusOK && out.Status != event.StatusNotFound {
		_, _ = l.o.Redis.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			if raw, err := json.Marshal(out); err == nil {
				pipe.Set(ctx, l.o.Keys.LeaseFailed(token), raw, l.o.LeaseTTL+2*time.Second)
			}
			release(pipe)
			return nil
		})
	}
	return out
}

var errQuotaSpent = errors.New("daily quota exhausted")

// fetch calls the provider with retries and stores a cacheable answer; alongside, in the same
// round trip, it runs the commands with queues (the lease release), if any.
func (l *Lookuper) fetch(ctx context.Context, key string, ind event.Indicator, with func(redis.Pipeliner)) *event.ProviderOutcome {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 200 * time.Millisecond
	b.MaxInterval = 5 * time.Second
	b.MaxElapsedTime = l.o.Policy.RetryBudget
	var res *event.Intel
	op := func() error {
		if err := l.slots.Acquire(ctx, 1); err != nil {
			return backoff.Permanent(err)
		}
		defer l.slots.Release(1)
		// Checked after the wait for a slot: another request may have learnt meanwhile that
		// the key is rejected or the quota spent, and this one must not be sent.
		if l.disabled.Load() {
			return backoff.Permanent(&Error{Provider: l.name, Kind: KindUnauthorized, Message: "provider disabled"})
		}
		if l.exhausted() {
			return backoff.Permanent(errQuotaSpent)
		}
		if err := l.rate.Wait(ctx); err != nil {
			if ctx.Err() != nil {
				return backoff.Permanent(err)
			}
			l.log.Warn("shared rate limiter unavailable; sending without it", zap.Error(err))
		}
		reserved := true
		used, ok, err := l.quota.Reserve(ctx)
		switch {
		case err != nil:
			reserved = false
			l.log.Warn("quota ledger unavailable; the lookup is not counted", zap.Error(err))
		case !ok:
			l.recordQuota(used)
			l.markExhausted(nil, used)
			return backoff.Permanent(errQuotaSpent)
		default:
			l.recordQuota(used)
			l.warnIfNear(ctx, used)
		}
		var timedOut bool
		r, err := l.breaker.Execute(func() (*event.Intel, error) {
			actx, cancel := context.WithTimeout(ctx, l.o.Policy.AttemptTimeout)
			defer cancel()
			start := time.Now()
			r, err := l.o.Provider.Lookup(actx, ind)
			l.o.Metrics.Latency.WithLabelValues(l.name).Observe(time.Since(start).Seconds())
			timedOut = attemptTimedOut(actx, err)
			return r, err
		})
		l.health.observe(l.o.Now(), classifyCall(ctx, err, timedOut), err)
		refund := func() {
			if reserved {
				_ = l.quota.Refund(ctx)
			}
		}
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			refund()
			l.o.Metrics.Calls.WithLabelValues(l.name, "breaker_open").Inc()
			return backoff.Permanent(fmt.Errorf("%s: circuit breaker open: %w", l.name, err))
		}
		if err == nil {
			l.o.Metrics.Calls.WithLabelValues(l.name, "ok").Inc()
			if r.Quota != nil {
				if !r.Quota.Reset.IsZero() {
					l.health.reportedReset.Store(r.Quota.Reset.UnixNano())
				}
				if err := l.quota.Correct(ctx, r.Quota); err == nil {
					l.recordQuota(r.Quota.Limit - r.Quota.Remaining)
					l.warnIfNear(ctx, r.Quota.Limit-r.Quota.Remaining)
				}
			}
			res = r
			return nil
		}
		kind := KindOf(err)
		l.o.Metrics.Calls.WithLabelValues(l.name, string(kind)).Inc()
		switch kind {
		case KindUnauthorized:
			refund()
			l.disable(err)
			return backoff.Permanent(err)
		case KindQuotaExhausted:
			refund()
			l.markExhausted(nil, used)
			return backoff.Permanent(err)
		case KindRateLimited:
			refund()
			var pe *Error
			if errors.As(err, &pe) && pe.RetryAfter > 0 {
				if pe.RetryAfter > b.MaxElapsedTime-b.GetElapsedTime() {
					return backoff.Permanent(err) // waiting would outlast the budget
				}
				if !sleep(ctx, pe.RetryAfter) {
					return backoff.Permanent(err)
				}
			}
			return err
		case KindTransient:
			refund()
			return err
		default:
			return backoff.Permanent(err)
		}
	}
	err := backoff.Retry(op, backoff.WithContext(b, ctx))
	if err == nil {
		res.Quota = nil // used for the ledger above; not part of the cached answer
		entry := &CacheEntry{Result: res, StoredAt: l.o.Now().UTC()}
		if err := l.o.Cache.Set(ctx, key, entry, l.o.Policy.TTLFor(res.Verdict), with); err != nil {
			l.log.Warn("answer not cached; the next event pays again", zap.Error(err))
		}
		return l.answer(entry, nil)
	}
	status := event.StatusFailed
	switch {
	case errors.Is(err, errQuotaSpent):
		status = event.StatusQuotaExhausted
	default:
		switch KindOf(err) {
		case KindUnauthorized:
			status = event.StatusDisabled
		case KindQuotaExhausted:
			status = event.StatusQuotaExhausted
		case KindRateLimited:
			status = event.StatusRateLimited
		}
	}
	return &event.ProviderOutcome{Status: status, Error: err.Error()}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (l *Lookuper) recordQuota(used int64) {
	l.health.seeQuota(l.o.Now(), used)
	l.o.Metrics.QuotaUsed.WithLabelValues(l.name).Set(float64(used))
	if limit := l.quota.Limit(); limit > 0 {
		l.o.Metrics.QuotaLimit.WithLabelValues(l.name).Set(float64(limit))
		l.o.Metrics.QuotaLeft.WithLabelValues(l.name).Set(float64(max(limit-used, 0)))
	}
}

func (l *Lookuper) exhausted() bool {
	until := l.exhaustedUntil.Load()
	return until != 0 && l.o.Now().UnixNano() < until
}

func (l *Lookuper) resetTime() string {
	return time.Unix(0, l.exhaustedUntil.Load()).UTC().Format(time.RFC3339)
}

// markExhausted switches the provider to cache-only until its quota resets, once per reset.
func (l *Lookuper) markExhausted(r *QuotaReport, used int64) {
	reset := l.quota.NextReset(r).UnixNano()
	prev := l.exhaustedUntil.Load()
	if prev >= reset || !l.exhaustedUntil.CompareAndSwap(prev, reset) {
		return
	}
	l.log.Warn("daily quota exhausted: serving from cache only until the reset", zap.String("reset", l.resetTime()), zap.Int64("used", used))
	l.notify(OpsEvent{Type: "quota_exhausted", Detail: "quota exhausted; cache-only until " + l.resetTime(), Used: used, Limit: l.quota.Limit()})
}

// warnIfNear warns once per provider per day, across replicas, when usage crosses the ratio.
func (l *Lookuper) warnIfNear(ctx context.Context, used int64) {
	limit := l.quota.Limit()
	if limit <= 0 || float64(used) < math.Ceil(l.o.Policy.QuotaWarnRatio*float64(limit)) {
		return
	}
	day := l.o.Now().UTC().Format("2006-01-02")
	if p := l.warnedDay.Load(); p != nil && *p == day {
		return // this replica already settled today's warning: no Redis round trip per lookup
	}
	first, err := l.o.Redis.SetNX(ctx, l.o.Keys.QuotaWarned(l.name, day), 1, 48*time.Hour).Result()
	if err != nil {
		return
	}
	l.warnedDay.Store(&day)
	if !first {
		return
	}
	l.o.Metrics.QuotaWarnings.WithLabelValues(l.name).Inc()
	pct := 100 * float64(used) / float64(limit)
	l.log.Warn("daily quota nearly spent", zap.Int64("used", used), zap.Int64("limit", limit), zap.Float64("percent", pct))
	l.notify(OpsEvent{Type: "quota_warning", Detail: fmt.Sprintf("%.0f%% of the daily quota used", pct), Used: used, Limit: limit})
}

// disable switches the provider off after it rejected its key: retrying cannot help, and every
// further request would be refused too.
func (l *Lookuper) disable(err error) {
	reason := "provider rejected the API key: " + err.Error()
	l.disabledReason.Store(&reason)
	if !l.disabled.CompareAndSwap(false, true) {
		return
	}
	l.o.Metrics.Disabled.WithLabelValues(l.name).Set(1)
	l.log.Error("PROVIDER DISABLED: it rejected the API key; fix the key and restart. Events are published without this provider meanwhile.", zap.Error(err))
	l.notify(OpsEvent{Type: "provider_disabled", Detail: reason})
}

func (l *Lookuper) notify(e OpsEvent) {
	if l.o.Ops == nil {
		return
	}
	e.Provider, e.At = l.name, l.o.Now().UTC()
	l.o.Ops.Notify(e)
}

func randomToken() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
