package main

import (
	"context"
	"errors"

	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/pipeline/kafkax"
	"github.com/threatpipe/threatpipe/pipeline/telemetry"
)

// kafkaCheck is the Kafka readiness check of a role that uses topics: /readyz says "topic
// missing" when one of them is gone (deleted under a running process) and "unreachable" when
// the brokers do not answer; the log has the details.
func kafkaCheck(clients *kafkax.Clients, topics ...string) telemetry.Check {
	return func(ctx context.Context) error {
		err := clients.Ping(ctx, topics...)
		if errors.Is(err, kafka.UnknownTopicOrPartition) {
			return &telemetry.StatusError{Status: "topic missing", Err: err}
		}
		return err
	}
}
