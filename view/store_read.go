package view

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

func str(v any) string {
	s, _ := v.(string)
	return s
}

// agreeJSON is the validators as stored: clipped like tags, since producers are outside input.
func agreeJSON(v []string) string {
	b, _ := json.Marshal(normTags(v))
	return string(b)
}

// rowFromValues builds a Row from the values of rowFields; ok is false when the indicator is
// gone (expired between the index read and this one).
func rowFromValues(ip string, vals []any) (Row, bool) {
	if len(vals) != len(rowFields) || vals[0] == nil {
		return Row{}, false
	}
	r := Row{IP: ip}
	r.Score, _ = strconv.Atoi(str(vals[0]))
	r.Severity = event.Severity(str(vals[1]))
	if err := json.Unmarshal([]byte(str(vals[2])), &r.Tags); err != nil || r.Tags == nil {
		r.Tags = []string{}
	}
	r.ISP, r.Country, r.City = str(vals[3]), str(vals[4]), str(vals[5])
	r.ASN, _ = strconv.ParseInt(str(vals[6]), 10, 64)
	r.ASOrg = str(vals[7])
	r.FirstSeen = msTime(str(vals[8]))
	r.LastSeen = msTime(str(vals[9]))
	r.Sightings, _ = strconv.ParseInt(str(vals[10]), 10, 64)
	r.Type, r.Source, r.Gate = str(vals[11]), str(vals[12]), str(vals[13])
	r.Confidence, _ = strconv.Atoi(str(vals[14]))
	if err := json.Unmarshal([]byte(str(vals[15])), &r.ValidatedBy); err != nil || r.ValidatedBy == nil {
		r.ValidatedBy = []string{}
	}
	rowPriority(&r)
	return r, true
}

func msTime(s string) time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// rows reads the rows of ips, in order, skipping those gone.
func (s *Store) rows(ctx context.Context, ips []string) ([]Row, error) {
	if len(ips) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(ips))
	for i, ip := range ips {
		cmds[i] = pipe.HMGet(ctx, s.indicatorKey(ip), rowFields...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("view: read indicators: %w", err)
	}
	out := make([]Row, 0, len(ips))
	for i, c := range cmds {
		if r, ok := rowFromValues(ips[i], c.Val()); ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// Page is one page of the ranking.
type Page struct {
	Rows []Row `json:"indicators"`
	// Total counts the indicators that match. Without filters it is the size of the ranking;
	// with filters it counts matches among the indicators scanned, exact unless Truncated.
	Total int64 `json:"total"`
	// Truncated: the filtered scan stopped at THREATPIPE_VIEW_SCAN_LIMIT indicators from the
	// top of the ranking; lower-ranked matches are not shown or counted.
	Truncated bool `json:"truncated"`
	Scanned   int  `json:"scanned"`
	Limit     int  `json:"limit"`
	Offset    int  `json:"offset"`
}

// scanPage is how many ranking entries a filtered List reads per round trip.
const scanPage = 500

// List returns the indicators matching f, highest priority first (score, then recency plus
// evidence credit; store_priority.go).
//
// Without filters it reads exactly the requested page. With filters it scans the ranking from the
// top, within the score range of the selected severities, reading at most ScanLimit indicators:
// matches below that bound are neither shown nor counted, and the page says so (Truncated).
func (s *Store) List(ctx context.Context, f Filter) (*Page, error) {
	return s.list(ctx, f.withDefaults())
}

// list is List for a filter already defaulted and bounded (List: MaxLimit; Export:
// MaxExportLimit).
func (s *Store) list(ctx context.Context, f Filter) (*Page, error) {
	page := &Page{Rows: []Row{}, Limit: f.Limit, Offset: f.Offset}
	if !f.filtered() {
		pipe := s.rdb.Pipeline()
		total := pipe.ZCard(ctx, s.rankKey())
		ips := pipe.ZRevRange(ctx, s.rankKey(), int64(f.Offset), int64(f.Offset+f.Limit-1))
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("view: read ranking: %w", err)
		}
		rows, err := s.rows(ctx, ips.Val())
		if err != nil {
			return nil, err
		}
		page.Rows = append(page.Rows, rows...)
		page.Total, page.Scanned = total.Val(), len(ips.Val())
		return page, nil
	}
	minRank, maxRank := "-inf", "+inf"
	if lo, hi, ok := severityScoreRange(f.Severity); ok {
		minRank, maxRank = priorityBand(lo, hi)
	}
	now := s.opts.Now()
	seen := make(map[string]bool)
	exhausted := false
	for page.Scanned < s.opts.ScanLimit {
		n := min(scanPage, s.opts.ScanLimit-page.Scanned)
		ips, err := s.rdb.ZRevRangeByScore(ctx, s.rankKey(), &redis.ZRangeBy{
			Max: maxRank, Min: minRank, Offset: int64(page.Scanned), Count: int64(n),
		}).Result()
		if err != nil {
			return nil, fmt.Errorf("view: read ranking: %w", err)
		}
		page.Scanned += len(ips)
		rows, err := s.rows(ctx, ips)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if seen[r.IP] || !f.Match(r, now) {
				continue
			}
			seen[r.IP] = true // the ranking may shift between pages
			if page.Total >= int64(f.Offset) && len(page.Rows) < f.Limit {
				page.Rows = append(page.Rows, r)
			}
			page.Total++
		}
		if len(ips) < n {
			exhausted = true
			break
		}
	}
	if !exhausted {
		more, err := s.rdb.ZCount(ctx, s.rankKey(), minRank, maxRank).Result()
		if err != nil {
			return nil, fmt.Errorf("view: count ranking: %w", err)
		}
		page.Truncated = more > int64(page.Scanned)
	}
	return page, nil
}

