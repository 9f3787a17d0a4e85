package enrich

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"
)

// Chain is a provider with its middleware, composed in one place, outermost first:
//
//	Retry -> Concurrency -> KeyGuard -> RateLimit -> QuotaGuard -> Instrument -> Breaker -> provider
//
// Each retry waits for a slot again, so a waiting retry holds no slot. The key guard and the
// quota guard fail fast before a request waits for the shared rate. The quota is reserved only
// once the rate allows the request, so requests waiting for the rate do not count as spent.
// Instrument sits outside the breaker so that requests the breaker held back are counted, and
// inside the quota guard so that requests the quota refused are not: they never reached it.
//
// Offline providers (local data) get Instrument alone: no retries, rate, quota or breaker.
type Chain struct {
	Provider             // the outermost layer: what the Lookuper calls
	Keys     *KeyGuard   // nil for offline providers
	Quota    *QuotaGuard // nil for offline providers
	Breaker  *Breaker    // nil for offline providers
	health   providerHealth
}

// ChainOptions are what the middleware needs besides the provider and its policy.
type ChainOptions struct {
	Redis   redis.UniversalClient
	Keys    Keys
	Metrics *Metrics
	Log     *zap.Logger
	Notify  func(OpsEvent) // operational events (quota warnings, a disabled provider)
	Now     func() time.Time
}

// NewChain wraps p in its middleware under pol.
func NewChain(p Provider, pol *Policy, o ChainOptions) *Chain {
	if o.Now == nil {
		o.Now = time.Now
	}
	name := p.Name()
	log := o.Log.With(zap.String("provider", name))
	m := o.Metrics
	c := &Chain{}
	c.health.period = pol.QuotaPeriod
	inner := p
	if p.Cost() != CostOffline {
		c.Breaker = NewBreaker(p, func(from, to gobreaker.State) {
			m.Breaker.WithLabelValues(name).Set(float64(to))
			log.Warn("circuit breaker changed state", zap.String("from", from.String()), zap.String("to", to.String()))
		})
		inner = c.Breaker
	}
	calls := make(map[string]prometheus.Counter)
	for _, label := range []string{"ok", "breaker_open", string(KindTransient), string(KindRateLimited), string(KindQuotaExhausted),
		string(KindUnauthorized), string(KindPermanent), string(KindUnavailable)} {
		calls[label] = m.Calls.WithLabelValues(name, label)
	}
	instrumented := &Instrument{wrapped: wrapped{inner}, timeout: pol.AttemptTimeout, health: &c.health,
		latency: m.Latency.WithLabelValues(name), calls: func(l string) prometheus.Counter { return calls[l] }, now: o.Now}
	if p.Cost() == CostOffline {
		c.Provider = instrumented
		return c
	}
	notify := func(e OpsEvent) {
		if e.Type == "quota_warning" {
			m.QuotaWarnings.WithLabelValues(name).Inc()
		}
		if o.Notify != nil {
			o.Notify(e)
		}
	}
	ledger := NewQuotaLedger(o.Redis, o.Keys, name, pol.Quota, pol.QuotaPeriod, o.Now)
	c.Quota = NewQuotaGuard(instrumented, QuotaGuardOptions{
		Ledger: ledger, WarnAt: pol.QuotaWarnRatio, Redis: o.Redis, Keys: o.Keys, Log: log, Notify: notify,
		Observed: func(used int64) { c.recordQuota(m, name, used) },
	})
	limited := RateLimit(NewRateLimiter(o.Redis, o.Keys, name, pol.RateLimit, pol.RateBurst), log)(c.Quota)
	c.Keys = NewKeyGuard(limited, func(err error) {
		m.Disabled.WithLabelValues(name).Set(1)
		log.Error("PROVIDER DISABLED: it rejected the API key; fix the key and restart. Events are published without this provider meanwhile.", zap.Error(err))
		_, reason := c.Keys.Disabled()
		notify(OpsEvent{Type: "provider_disabled", Detail: reason})
	})
	c.Provider = Retry(pol.RetryBudget)(Concurrency(pol.MaxConcurrent)(c.Keys))
	m.QuotaLimit.WithLabelValues(name).Set(float64(pol.Quota))
	m.Disabled.WithLabelValues(name).Set(0)
	m.Breaker.WithLabelValues(name).Set(0)
	return c
}

func (c *Chain) recordQuota(m *Metrics, name string, used int64) {
	c.health.seeQuota(c.Quota.Ledger().now(), used)
	m.QuotaUsed.WithLabelValues(name).Set(float64(used))
	if limit := c.Quota.Ledger().Limit(); limit > 0 {
		m.QuotaLimit.WithLabelValues(name).Set(float64(limit))
		m.QuotaLeft.WithLabelValues(name).Set(float64(max(limit-used, 0)))
	}
}
