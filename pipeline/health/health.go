// Package health is how integrations report their state to the prioritised view: every replica
// of every role writes a Snapshot per provider and per sink to Redis every few seconds, and the
// view reads them all back, so an operator sees quota, breaker state, errors and the last error
// of each integration across the fleet on one page (and at /api/v1/health).
package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Component kinds.
const (
	ComponentProvider = "provider"
	ComponentSink     = "sink"
)

// Statuses, from best.
const (
	StatusOK             = "ok"
	StatusDegraded       = "degraded"        // recent errors, or quota past the warning ratio
	StatusFailing        = "failing"         // breaker open, or only errors lately
	StatusQuotaExhausted = "quota_exhausted" // cache-only until the reset
	StatusDisabled       = "disabled"        // the key was rejected
)

// ReportInterval is how often every replica writes its snapshots, and ReportTTL how long each
// stays valid: three intervals, so that one slow or missed write does not drop a live replica
// from the view.
const (
	ReportInterval = 5 * time.Second
	ReportTTL      = 3 * ReportInterval
)

// Snapshot is one integration's state as one replica sees it.
type Snapshot struct {
	Component string    `json:"component"` // provider or sink
	Name      string    `json:"name"`
	Owner     string    `json:"owner"` // the replica (host-pid)
	Role      string    `json:"role"`  // enrich, act
	At        time.Time `json:"at"`
	Status    string    `json:"status"`
	// Breaker is the circuit breaker's state (closed, half-open, open), for providers.
	Breaker string `json:"breaker,omitempty"`
	// Quota, for providers with a quota: used and limit in the current period (day or month), and when it resets.
	QuotaUsed      int64     `json:"quota_used"`
	QuotaLimit     int64     `json:"quota_limit"`
	QuotaReset     time.Time `json:"quota_reset,omitzero"`
	QuotaWarnRatio float64   `json:"quota_warn_ratio,omitempty"`
	// Calls counts requests since the replica started, by outcome (ok, transient, rate_limited,
	// timeout, ... for providers; the audit outcomes for sinks). Sink snapshots also carry the
	// guardrails in force while the snapshot was taken, as flags worth 1: kill_switch_on (no
	// action is performed) and, for block sinks, rate_cap_tripped (blocking is alert-only).
	Calls map[string]int64 `json:"calls"`
	// Errors counts failed calls since the replica started, timeouts included; Timeouts counts
	// the calls that ran out of time.
	Errors   int64 `json:"errors"`
	Timeouts int64 `json:"timeouts"`
	// LastError is the latest failure's text (see ErrorText: truncated, URLs cut to their host).
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Files are the local files an offline source reads (block lists, GeoIP databases), as
	// this replica last loaded them.
	Files []File `json:"files,omitempty"`
}

// File is one local file an offline source reads and reloads when it changes.
type File struct {
	Name   string `json:"name"`
	Kind   string `json:"kind,omitempty"` // block, benign, tag for lists; city, asn for GeoIP
	Path   string `json:"path"`
	Format string `json:"format,omitempty"` // the format read, or the database type
	// Entries are the distinct addresses and CIDRs a list holds; Skipped the lines or
	// entries that were neither. Zero for databases.
	Entries int `json:"entries"`
	Skipped int `json:"skipped"`
	// BuiltAt is when the vendor built the file, where it says (MaxMind metadata): a stale
	// database is worth seeing.
	BuiltAt  time.Time `json:"built_at,omitzero"`
	LoadedAt time.Time `json:"loaded_at"`
	// LastError is why the file's current version could not be loaded (the previous version
	// is still in use); empty once a version loads.
	LastError string `json:"last_error,omitempty"`
}

// QuotaWarning reports whether the quota is past its warning ratio (0.8 unless set).
func (s Snapshot) QuotaWarning() bool {
	if s.QuotaLimit <= 0 {
		return false
	}
	ratio := s.QuotaWarnRatio
	if ratio <= 0 {
		ratio = 0.8
	}
	return float64(s.QuotaUsed) >= ratio*float64(s.QuotaLimit)
}

