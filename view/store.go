// Package view is threatpipe's prioritised indicator view, the analysts' stage: it folds the
// scored events and the playbook workers' audit records into per-indicator state in Redis, ranks
// the indicators by score and recency, and serves them as server-rendered pages, a JSON API and
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
// Two sorted sets index all indicators: <prefix>:view:rank (score*1e10 + last seen in unix
// seconds, so score first and recency second) and <prefix>:view:seen (last seen in unix ms, for
// the retention sweep). They live in other slots than the indicators, so after each update the
// store writes the indicator's rank and then reads the indicator back, rewriting the rank until
// the two agree: whatever the interleaving of concurrent writers, the last writer leaves the rank
// matching the indicator. Per-minute counters for the charts live in <prefix>:view:m:<minute>
// for two hours.
//
// Retention: an indicator's keys expire THREATPIPE_VIEW_RETENTION after its last sighting, and
// Sweep removes indicators past it from the two indexes.
package view

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
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

// rankScale separates the score from the last-seen seconds in a rank: score*rankScale + seconds.
// 100*1e10 + 1e10 stays far below 2^53, so ranks are exact in a float64.
const rankScale = 1e10

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
	return &Store{rdb: rdb, prefix: prefix, opts: o, health: health.NewStore(rdb, prefix)}
}

func (s *Store) base() string                  { return s.prefix + ":view:" }
func (s *Store) rankKey() string               { return s.base() + "rank" }
func (s *Store) seenIndexKey() string          { return s.base() + "seen" }
func (s *Store) indicatorKey(ip string) string { return s.base() + "i:{" + ip + "}" }
func (s *Store) minuteKey(minute int64) string {
	return s.base() + "m:" + strconv.FormatInt(minute, 10)
}

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
)

// seenLua holds the helpers both apply scripts use on an indicator's sorted set of applied event
// ids and record digests. Members are scored by arrival order, taken from the set itself (its
// highest score + 1), so event ids and record digests share one scheme and trimming evicts the
// oldest arrivals whatever their kind; scoring by time would tie within a millisecond (ties are
// trimmed in lexical order) and a counter kept elsewhere could expire before the set.
const seenLua = `
local function nextSeen(seen)
  local top = redis.call('ZREVRANGE', seen, 0, 0, 'WITHSCORES')
  if top[2] then return tonumber(top[2]) + 1 end
  return 1
end
local function trimSeen(seen, seenCap)
  local n = redis.call('ZCARD', seen)
  if n > seenCap then redis.call('ZREMRANGEBYRANK', seen, 0, n - seenCap - 1) end
end
`

// applyScored updates one indicator from a scored event; see the package comment for the keys.
// It returns {1 (new) or 0 (duplicate), score, last_seen} after the update.
var applyScored = redis.NewScript(seenLua + `
local h, hist, acts, seen, counts = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id = ARGV[1]
local obs, now, ret = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local histCap, seenCap = tonumber(ARGV[5]), tonumber(ARGV[6])
if redis.call('ZSCORE', seen, id) then
  local v = redis.call('HMGET', h, 'score', 'last_seen')
  return {0, v[1], v[2]}
end
redis.call('ZADD', seen, nextSeen(seen), id)
trimSeen(seen, seenCap)
local last = tonumber(redis.call('HGET', h, 'last_seen') or '-1')
local first = tonumber(redis.call('HGET', h, 'first_seen') or '-1')
if ARGV[22] ~= '1' then -- a revision is the same sighting, answered better
  redis.call('HINCRBY', h, 'sightings', 1)
  if first < 0 or obs < first then redis.call('HSET', h, 'first_seen', ARGV[2]) end
end
if obs >= last then
  redis.call('HSET', h, 'last_seen', ARGV[2], 'score', ARGV[8], 'severity', ARGV[9], 'tags', ARGV[10],
    'event', ARGV[11], 'type', ARGV[12], 'source', ARGV[13], 'gate', ARGV[14], 'event_id', id,
    'confidence', ARGV[20], 'validated_by', ARGV[21])
  local sticky = {'isp', 'country', 'city', 'asn', 'as_org'}
  for i = 1, #sticky do
    if ARGV[14 + i] ~= '' then redis.call('HSET', h, sticky[i], ARGV[14 + i]) end
  end
  last = obs
end
redis.call('LPUSH', hist, ARGV[7])
redis.call('LTRIM', hist, 0, histCap - 1)
local ttl = math.floor(last + ret - now)
if ttl < 1000 then ttl = 1000 end
redis.call('PEXPIRE', h, ttl)
redis.call('PEXPIRE', hist, ttl)
for _, k in ipairs({acts, seen, counts}) do
  local t = redis.call('PTTL', k)
  if t ~= -2 and t < ttl then redis.call('PEXPIRE', k, ttl) end
end
local v = redis.call('HMGET', h, 'score', 'last_seen')
return {1, v[1], v[2]}
`)

