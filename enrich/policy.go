package enrich

import "time"

// Policy is the part of every provider's configuration that the Lookuper enforces: whether the
// provider runs, its shared rate limit, its quota per day or month, cache lifetimes per verdict,
// and retry bounds. Provider config structs embed it, so each provider gets the same variables under its
// own prefix (THREATPIPE_CRIMINALIP_RATE_LIMIT, ...).
type Policy struct {
	Enabled        bool          `env:"ENABLED" envDefault:"true" desc:"Use this provider when it is configured (has a key, where it needs one)."`
	RateLimit      float64       `env:"RATE_LIMIT" envDefault:"5" desc:"Requests per second allowed across all replicas (shared through Redis)."`
	RateBurst      int           `env:"RATE_BURST" envDefault:"5" desc:"Requests allowed in a burst above the rate."`
	MaxConcurrent  int64         `env:"MAX_CONCURRENT" envDefault:"16" desc:"Requests in flight to the provider from one replica; bounds how many answers a key rejection or a spent quota can still cost."`
	Quota          int64         `env:"QUOTA" envDefault:"0" desc:"Lookups allowed per quota period across all replicas; 0 means unmetered (the provider's own rate-limit headers still set it where it sends them)."`
	QuotaPeriod    QuotaPeriod   `env:"QUOTA_PERIOD" envDefault:"day" desc:"How the provider counts its quota: day (UTC) or month (UTC calendar month)."`
	QuotaWarnRatio float64       `env:"QUOTA_WARN_RATIO" envDefault:"0.8" desc:"Share of the quota at which a warning is logged, counted and published to the ops topic."`
	TTLMalicious   time.Duration `env:"TTL_MALICIOUS" envDefault:"1h" desc:"Cache lifetime of malicious and suspicious answers (short: verdicts change)."`
	TTLBenign      time.Duration `env:"TTL_BENIGN" envDefault:"24h" desc:"Cache lifetime of benign answers."`
	TTLNotFound    time.Duration `env:"TTL_NOT_FOUND" envDefault:"6h" desc:"Cache lifetime of not-found answers."`
	AttemptTimeout time.Duration `env:"ATTEMPT_TIMEOUT" envDefault:"10s" desc:"Timeout of one request to the provider."`
	RetryBudget    time.Duration `env:"RETRY_BUDGET" envDefault:"30s" desc:"Longest an indicator waits on retries (5xx, timeouts, Retry-After) before it is published with this provider marked failed."`
}

// ProviderPolicy lets the registry find the embedded Policy in any provider config.
func (p *Policy) ProviderPolicy() *Policy { return p }

// OfflinePolicy is the fixed policy of a local source (a database file, IP lists): nothing to
// rate-limit, meter or retry; one attempt, bounded.
func OfflinePolicy() *Policy {
	return &Policy{Enabled: true, RateLimit: 1e6, RateBurst: 1 << 20, MaxConcurrent: 1 << 20, QuotaPeriod: PeriodDay,
		QuotaWarnRatio: 1, TTLMalicious: time.Hour, TTLBenign: time.Hour, TTLNotFound: time.Hour, AttemptTimeout: time.Second}
}
