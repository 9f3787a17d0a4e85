package enrich

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// QuotaGuard spends the provider's quota as a budget. Before each request it reserves a unit
// in the shared ledger and gives it back when the request provably cost nothing (an outage, a
// 429, an open breaker, a rejected key), so the count tracks what the provider bills; the
// provider's own rate-limit headers correct the count. Past QUOTA_WARN_RATIO it warns once per
// period across replicas; when the quota is spent (by the ledger or by the provider's answer)
// requests fail at once with KindQuotaExhausted until the quota resets, and the Lookuper
// serves from the cache only.
type QuotaGuard struct {
	wrapped
	ledger   *QuotaLedger
	warnAt   float64
	rdb      redis.UniversalClient
	keys     Keys
	log      *zap.Logger
	notify   func(OpsEvent)
	observed func(used int64) // every usage learnt, for metrics and health

	exhaustedUntil atomic.Int64 // unix nanoseconds; 0 = not exhausted
	reportedReset  atomic.Int64 // when the provider last said its quota renews (unix ns; 0 = never)
	warned         atomic.Pointer[string]
}

var _ Provider = (*QuotaGuard)(nil)

// QuotaGuardOptions wire a QuotaGuard.
type QuotaGuardOptions struct {
	Ledger   *QuotaLedger
	WarnAt   float64 // share of the limit at which the warning goes out
	Redis    redis.UniversalClient
	Keys     Keys
	Log      *zap.Logger
	Notify   func(OpsEvent)
	Observed func(used int64)
}

// NewQuotaGuard wraps next.
func NewQuotaGuard(next Provider, o QuotaGuardOptions) *QuotaGuard {
	return &QuotaGuard{wrapped: wrapped{next}, ledger: o.Ledger, warnAt: o.WarnAt, rdb: o.Redis, keys: o.Keys,
		log: o.Log, notify: o.Notify, observed: o.Observed}
}

// Lookup implements Provider.
func (q *QuotaGuard) Lookup(ctx context.Context, ind event.Indicator) (*Result, error) {
	if q.Exhausted() {
		return nil, q.spent()
	}
	reserved := true
	used, ok, err := q.ledger.Reserve(ctx)
	switch {
	case err != nil:
		reserved = false
		q.log.Warn("quota ledger unavailable; the lookup is not counted", zap.Error(err))
	case !ok:
		q.observed(used)
		q.markExhausted(nil, used)
		return nil, q.spent()
	default:
		q.observed(used)
		q.warnIfNear(ctx, used)
	}
	r, err := q.next.Lookup(ctx, ind)
	if err != nil {
		kind := KindOf(err)
		if reserved && kind != KindPermanent {
			_ = q.ledger.Refund(context.WithoutCancel(ctx))
		}
		if kind == KindQuotaExhausted {
			q.markExhausted(nil, used)
		}
		return nil, err
	}
	if rep := r.Quota; rep != nil {
		if !rep.Reset.IsZero() {
			q.reportedReset.Store(rep.Reset.UnixNano())
		}
		if err := q.ledger.Correct(ctx, rep); err == nil {
			q.observed(rep.Limit - rep.Remaining)
			q.warnIfNear(ctx, rep.Limit-rep.Remaining)
		}
		r.Quota = nil // used for the ledger; not part of the answer
	}
	return r, nil
}

func (q *QuotaGuard) spent() error {
	return &Error{Provider: q.Name(), Kind: KindQuotaExhausted,
		Message: q.ledger.Period().Label() + " quota exhausted; not looked up until " + q.ResetTime().Format(time.RFC3339)}
}

// Ledger is the shared count.
func (q *QuotaGuard) Ledger() *QuotaLedger { return q.ledger }

// Exhausted reports whether lookups are cache-only until the quota resets.
func (q *QuotaGuard) Exhausted() bool { return q.ExhaustedAt(q.ledger.now()) }

// ExhaustedAt reports whether lookups are cache-only at now.
func (q *QuotaGuard) ExhaustedAt(now time.Time) bool {
	until := q.exhaustedUntil.Load()
	return until != 0 && now.UnixNano() < until
}

// ResetTime is ResetAt now.
func (q *QuotaGuard) ResetTime() time.Time { return q.ResetAt(q.ledger.now()) }

// ResetAt is when the quota renews as seen at now: the end of a cache-only spell, else the
// provider's reported reset, else the start of the next period.
func (q *QuotaGuard) ResetAt(now time.Time) time.Time {
	if until := q.exhaustedUntil.Load(); until != 0 && now.UnixNano() < until {
		return time.Unix(0, until).UTC()
	}
	var reported *QuotaReport
	if r := q.reportedReset.Load(); r != 0 {
		reported = &QuotaReport{Reset: time.Unix(0, r)}
	}
	return nextReset(reported, q.ledger.Period(), now)
}

// markExhausted switches the provider to cache-only until its quota resets, once per reset.
func (q *QuotaGuard) markExhausted(r *QuotaReport, used int64) {
	reset := q.ledger.NextReset(r).UnixNano()
	prev := q.exhaustedUntil.Load()
	if prev >= reset || !q.exhaustedUntil.CompareAndSwap(prev, reset) {
		return
	}
	at := time.Unix(0, reset).UTC().Format(time.RFC3339)
	q.log.Warn("quota exhausted: serving from cache only until the reset", zap.String("reset", at), zap.Int64("used", used))
	q.notify(OpsEvent{Type: "quota_exhausted", Detail: q.ledger.Period().Label() + " quota exhausted; cache-only until " + at,
		Used: used, Limit: q.ledger.Limit()})
}

// warnIfNear warns once per provider per period, across replicas, when usage crosses the ratio.
func (q *QuotaGuard) warnIfNear(ctx context.Context, used int64) {
	limit := q.ledger.Limit()
	if limit <= 0 || float64(used) < math.Ceil(q.warnAt*float64(limit)) {
		return
	}
	period := q.ledger.Period().ID(q.ledger.now())
	if p := q.warned.Load(); p != nil && *p == period {
		return // this replica already settled this period's warning: no round trip per lookup
	}
	first, err := q.rdb.SetNX(ctx, q.keys.QuotaWarned(q.Name(), period), 1, q.ledger.keep()).Result()
	if err != nil {
		return
	}
	q.warned.Store(&period)
	if !first {
		return
	}
	pct := 100 * float64(used) / float64(limit)
	q.log.Warn("quota nearly spent", zap.String("period", period), zap.Int64("used", used), zap.Int64("limit", limit), zap.Float64("percent", pct))
	q.notify(OpsEvent{Type: "quota_warning", Detail: fmt.Sprintf("%.0f%% of the %s quota used", pct, q.ledger.Period().Label()), Used: used, Limit: limit})
}
