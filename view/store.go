// Package view is threatpipe's prioritised indicator view, the analysts' stage: it folds the
// scored events and the playbook workers' audit records into per-indicator state in Redis, ranks
// the indicators by priority (score, then recency and evidence), and serves them as server-rendered pages, a JSON API and
// `threatpipe top`.
//
// # State in Redis
//
// Every key lives under <prefix>:view: (prefix is THREATPIPE_REDIS_KEY_PREFIX). One indicator's
// keys share the Redis Cluster hash tag {<ip>}, so one Lua script updates them atomically:
//
//	<prefix>:view:i:{<ip>}     hash: score, severity, tags, ISP, geo, AS, first/last seen,
//	                           sightings and the latest scored event
//	<prefix>:view:i:{<ip>}:h   list: score history, newest first, capped at THREATPIPE_VIEW_HISTORY
//	<prefix>:view:i:{<ip>}:a   list: audit records (actions taken), newest first, same cap;
//	                           repeats suppressed within a playbook's window are only counted
//	<prefix>:view:i:{<ip>}:c   hash: audit records per outcome
//	<prefix>:view:i:{<ip>}:s   sorted set: the last THREATPIPE_VIEW_DEDUP_EVENTS event ids and
//	                           audit record digests applied, so a redelivery is not counted twice
//
// Two sorted sets index all indicators: <prefix>:view:prio (the priority, store_priority.go:
// score in the high part, then recency plus an evidence credit from confidence, agreeing sources
// and sightings) and <prefix>:view:seen (last seen in unix ms, for the retention sweep). They
// live in other slots than the indicators, so after each update the store writes the
// indicator's priority and then reads the indicator back, rewriting the priority until the two
// agree: whatever the interleaving of concurrent writers, the last writer leaves the ranking
// matching the indicator. The ranking before the priority, <prefix>:view:rank, is migrated by
// the first sweep of an upgraded view (migrateRanking). Per-minute counters for the charts live in <prefix>:view:m:<minute>
// for two hours.
//
// Retention: an indicator's keys expire THREATPIPE_VIEW_RETENTION after its last sighting, and
// Sweep removes indicators past it from the two indexes.
//
// Bounds (store_caps.go): the ranking holds at most THREATPIPE_VIEW_MAX_INDICATORS indicators
// (EnforceCap evicts the lowest-ranked: lowest priority); each indicator's
// lists and sets are capped (History, DedupEvents); and gated events (private, own and allowlisted
// addresses, never looked up) are only counted by default, in <prefix>:view:m:<minute> and in
// per-hour counts by gate reason, <prefix>:view:g:<hour> (25 hours), not stored as indicators.
package view

import (
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/health"
)

// ErrNotFound is returned by Get for an indicator the view does not hold.
var ErrNotFound = errors.New("indicator not in the view")

// MaxLimit is the most rows one List call returns.
const MaxLimit = 500

// maxContextBytes bounds the carried context kept with the latest event; larger contexts (whole
// ECS documents) are dropped from the copy the view keeps.
const maxContextBytes = 8 << 10

// minuteTTL is how long per-minute chart counters are kept.
const minuteTTL = 2 * time.Hour

// StoreOptions are the store's settings; Config.StoreOptions derives them.
type StoreOptions struct {
	Retention    time.Duration
	History      int
	DedupEvents  int
	ScanLimit    int
	HealthMaxAge time.Duration
	// MaxIndicators caps the ranking (EnforceCap); Gated says whether gated events are counted
	// only (GatedCount) or stored as indicators (GatedStore).
	MaxIndicators int
	Gated         string
	// Now is the clock (time.Now when nil); tests move it.
	Now func() time.Time
}

// Store is the view's state in Redis. It is safe for concurrent use.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	opts   StoreOptions
	health *health.Store
}

// NewStore returns the store under prefix (THREATPIPE_REDIS_KEY_PREFIX).
func NewStore(rdb redis.UniversalClient, prefix string, o StoreOptions) *Store {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.History <= 0 {
		o.History = 100
	}
	if o.DedupEvents <= 0 {
		o.DedupEvents = 1000
	}
	if o.ScanLimit <= 0 {
		o.ScanLimit = 10000
	}
	if o.Retention <= 0 {
		o.Retention = 168 * time.Hour
	}
	if o.HealthMaxAge <= 0 {
		o.HealthMaxAge = health.ReportTTL
	}
	if o.MaxIndicators <= 0 {
		o.MaxIndicators = DefaultMaxIndicators
	}
	if o.Gated != GatedStore {
		o.Gated = GatedCount
	}
	return &Store{rdb: rdb, prefix: prefix, opts: o, health: health.NewStore(rdb, prefix)}
}

