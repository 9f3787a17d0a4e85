package event

import (
	"encoding/json"
	"time"
)

// Verdict is a provider's overall judgement.
type Verdict string

// Verdicts, from worst.
const (
	VerdictMalicious  Verdict = "malicious"
	VerdictSuspicious Verdict = "suspicious"
	VerdictBenign     Verdict = "benign"
	VerdictNotFound   Verdict = "not_found"
	// VerdictUnrated: the source answered with context (ports, location, list tags) but has
	// no opinion on the address's reputation; it casts no vote in the fused score.
	VerdictUnrated Verdict = "unrated"
)

// Intel is one provider's answer, normalised. Field names follow ECS where ECS has one.
type Intel struct {
	Verdict Verdict `json:"verdict"`
	// Score is the provider's own risk on 0-100 (documented per provider in docs/scoring.md).
	Score int `json:"score"`
	// Detail is a one-line human summary used in the scored event's reasons (which is where a
	// compact scored event carries it).
	Detail string   `json:"detail,omitempty"`
	Tags   []string `json:"tags,omitempty"`

	InboundLevel   string  `json:"inbound_level,omitempty"`
	InboundScore   int     `json:"inbound_score,omitempty"`
	OutboundLevel  string  `json:"outbound_level,omitempty"`
	OutboundScore  int     `json:"outbound_score,omitempty"`
	ASNumber       int64   `json:"as_number,omitempty"`
	ASOrganization string  `json:"as_organization,omitempty"`
	ISP            string  `json:"isp,omitempty"`
	CountryISO     string  `json:"country_iso_code,omitempty"`
	City           string  `json:"city_name,omitempty"`
	Location       *Geo    `json:"location,omitempty"`
	OpenPorts      []int   `json:"open_ports,omitempty"`
	CVECount       int     `json:"cve_count,omitempty"`
	MaxCVSS        float64 `json:"max_cvss,omitempty"`
	// LastSeen is when the source last saw the address act as it says (AbuseIPDB's last report,
	// GreyNoise's last scan, ...), when it says; old malicious evidence decays in the score.
	LastSeen *time.Time `json:"last_seen,omitempty"`
	// Service names a known-benign business service the address belongs to (GreyNoise RIOT,
	// a benign list): the fused score is capped below the block threshold.
	Service string `json:"service,omitempty"`
	// Lists are the IP lists that matched (the lists source only).
	Lists []ListHit `json:"lists,omitempty"`

	// Quota, when the provider reported its remaining allowance with this answer (rate-limit
	// headers), corrects the quota ledger. Not cached.
	Quota *QuotaReport `json:"-"`
	// Raw is the provider's response body, read by the enrichment rules' field mapping on the
	// lookup that fetched it. Never cached, never published.
	Raw []byte `json:"-"`
}

// Compact is the part of the answer that the fused score, the playbooks and the view read
// (verdict, score, tags, benign service, list hits): what a compact scored event carries. The
// rest (the summary, which the event's reasons repeat; AS, location and ISP, which the event
// carries once at its top level; ports, CVEs, levels) is in a full scored event.
func (r *Intel) Compact() *Intel {
	return &Intel{Verdict: r.Verdict, Score: r.Score, Tags: r.Tags, Service: r.Service, Lists: r.Lists}
}

// List kinds.
const (
	ListBlock  = "block"  // known-bad ranges: a hit is a malicious vote
	ListBenign = "benign" // known-good services (resolvers, CDNs): a hit caps the score
	ListTag    = "tag"    // ranges that only earn a tag (a Tor exit list, say)
)

// ListHit is one IP list that matched an address.
type ListHit struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Prefix string `json:"prefix"`
	Tag    string `json:"tag,omitempty"`
}

// Geo is a coordinate pair (ECS geo.location).
type Geo struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// QuotaReport is what a provider said about its allowance.
type QuotaReport struct {
	Limit     int64
	Remaining int64
	Reset     time.Time // zero if unknown
}

// ProviderStatus says how a provider's part of a scored event came about.
type ProviderStatus string

// Provider statuses.
const (
	StatusOK             ProviderStatus = "ok"              // answered (from cache or a lookup)
	StatusNotFound       ProviderStatus = "not_found"       // the provider knows nothing of the indicator
	StatusQuotaExhausted ProviderStatus = "quota_exhausted" // not looked up: the quota of the period is spent
	StatusRateLimited    ProviderStatus = "rate_limited"    // still rate-limited when the retry budget ran out
	StatusFailed         ProviderStatus = "failed"          // errors (5xx, timeouts, open breaker) outlasted the retries
	StatusDisabled       ProviderStatus = "disabled"        // the provider rejected its key and was switched off
	StatusSkipped        ProviderStatus = "skipped"         // not asked: an enrichment rule or an early stop made it pointless
	StatusPending        ProviderStatus = "pending"         // not answered yet: the lookup is parked and a revision will carry the answer
)

// ProviderOutcome is one provider's part of a scored event.
type ProviderOutcome struct {
	Status ProviderStatus `json:"status"`
	Result *Intel         `json:"result,omitempty"`
	Error  string         `json:"error,omitempty"`
	// RetryAt is when a pending lookup is next tried.
	RetryAt *time.Time `json:"retry_at,omitempty"`
	Cache   *CacheInfo `json:"cache,omitempty"`
	// Fields are this source's values of the enrichment rules' mapped fields; the scorer merges
	// them into the scored event's fields.
	Fields map[string]json.RawMessage `json:"-"`
}

// CacheInfo says where an answer came from.
type CacheInfo struct {
	// Hit: the answer was in the shared cache; no lookup was made for this event.
	Hit bool `json:"hit"`
	// AgeSeconds is how old the cached answer was.
	AgeSeconds int64 `json:"age_seconds"`
	// Joined: another worker or replica was already looking this indicator up, and this event
	// got its answer (single-flight); no lookup was made for this event.
	Joined bool `json:"joined,omitempty"`
}

// AS is ECS's autonomous-system group.
type AS struct {
	Number       int64     `json:"number,omitempty"`
	Organization *ASOrgRef `json:"organization,omitempty"`
}

// ASOrgRef is ECS's as.organization.
type ASOrgRef struct {
	Name string `json:"name"`
}

// GeoInfo is ECS's geo group.
type GeoInfo struct {
	CountryISOCode string `json:"country_iso_code,omitempty"`
	CityName       string `json:"city_name,omitempty"`
	Location       *Geo   `json:"location,omitempty"`
}
