// Package redisx builds the Redis client from configuration. go-redis's universal client covers
// a single node, Sentinel (with a master name) and Cluster (several addresses).
package redisx

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/threatpipe/threatpipe/pipeline/config"
)

// New returns a client for cfg. It does not connect until first used.
func New(cfg *config.Redis) redis.UniversalClient {
	opts := &redis.UniversalOptions{
		Addrs:       cfg.Addrs,
		MasterName:  cfg.MasterName,
		Username:    cfg.Username,
		Password:    cfg.Password.Reveal(),
		DB:          cfg.DB,
		DialTimeout: cfg.DialTimeout,
	}
	if cfg.TLSEnabled {
		tlsCfg, err := cfg.TLSConfig()
		if err != nil {
			// config.Load checked the files; if they went away since, fail every command with the
			// variable's name rather than fall back to plain text.
			opts.Dialer = func(context.Context, string, string) (net.Conn, error) { return nil, err }
		}
		opts.TLSConfig = tlsCfg
	}
	return redis.NewUniversalClient(opts)
}

// Ping is the Redis readiness check.
func Ping(c redis.UniversalClient) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if err := c.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("redis ping: %w", err)
		}
		return nil
	}
}

// KeyPipeline is a pipeline whose commands all go on one connection to key's primary, so that a
// WAIT in it counts the replicas of those very writes (WAIT is per connection). A Cluster
// pipeline would send the keyless WAIT to any node, so on a Cluster it is the key's master's own
// client. Every key the pipeline writes must share key's hash slot.
func KeyPipeline(ctx context.Context, c redis.UniversalClient, key string) (redis.Pipeliner, error) {
	if cc, ok := c.(*redis.ClusterClient); ok {
		node, err := cc.MasterForKey(ctx, key)
		if err != nil {
			return nil, err
		}
		return node.Pipeline(), nil
	}
	return c.Pipeline(), nil
}

// QueueWait queues WAIT numReplicas timeout on pipe. *redis.Pipeline has Wait, which also
// lengthens the read timeout to WAIT's; the Pipeliner interface does not.
func QueueWait(ctx context.Context, pipe redis.Pipeliner, numReplicas int, timeout time.Duration) *redis.IntCmd {
	if p, ok := pipe.(interface {
		Wait(context.Context, int, time.Duration) *redis.IntCmd
	}); ok {
		return p.Wait(ctx, numReplicas, timeout)
	}
	cmd := redis.NewIntCmd(ctx, "wait", numReplicas, timeout.Milliseconds())
	_ = pipe.Process(ctx, cmd)
	return cmd
}

// ReloadCluster refreshes a Cluster client's slot map, after a write on a node's own client
// failed (MOVED after a failover or a slot move), so that the retry asks the key's new primary.
func ReloadCluster(ctx context.Context, c redis.UniversalClient) {
	if cc, ok := c.(*redis.ClusterClient); ok {
		cc.ReloadState(ctx)
	}
}
