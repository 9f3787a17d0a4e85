package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
)

// Recent remembers which addresses a source published lately, under
// <THREATPIPE_REDIS_KEY_PREFIX>:ingest:{<source>}:recent:<address>, for the republish window.
//
// It breaks the write-back loop: an intel playbook step writes the verdict back to the platform
// (a MISP attribute's tags and sighting, a ThreatQ indicator's attributes), which makes the
// record "changed since the cursor", so the next poll would publish it again, the enricher score
// it again (from cache) and act write it back again, for ever. An address published within the
// window is skipped and counted (reason recent) instead; after the window a change is enriched
// again, like any new sighting.
type Recent struct {
	rdb    redis.UniversalClient
	prefix string
	window time.Duration
}

// NewRecent returns the memory of prefix; a window of 0 remembers nothing.
func NewRecent(rdb redis.UniversalClient, prefix string, window time.Duration) *Recent {
	return &Recent{rdb: rdb, prefix: prefix, window: window}
}

func (r *Recent) key(source, addr string) string {
	return r.prefix + ":ingest:{" + source + "}:recent:" + addr
}

// Filter returns the messages whose address (the message key) was not published within the
// window, and how many it left out.
func (r *Recent) Filter(ctx context.Context, source string, msgs []kafka.Message) ([]kafka.Message, int, error) {
	if r == nil || r.window <= 0 || len(msgs) == 0 {
		return msgs, 0, nil
	}
	pipe := r.rdb.Pipeline()
	seen := make([]*redis.IntCmd, len(msgs))
	for i, m := range msgs {
		seen[i] = pipe.Exists(ctx, r.key(source, string(m.Key)))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, 0, fmt.Errorf("read recently published addresses of %s: %w", source, err)
	}
	out := msgs[:0:0]
	inPage := make(map[string]bool, len(msgs))
	for i, m := range msgs {
		// Two records of one address in a page (an address in two MISP events) are one event.
		if seen[i].Val() > 0 || inPage[string(m.Key)] {
			continue
		}
		inPage[string(m.Key)] = true
		out = append(out, m)
	}
	return out, len(msgs) - len(out), nil
}

// Mark remembers msgs' addresses as published now; called once the broker acknowledged them,
// so that a failed publish is not mistaken for a recent one.
func (r *Recent) Mark(ctx context.Context, source string, msgs []kafka.Message) error {
	if r == nil || r.window <= 0 || len(msgs) == 0 {
		return nil
	}
	pipe := r.rdb.Pipeline()
	for _, m := range msgs {
		pipe.Set(ctx, r.key(source, string(m.Key)), 1, r.window)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("remember published addresses of %s: %w", source, err)
	}
	return nil
}
