package view

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/gate"
)

// The view's bounds. Without them a spray of distinct addresses (free to send: gated private
// addresses cost no lookup) grows the view's Redis for the whole retention; 200,000 gated events
// took 492 MiB and 600,000 keys before these caps existed (docs/view.md, "Bounds").

// DefaultMaxIndicators is THREATPIPE_VIEW_MAX_INDICATORS's default.
const DefaultMaxIndicators = 50000

// What becomes of gated events (THREATPIPE_VIEW_GATED).
const (
	// GatedCount counts gated events by gate reason and minute, and stores nothing per address.
	GatedCount = "count"
	// GatedStore stores gated events as indicators like any other (score 0), under the cap.
	GatedStore = "store"
)

// evictBatch is the most indicators one EnforceCap round reads and evicts.
const evictBatch = 500

// gatedTTL keeps the per-hour gated counts long enough to sum the last 24 hours.
const gatedTTL = 25 * time.Hour

// otherReason is the counted reason of a gate reason that is not one of gate.Reasons: the reason
// comes from whoever produced the event, and an open set of hash fields would be unbounded.
const otherReason = "other"

// evictIndicator deletes an indicator whose priority fields (rankFields, ARGV) are still the
// ones the caller read: one sighted again or revised meanwhile is kept and re-indexed. Comparing
// the stored strings, not a recomputed priority, keeps the formula in one place (Go). It returns
// 1 when the indicator is gone (deleted now, or before) and 0 when it was kept.
var evictIndicator = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'score', 'last_seen', 'confidence', 'validated_by', 'sightings')
if not v[1] or not v[2] then return 1 end
for i = 1, 5 do
  if (v[i] or '') ~= ARGV[i] then return 0 end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
return 1
`)

// EnforceCap evicts the lowest-ranked indicators (lowest priority) while
// the ranking holds more than MaxIndicators, at most limit of them, and returns how many it
// evicted. The scored handler calls it after each new indicator with a small limit, and the
// sweeper at every interval without one, so the ranking overshoots the cap by at most what the
// workers add between two sweeps. Candidates are popped from the ranking (ZPOPMIN), so that
// concurrent callers never pick the same ones; one sighted again meanwhile is kept and
// re-indexed.
func (s *Store) EnforceCap(ctx context.Context, limit int) (int, error) {
	evicted := 0
	for limit > 0 {
		n, err := s.rdb.ZCard(ctx, s.rankKey()).Result()
		if err != nil {
			return evicted, fmt.Errorf("view: count ranking: %w", err)
		}
		excess := n - int64(s.opts.MaxIndicators)
		if excess <= 0 {
			return evicted, nil
		}
		batch := min(excess, evictBatch, int64(limit))
		lowest, err := s.rdb.ZPopMin(ctx, s.rankKey(), batch).Result()
		if err != nil {
			return evicted, fmt.Errorf("view: read ranking: %w", err)
		}
		if len(lowest) == 0 {
			return evicted, nil
		}
		limit -= len(lowest)
		for _, z := range lowest {
			ip, _ := z.Member.(string)
			gone, err := s.evictPopped(ctx, ip, z.Score)
			if err != nil {
				// Popped but not evicted: settle puts it back if Redis answers again; if not, it
				// stays out of the ranking until sighted again or expired (it was the lowest).
				return evicted, errors.Join(fmt.Errorf("view: evict %s: %w", ip, err), s.settle(ctx, ip, false))
			}
			if gone {
				evicted++
			}
			if err := s.settle(ctx, ip, gone); err != nil {
				return evicted, err
			}
		}
	}
	return evicted, nil
}

// evictPopped evicts an indicator popped from the ranking at priority popped, unless it now
// ranks higher (sighted again since) or changes between the read and the eviction. gone says
// whether it is gone.
func (s *Store) evictPopped(ctx context.Context, ip string, popped float64) (bool, error) {
	cur, err := s.readRankState(ctx, ip)
	if err != nil {
		return false, err
	}
	in, ok := cur.inputs()
	if !ok {
		return cur == nil, nil // gone; or unreadable, then settle drops it from the indexes
	}
	if float64(in.Priority()) > popped {
		return false, nil
	}
	args := make([]any, len(cur))
	for i, v := range cur {
		args[i] = v
	}
	n, err := evictIndicator.Run(ctx, s.rdb, s.indicatorKeys(ip), args...).Int()
	if err != nil {
		return false, err
	}
	return n == 1, nil
}

// settle makes the indexes match an indicator that a sweep or an eviction deleted (gone) or kept.
func (s *Store) settle(ctx context.Context, ip string, gone bool) error {
	var cur rankState
	if !gone {
		var err error
		if cur, err = s.readRankState(ctx, ip); err != nil {
			return err
		}
	}
	return s.reconcile(ctx, ip, cur, nil)
}

// countGated counts a gated event instead of storing it: in the minute's events and gated
// counters (by processed_at, like countEvent) and in the hour's count of its gate reason. A
// redelivered gated event is counted again: these are traffic counts, not sightings.
func (s *Store) countGated(ctx context.Context, ev *event.Scored, now time.Time) (Applied, error) {
	at := ev.ProcessedAt
	if at.IsZero() || at.After(now) || now.Sub(at) > gatedTTL {
		at = now
	}
	minute, hour := s.minuteKey(at.Unix()/60), s.gatedKey(at.Unix()/3600)
	pipe := s.rdb.Pipeline()
	pipe.HIncrBy(ctx, minute, "events", 1)
	pipe.HIncrBy(ctx, minute, "gated", 1)
	pipe.Expire(ctx, minute, minuteTTL)
	pipe.HIncrBy(ctx, hour, gatedReason(ev.Gate), 1)
	pipe.Expire(ctx, hour, gatedTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		return "", fmt.Errorf("view: count gated %s: %w", ev.Indicator.Value, err)
	}
	return AppliedGated, nil
}

// gatedReason is the counted reason of a gate: one of gate.Reasons, or otherReason.
func gatedReason(g *event.Gate) string {
	if g != nil && slices.Contains(gate.Reasons, g.Reason) {
		return g.Reason
	}
	return otherReason
}

// GatedReasonCount is how many gated events one gate reason had.
type GatedReasonCount struct {
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
}

// gatedLastDay sums the per-hour gated counts of the last 24 hours (the current hour included),
// by reason, largest first.
func (s *Store) gatedLastDay(ctx context.Context, now time.Time) ([]GatedReasonCount, error) {
	pipe := s.rdb.Pipeline()
	current := now.Unix() / 3600
	hours := make([]*redis.MapStringStringCmd, 24)
	for i := range hours {
		hours[i] = pipe.HGetAll(ctx, s.gatedKey(current-int64(i)))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("view: gated counts: %w", err)
	}
	sums := map[string]int64{}
	for _, h := range hours {
		for reason, v := range h.Val() {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				sums[reason] += n
			}
		}
	}
	out := make([]GatedReasonCount, 0, len(sums))
	for reason, n := range sums {
		out = append(out, GatedReasonCount{Reason: reason, Count: n})
	}
	slices.SortFunc(out, func(a, b GatedReasonCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Reason, b.Reason))
	})
	return out, nil
}
