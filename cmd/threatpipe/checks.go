package main

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/kafkax"
	"github.com/threatpipe/threatpipe/pipeline/redisx"
)

// checkSettings fails the start when the brokers or Redis reject the connection settings
// (password, SASL mechanism, CA, server name, client certificate), naming the variable to fix.
// An unreachable service is not a settings error: the processes wait for it and report
// not-ready meanwhile, as during any outage.
func checkSettings(ctx context.Context, clients *kafkax.Clients, rdb redis.UniversalClient, cfg *config.Redis) error {
	if err := clients.CheckSettings(ctx); err != nil {
		return err
	}
	return redisx.CheckSettings(ctx, rdb, cfg)
}
