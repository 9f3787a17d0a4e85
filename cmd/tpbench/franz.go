package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// runFranzCopy is the second, independent baseline: a consume-and-produce copy written with
// franz-go, another client than the kafka-go the enricher uses, so the enricher's ratio is also
// shown against a copy that owes nothing to threatpipe's engine. It is the plain at-least-once
// loop of franz-go's documentation: poll, produce every record to out with acks=all (franz-go's
// default: idempotent, all in-sync replicas), wait for the acknowledgements, commit what was
// polled, allow a rebalance, poll again.
func runFranzCopy(ctx context.Context, brokers []string, group, in, out string) error {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(10*time.Second),
		kgo.HeartbeatInterval(time.Second),
		kgo.DefaultProduceTopic(out),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
	if err != nil {
		return fmt.Errorf("franz-go client: %w", err)
	}
	defer func() {
		cl.AllowRebalance() // a poll blocks rebalances until allowed, and leaving the group is one
		cl.Close()
	}()
	for {
		fetches := cl.PollRecords(ctx, 10_000)
		if ctx.Err() != nil {
			return nil
		}
		var errs []error
		fetches.EachError(func(topic string, partition int32, err error) {
			errs = append(errs, fmt.Errorf("fetch %s/%d: %w", topic, partition, err))
		})
		if err := errors.Join(errs...); err != nil {
			return err
		}
		recs := make([]*kgo.Record, 0, fetches.NumRecords())
		fetches.EachRecord(func(r *kgo.Record) {
			recs = append(recs, &kgo.Record{Key: r.Key, Value: r.Value})
		})
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			if ctx.Err() != nil {
				return nil // not committed: the next run copies them again
			}
			return fmt.Errorf("produce to %s: %w", out, err)
		}
		if err := cl.CommitUncommittedOffsets(ctx); err != nil && ctx.Err() == nil {
			return fmt.Errorf("commit: %w", err)
		}
		cl.AllowRebalance()
	}
}

// franzCopyMain is the subprocess mode `tpbench franz-copy IN OUT`, configured from the same
// THREATPIPE_KAFKA_BROKERS and THREATPIPE_KAFKA_GROUP_ID the enricher reads.
func franzCopyMain(ctx context.Context, environ []string, in, out string) error {
	var brokers, group string
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "THREATPIPE_KAFKA_BROKERS="); ok {
			brokers = v
		} else if v, ok := strings.CutPrefix(kv, "THREATPIPE_KAFKA_GROUP_ID="); ok {
			group = v
		}
	}
	if brokers == "" || group == "" {
		return errors.New("THREATPIPE_KAFKA_BROKERS and THREATPIPE_KAFKA_GROUP_ID are required")
	}
	return runFranzCopy(ctx, strings.Split(brokers, ","), group, in, out)
}
