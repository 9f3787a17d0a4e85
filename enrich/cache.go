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
	"github.com/threatpipe/threatpipe/pipeline/redisx"
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
// A bounded in-process copy of recent answers (CacheOptions) serves repeats without the
// round trip and the decoding; a copy lives at most the local TTL and never past the Redis
// entry's own expiry, so it can only save lookups, never cause one.
type Cache struct {
	rdb      redis.UniversalClient
	requests chan cacheRequest
	maxBatch int
	local    *lru.Cache[string, localEntry] // nil when disabled
	localTTL time.Duration
	now      func() time.Time

	waitReplicas int
	waitTimeout  time.Duration
}

type localEntry struct {
	entry *CacheEntry
	until time.Time
}

// CacheOptions size the in-process copy (Size 0 disables it) and say how many replicas must
// acknowledge a store (0: none).
type CacheOptions struct {
	Size int
	TTL  time.Duration
	// WaitReplicas makes Set send WAIT after the store, in the same round trip, and fail unless
	// that many replicas acknowledged it within WaitTimeout: replication is asynchronous, and a
	// failover loses what the old primary had not passed on.
	WaitReplicas int
	WaitTimeout  time.Duration
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
func NewCache(rdb redis.UniversalClient, opts CacheOptions) *Cache {
	c := &Cache{rdb: rdb, requests: make(chan cacheRequest, 1024), maxBatch: 512, localTTL: opts.TTL, now: time.Now,
		waitReplicas: opts.WaitReplicas, waitTimeout: opts.WaitTimeout}
	if opts.Size > 0 && opts.TTL > 0 {
		c.local, _ = lru.New[string, localEntry](opts.Size) // errors only for a size <= 0
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
	pipe, err := c.storePipeline(ctx, key)
	if err != nil {
		c.remember(key, e)
		return fmt.Errorf("cache set: %w", err)
	}
	set := pipe.Set(ctx, key, raw, ttl)
	if with != nil {
		with(pipe)
	}
	var wait *redis.IntCmd
	if c.waitReplicas > 0 {
		wait = redisx.QueueWait(ctx, pipe, c.waitReplicas, c.waitTimeout)
	}
	_, _ = pipe.Exec(ctx)
	// Kept in process even when Redis did not take it: during a Redis outage the local copy is
	// all that spares the next events for the address another paid lookup.
	c.remember(key, e)
	if err := set.Err(); err != nil {
		c.reloadCluster(ctx)
		return fmt.Errorf("cache set: %w", err)
	}
	if wait != nil {
		if n, err := wait.Result(); err != nil || n < int64(c.waitReplicas) {
			return fmt.Errorf("cache set: acknowledged by %d of %d replicas within %s: %w", n, c.waitReplicas, c.waitTimeout, errors.Join(err, errNotReplicated))
		}
	}
	return nil
}

var errNotReplicated = errors.New("not replicated")

// storePipeline is a pipeline for a store under key: with WaitReplicas, on one connection to
// the key's primary, for the WAIT (redisx.KeyPipeline).
func (c *Cache) storePipeline(ctx context.Context, key string) (redis.Pipeliner, error) {
	if c.waitReplicas > 0 {
		return redisx.KeyPipeline(ctx, c.rdb, key)
	}
	return c.rdb.Pipeline(), nil
}

func (c *Cache) reloadCluster(ctx context.Context) {
	if c.waitReplicas > 0 {
		redisx.ReloadCluster(ctx, c.rdb)
	}
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
