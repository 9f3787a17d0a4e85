// Package redisx builds the Redis client from configuration. go-redis's universal client covers
// a single node, Sentinel (with a master name) and Cluster (several addresses).
package redisx

import (
	"context"
	"fmt"
	"net"

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
