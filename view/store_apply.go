package view

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// ApplyScored folds one scored event into its indicator's state. ev must carry a canonical
// indicator value (DecodeScored ensures it). A redelivered event (same event id for the same
// indicator, within the last DedupEvents) changes nothing; an event observed longer ago than the
// retention is skipped; a gated event is only counted unless Gated is GatedStore (countGated).
// The cap on indicators is not enforced here: see EnforceCap.
func (s *Store) ApplyScored(ctx context.Context, ev *event.Scored) (Applied, error) {
	applied, _, err := s.applyScoredEvent(ctx, ev)
	return applied, err
}

// applyScoredEvent is ApplyScored, also saying whether the event created its indicator (and so
// grew the ranking).
func (s *Store) applyScoredEvent(ctx context.Context, ev *event.Scored) (Applied, bool, error) {
	now := s.opts.Now()
	ip := ev.Indicator.Value
	at := sightingTime(ev, now)
	if now.Sub(at) >= s.opts.Retention {
		return AppliedExpired, false, nil
	}
	if ev.Gate != nil && s.opts.Gated == GatedCount {
		applied, err := s.countGated(ctx, ev, now)
		return applied, false, err
	}
	score := clampScore(ev.Score)
	// The severity follows from the score; a producer's own severity may disagree with it, and
	// the severity filter searches the ranking by score ranges.
	sev := event.SeverityOf(score)
	tags := normTags(ev.Tags)
	tagsJSON, _ := json.Marshal(tags)
	latest := latestCopy(ev)
	evJSON, err := json.Marshal(latest)
	if err != nil {
		return "", false, fmt.Errorf("view: encode event %s: %w", ev.EventID, err)
	}
	histJSON, _ := json.Marshal(HistoryEntry{At: at, Score: score, Severity: sev, EventID: ev.EventID, Revision: ev.Revision, Source: ev.Source})
	d := describe(ev)
	gate := ""
	if ev.Gate != nil {
		gate = ev.Gate.Reason
	}
	asn := ""
	if d.asn > 0 {
		asn = strconv.FormatInt(d.asn, 10)
	}
	id, revision := "e:"+ev.EventID, "0"
	if ev.Revision > 0 { // a revision updates the indicator; only its event's first publication counts a sighting
		id, revision = id+"#"+strconv.Itoa(ev.Revision), "1"
	}
	res, err := applyScored.Run(ctx, s.rdb, s.indicatorKeys(ip),
		id, at.UnixMilli(), now.UnixMilli(), s.opts.Retention.Milliseconds(),
		s.opts.History, s.opts.DedupEvents, histJSON,
		score, string(sev), tagsJSON, evJSON, string(ev.Indicator.Type), ev.Source, gate,
		d.isp, d.country, d.city, asn, d.asOrg, min(max(ev.Confidence, 0), 100), agreeJSON(ev.ValidatedBy), revision,
	).Slice()
	if err != nil {
		return "", false, fmt.Errorf("view: apply %s: %w", ip, err)
	}
	fresh, curScore, curLast, created := scriptResult(res)
	var counters func(redis.Pipeliner)
	if fresh {
		counters = s.countEvent(ctx, ev, now)
	}
	if err := s.reconcile(ctx, ip, curScore, curLast, counters); err != nil {
		return "", false, err
	}
	if !fresh {
		return AppliedDuplicate, false, nil
	}
	return AppliedNew, created, nil
}

// ApplyRecord adds an audit record to the actions of its target. digest identifies the record
// for de-duplication (RecordDigest of the message value). Records that say nothing new happened
// (a repeat suppressed within the playbook's window, a redelivered event) are only counted, so
// that a hot indicator's repeats do not push what was done out of the capped list.
func (s *Store) ApplyRecord(ctx context.Context, rec *act.Record, digest string) (Applied, error) {
	now := s.opts.Now()
	keys := s.indicatorKeys(rec.Target)
	entry, err := json.Marshal(rec)
	if err != nil {
		return "", fmt.Errorf("view: encode record: %w", err)
	}
	listed := "1"
	if rec.Outcome == act.OutcomeSuppressed || rec.Outcome == act.OutcomeDuplicate {
		listed = "0"
	}
	outcome := string(rec.Outcome)
	if outcome == "" || len(outcome) > 64 {
		outcome = "unknown"
	}
	n, err := applyRecord.Run(ctx, s.rdb, []string{keys[2], keys[3], keys[4]},
		"a:"+digest, now.UnixMilli(), s.opts.Retention.Milliseconds(), s.opts.History, s.opts.DedupEvents, entry,
		outcome, listed).Int()
	if err != nil {
		return "", fmt.Errorf("view: apply record for %s: %w", rec.Target, err)
	}
	if n == 0 {
		return AppliedDuplicate, nil
	}
	return AppliedNew, nil
}

// RecordDigest identifies an audit record by its bytes: a redelivered or re-published record is
// byte-identical (records carry their own nanosecond timestamp).
func RecordDigest(value []byte) string {
	sum := sha256.Sum256(value)
	return hex.EncodeToString(sum[:12])
}

func scriptResult(res []any) (fresh bool, score, last string, created bool) {
	if len(res) < 3 {
		return false, "", "", false
	}
	n, _ := res[0].(int64)
	score, _ = res[1].(string)
	last, _ = res[2].(string)
	if len(res) > 3 {
		c, _ := res[3].(int64)
		created = c == 1
	}
	return n == 1, score, last, created
}

// rankOf is the ranking value of a score and a last-seen time in unix ms.
func rankOf(score int, lastMS int64) float64 {
	return float64(score)*rankScale + float64(lastMS/1000)
}

