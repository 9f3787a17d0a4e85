package view

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline"
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
	fresh, created, cur := scriptResult(res)
	var counters func(redis.Pipeliner)
	if fresh {
		counters = s.countEvent(ctx, ev, now)
	}
	if err := s.reconcile(ctx, ip, cur, counters); err != nil {
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

// scriptResult reads applyScored's answer: {1 (new) or 0 (duplicate), 1 when created, then the
// rankFields as stored after the update}.
func scriptResult(res []any) (fresh, created bool, cur rankState) {
	if len(res) < 2+len(rankFields) {
		return false, false, nil
	}
	n, _ := res[0].(int64)
	c, _ := res[1].(int64)
	return n == 1, c == 1, rankStateOf(res[2:])
}

// maxReconcile bounds the index rewrites of one update. Concurrent writers of one indicator
// usually settle in two or three; a burst of them on one hot indicator (16 writers in the
// store tests, under -race) can chase each other longer, so each retry waits a little, at
// random, to break the lockstep.
const maxReconcile = 32

// reconcile makes the indexes match the indicator's current state (cur as the caller read it;
// nil when the indicator is gone), re-reading the indicator after each write until it stands
// still. extra, when set, adds commands to the first write.
func (s *Store) reconcile(ctx context.Context, ip string, cur rankState, extra func(redis.Pipeliner)) error {
	for range maxReconcile {
		pipe := s.rdb.Pipeline()
		if extra != nil {
			extra(pipe)
			extra = nil
		}
		want := cur.entry()
		s.indexCommands(ctx, pipe, ip, want)
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("view: index %s: %w", ip, err)
		}
		now, err := s.readRankState(ctx, ip)
		if err != nil {
			return err
		}
		// Settled when the indicator, as it stands now, indexes as written (changes that leave
		// the priority and the last sighting alone need no new write).
		if now.entry() == want {
			return nil
		}
		cur = now
		if !pipeline.Sleep(ctx, time.Duration(rand.Int64N(int64(2*time.Millisecond)))) {
			return ctx.Err()
		}
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
