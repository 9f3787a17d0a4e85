// Package allowlist is the shared allowlist of the analysts' false positives: addresses and
// CIDRs that no replica of the enricher looks up until the entry expires. The entries live in
// Redis (a sorted set by expiry and a hash of the entries, under THREATPIPE_REDIS_KEY_PREFIX) so
// that every replica sees an entry within one refresh (refresher.go); the gate consults them
// after its static ranges and names the reason allowlist.
package allowlist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// MaxEntries bounds the allowlist: every replica loads all of it into its gate, and an
// allowlist of thousands of false positives is a rules problem, not an allowlist.
const MaxEntries = 10000

// ErrFull is returned by Add when the allowlist holds MaxEntries live entries.
var ErrFull = errors.New("allowlist: full")

// Entry is one allowlisted address or CIDR.
type Entry struct {
	// Target is the canonical address ("203.0.113.7") or CIDR ("203.0.113.0/24").
	Target  string    `json:"target"`
	Reason  string    `json:"reason"`
	Author  string    `json:"author"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// Prefix is the entry's target as a prefix (an address as /32 or /128).
func (e Entry) Prefix() (netip.Prefix, error) { return ParseTarget(e.Target) }

// ParseTarget reads an address (spelt any way event.ParseIP accepts) or a CIDR.
func ParseTarget(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q: %w", s, err)
		}
		if p.Addr().Is4In6() || p.Addr().Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q: use the IPv4 form, without a zone", s)
		}
		return p.Masked(), nil
	}
	ind, err := event.ParseIP(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(ind.Addr, ind.Addr.BitLen()), nil
}

// Canonical is the spelling of p entries are stored under: a bare address for a single host.
func Canonical(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// Store reads and writes the shared allowlist. It is safe for concurrent use.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	now    func() time.Time
}

// New returns the store under keyPrefix (THREATPIPE_REDIS_KEY_PREFIX); now may be nil.
func New(rdb redis.UniversalClient, keyPrefix string, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{rdb: rdb, prefix: keyPrefix, now: now}
}

// The keys share one hash tag: the scripts touch all of them in one slot of a Redis Cluster.
func (s *Store) keys() []string {
	base := s.prefix + ":allowlist:{allowlist}:"
	return []string{base + "expiry", base + "entries", base + "version"}
}

// sweep is the Lua that drops expired entries (ARGV[1] = now, ms); every script starts with it.
const sweep = `
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if #gone > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
  redis.call('HDEL', KEYS[2], unpack(gone))
  redis.call('INCR', KEYS[3])
end
`

// addScript adds or replaces entry ARGV[2] (JSON) under member ARGV[3], expiring at ARGV[4]
// (ms), unless the allowlist holds ARGV[5] entries and this is a new one: then it returns -1.
var addScript = redis.NewScript(sweep + `
if redis.call('ZSCORE', KEYS[1], ARGV[3]) == false and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[5]) then
  return -1
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[2])
return redis.call('INCR', KEYS[3])`)

// removeScript removes member ARGV[2]; it returns 1 when there was one.
var removeScript = redis.NewScript(sweep + `
local n = redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
if n > 0 then redis.call('INCR', KEYS[3]) end
return n`)

// loadScript returns {version, entries...} of the live entries.
var loadScript = redis.NewScript(sweep + `
local out = {redis.call('GET', KEYS[3]) or '0'}
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do out[#out + 1] = v end
return out`)

// versionScript is the cheap check a refresher makes before loading: {version, next expiry}.
var versionScript = redis.NewScript(`
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {redis.call('GET', KEYS[3]) or '0', first[2] or '0'}`)

// Add adds e, or replaces the entry of the same target. Its target must parse (ParseTarget)
// and it must expire in the future.
func (s *Store) Add(ctx context.Context, e Entry) (Entry, error) {
	p, err := ParseTarget(e.Target)
	if err != nil {
		return Entry{}, fmt.Errorf("allowlist: %w", err)
	}
	now := s.now()
	if !e.Expires.After(now) {
		return Entry{}, fmt.Errorf("allowlist: entry for %s expires in the past", e.Target)
	}
	e.Target = Canonical(p)
	if e.Created.IsZero() {
		e.Created = now
	}
	e.Created, e.Expires = e.Created.UTC(), e.Expires.UTC()
	raw, err := json.Marshal(e)
	if err != nil {
		return Entry{}, fmt.Errorf("allowlist: %w", err)
	}
	n, err := addScript.Run(ctx, s.rdb, s.keys(), now.UnixMilli(), raw, e.Target, e.Expires.UnixMilli(), MaxEntries).Int64()
	if err != nil {
		return Entry{}, fmt.Errorf("allowlist: add %s: %w", e.Target, err)
	}
	if n < 0 {
		return Entry{}, fmt.Errorf("%w (%d entries): remove some first", ErrFull, MaxEntries)
	}
	return e, nil
}

// Remove removes the entry of target; it reports whether there was one.
func (s *Store) Remove(ctx context.Context, target string) (bool, error) {
	p, err := ParseTarget(target)
	if err != nil {
		return false, fmt.Errorf("allowlist: %w", err)
	}
	n, err := removeScript.Run(ctx, s.rdb, s.keys(), s.now().UnixMilli(), Canonical(p)).Int64()
	if err != nil {
		return false, fmt.Errorf("allowlist: remove %s: %w", target, err)
	}
	return n > 0, nil
}

// List returns the live entries, soonest expiry first.
func (s *Store) List(ctx context.Context) ([]Entry, error) {
	_, entries, err := s.load(ctx)
	return entries, err
}

// load returns the allowlist's version and live entries, soonest expiry first. An entry that
// does not parse is skipped: one bad hash field must not empty every replica's allowlist.
func (s *Store) load(ctx context.Context) (int64, []Entry, error) {
	now := s.now()
	vals, err := loadScript.Run(ctx, s.rdb, s.keys(), now.UnixMilli()).StringSlice()
	if err != nil {
		return 0, nil, fmt.Errorf("allowlist: load: %w", err)
	}
	if len(vals) == 0 {
		return 0, nil, errors.New("allowlist: load: empty reply")
	}
	version, _ := strconv.ParseInt(vals[0], 10, 64)
	entries := make([]Entry, 0, len(vals)-1)
	for _, raw := range vals[1:] {
		var e Entry
		if json.Unmarshal([]byte(raw), &e) != nil || !e.Expires.After(now) {
			continue
		}
		if _, err := e.Prefix(); err != nil {
			continue
		}
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Expires.Before(entries[j].Expires) })
	return version, entries, nil
}

// version returns the allowlist's version and the soonest expiry (zero when empty).
func (s *Store) version(ctx context.Context) (int64, time.Time, error) {
	vals, err := versionScript.Run(ctx, s.rdb, s.keys()).StringSlice()
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("allowlist: version: %w", err)
	}
	if len(vals) != 2 {
		return 0, time.Time{}, fmt.Errorf("allowlist: version: %d values in the reply, want 2", len(vals))
	}
	v, _ := strconv.ParseInt(vals[0], 10, 64)
	ms, _ := strconv.ParseFloat(vals[1], 64)
	var next time.Time
	if ms > 0 {
		next = time.UnixMilli(int64(ms))
	}
	return v, next, nil
}
