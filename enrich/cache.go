package enrich

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// CacheEntry is a cached answer.
type CacheEntry struct {
	Result   *event.Intel `json:"result"`
	StoredAt time.Time    `json:"stored_at"`
}

// Cache is the read-through answer cache in Redis. Reads from concurrent workers are coalesced:
// every Get waiting when the loader is free goes out in one pipelined round trip (one per
// Cluster node), so the indicators of a fetched batch cost one round trip, not one each. Errors
// and rate-limit answers are never cached: only Set stores, and only answers reach it.
type Cache struct {
	rdb      redis.UniversalClient
	requests chan cacheRequest
	maxBatch int
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
func NewCache(rdb redis.UniversalClient) *Cache {
	return &Cache{rdb: rdb, requests: make(chan cacheRequest, 1024), maxBatch: 512}
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

func (c *Cache) load(ctx context.Context, batch []cacheRequest) {
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(batch))
	for i, r := range batch {
		cmds[i] = pipe.Get(ctx, r.key)
	}
	_, _ = pipe.Exec(ctx) // per-command errors are read below
	for i, r := range batch {
		r.reply <- decodeEntry(cmds[i])
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
	var e CacheEntry
	if err := json.Unmarshal(raw, &e); err != nil || e.Result == nil {
		// A value we cannot read is a miss, not an outage: the lookup overwrites it.
		return cacheReply{}
	}
	return cacheReply{entry: &e}
}

// Get returns the cached entry for key, or nil on a miss. A Redis error is returned as such;
// callers treat it as a miss and go on (a cache outage costs quota, never events).
func (c *Cache) Get(ctx context.Context, key string) (*CacheEntry, error) {
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

// Set stores an answer for ttl.
func (c *Cache) Set(ctx context.Context, key string, e *CacheEntry, ttl time.Duration) error {
	raw, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := c.rdb.Set(ctx, key, raw, ttl).Err(); err != nil {
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