// Get returns everything the view holds about ip (any spelling), or ErrNotFound.
func (s *Store) Get(ctx context.Context, ip string) (*Indicator, error) {
	ind, err := event.ParseIP(ip)
	if err != nil {
		return nil, ErrNotFound
	}
	keys := s.indicatorKeys(ind.Value)
	pipe := s.rdb.Pipeline()
	hash := pipe.HGetAll(ctx, keys[0])
	hist := pipe.LRange(ctx, keys[1], 0, -1)
	acts := pipe.LRange(ctx, keys[2], 0, -1)
	counts := pipe.HGetAll(ctx, keys[4])
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("view: read %s: %w", ind.Value, err)
	}
	h := hash.Val()
	if len(h) == 0 || h[fScore] == "" {
		return nil, ErrNotFound
	}
	vals := make([]any, len(rowFields))
	for i, f := range rowFields {
		if v, ok := h[f]; ok {
			vals[i] = v
		}
	}
	row, _ := rowFromValues(ind.Value, vals)
	out := &Indicator{Row: row, History: []HistoryEntry{}, Actions: []act.Record{}, ActionCounts: map[string]int64{}}
	for outcome, v := range counts.Val() {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			out.ActionCounts[outcome] = n
		}
	}
	if raw := h[fEvent]; raw != "" {
		var ev event.Scored
		if json.Unmarshal([]byte(raw), &ev) == nil {
			out.Latest = &ev
		}
	}
	for _, raw := range hist.Val() {
		var e HistoryEntry
		if json.Unmarshal([]byte(raw), &e) == nil {
			out.History = append(out.History, e)
		}
	}
	// Newest first by time: events complete out of order.
	sort.SliceStable(out.History, func(i, j int) bool { return out.History[i].At.After(out.History[j].At) })
	for _, raw := range acts.Val() {
		var r act.Record
		if json.Unmarshal([]byte(raw), &r) == nil {
			out.Actions = append(out.Actions, r)
		}
	}
	sort.SliceStable(out.Actions, func(i, j int) bool { return out.Actions[i].At.After(out.Actions[j].At) })
	return out, nil
}

// Count returns how many indicators the ranking holds.
func (s *Store) Count(ctx context.Context) (int64, error) {
	n, err := s.rdb.ZCard(ctx, s.rankKey()).Result()
	if err != nil {
		return 0, fmt.Errorf("view: count: %w", err)
	}
	return n, nil
}

// severityScoreRange is the score range covering the given severities (as event.SeverityOf
// buckets scores); ok is false when sevs is empty.
func severityScoreRange(sevs []string) (lo, hi int, ok bool) {
	lo, hi = math.MaxInt, -1
	for _, s := range sevs {
		l, h := severityBounds(event.Severity(s))
		lo, hi = min(lo, l), max(hi, h)
	}
	return lo, hi, hi >= 0
}

// severityBounds is the score range event.SeverityOf maps to s; an unknown severity gets the
// critical range (ParseFilter accepts only the known ones).
func severityBounds(s event.Severity) (int, int) {
	if b, ok := severityRanges[s]; ok {
		return b[0], b[1]
	}
	b := severityRanges[event.SeverityCritical]
	return b[0], b[1]
}

// severityRanges holds, per severity, the lowest and highest score event.SeverityOf maps to it.
var severityRanges = func() map[event.Severity][2]int {
	r := map[event.Severity][2]int{}
	for score := 0; score <= 100; score++ {
		sev := event.SeverityOf(score)
		b, ok := r[sev]
		if !ok {
			b = [2]int{score, score}
		}
		b[0], b[1] = min(b[0], score), max(b[1], score)
		r[sev] = b
	}
	return r
}()

// canonicalIP returns the canonical spelling of an address, or ok false.
func canonicalIP(s string) (string, bool) {
	ind, err := event.ParseIP(s)
	if err != nil {
		return "", false
	}
	return ind.Value, true
}
