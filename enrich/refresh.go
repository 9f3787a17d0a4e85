package enrich

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Refresh ahead (docs/lifecycle.md): an answer that keeps being asked for in the last
// REFRESH_WINDOW of its lifetime is looked up again before it expires, hottest first, within
// REFRESH_SHARE of the provider's quota and rate, so a busy indicator never falls back to a miss.
//
// Sightings are counted in process (a hit costs no round trip) and added to a shared sorted set
// every second; the Refresher of any replica takes the hottest from it.

// hotCounts counts the hits of answers near their expiry, in process.
type hotCounts struct {
	mu sync.Mutex
	n  map[string]float64
}

// note counts one hit of ind's answer, if it is within the refresh window.
func (l *Lookuper) noteHot(ind event.Indicator, e *CacheEntry) {
	p := l.o.Policy
	if p.RefreshShare <= 0 || e.ExpiresAt.IsZero() {
		return
	}
	life := e.ExpiresAt.Sub(e.StoredAt)
	if left := e.ExpiresAt.Sub(l.o.Now()); left <= 0 || left > time.Duration(float64(life)*p.RefreshWindow) {
		return
	}
	l.hot.mu.Lock()
	if l.hot.n == nil {
		l.hot.n = make(map[string]float64)
	}
	if len(l.hot.n) < 100_000 { // bounded between flushes
		l.hot.n[ind.Value]++
	}
	l.hot.mu.Unlock()
}

// takeHot returns and clears the counts.
func (l *Lookuper) takeHot() map[string]float64 {
	l.hot.mu.Lock()
	defer l.hot.mu.Unlock()
	n := l.hot.n
	l.hot.n = nil
	return n
}

// Refresh looks ind up again if its cached answer is within the refresh window (another
// replica may have refreshed it already: then nothing is asked), through the lease and the
// middleware like any lookup. It reports whether the provider was asked, and the answers before
// and after (nil when there was none).
func (l *Lookuper) Refresh(ctx context.Context, ind event.Indicator) (asked bool, before, after *CacheEntry) {
	key := l.o.Keys.Cache(l.name, l.shape, ind.Value)
	before, _ = l.o.Cache.Get(ctx, key)
	if before == nil || l.unavailable() != nil {
		return false, nil, nil
	}
	window := l.o.Policy.RefreshWindow
	fresh := func(e *CacheEntry) bool {
		return e.ExpiresAt.Sub(l.o.Now()) > time.Duration(float64(e.ExpiresAt.Sub(e.StoredAt))*window)
	}
	if fresh(before) {
		return false, nil, nil
	}
	fctx, cancel := context.WithTimeout(ctx, l.o.Policy.RetryBudget+l.o.Policy.AttemptTimeout)
	defer cancel()
	out, err := l.shared(fctx, key, ind, fresh)
	if err != nil {
		return false, before, nil // no lease without Redis: the old answer stands
	}
	if out.Cache != nil || (out.Status != event.StatusOK && out.Status != event.StatusNotFound) {
		return false, before, nil // joined another replica's refresh, or failed: the old answer stands
	}
	return true, before, &CacheEntry{Result: out.Result, Fields: out.Fields}
}

// RefresherOptions wire a Refresher.
type RefresherOptions struct {
	Lookupers []*Lookuper
	Redis     redis.UniversalClient
	Keys      Keys
	Log       *zap.Logger
	Metrics   *Metrics
	// Changed, when set, is told of every refreshed answer (for verdict changes).
	Changed func(ctx context.Context, provider string, ind event.Indicator, before, after *CacheEntry)
	// Interval between rounds (default 1s).
	Interval time.Duration
	Now      func() time.Time
}

// Refresher refreshes hot answers before they expire, within each provider's refresh budget.
type Refresher struct {
	o RefresherOptions
}

// NewRefresher builds a Refresher.
func NewRefresher(o RefresherOptions) *Refresher {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Refresher{o: o}
}

// takeHottest removes and returns up to ARGV[2] members of KEYS[1] with at least ARGV[1]
// sightings, hottest first.
var takeHottest = redis.NewScript(`
local hot = redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(hot) do redis.call('ZREM', KEYS[1], m) end
return hot`)

// Run refreshes until ctx ends.
func (r *Refresher) Run(ctx context.Context) error {
	t := time.NewTicker(r.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			for _, l := range r.o.Lookupers {
				if l.chain.Keys != nil && l.o.Policy.RefreshShare > 0 {
					r.round(ctx, l)
				}
			}
		}
	}
}

// round adds this replica's sightings to the shared counts and refreshes what the budget allows.
func (r *Refresher) round(ctx context.Context, l *Lookuper) {
	key := r.o.Keys.Hot(l.name)
	if counts := l.takeHot(); len(counts) > 0 {
		pipe := r.o.Redis.Pipeline()
		for addr, n := range counts {
			pipe.ZIncrBy(ctx, key, n, addr)
		}
		pipe.Expire(ctx, key, time.Hour)
		if _, err := pipe.Exec(ctx); err != nil {
			r.o.Log.Debug("refresh counts not recorded", zap.Error(err))
			return
		}
	}
	n := r.allowance(ctx, l)
	if n <= 0 {
		return
	}
	addrs, err := takeHottest.Run(ctx, r.o.Redis, []string{key}, l.o.Policy.RefreshMinHits, n).StringSlice()
	if err != nil {
		return
	}
	for _, addr := range addrs {
		ind, err := event.ParseIP(addr)
		if err != nil {
			continue
		}
		asked, before, after := l.Refresh(ctx, ind)
		if !asked {
			continue
		}
		r.o.Metrics.Refreshes.WithLabelValues(l.name).Inc()
		_ = r.o.Redis.Incr(ctx, r.usedKey(l)).Err()
		_ = r.o.Redis.Expire(ctx, r.usedKey(l), l.chain.Quota.Ledger().keep()).Err()
		if r.o.Changed != nil {
			r.o.Changed(ctx, l.name, ind, before, after)
		}
	}
}

func (r *Refresher) usedKey(l *Lookuper) string {
	return r.o.Keys.RefreshUsed(l.name, l.chain.Quota.Ledger().Period().ID(r.o.Now()))
}

// allowance is how many refreshes this round may make: REFRESH_SHARE of the rate over the round,
// and never past REFRESH_SHARE of the quota in the period.
func (r *Refresher) allowance(ctx context.Context, l *Lookuper) int {
	p := l.o.Policy
	n := int(math.Ceil(p.RefreshShare * p.RateLimit * r.o.Interval.Seconds()))
	if limit := l.chain.Quota.Ledger().Limit(); limit > 0 {
		used, _ := r.o.Redis.Get(ctx, r.usedKey(l)).Int64()
		n = min(n, int(math.Floor(p.RefreshShare*float64(limit)))-int(used))
	}
	return n
}
