package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/kafkax"
)

// ensureTopics creates the topics. While the brokers cannot be reached it waits for them, for
// as long as it takes (the process serves /healthz meanwhile, and /readyz says the brokers are
// unreachable): a role started before its brokers must come up with them, not exit.
func ensureTopics(ctx context.Context, clients *kafkax.Clients, log *zap.Logger, topics ...string) error {
	return untilBrokersAnswer(ctx, log, func(ctx context.Context) error {
		if err := clients.EnsureTopics(ctx, topics...); err != nil {
			return fmt.Errorf("create topics %v: %w", topics, err)
		}
		return nil
	})
}

// requireTopics fails start-up when a topic the role reads or writes does not exist, naming
// the variable: a writer would otherwise retry "unknown topic" for ever. While the brokers
// cannot be reached it waits for them, like ensureTopics.
func requireTopics(ctx context.Context, clients *kafkax.Clients, log *zap.Logger, topics map[string]string) error {
	for _, name := range slices.Sorted(maps.Keys(topics)) { // the same topic named first each time
		topic := topics[name]
		err := untilBrokersAnswer(ctx, log, func(ctx context.Context) error {
			err := clients.Ping(ctx, topic)
			if errors.Is(err, kafka.UnknownTopicOrPartition) {
				return backoff.Permanent(fmt.Errorf("%s%s: topic %q does not exist: create it, or set %sKAFKA_CREATE_TOPICS=true",
					config.Prefix, name, topic, config.Prefix))
			}
			if err != nil {
				return fmt.Errorf("%s%s: cannot check topic %q: %w", config.Prefix, name, topic, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// untilBrokersAnswer runs op until it succeeds, fails for good (a permanent error, or an answer
// waiting cannot fix such as an ACL refusal) or ctx ends, logging the first failure and the
// recovery once each.
func untilBrokersAnswer(ctx context.Context, log *zap.Logger, op func(ctx context.Context) error) error {
	waited := false
	attempt := func() error {
		actx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		err := op(actx)
		if err != nil && pipeline.Unrecoverable(err) {
			return backoff.Permanent(err)
		}
		if err != nil && !waited && ctx.Err() == nil {
			waited = true
			log.Warn("brokers unreachable at start-up: waiting for them (backoff up to 5 s)", zap.Error(err))
		}
		return err
	}
	if err := backoff.Retry(attempt, backoff.WithContext(pipeline.DependencyBackOff(), ctx)); err != nil {
		return err
	}
	if waited {
		log.Info("brokers answer again: starting")
	}
	return nil
}
