package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/pipeline/commit"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/kafkax"
	"github.com/threatpipe/threatpipe/pipeline/telemetry"
)

type copyJob struct {
	part   *commit.Partition
	offset int64
}

// runCopy is the baseline: a plain consume-and-produce copy with the enricher's kafka-go
// settings (the same reader, the same async writer with acks=all, commits only after
// acknowledgement, the same in-flight bound), so the ratio to it measures what enrichment costs.
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
	defer reader.Close()
	tracker := commit.NewTracker()
	slots := make(chan struct{}, cfg.Pipeline.MaxInFlight)
	var inFlight sync.WaitGroup
	writer := clients.Writer(func(msgs []kafka.Message, err error) {
		if err != nil {
			// A healthy local broker does not fail; counting a failure as done would flatter
			// the baseline, so stop instead.
			panic(fmt.Sprintf("baseline copy: write failed: %v", err))
		}
		for _, m := range msgs {
			j := m.WriterData.(copyJob)
			j.part.Done(j.offset)
			<-slots
			inFlight.Done()
		}
	})
	commitNow := func(ctx context.Context) {
		pos := tracker.Committable()
		if len(pos) == 0 {
			return
		}
		msgs := make([]kafka.Message, len(pos))
		for i, p := range pos {
			msgs[i] = kafka.Message{Topic: p.Topic, Partition: p.Partition, Offset: p.Offset}
		}
		if reader.CommitMessages(ctx, msgs...) == nil {
			tracker.Committed(pos)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(cfg.Kafka.CommitInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				commitNow(ctx)
			case <-ctx.Done():
				return
			}
		}
	}()
	for ctx.Err() == nil {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		m, err := reader.FetchMessage(ctx)
		if err != nil {
			<-slots
			continue
		}
		part := tracker.Add(commit.TopicPartition{Topic: m.Topic, Partition: m.Partition}, m.Offset)
		inFlight.Add(1)
		if err := writer.WriteMessages(ctx, kafka.Message{Topic: out, Key: m.Key, Value: m.Value, WriterData: copyJob{part, m.Offset}}); err != nil {
			return err
		}
	}
	<-done
	inFlight.Wait()
	_ = writer.Close()
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	commitNow(cctx)
	return nil
}
