package enrich

import (
	"context"
	"errors"
	"fmt"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/encoding/json"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// CacheEntry is a cached answer.
type CacheEntry struct {
	Result *event.Intel `json:"result"`
	// Fields are the mapped fields the enrichment rules read from the answer's response body.
	Fields   map[string]json.RawMessage `json:"fields,omitempty"`
	StoredAt time.Time                  `json:"stored_at"`
	// ExpiresAt is when the Redis entry expires; the in-process copy never outlives it.
	ExpiresAt time.Time `json:"expires_at"`
}

// Cache is the read-through answer cache in Redis. Reads from concurrent workers are coalesced:
// every Get waiting when the loader is free goes out in one pipelined round trip (one per
// Cluster node), so the indicators of a fetched batch cost one round trip, not one each. Errors
// and rate-limit answers are never cached: only Set stores, and only answers reach it.
//
// A bounded in-process copy of recent answers (LocalCacheOptions) serves repeats without the
// round trip and the decoding; a copy lives at most the local TTL and never past the Redis
// entry's own expiry, so it can only save lookups, never cause one.
type Cache struct {
	rdb      redis.UniversalClient
	requests chan cacheRequest
	maxBatch int
	local    *lru.Cache[string, localEntry] // nil when disabled
	localTTL time.Duration
	now      func() time.Time
}

type localEntry struct {
	entry *CacheEntry
	until time.Time
}

// LocalCacheOptions size the in-process copy; Size 0 disables it.
type LocalCacheOptions struct {
	Size int
	TTL  time.Duration
}

type cacheRequest struct {
	key   string
	reply chan cacheReply
}

type cacheReply struct {
	entry *CacheEntry
	err   error
}

// NewCache returns a cache on rdb. Run must be running for Get to answer.
func NewCache(rdb redis.UniversalClient, local LocalCacheOptions) *Cache {
	c := &Cache{rdb: rdb, requests: make(chan cacheRequest, 1024), maxBatch: 512, localTTL: local.TTL, now: time.Now}
	if local.Size > 0 && local.TTL > 0 {
		c.local, _ = lru.New[string, localEntry](local.Size) // errors only for a size <= 0
	}
	return c
}

func (c *Cache) remember(key string, e *CacheEntry) {
	if c.local == nil || e.ExpiresAt.IsZero() {
		return
	}
	until := c.now().Add(c.localTTL)
	if e.ExpiresAt.Before(until) {
		until = e.ExpiresAt
	}
	c.local.Add(key, localEntry{entry: e, until: until})
}

func (c *Cache) recall(key string) *CacheEntry {
	if c.local == nil {
		return nil
	}
	le, ok := c.local.Get(key)
	if !ok {
		return nil
	}
	if !c.now().Before(le.until) {
		c.local.Remove(key)
		return nil
	}
	return le.entry
}

// Run serves Gets in batches until ctx is done.
func (c *Cache) Run(ctx context.Context) error {
	batch := make([]cacheRequest, 0, c.maxBatch)
	for {
		select {
		case r := <-c.requests:
			batch = append(batch[:0], r)
		case <-ctx.Done():
			return nil
		}
	drain:
		for len(batch) < c.maxBatch {
			select {
			case r := <-c.requests:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		c.load(ctx, batch)
	}
}

// loadTimeout bounds one batch: a stalled Redis must fail the waiting lookups (which then go on
// as misses), not hold every local-cache miss of the process.
const loadTimeout = 2 * time.Second

func (c *Cache) load(ctx context.Context, batch []cacheRequest) {
	ctx, cancel := context.WithTimeout(ctx, loadTimeout)
	defer cancel()
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(batch))
	for i, r := range batch {
		cmds[i] = pipe.Get(ctx, r.key)
	}
	_, _ = pipe.Exec(ctx) // per-command errors are read below
	for i, r := range batch {
		rep := decodeEntry(cmds[i])
		if rep.entry != nil {
			c.remember(r.key, rep.entry)
		}
		r.reply <- rep
	}
}

func decodeEntry(cmd *redis.StringCmd) cacheReply {
	raw, err := cmd.Bytes()
	if errors.Is(err, redis.Nil) {
		return cacheReply{}
	}
	if err != nil {
		return cacheReply{err: fmt.Errorf("cache get: %w", err)}
	}
	return cacheReply{entry: parseEntry(raw)}
}

// parseEntry decodes a stored answer; a value we cannot read is a miss (nil), not an outage:
// the lookup overwrites it.
func parseEntry(raw []byte) *CacheEntry {
	if len(raw) == 0 {
		return nil
	}
	var e CacheEntry
	if err := json.Unmarshal(raw, &e); err != nil || e.Result == nil {
		return nil
	}
	return &e
}

// Get returns the cached entry for key, or nil on a miss. A Redis error is returned as such;
// callers treat it as a miss and go on (a cache outage costs quota, never events).
func (c *Cache) Get(ctx context.Context, key string) (*CacheEntry, error) {
	if e := c.recall(key); e != nil {
		return e, nil
	}
	r := cacheRequest{key: key, reply: make(chan cacheReply, 1)}
	select {
	case c.requests <- r:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case rep := <-r.reply:
		return rep.entry, rep.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Set stores e under key for ttl, and in the in-process copy whether or not Redis took it.
// Commands that with queues (may be nil) are sent in the same round trip; only the store's own
// failure is returned.
func (c *Cache) Set(ctx context.Context, key string, e *CacheEntry, ttl time.Duration, with func(redis.Pipeliner)) error {
	e.ExpiresAt = e.StoredAt.Add(ttl)
	raw, err := json.Marshal(e)
	if err != nil {
		return err
	}
	pipe := c.rdb.Pipeline()
	set := pipe.Set(ctx, key, raw, ttl)
	if with != nil {
		with(pipe)
	}
	_, _ = pipe.Exec(ctx)
	// Kept in process even when Redis did not take it: during a Redis outage the local copy is
	// all that spares the next events for the address another paid lookup.
	c.remember(key, e)
	if err := set.Err(); err != nil {
		return fmt.Errorf("cache set: %w", err)
	}
	return nil
}

// TTLFor picks the cache lifetime of an answer by its verdict.
func (p *Policy) TTLFor(v event.Verdict) time.Duration {
	switch v {
	case event.VerdictMalicious, event.VerdictSuspicious:
		return p.TTLMalicious
	case event.VerdictNotFound:
		return p.TTLNotFound
	default:
		return p.TTLBenign
	}
}