// applyRecord counts an audit record by outcome and, when listed, adds it to an indicator's
// actions, unless its digest was seen. The actions outlive the indicator's other keys by at most
// the retention: a record may arrive before the indicator's first scored event (the two topics
// are read independently).
var applyRecord = redis.NewScript(seenLua + `
local acts, seen, counts = KEYS[1], KEYS[2], KEYS[3]
local now, ret, cap, seenCap = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if redis.call('ZSCORE', seen, ARGV[1]) then return 0 end
redis.call('ZADD', seen, nextSeen(seen), ARGV[1])
trimSeen(seen, seenCap)
redis.call('HINCRBY', counts, ARGV[7], 1)
if ARGV[8] == '1' then
  redis.call('LPUSH', acts, ARGV[6])
  redis.call('LTRIM', acts, 0, cap - 1)
end
for _, k in ipairs({acts, seen, counts}) do
  local t = redis.call('PTTL', k)
  if t ~= -2 and t < ret then redis.call('PEXPIRE', k, ret) end
end
return 1
`)

// expireIndicator deletes an indicator whose last sighting is past the retention. It returns 1
// when the indicator is gone (deleted now, or expired before) and 0 when it is still current.
var expireIndicator = redis.NewScript(`
local last = redis.call('HGET', KEYS[1], 'last_seen')
if not last then return 1 end
if tonumber(last) + tonumber(ARGV[2]) > tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
return 1
`)

