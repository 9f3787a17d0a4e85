package view

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// A feed reads the indicators in the order they were stored, for TAXII and `threatpipe export`.
// It walks the seen index (<prefix>:view:seen, last seen in unix ms) read-only: an indicator's
// current version (its score, severity, latest event) is written by the sighting whose time is
// last_seen, and the same update writes last_seen into the seen index, so the index orders the
// indicators by when their current version was stored. Ties (the same millisecond) are ordered by
// address, as Redis orders equal scores, so a position (milliseconds, address) is a stable cursor:
// an indicator seen again moves after it rather than shifting the ones not yet read.

// FeedPos is a position in the feed: after the indicator IP stored at AddedMS. The zero FeedPos
// is before everything.
type FeedPos struct {
	AddedMS int64
	IP      string
}

// FeedEntry is one indicator of the feed and when its current version was stored (unix ms).
type FeedEntry struct {
	IP      string
	AddedMS int64
}

// Pos is the position right after e.
func (e FeedEntry) Pos() FeedPos { return FeedPos{AddedMS: e.AddedMS, IP: e.IP} }

// feedChunk is how many index entries one round trip reads.
const feedChunk = 500

// FeedAfter returns up to n entries strictly after pos, oldest first. It skips the entries of
// pos's own millisecond up to pos's address in chunks, so it stays exact however many indicators
// share that millisecond (a bulk load stamped by one clock).
func (s *Store) FeedAfter(ctx context.Context, pos FeedPos, n int) ([]FeedEntry, error) {
	if n <= 0 {
		return nil, nil
	}
	lo := strconv.FormatInt(pos.AddedMS, 10)
	if pos.IP == "" {
		lo = "(" + lo // nothing of that millisecond was read yet
	}
	out := make([]FeedEntry, 0, n)
	for offset := int64(0); len(out) < n; {
		zs, err := s.rdb.ZRangeByScoreWithScores(ctx, s.seenIndexKey(), &redis.ZRangeBy{
			Min: lo, Max: "+inf", Offset: offset, Count: feedChunk,
		}).Result()
		if err != nil {
			return nil, fmt.Errorf("view: read seen index: %w", err)
		}
		for _, z := range zs {
			e := FeedEntry{IP: str(z.Member), AddedMS: int64(z.Score)}
			if pos.IP != "" && e.AddedMS == pos.AddedMS && e.IP <= pos.IP {
				continue
			}
			if out = append(out, e); len(out) == n {
				break
			}
		}
		if len(zs) < feedChunk {
			break
		}
		offset += int64(len(zs))
	}
	return out, nil
}

// feedFields are rowFields and the latest event.
var feedFields = append(append([]string{}, rowFields...), fEvent)

// FeedRead reads what a feed publishes of each indicator: its row, latest scored event and
// score history (newest first), leaving out Actions. Indicators gone since the index was read
// are skipped.
func (s *Store) FeedRead(ctx context.Context, ips []string) ([]*Indicator, error) {
	if len(ips) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	hashes := make([]*redis.SliceCmd, len(ips))
	hists := make([]*redis.StringSliceCmd, len(ips))
	for i, ip := range ips {
		keys := s.indicatorKeys(ip)
		hashes[i] = pipe.HMGet(ctx, keys[0], feedFields...)
		hists[i] = pipe.LRange(ctx, keys[1], 0, -1)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("view: read feed indicators: %w", err)
	}
	out := make([]*Indicator, 0, len(ips))
	for i, ip := range ips {
		vals := hashes[i].Val()
		row, ok := rowFromValues(ip, vals[:len(rowFields)])
		if !ok {
			continue
		}
		ind := &Indicator{Row: row, History: []HistoryEntry{}}
		if raw := str(vals[len(rowFields)]); raw != "" {
			var ev event.Scored
			if json.Unmarshal([]byte(raw), &ev) == nil {
				ind.Latest = &ev
			}
		}
		for _, raw := range hists[i].Val() {
			var e HistoryEntry
			if json.Unmarshal([]byte(raw), &e) == nil {
				ind.History = append(ind.History, e)
			}
		}
		sort.SliceStable(ind.History, func(a, b int) bool { return ind.History[a].At.After(ind.History[b].At) })
		out = append(out, ind)
	}
	return out, nil
}

// Retention is how long an indicator stays in the view after its last sighting.
func (s *Store) Retention() time.Duration { return s.opts.Retention }

// HistoryCap is how many history entries an indicator keeps: a history this long may have
// lost its oldest entries.
func (s *Store) HistoryCap() int { return s.opts.History }

// FeedRows reads the rows of ips (no event, no history), skipping those gone: a cheap first
// pass when most indicators will be filtered out.
func (s *Store) FeedRows(ctx context.Context, ips []string) ([]Row, error) { return s.rows(ctx, ips) }
