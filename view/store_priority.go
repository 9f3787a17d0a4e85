package view

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The priority orders the ranking (docs/view.md, "Priority"). It is
//
//	priority = score × 10^13 + clamp(last_seen_ms − epoch_ms + credit_ms, 0, 10^13 − 1)
//
// where epoch is 2020-01-01T00:00:00Z and credit is the evidence behind the latest sighting,
// counted in hours of recency:
//
//	credit_h = 48 × confidence/100 + 12 × log2(1 + min(validated_by, 16)) + 2 × ⌊2 × log2(1 + sightings)⌋
//
// The score sits in the high part, so every score owns a contiguous band of priorities and the
// severity filters and score buckets stay range queries. Within a score, recency is measured
// against a fixed epoch rather than against now: a newer sighting simply has a larger value, so
// older indicators fall behind without anything rewriting them (the "decay" is relative, and
// free). The credit lets evidence outweigh freshness by a bounded amount: a confident,
// confirmed, often-seen indicator keeps its place for a day or two over a fresh single-source
// one, and a stale indicator loses to fresh ones once it is older than its credit difference.
// Milliseconds make ties rare; an exact tie falls back to Redis's order (the address, bytewise).
// Sightings count in half-doublings (a step at 1, 2, 3, 5, 7, 11, 15, 22... sightings): every
// sighting of a hot indicator would otherwise move its priority, and each move costs the
// writers a reconcile round (reconcile) against each other.

// priorityEpoch is the fixed origin of the recency part.
var priorityEpoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// priorityScale separates the score from the recency-plus-credit part. 101 × 10^13 stays far
// below 2^53, so priorities are exact in a float64 (a sorted set's score) and in JSON; the part
// below it holds milliseconds since the epoch until the year 2300.
const priorityScale = 1e13

// Credit weights, in hours of recency.
const (
	creditConfidenceH = 48 // at confidence 100
	creditSourceH     = 12 // per doubling of 1 + agreeing sources
	creditSightingH   = 2  // per half-doubling of 1 + sightings
	maxCreditSources  = 16
	maxCreditSighting = 1 << 31 // (1+s)² stays within a uint64
)

// priorityInputs are the indicator fields the priority is made of.
type priorityInputs struct {
	Score      int
	LastSeenMS int64
	Confidence int
	Sources    int
	Sightings  int64
}

// Priority is the ranking value of an indicator (see above).
func (in priorityInputs) Priority() int64 {
	rest := in.LastSeenMS - priorityEpoch.UnixMilli() + in.creditMS()
	rest = min(max(rest, 0), priorityScale-1)
	return int64(clampScore(in.Score))*priorityScale + rest
}

// CreditHours is the evidence credit in hours of recency.
func (in priorityInputs) CreditHours() float64 {
	conf := float64(min(max(in.Confidence, 0), 100))
	sources := float64(min(max(in.Sources, 0), maxCreditSources))
	return creditConfidenceH*conf/100 + creditSourceH*math.Log2(1+sources) + creditSightingH*float64(sightingSteps(in.Sightings))
}

// sightingSteps is ⌊2 × log2(1 + n)⌋ in integer arithmetic (the bit length of (1+n)² less one),
// so every replica and architecture agrees on the steps exactly.
func sightingSteps(n int64) int {
	m := uint64(min(max(n, 0), maxCreditSighting)) + 1
	return bits.Len64(m*m) - 1
}

func (in priorityInputs) creditMS() int64 {
	return int64(math.Round(in.CreditHours() * float64(time.Hour/time.Millisecond)))
}

// priorityBand is the priority range of the scores lo-hi.
func priorityBand(lo, hi int) (minP, maxP string) {
	return strconv.FormatFloat(float64(lo)*priorityScale, 'f', 0, 64),
		strconv.FormatFloat(float64(hi+1)*priorityScale-1, 'f', 0, 64)
}

// rankFields are the hash fields the priority is computed from, in the order rankState holds
// them. Comparing them as stored strings tells whether an indicator changed, without
// recomputing (and re-rounding) anything.
var rankFields = []string{fScore, fLastSeen, fConf, fAgree, fSightings}

// rankState is the stored values of rankFields; nil when the indicator is gone.
type rankState []string

