// Package readback reads topics back without a consumer group: partitions, end offsets and
// message ranges. Tests and the benchmark harness use it to see what the pipeline wrote; it
// depends on kafka-go alone, so test helpers can use it from any package.
package readback

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// Partitions returns the partition ids of topic, sorted.
func Partitions(ctx context.Context, client *kafka.Client, topic string) ([]int, error) {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil {
		return nil, fmt.Errorf("metadata of %s: %v", topic, md.Topics)
	}
	ids := make([]int, 0, len(md.Topics[0].Partitions))
	for _, p := range md.Topics[0].Partitions {
		ids = append(ids, p.ID)
	}
	sort.Ints(ids)
	return ids, nil
}

// EndOffsets returns each partition's end offset (the offset the next message will get).
func EndOffsets(ctx context.Context, client *kafka.Client, topic string) (map[int]int64, error) {
	parts, err := Partitions(ctx, client, topic)
	if err != nil {
		return nil, err
	}
	req := map[string][]kafka.OffsetRequest{}
	for _, p := range parts {
		req[topic] = append(req[topic], kafka.LastOffsetOf(p))
	}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: req})
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s: %w", topic, err)
	}
	out := make(map[int]int64, len(parts))
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("list offsets of %s/%d: %w", topic, po.Partition, po.Error)
		}
		out[po.Partition] = po.LastOffset
	}
	return out, nil
}

// ReadRange reads, without a consumer group, every message of topic from the offsets in from
// (0 where absent) up to the end offsets in to, all partitions at once. Tests and the benchmark
// harness use it to read back what the pipeline wrote.
func ReadRange(ctx context.Context, brokers []string, topic string, from, to map[int]int64) ([]kafka.Message, error) {
	return ReadRangeWith(ctx, nil, brokers, topic, from, to)
}

// ReadRangeWith is ReadRange through dialer, which carries the brokers' TLS and SASL settings
// (nil: kafka-go's default, plain text).
func ReadRangeWith(ctx context.Context, dialer *kafka.Dialer, brokers []string, topic string, from, to map[int]int64) ([]kafka.Message, error) {
	var (
		mu   sync.Mutex
		out  []kafka.Message
		errs []error
		wg   sync.WaitGroup
	)
	for p, end := range to {
		start := from[p]
		if end <= start {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			msgs, err := readPartition(ctx, dialer, brokers, topic, p, start, end)
			mu.Lock()
			defer mu.Unlock()
			out = append(out, msgs...)
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func readPartition(ctx context.Context, dialer *kafka.Dialer, brokers []string, topic string, p int, start, end int64) ([]kafka.Message, error) {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Dialer: dialer, Topic: topic, Partition: p,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(start); err != nil {
		return nil, fmt.Errorf("seek %s/%d: %w", topic, p, err)
	}
	var out []kafka.Message
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return out, fmt.Errorf("read %s/%d: %w", topic, p, err)
		}
		out = append(out, m)
		if m.Offset+1 >= end {
			return out, nil
		}
	}
}
