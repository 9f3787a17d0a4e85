// Package redisx builds the Redis client from configuration. go-redis's universal client covers
// a single node, Sentinel (with a master name) and Cluster (several addresses).
package redisx

import (
	"context"
	"crypto/tls"
	"fmt"

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
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
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