// rankStateOf reads a rankState from an HMGET of rankFields; nil when the score or last sighting
// is missing (the indicator is gone or was never scored).
func rankStateOf(vals []any) rankState {
	if len(vals) != len(rankFields) || vals[0] == nil || vals[1] == nil {
		return nil
	}
	st := make(rankState, len(vals))
	for i, v := range vals {
		st[i] = str(v)
	}
	return st
}

// inputs parses the stored values; ok is false when score or last sighting does not parse.
func (st rankState) inputs() (priorityInputs, bool) {
	if len(st) != len(rankFields) {
		return priorityInputs{}, false
	}
	var in priorityInputs
	var errS, errL error
	in.Score, errS = strconv.Atoi(st[0])
	in.LastSeenMS, errL = strconv.ParseInt(st[1], 10, 64)
	in.Confidence, _ = strconv.Atoi(st[2])
	in.Sources = countAgreeing(st[3])
	in.Sightings, _ = strconv.ParseInt(st[4], 10, 64)
	return in, errS == nil && errL == nil
}

func countAgreeing(raw string) int {
	var v []string
	if json.Unmarshal([]byte(raw), &v) != nil {
		return 0
	}
	return len(v)
}

// rowPriority fills a row's priority and credit from its own fields.
func rowPriority(r *Row) {
	in := priorityInputs{Score: r.Score, LastSeenMS: r.LastSeen.UnixMilli(), Confidence: r.Confidence,
		Sources: len(r.ValidatedBy), Sightings: r.Sightings}
	r.Priority = in.Priority()
	r.CreditHours = math.Round(in.CreditHours()*10) / 10
}

// readRankState reads an indicator's rankState (nil when it is gone).
func (s *Store) readRankState(ctx context.Context, ip string) (rankState, error) {
	vals, err := s.rdb.HMGet(ctx, s.indicatorKey(ip), rankFields...).Result()
	if err != nil {
		return nil, fmt.Errorf("view: read %s: %w", ip, err)
	}
	return rankStateOf(vals), nil
}

// legacyRankKey is the ranking before the priority (score×10^10 + last seen seconds). A view
// upgraded in place re-indexes its members by priority (migrateRanking) and drops it.
func (s *Store) legacyRankKey() string { return s.base() + "rank" }

// migrateBatch is how many legacy members one migrateRanking round moves.
const migrateBatch = 500

// migrateRanking moves the members of the legacy ranking into the priority ranking, highest
// first, and returns how many it moved. Members are popped, so concurrent replicas never move
// the same one twice; an indicator gone meanwhile leaves both indexes. Sweep calls it, so a view
// upgraded in place migrates at its first sweep (at start).
func (s *Store) migrateRanking(ctx context.Context) (int, error) {
	moved := 0
	for {
		zs, err := s.rdb.ZPopMax(ctx, s.legacyRankKey(), migrateBatch).Result()
		if err != nil {
			return moved, fmt.Errorf("view: migrate ranking: %w", err)
		}
		for _, z := range zs {
			ip, _ := z.Member.(string)
			if err := s.settle(ctx, ip, false); err != nil {
				return moved, err
			}
			moved++
		}
		if len(zs) < migrateBatch {
			return moved, nil
		}
	}
}

// indexEntry is what the two indexes hold for one indicator; the zero value (not ok) means it
// is out of both.
type indexEntry struct {
	ok             bool
	priority, last int64
}

func (st rankState) entry() indexEntry {
	in, ok := st.inputs()
	if !ok {
		return indexEntry{}
	}
	return indexEntry{ok: true, priority: in.Priority(), last: in.LastSeenMS}
}

// indexCommands queues the index writes of one entry: by priority and by last sighting, or out
// of both when the indicator is gone.
func (s *Store) indexCommands(ctx context.Context, pipe redis.Pipeliner, ip string, e indexEntry) {
	if !e.ok {
		pipe.ZRem(ctx, s.rankKey(), ip)
		pipe.ZRem(ctx, s.seenIndexKey(), ip)
		return
	}
	pipe.ZAdd(ctx, s.rankKey(), redis.Z{Score: float64(e.priority), Member: ip})
	pipe.ZAdd(ctx, s.seenIndexKey(), redis.Z{Score: float64(e.last), Member: ip})
}
