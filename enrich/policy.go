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
	RetryBudget    time.Duration `env:"RETRY_BUDGET" envDefault:"10s" desc:"Longest an event waits on this provider (the shared rate, retries, Retry-After) before it is published with the provider pending; the lookup is then parked and a revision of the event carries the answer (docs/lifecycle.md)."`
	RefreshShare   float64       `env:"REFRESH_SHARE" envDefault:"0.1" desc:"Share of the quota (and of the rate limit) that refreshing hot answers before they expire may spend; 0 turns refresh-ahead off."`
	RefreshWindow  float64       `env:"REFRESH_WINDOW" envDefault:"0.1" desc:"How close to its expiry, as a share of its lifetime, a cached answer must be for sightings of it to ask for a refresh."`
	RefreshMinHits int           `env:"REFRESH_MIN_HITS" envDefault:"3" desc:"Sightings within the refresh window that make an answer hot enough to refresh."`
	QuotaReserve   float64       `env:"QUOTA_RESERVE" envDefault:"0.2" desc:"When less than this share of the quota is left, new lookups are ranked and only the highest-ranked spend it; the rest wait for the reset (docs/lifecycle.md)."`
	SourceShare    float64       `env:"SOURCE_SHARE" envDefault:"0.5" desc:"Share of the quota one input source (an event's source field) may spend per period; its further lookups wait for the reset. 1 turns it off."`
	V6PrefixBudget int64         `env:"V6_PREFIX_BUDGET" envDefault:"4" desc:"Lookups per IPv6 /64 per quota period (a spray from one /64 costs at most this many); 0 turns it off."`
}

// ProviderPolicy lets the registry find the embedded Policy in any provider config.
func (p *Policy) ProviderPolicy() *Policy { return p }

// OfflinePolicy is the fixed policy of a local source (a database file, IP lists): nothing to
// rate-limit, meter or retry; one attempt, bounded.
func OfflinePolicy() *Policy {
	return &Policy{Enabled: true, RateLimit: 1e6, RateBurst: 1 << 20, MaxConcurrent: 1 << 20, QuotaPeriod: PeriodDay,
		QuotaWarnRatio: 1, TTLMalicious: time.Hour, TTLBenign: time.Hour, TTLNotFound: time.Hour, AttemptTimeout: time.Second,
		RefreshWindow: 0.1, RefreshMinHits: 1, SourceShare: 1}
}
