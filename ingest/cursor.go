package ingest

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Cursors keeps each source's cursor in Redis, under
// <THREATPIPE_REDIS_KEY_PREFIX>:ingest:{<source>}:cursor. The braces make the source the key's
// Cluster hash tag, so a source's keys stay together if more are ever added.
type Cursors struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewCursors returns the cursor store of prefix.
func NewCursors(rdb redis.UniversalClient, prefix string) *Cursors {
	return &Cursors{rdb: rdb, prefix: prefix}
}

// Key is source's cursor key.
func (c *Cursors) Key(source string) string {
	return c.prefix + ":ingest:{" + source + "}:cursor"
}

// Get returns source's stored cursor, "" when none is stored yet.
func (c *Cursors) Get(ctx context.Context, source string) (string, error) {
	v, err := c.rdb.Get(ctx, c.Key(source)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read cursor of %s: %w", source, err)
	}
	return v, nil
}

// Set stores source's cursor. It has no expiry: a cursor lost would replay the platform's whole
// history from THREATPIPE_INGEST_<SOURCE>_SINCE.
func (c *Cursors) Set(ctx context.Context, source, cursor string) error {
	if err := c.rdb.Set(ctx, c.Key(source), cursor, 0).Err(); err != nil {
		return fmt.Errorf("store cursor of %s: %w", source, err)
	}
	return nil
}
