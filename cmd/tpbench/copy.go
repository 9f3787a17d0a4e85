package main

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/kafkax"
	"github.com/threatpipe/threatpipe/pipeline/telemetry"
)

// runCopy is the baseline: a plain consume-and-produce copy run by the enricher's own engine
// with its settings (the same reader, the same batched async writer with acks=all, commits only
// after acknowledgement, the same workers and in-flight bound), so that the ratio to it measures
// what enrichment itself costs: decoding, lookups, fusion and encoding.
func runCopy(ctx context.Context, environ []string, in, out string) error {
	cfg, err := config.Load(environ)
	if err != nil {
		return err
	}
	log, err := telemetry.NewLogger(cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	clients, err := kafkax.New(&cfg.Kafka, log)
	if err != nil {
		return err
	}
	reader := kafka.NewReader(clients.ReaderConfig(in))
	copyOne := pipeline.HandlerFunc(func(_ context.Context, m kafka.Message) ([]kafka.Message, error) {
		return []kafka.Message{{Topic: out, Key: m.Key, Value: m.Value}}, nil
	})
	engine := pipeline.New(pipeline.Options{
		InputTopic: in, OutputTopic: out, DLQTopic: out,
		Workers: cfg.Pipeline.Workers, MaxInFlight: cfg.Pipeline.MaxInFlight,
		CommitInterval: cfg.Kafka.CommitInterval, ShutdownTimeout: cfg.Pipeline.ShutdownTimeout,
	}, reader, func(done func([]kafka.Message, error)) pipeline.Publisher { return clients.Writer(done) },
		copyOne, telemetry.NewPipelineMetrics(prometheus.NewRegistry()), log)
	runErr := engine.Run(ctx)
	closed := make(chan error, 1)
	go func() { closed <- reader.Close() }()
	select {
	case err := <-closed:
		return errors.Join(runErr, err)
	case <-time.After(5 * time.Second): // offsets are committed; the group evicts a member that never leaves
		return runErr
	}
}
