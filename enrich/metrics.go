package enrich

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the enrichment metrics, all labelled by provider.
type Metrics struct {
	Calls         *prometheus.CounterVec   // provider, outcome
	Cache         *prometheus.CounterVec   // provider, result (hit, miss, error)
	Saved         *prometheus.CounterVec   // provider, reason (cache_hit, singleflight, gated)
	QuotaUsed     *prometheus.GaugeVec     // provider
	QuotaLimit    *prometheus.GaugeVec     // provider
	QuotaLeft     *prometheus.GaugeVec     // provider
	QuotaWarnings *prometheus.CounterVec   // provider
	Breaker       *prometheus.GaugeVec     // provider: 0 closed, 1 half-open, 2 open
	Disabled      *prometheus.GaugeVec     // provider: 1 when switched off after a key rejection
	Latency       *prometheus.HistogramVec // provider: one request to the provider
	Outcomes      *prometheus.CounterVec   // provider, status: what scored events carry
	Parked        prometheus.Counter       // lookups parked for a later revision
	Revisions     *prometheus.CounterVec   // provider, outcome: revisions published when a parked lookup finished
	ParkedNow     *prometheus.GaugeVec     // provider: lookups parked and not finished yet, across replicas
	Refreshes     *prometheus.CounterVec   // provider: answers refreshed before they expired
}

// NewMetrics registers the enrichment metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "threatpipe_provider_calls_total", Help: "Requests sent to a provider (each one may be billed), by outcome.",
		}, []string{"provider", "outcome"}),
		Cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "threatpipe_cache_requests_total", Help: "Answer-cache reads, by result (hit, miss, error).",
		}, []string{"provider", "result"}),
		Saved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "threatpipe_lookups_saved_total", Help: "Lookups not paid for: cache hits, single-flight joins and gated indicators.",
		}, []string{"provider", "reason"}),
		QuotaUsed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "threatpipe_quota_used", Help: "Lookups counted against the current quota period (UTC day or month), across replicas.",
		}, []string{"provider"}),
		QuotaLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "threatpipe_quota_limit", Help: "Quota in force for the current period, day or month (0 = unmetered).",
		}, []string{"provider"}),
		QuotaLeft: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "threatpipe_quota_remaining", Help: "Lookups left in the current quota period (absent while unmetered).",
		}, []string{"provider"}),
		QuotaWarnings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "threatpipe_quota_warnings_total", Help: "Times the quota warning threshold was crossed (once per provider per period across replicas).",
		}, []string{"provider"}),
		Breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "threatpipe_provider_breaker_state", Help: "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
		}, []string{"provider"}),
		Disabled: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "threatpipe_provider_disabled", Help: "1 when the provider was switched off because it rejected its key.",
		}, []string{"provider"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "threatpipe_provider_latency_seconds", Help: "Latency of one provider request.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"provider"}),
		Outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "threatpipe_provider_outcomes_total", Help: "Provider statuses written into scored events.",
		}, []string{"provider", "status"}),
	}
	m.Parked = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "threatpipe_lookups_parked_total", Help: "Lookups that could not finish within their event's budget and were parked for a revision.",
	})
	m.Revisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "threatpipe_revisions_published_total", Help: "Revisions of scored events published when a parked lookup finished, by the provider and its final status.",
	}, []string{"provider", "status"})
	m.ParkedNow = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "threatpipe_lookups_parked", Help: "Lookups parked and not finished yet, across replicas.",
	}, []string{"provider"})
	m.Refreshes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "threatpipe_refreshes_total", Help: "Hot answers looked up again before they expired (refresh ahead).",
	}, []string{"provider"})
	reg.MustRegister(m.Refreshes)
	reg.MustRegister(m.Calls, m.Cache, m.Saved, m.QuotaUsed, m.QuotaLimit, m.QuotaLeft, m.QuotaWarnings, m.Breaker, m.Disabled, m.Latency, m.Outcomes,
		m.Parked, m.Revisions, m.ParkedNow)
	return m
}
