package main

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/redisx"
	"github.com/threatpipe/threatpipe/sinks"
)

// ledgerRedis is the client of the action ledger and the kill switch: main (the cache's) unless
// THREATPIPE_ACT_REDIS_ADDR or THREATPIPE_ACT_REDIS_DB name another Redis or database, so that
// they can live where eviction cannot touch them. closeFn closes a client of its own.
func ledgerRedis(cfg *config.Config, main redis.UniversalClient) (rdb redis.UniversalClient, closeFn func()) {
	if !cfg.SeparateLedgerRedis() {
		return main, func() {}
	}
	l := cfg.LedgerRedis()
	c := redisx.New(&l)
	return c, func() { _ = c.Close() }
}

// sinkServer is a sink that serves on a listener of its own (the EDL with
// THREATPIPE_SINK_EDL_ADDR); Run returns at once when it has none.
type sinkServer interface {
	Run(ctx context.Context) error
}

// runSinkServers runs the servers of the configured sinks in g until ctx ends (the act's
// after-drain context, like its HTTP server: firewalls keep polling while events drain).
func runSinkServers(ctx context.Context, g *errgroup.Group, configured map[string]sinks.Sink) {
	for name, s := range configured {
		if srv, ok := s.(sinkServer); ok {
			g.Go(func() error {
				if err := srv.Run(ctx); err != nil {
					return fmt.Errorf("sink %s: %w", name, err)
				}
				return nil
			})
		}
	}
}