// ApplyScored folds one scored event into its indicator's state. ev must carry a canonical
// indicator value (DecodeScored ensures it). A redelivered event (same event id for the same
// indicator, within the last DedupEvents) changes nothing; an event observed longer ago than the
// retention is skipped.
func (s *Store) ApplyScored(ctx context.Context, ev *event.Scored) (Applied, error) {
	now := s.opts.Now()
	ip := ev.Indicator.Value
	at := sightingTime(ev, now)
	if now.Sub(at) >= s.opts.Retention {
		return AppliedExpired, nil
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
		return "", fmt.Errorf("view: encode event %s: %w", ev.EventID, err)
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
		return "", fmt.Errorf("view: apply %s: %w", ip, err)
	}
	fresh, curScore, curLast := scriptResult(res)
	var counters func(redis.Pipeliner)
	if fresh {
		counters = s.countEvent(ctx, ev, now)
	}
	if err := s.reconcile(ctx, ip, curScore, curLast, counters); err != nil {
		return "", err
	}
	if !fresh {
		return AppliedDuplicate, nil
	}
	return AppliedNew, nil
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

func scriptResult(res []any) (fresh bool, score, last string) {
	if len(res) != 3 {
		return false, "", ""
	}
	n, _ := res[0].(int64)
	score, _ = res[1].(string)
	last, _ = res[2].(string)
	return n == 1, score, last
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

// List returns the indicators matching f, sorted by score (highest first), then by last sighting
// (latest first).
//
// Without filters it reads exactly the requested page. With filters it scans the ranking from the
// top, within the score range of the selected severities, reading at most ScanLimit indicators:
// matches below that bound are neither shown nor counted, and the page says so (Truncated).
func (s *Store) List(ctx context.Context, f Filter) (*Page, error) {
	f = f.withDefaults()
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
		minRank = strconv.FormatFloat(float64(lo)*rankScale, 'f', 0, 64)
		maxRank = strconv.FormatFloat(float64(hi+1)*rankScale-1, 'f', 0, 64)
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

// sweepBatch is how many expired indicators one Sweep round handles per read.
const sweepBatch = 500

// Sweep removes the indicators whose last sighting is older than the retention: their keys (if
// Redis has not expired them yet) and their index entries. It returns how many it removed. An
// indicator sighted again meanwhile is kept and re-indexed.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	now := s.opts.Now()
	cutoff := strconv.FormatInt(now.Add(-s.opts.Retention).UnixMilli(), 10)
	removed := 0
	for {
		ips, err := s.rdb.ZRangeByScore(ctx, s.seenIndexKey(), &redis.ZRangeBy{Min: "-inf", Max: cutoff, Count: sweepBatch}).Result()
		if err != nil {
			return removed, fmt.Errorf("view: sweep: %w", err)
		}
		if len(ips) == 0 {
			return removed, nil
		}
		for _, ip := range ips {
			if err := ctx.Err(); err != nil {
				return removed, err
			}
			gone, err := expireIndicator.Run(ctx, s.rdb, s.indicatorKeys(ip), now.UnixMilli(), s.opts.Retention.Milliseconds()).Int()
			if err != nil {
				return removed, fmt.Errorf("view: sweep %s: %w", ip, err)
			}
			score, last := "", ""
			if gone == 0 {
				vals, err := s.rdb.HMGet(ctx, s.indicatorKey(ip), fScore, fLastSeen).Result()
				if err != nil {
					return removed, fmt.Errorf("view: sweep %s: %w", ip, err)
				}
				score, last = str(vals[0]), str(vals[1])
			} else {
				removed++
			}
			if err := s.reconcile(ctx, ip, score, last, nil); err != nil {
				return removed, err
			}
		}
		if len(ips) < sweepBatch {
			return removed, nil
		}
	}
}

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
// not counted. HitRate is hits over all three, nil when there were none.
type Minute struct {
	Start   time.Time `json:"start"`
	Events  int64     `json:"events"`
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
}

// Stats reads the chart data: the score distribution from the ranking, per-minute event and
// cache counters, and quotas from the integration health snapshots.
func (s *Store) Stats(ctx context.Context) (*Stats, error) {
	now := s.opts.Now()
	st := &Stats{GeneratedAt: now.UTC(), Scores: make([]Bucket, 10), Minutes: make([]Minute, 60)}
	pipe := s.rdb.Pipeline()
	card := pipe.ZCard(ctx, s.rankKey())
	counts := make([]*redis.IntCmd, 10)
	for b := range 10 {
		lo, hi := b*10, b*10+9
		maxRank := strconv.FormatFloat(float64(hi+1)*rankScale-1, 'f', 0, 64)
		if b == 9 {
			hi, maxRank = 100, "+inf"
		}
		st.Scores[b] = Bucket{From: lo, To: hi}
		counts[b] = pipe.ZCount(ctx, s.rankKey(), strconv.FormatFloat(float64(lo)*rankScale, 'f', 0, 64), maxRank)
	}
	current := now.Unix() / 60
	minutes := make([]*redis.SliceCmd, 60)
	for i := range 60 {
		m := current - 59 + int64(i)
		st.Minutes[i].Start = time.Unix(m*60, 0).UTC()
		minutes[i] = pipe.HMGet(ctx, s.minuteKey(m), "events", "hits", "joined", "lookups")
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
		m.Events, m.Hits, m.Joined, m.Lookups = num(v, 0), num(v, 1), num(v, 2), num(v, 3)
		if all := m.Hits + m.Joined + m.Lookups; all > 0 {
			r := float64(m.Hits) / float64(all)
			m.HitRate = &r
		}
	}
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
