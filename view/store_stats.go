package view

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/threatpipe/threatpipe/pipeline/health"
)

// Bucket counts the indicators whose score is From-To.
type Bucket struct {
	From  int   `json:"from"`
	To    int   `json:"to"`
	Count int64 `json:"count"`
}

// Minute is one minute of traffic through the view: scored events applied (by processed_at),
// and the providers' parts of them by cache outcome. A part is a hit when served from the shared
// cache, joined when it got another worker's in-flight answer, and a lookup when it was looked up
// for this event (failures included); parts not asked (quota exhausted, provider disabled) are
// not counted. HitRate is hits over all three, nil when there were none. Gated counts the events
// among Events that were gated and, with THREATPIPE_VIEW_GATED=count, only counted.
type Minute struct {
	Start   time.Time `json:"start"`
	Events  int64     `json:"events"`
	Gated   int64     `json:"gated"`
	Hits    int64     `json:"cache_hits"`
	Joined  int64     `json:"cache_joined"`
	Lookups int64     `json:"lookups"`
	HitRate *float64  `json:"cache_hit_rate"`
}

// Quota is one provider's quota (per day or month) as its freshest health snapshot reports it.
type Quota struct {
	Provider string    `json:"provider"`
	Used     int64     `json:"used"`
	Limit    int64     `json:"limit"`
	Reset    time.Time `json:"reset,omitzero"`
	Warning  bool      `json:"warning"`
}

// Stats feeds the charts.
type Stats struct {
	GeneratedAt time.Time `json:"generated_at"`
	Indicators  int64     `json:"indicators"`
	// Scores: ten buckets of ten points (0-9 ... 90-100).
	Scores []Bucket `json:"score_distribution"`
	// Minutes: the last 60 minutes, oldest first, the current (partial) minute last.
	Minutes []Minute `json:"minutes"`
	Quotas  []Quota  `json:"quota"`
	// Gated: gated events counted (THREATPIPE_VIEW_GATED=count) in the last 24 hours, by gate
	// reason, most first.
	Gated []GatedReasonCount `json:"gated_last_24h"`
	// MaxIndicators is the cap on Indicators (THREATPIPE_VIEW_MAX_INDICATORS).
	MaxIndicators int `json:"max_indicators"`
}

// Stats reads the chart data: the score distribution from the ranking, per-minute event and
// cache counters, and quotas from the integration health snapshots.
func (s *Store) Stats(ctx context.Context) (*Stats, error) {
	now := s.opts.Now()
	st := &Stats{GeneratedAt: now.UTC(), Scores: make([]Bucket, 10), Minutes: make([]Minute, 60), MaxIndicators: s.opts.MaxIndicators}
	pipe := s.rdb.Pipeline()
	card := pipe.ZCard(ctx, s.rankKey())
	counts := make([]*redis.IntCmd, 10)
	for b := range 10 {
		lo, hi := b*10, b*10+9
		if b == 9 {
			hi = 100
		}
		st.Scores[b] = Bucket{From: lo, To: hi}
		minP, maxP := priorityBand(lo, hi)
		counts[b] = pipe.ZCount(ctx, s.rankKey(), minP, maxP)
	}
	current := now.Unix() / 60
	minutes := make([]*redis.SliceCmd, 60)
	for i := range 60 {
		m := current - 59 + int64(i)
		st.Minutes[i].Start = time.Unix(m*60, 0).UTC()
		minutes[i] = pipe.HMGet(ctx, s.minuteKey(m), "events", "hits", "joined", "lookups", "gated")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("view: stats: %w", err)
	}
	st.Indicators = card.Val()
	for b := range counts {
		st.Scores[b].Count = counts[b].Val()
	}
	for i, c := range minutes {
		v := c.Val()
		m := &st.Minutes[i]
		m.Events, m.Hits, m.Joined, m.Lookups, m.Gated = num(v, 0), num(v, 1), num(v, 2), num(v, 3), num(v, 4)
		if all := m.Hits + m.Joined + m.Lookups; all > 0 {
			r := float64(m.Hits) / float64(all)
			m.HitRate = &r
		}
	}
	gated, err := s.gatedLastDay(ctx, now)
	if err != nil {
		return nil, err
	}
	st.Gated = gated
	snaps, err := s.Health(ctx)
	if err != nil {
		return nil, err
	}
	st.Quotas = quotas(snaps)
	return st, nil
}

func num(v []any, i int) int64 {
	if i >= len(v) {
		return 0
	}
	n, _ := strconv.ParseInt(str(v[i]), 10, 64)
	return n
}

// Health returns the integration health snapshots of every replica written within
// HealthMaxAge.
func (s *Store) Health(ctx context.Context) ([]health.Snapshot, error) {
	snaps, err := s.health.All(ctx, s.opts.HealthMaxAge)
	if err != nil {
		return nil, fmt.Errorf("view: %w", err)
	}
	return snaps, nil
}

// quotas lists the providers reporting a quota, with the quota Aggregate takes (the freshest
// report), by provider name.
func quotas(snaps []health.Snapshot) []Quota {
	var out []Quota
	for _, in := range Aggregate(snaps) {
		if in.Component != health.ComponentProvider || in.QuotaLimit <= 0 {
			continue
		}
		out = append(out, Quota{Provider: in.Name, Used: in.QuotaUsed, Limit: in.QuotaLimit, Reset: in.QuotaReset, Warning: in.QuotaWarning})
	}
	return out
}