// Store keeps snapshots in Redis: per integration, a hash of owner to snapshot JSON
// (<prefix>:health:{health}:snap:<component>:<name>), a sorted set of owners by the time of their
// last write, and an index of the hashes. Every key carries the hash tag {health}, so that a
// write is one atomic script on Redis Cluster too.
//
// Snapshots older than the reader's maxAge are ignored, so a dead replica drops out of the view
// at once; a writer removes the entries of owners silent for ten of its TTLs, so that replicas
// that came and went (a new host-pid per restart) do not pile up in a hash that lives on.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewStore returns a store under prefix (THREATPIPE_REDIS_KEY_PREFIX).
func NewStore(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, prefix: prefix}
}

func (s *Store) base() string { return s.prefix + ":health:{health}:" }

func (s *Store) key(component, name string) string {
	return s.base() + "snap:" + component + ":" + name
}

func (s *Store) ownersKey(component, name string) string {
	return s.base() + "owners:" + component + ":" + name
}

func (s *Store) index() string { return s.base() + "index" }

// keepFactor is how many TTLs an owner's entry, and a hash nobody writes any more, are kept.
const keepFactor = 10

// indexTTL is the least lifetime of the index; every write extends it.
const indexTTL = 24 * time.Hour

// putScript writes one owner's snapshot and prunes the owners whose last write is older than
// the keep horizon.
// KEYS: snapshots hash, owners sorted set, index. ARGV: owner, snapshot JSON, written at (unix
// ms), horizon (exclusive score bound), keep (ms), index lifetime (ms).
var putScript = redis.NewScript(`
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
for i = 1, #stale do redis.call('HDEL', KEYS[1], stale[i]) end
if #stale > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4]) end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('SADD', KEYS[3], KEYS[1])
redis.call('PEXPIRE', KEYS[3], ARGV[6])
return #stale`)

// forgetScript drops a hash that no longer exists from the index (KEYS: index, hash).
var forgetScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 0 then return redis.call('SREM', KEYS[1], KEYS[2]) end
return 0`)

// Put writes one snapshot, valid for ttl. The snapshot must name its component, integration
// and owner, and carry the time it was taken.
func (s *Store) Put(ctx context.Context, snap Snapshot, ttl time.Duration) error {
	switch {
	case ttl <= 0:
		return fmt.Errorf("health: put: ttl %s is not positive", ttl)
	case snap.Component == "" || snap.Name == "" || snap.Owner == "":
		return errors.New("health: put: a snapshot needs a component, a name and an owner")
	case snap.At.IsZero():
		return errors.New("health: put: a snapshot needs the time it was taken")
	}
	raw, err := json.Marshal(snap)
	if err != nil {
		return fmt.Errorf("health: put: %w", err)
	}
	keep := keepFactor * ttl
	at := snap.At.UnixMilli()
	horizon := "(" + strconv.FormatInt(at-keep.Milliseconds(), 10)
	keys := []string{s.key(snap.Component, snap.Name), s.ownersKey(snap.Component, snap.Name), s.index()}
	if err := putScript.Run(ctx, s.rdb, keys, snap.Owner, raw, at, horizon, keep.Milliseconds(),
		max(indexTTL, keep).Milliseconds()).Err(); err != nil {
		return fmt.Errorf("health: put: %w", err)
	}
	return nil
}

// All returns every snapshot written within maxAge, sorted by component, name and owner.
func (s *Store) All(ctx context.Context, maxAge time.Duration) ([]Snapshot, error) {
	keys, err := s.rdb.SMembers(ctx, s.index()).Result()
	if err != nil {
		return nil, fmt.Errorf("health: index: %w", err)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	reads := make([]*redis.MapStringStringCmd, len(keys))
	for i, k := range keys {
		reads[i] = pipe.HGetAll(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("health: read: %w", err)
	}
	now := time.Now()
	var out []Snapshot
	for i, r := range reads {
		vals := r.Val()
		if len(vals) == 0 {
			// Nobody wrote it for ten TTLs: the integration is gone from every replica.
			_ = forgetScript.Run(ctx, s.rdb, []string{s.index(), keys[i]}).Err()
			continue
		}
		for _, raw := range vals {
			var snap Snapshot
			if json.Unmarshal([]byte(raw), &snap) != nil || now.Sub(snap.At) > maxAge {
				continue
			}
			out = append(out, snap)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Component != b.Component {
			return a.Component < b.Component
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Owner < b.Owner
	})
	return out, nil
}