func (s *Store) base() string                  { return s.prefix + ":view:" }
func (s *Store) rankKey() string               { return s.base() + "prio" }
func (s *Store) seenIndexKey() string          { return s.base() + "seen" }
func (s *Store) indicatorKey(ip string) string { return s.base() + "i:{" + ip + "}" }
func (s *Store) minuteKey(minute int64) string {
	return s.base() + "m:" + strconv.FormatInt(minute, 10)
}
func (s *Store) gatedKey(hour int64) string { return s.base() + "g:" + strconv.FormatInt(hour, 10) }

// indicatorKeys are one indicator's keys: hash, history, actions, seen ids, action outcome
// counts.
func (s *Store) indicatorKeys(ip string) []string {
	h := s.indicatorKey(ip)
	return []string{h, h + ":h", h + ":a", h + ":s", h + ":c"}
}

// Hash fields of an indicator.
const (
	fScore     = "score"
	fSeverity  = "severity"
	fTags      = "tags"
	fISP       = "isp"
	fCountry   = "country"
	fCity      = "city"
	fASN       = "asn"
	fASOrg     = "as_org"
	fFirstSeen = "first_seen"
	fLastSeen  = "last_seen"
	fSightings = "sightings"
	fType      = "type"
	fSource    = "source"
	fGate      = "gate"
	fEvent     = "event"
	fEventID   = "event_id"
	fConf      = "confidence"
	fAgree     = "validated_by"
)

// rowFields are the fields a Row is made of, in the order rowFromValues reads them.
var rowFields = []string{fScore, fSeverity, fTags, fISP, fCountry, fCity, fASN, fASOrg, fFirstSeen, fLastSeen, fSightings, fType, fSource, fGate, fConf, fAgree}

// Row is one indicator in the ranking.
type Row struct {
	IP       string         `json:"ip"`
	Type     string         `json:"type"`
	Score    int            `json:"score"`
	Severity event.Severity `json:"severity"`
	// Confidence and ValidatedBy are the latest sighting's: how far its sources agree, and
	// which of them rate it malicious.
	Confidence  int       `json:"confidence"`
	ValidatedBy []string  `json:"validated_by"`
	Tags        []string  `json:"tags"`
	Country     string    `json:"country,omitempty"`
	City        string    `json:"city,omitempty"`
	ISP         string    `json:"isp,omitempty"`
	ASN         int64     `json:"asn,omitempty"`
	ASOrg       string    `json:"as_org,omitempty"`
	FirstSeen   time.Time `json:"first_seen"`
	LastSeen    time.Time `json:"last_seen"`
	Sightings   int64     `json:"sightings"`
	// Source is the producer of the latest sighting; Gate the gate's reason when it was gated.
	Source string `json:"source,omitempty"`
	Gate   string `json:"gate,omitempty"`
	// Priority orders the ranking (store_priority.go): score × 10^13 plus the last sighting in
	// ms since 2020 plus CreditHours, the evidence (confidence, agreeing sources, sightings)
	// counted in hours of recency, here rounded to 0.1.
	Priority    int64   `json:"priority"`
	CreditHours float64 `json:"credit_hours"`
}

// HistoryEntry is one sighting in an indicator's score history.
type HistoryEntry struct {
	At       time.Time      `json:"at"`
	Score    int            `json:"score"`
	Severity event.Severity `json:"severity"`
	EventID  string         `json:"event_id"`
	// Revision is the event's revision (docs/lifecycle.md): above 0, a parked lookup finished
	// and changed the verdict of an earlier sighting.
	Revision int    `json:"revision,omitempty"`
	Source   string `json:"source"`
}

// Indicator is everything the view holds about one indicator.
type Indicator struct {
	Row
	// Latest is the scored event of the latest sighting (by observed_at): every provider's
	// answer and the reasons. Its context is dropped when larger than 8 KiB.
	Latest *event.Scored `json:"latest"`
	// History is newest first; Actions (the audit records about this indicator) too, without
	// repeats suppressed within a playbook's window and redeliveries, which ActionCounts counts
	// with every other outcome.
	History      []HistoryEntry   `json:"history"`
	Actions      []act.Record     `json:"actions"`
	ActionCounts map[string]int64 `json:"action_counts"`
}

// Applied says what became of one message.
type Applied string

// Outcomes of Apply.
const (
	AppliedNew       Applied = "applied"
	AppliedDuplicate Applied = "duplicate" // seen before (redelivery): nothing counted again
	AppliedExpired   Applied = "expired"   // observed longer ago than the retention: skipped
	AppliedGated     Applied = "gated"     // a gated event, counted by gate reason, not stored
)
