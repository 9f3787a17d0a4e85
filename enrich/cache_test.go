package enrich

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

func runCache(t *testing.T, c *Cache) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestLocalCopyNeverOutlivesItsBoundOrTheRedisEntry(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name               string
		redisTTL, localTTL time.Duration
	}{{"bounded by the Redis expiry", 300 * time.Millisecond, time.Hour}, {"bounded by the local TTL", time.Hour, 300 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCache(r.rdb, CacheOptions{Size: 10, TTL: tc.localTTL})
			runCache(t, c)
			key := testKeys.Cache(providerName(t), "default", "1.2.3.4")
			if err := c.Set(ctx, key, &CacheEntry{Result: &event.Intel{Verdict: event.VerdictBenign}, StoredAt: time.Now()}, tc.redisTTL, nil); err != nil {
				t.Fatal(err)
			}
			r.rdb.Del(ctx, key) // from now on only the local copy can answer
			if e, err := c.Get(ctx, key); err != nil || e == nil {
				t.Fatalf("the local copy must answer: %v %v", e, err)
			}
			time.Sleep(400 * time.Millisecond)
			if e, _ := c.Get(ctx, key); e != nil {
				t.Fatal("the local copy outlived its bound")
			}
		})
	}
}

func TestRedisHitsFillTheLocalCopy(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	writer := NewCache(r.rdb, CacheOptions{})
	reader := NewCache(r.rdb, CacheOptions{Size: 10, TTL: time.Minute})
	runCache(t, writer)
	runCache(t, reader)
	key := testKeys.Cache(providerName(t), "default", "5.6.7.8")
	if err := writer.Set(ctx, key, &CacheEntry{Result: &event.Intel{Verdict: event.VerdictMalicious, Score: 95}, StoredAt: time.Now()}, time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	if e, _ := reader.Get(ctx, key); e == nil || e.Result.Score != 95 {
		t.Fatalf("redis hit: %+v", e)
	}
	r.rdb.Del(ctx, key)
	if e, _ := reader.Get(ctx, key); e == nil {
		t.Fatal("a Redis hit must be remembered locally")
	}
	if e, _ := writer.Get(ctx, key); e != nil {
		t.Fatal("with the local copy disabled, a deleted entry is a miss")
	}
}

// TestAnswersStayInProcessWhileRedisIsDown: an answer Redis did not take is still kept in the
// in-process copy, so that during a Redis outage the next events for the address are hits rather
// than more paid lookups (docs/reliability.md).
func TestAnswersStayInProcessWhileRedisIsDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	_ = ln.Close() // nothing listens there any more: every command fails at once
	rdb := redis.NewClient(&redis.Options{Addr: down, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		local     CacheOptions
		wantLocal bool
	}{
		{"with the in-process copy", CacheOptions{Size: 10, TTL: time.Minute}, true},
		{"without it", CacheOptions{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCache(rdb, tc.local)
			runCache(t, c)
			key := testKeys.Cache("outage", "default", "9.9.9.9")
			err := c.Set(ctx, key, &CacheEntry{Result: &event.Intel{Verdict: event.VerdictBenign}, StoredAt: time.Now()}, time.Hour, nil)
			if err == nil {
				t.Fatal("Set with Redis down must report that Redis did not take the answer")
			}
			e, _ := c.Get(ctx, key)
			if got := e != nil; got != tc.wantLocal {
				t.Fatalf("answer found %v, want %v", got, tc.wantLocal)
			}
		})
	}
}

// TestStoreCountsOnlyWhenReplicated: with WaitReplicas a store that no replica acknowledged is
// reported failed (the caller stores it again), though the primary took it; the test's Redis has
// no replica.
func TestStoreCountsOnlyWhenReplicated(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	entry := func() *CacheEntry {
		return &CacheEntry{Result: &event.Intel{Verdict: event.VerdictBenign}, StoredAt: time.Now()}
	}
	for _, tc := range []struct {
		name     string
		replicas int
		wantErr  bool
	}{{"no wait", 0, false}, {"one replica wanted, none there", 1, true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCache(r.rdb, CacheOptions{WaitReplicas: tc.replicas, WaitTimeout: 50 * time.Millisecond})
			key := testKeys.Cache(providerName(t), "default", "192.0.2.9")
			err := c.Set(ctx, key, entry(), time.Minute, nil)
			if (err != nil) != tc.wantErr || tc.wantErr && !errors.Is(err, errNotReplicated) {
				t.Fatalf("Set: %v; want an error %v", err, tc.wantErr)
			}
			if n, err := r.rdb.Exists(ctx, key).Result(); err != nil || n != 1 {
				t.Fatalf("the primary must hold the entry either way: exists %d, %v", n, err)
			}
		})
	}
}
