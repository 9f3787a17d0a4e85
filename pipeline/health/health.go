// Package health is how integrations report their state to the prioritised view: every replica
// of every role writes a Snapshot per provider and per sink to Redis every few seconds, and the
// view reads them all back, so an operator sees quota, breaker state, errors and the last error
// of each integration across the fleet on one page (and at /api/v1/health).
package health

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
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
	// Quota, for providers with a daily quota: used and limit today, and when it resets.
	QuotaUsed      int64     `json:"quota_used"`
	QuotaLimit     int64     `json:"quota_limit"`
	QuotaReset     time.Time `json:"quota_reset,omitempty"`
	QuotaWarnRatio float64   `json:"quota_warn_ratio,omitempty"`
	// Calls counts requests since the replica started, by outcome (ok, transient, rate_limited,
	// timeout, ... for providers; the audit outcomes for sinks).
	Calls       map[string]int64 `json:"calls"`
	Errors      int64            `json:"errors"`
	Timeouts    int64            `json:"timeouts"`
	LastError   string           `json:"last_error,omitempty"`
	LastErrorAt time.Time        `json:"last_error_at,omitempty"`
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

// Store keeps snapshots in Redis under <prefix>:health:<component>:<name>, a hash of owner to
// snapshot JSON. Snapshots older than their TTL are ignored, so a dead replica drops out.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewStore returns a store under prefix (THREATPIPE_REDIS_KEY_PREFIX).
func NewStore(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, prefix: prefix}
}

func (s *Store) key(component, name string) string {
	return s.prefix + ":health:" + component + ":" + name
}

func (s *Store) index() string { return s.prefix + ":health:index" }

// Put writes one snapshot, valid for ttl.
func (s *Store) Put(ctx context.Context, snap Snapshot, ttl time.Duration) error {
	raw, err := json.Marshal(snap)
	if err != nil {
		return err
	}
	key := s.key(snap.Component, snap.Name)
	pipe := s.rdb.TxPipeline()
	pipe.HSet(ctx, key, snap.Owner, raw)
	pipe.Expire(ctx, key, 10*ttl) // the hash outlives one owner; stale owners are filtered on read
	pipe.SAdd(ctx, s.index(), key)
	pipe.Expire(ctx, s.index(), 24*time.Hour)
	if _, err := pipe.Exec(ctx); err != nil {
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
	now := time.Now()
	var out []Snapshot
	for _, k := range keys {
		vals, err := s.rdb.HGetAll(ctx, k).Result()
		if err != nil {
			return nil, fmt.Errorf("health: read %s: %w", k, err)
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