// maxReconcile bounds the rank rewrites of one update; concurrent writers of one indicator
// settle in two or three.
const maxReconcile = 8

// reconcile makes the indexes match the indicator's current score and last sighting (score and
// last as the caller read them; "" when the indicator is gone), re-reading the indicator after
// each write until it stands still. extra, when set, adds commands to the first write.
func (s *Store) reconcile(ctx context.Context, ip, score, last string, extra func(redis.Pipeliner)) error {
	for range maxReconcile {
		pipe := s.rdb.Pipeline()
		if extra != nil {
			extra(pipe)
			extra = nil
		}
		sc, errS := strconv.Atoi(score)
		ls, errL := strconv.ParseInt(last, 10, 64)
		if errS != nil || errL != nil {
			pipe.ZRem(ctx, s.rankKey(), ip)
			pipe.ZRem(ctx, s.seenIndexKey(), ip)
		} else {
			pipe.ZAdd(ctx, s.rankKey(), redis.Z{Score: rankOf(sc, ls), Member: ip})
			pipe.ZAdd(ctx, s.seenIndexKey(), redis.Z{Score: float64(ls), Member: ip})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("view: index %s: %w", ip, err)
		}
		vals, err := s.rdb.HMGet(ctx, s.indicatorKey(ip), fScore, fLastSeen).Result()
		if err != nil {
			return fmt.Errorf("view: read back %s: %w", ip, err)
		}
		nowScore, nowLast := str(vals[0]), str(vals[1])
		if nowScore == score && nowLast == last {
			return nil
		}
		score, last = nowScore, nowLast
	}
	return fmt.Errorf("view: the rank of %s did not settle after %d writes", ip, maxReconcile)
}

// countEvent returns the chart counters of one new scored event: events per minute and the
// cache outcome of each provider's part (see Minute).
func (s *Store) countEvent(ctx context.Context, ev *event.Scored, now time.Time) func(redis.Pipeliner) {
	at := ev.ProcessedAt
	if at.IsZero() || at.After(now) {
		at = now
	}
	if now.Sub(at) > time.Hour+time.Minute {
		return nil // outside every chart: a backlog being replayed
	}
	var hits, joined, lookups int64
	for _, p := range ev.Providers {
		if p == nil {
			continue
		}
		switch {
		case p.Cache != nil && p.Cache.Hit:
			hits++
		case p.Cache != nil && p.Cache.Joined:
			joined++
		case p.Status == event.StatusQuotaExhausted || p.Status == event.StatusDisabled:
			// not asked: neither a hit nor a lookup
		default:
			lookups++
		}
	}
	key := s.minuteKey(at.Unix() / 60)
	return func(pipe redis.Pipeliner) {
		pipe.HIncrBy(ctx, key, "events", 1)
		if hits > 0 {
			pipe.HIncrBy(ctx, key, "hits", hits)
		}
		if joined > 0 {
			pipe.HIncrBy(ctx, key, "joined", joined)
		}
		if lookups > 0 {
			pipe.HIncrBy(ctx, key, "lookups", lookups)
		}
		pipe.Expire(ctx, key, minuteTTL)
	}
}

// sightingTime is when an event saw its indicator: observed_at, else processed_at, never later
// than now (a producer's clock running ahead must not pin an indicator at the top).
func sightingTime(ev *event.Scored, now time.Time) time.Time {
	at := ev.ObservedAt
	if at.IsZero() {
		at = ev.ProcessedAt
	}
	if at.IsZero() || at.After(now) {
		at = now
	}
	return at.UTC()
}

func clampScore(n int) int { return min(max(n, 0), 100) }

// normTags sorts, de-duplicates and bounds an event's tags.
func normTags(tags []string) []string {
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		t = strings.TrimSpace(t)
		if t == "" || len(t) > 64 {
			continue
		}
		out = append(out, t)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > 32 {
		out = out[:32]
	}
	return out
}

// latestCopy is the copy of an event the view keeps: without a large context.
func latestCopy(ev *event.Scored) *event.Scored {
	cp := *ev
	if len(cp.Context) > maxContextBytes {
		cp.Context = nil
		cp.Warnings = append(slices.Clip(cp.Warnings), "context dropped by the view: larger than 8 KiB")
	}
	size := 0
	for k, v := range cp.Extra {
		size += len(k) + len(v)
	}
	if size > maxContextBytes {
		cp.Extra = nil
	}
	return &cp
}

// description is what the view shows about who holds an address.
type description struct {
	isp, country, city, asOrg string
	asn                       int64
}

// describe takes ISP, geo and AS from the event's ECS fields, and from the providers' answers
// (in name order) for whatever those lack.
func describe(ev *event.Scored) description {
	var d description
	d.isp = ev.ISP
	if ev.Geo != nil {
		d.country, d.city = ev.Geo.CountryISOCode, ev.Geo.CityName
	}
	if ev.AS != nil {
		d.asn = ev.AS.Number
		if ev.AS.Organization != nil {
			d.asOrg = ev.AS.Organization.Name
		}
	}
	names := make([]string, 0, len(ev.Providers))
	for n := range ev.Providers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := ev.Providers[n]
		if p == nil || p.Result == nil {
			continue
		}
		r := p.Result
		d.isp = cmp.Or(d.isp, r.ISP)
		d.country = cmp.Or(d.country, r.CountryISO)
		d.city = cmp.Or(d.city, r.City)
		d.asOrg = cmp.Or(d.asOrg, r.ASOrganization)
		if d.asn == 0 {
			d.asn = r.ASNumber
		}
	}
	d.country = strings.ToUpper(d.country)
	return d
}
