package enrich

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// QuotaLedger counts one provider's lookups per quota period (UTC day or month) in Redis,
// shared by every replica.
// A reservation is taken before each request and refunded when the request provably cost
// nothing (a 5xx, a 429, a timeout), so the count tracks what the provider bills.
type QuotaLedger struct {
	rdb      redis.UniversalClient
	keys     Keys
	provider string
	period   QuotaPeriod
	limit    atomic.Int64 // configured quota, or the provider's reported limit; 0 = unmetered
	now      func() time.Time
}

var reserveScript = redis.NewScript(`
local used = redis.call('INCR', KEYS[1])
if used == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
local limit = tonumber(ARGV[1])
if limit > 0 and used > limit then
  redis.call('DECR', KEYS[1])
  return -1
end
return used`)

// NewQuotaLedger returns a ledger with the configured quota per period (0 = unmetered).
func NewQuotaLedger(rdb redis.UniversalClient, keys Keys, provider string, quota int64, period QuotaPeriod, now func() time.Time) *QuotaLedger {
	if period == "" {
		period = PeriodDay
	}
	q := &QuotaLedger{rdb: rdb, keys: keys, provider: provider, period: period, now: now}
	q.limit.Store(quota)
	return q
}

// Period is how the ledger counts.
func (q *QuotaLedger) Period() QuotaPeriod { return q.period }

func (q *QuotaLedger) key() string {
	return q.keys.Quota(q.provider, q.period.ID(q.now()))
}

// keep is how long a period's count is kept: past its end, so a late reader still finds it.
func (q *QuotaLedger) keep() time.Duration {
	now := q.now()
	return q.period.Next(now).Sub(now) + 24*time.Hour
}

// Limit is the quota in force (0 = unmetered).
func (q *QuotaLedger) Limit() int64 { return q.limit.Load() }

// Reserve takes one unit. ok is false when the quota is spent; used is the count after it.
func (q *QuotaLedger) Reserve(ctx context.Context) (used int64, ok bool, err error) {
	n, err := reserveScript.Run(ctx, q.rdb, []string{q.key()}, q.limit.Load(), int(q.keep().Seconds())).Int64()
	if err != nil {
		return 0, false, fmt.Errorf("quota reserve: %w", err)
	}
	if n < 0 {
		return q.limit.Load(), false, nil
	}
	return n, true, nil
}

// Refund gives back a unit that bought nothing.
func (q *QuotaLedger) Refund(ctx context.Context) error {
	return q.rdb.Decr(ctx, q.key()).Err()
}

// Used reads the current period's count.
func (q *QuotaLedger) Used(ctx context.Context) (int64, error) {
	v, err := q.rdb.Get(ctx, q.key()).Result()
	if err == redis.Nil {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

// Correct replaces the period's count with what the provider reported (limit - remaining): the
// provider's ledger is the one that bills. Without a configured quota, its limit becomes ours.
func (q *QuotaLedger) Correct(ctx context.Context, r *QuotaReport) error {
	if r == nil || r.Limit <= 0 {
		return nil
	}
	if q.limit.Load() == 0 {
		q.limit.Store(r.Limit)
	}
	used := max(r.Limit-r.Remaining, 0)
	return q.rdb.Set(ctx, q.key(), used, q.keep()).Err()
}

// NextReset is when the quota renews: the provider's reset time if it reported one, else the
// start of the next period.
func (q *QuotaLedger) NextReset(r *QuotaReport) time.Time { return nextReset(r, q.period, q.now()) }

// nextReset is the provider's reset time, if it reported one still ahead of now, else the start
// of the period after now's.
func nextReset(r *QuotaReport, period QuotaPeriod, now time.Time) time.Time {
	if r != nil && r.Reset.After(now) {
		return r.Reset.UTC()
	}
	return period.Next(now)
}

// RateLimiter is the provider's request rate shared by every replica (GCRA in Redis).
type RateLimiter struct {
	limiter *redis_rate.Limiter
	key     string
	limit   redis_rate.Limit
}

// NewRateLimiter allows perSecond requests (fractions allowed) with burst.
func NewRateLimiter(rdb redis.UniversalClient, keys Keys, provider string, perSecond float64, burst int) *RateLimiter {
	// redis_rate takes an integer rate per period: per minute keeps fractions such as 0.5/s.
	perMinute := max(int(perSecond*60+0.5), 1)
	return &RateLimiter{
		limiter: redis_rate.NewLimiter(rdb),
		key:     keys.Rate(provider),
		limit:   redis_rate.Limit{Rate: perMinute, Period: time.Minute, Burst: max(burst, 1)},
	}
}

// Wait blocks until a request may go out, or ctx ends.
func (r *RateLimiter) Wait(ctx context.Context) error {
	for {
		res, err := r.limiter.Allow(ctx, r.key, r.limit)
		if err != nil {
			return fmt.Errorf("rate limit: %w", err)
		}
		if res.Allowed > 0 {
			return nil
		}
		t := time.NewTimer(res.RetryAfter)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}
