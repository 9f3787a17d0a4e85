package pipelinetest

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/pipeline/kafkax/readback"
)

// Broker is a Kafka cluster the helpers talk to. Transport (admin requests, writers) and Dialer
// (readers) carry its TLS and SASL settings; both are nil for the plain broker, whose helpers
// are also the package's functions that take a broker list.
type Broker struct {
	Addrs     []string
	Transport *kafka.Transport
	Dialer    *kafka.Dialer
}

func plain(brokers []string) *Broker { return &Broker{Addrs: brokers} }

// transport returns b's transport, or nil (kafka-go's default) for a plain broker. A nil
// *kafka.Transport must not reach a kafka.RoundTripper field as a non-nil interface.
func (b *Broker) transport() kafka.RoundTripper {
	if b.Transport == nil {
		return nil
	}
	return b.Transport
}

func (b *Broker) client(timeout time.Duration) *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(b.Addrs...), Transport: b.transport(), Timeout: timeout}
}

// Topic creates a fresh topic with the given partitions and deletes it when the test ends.
func (b *Broker) Topic(t testing.TB, suffix string, partitions int) string {
	t.Helper()
	name := Name(t, suffix)
	client := b.client(15 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: name, NumPartitions: partitions, ReplicationFactor: 1,
	}}})
	if err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	if err := res.Errors[name]; err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	// Wait until metadata shows every partition with a leader, so first writes do not race it.
	deadline := time.Now().Add(20 * time.Second)
	for {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{name}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) == partitions {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s not ready: %v", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{name}})
	})
	return name
}

// Produce writes msgs to topic synchronously with acks=all.
func (b *Broker) Produce(t testing.TB, topic string, msgs []kafka.Message) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(b.Addrs...), Topic: topic, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: 2 * time.Millisecond, BatchSize: 1000, Transport: b.transport()}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for start := 0; start < len(msgs); start += 1000 {
		end := min(start+1000, len(msgs))
		if err := w.WriteMessages(ctx, msgs[start:end]...); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
}

// Partitions returns the partition ids of topic.
func (b *Broker) Partitions(t testing.TB, topic string) []int {
	t.Helper()
	ids, err := readback.Partitions(context.Background(), b.client(10*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// EndOffsets returns each partition's end offset (the offset the next message will get).
func (b *Broker) EndOffsets(t testing.TB, topic string) map[int]int64 {
	t.Helper()
	out, err := readback.EndOffsets(context.Background(), b.client(10*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Count returns how many messages topic holds (sum of end offsets; topics here are never
// compacted or truncated).
func (b *Broker) Count(t testing.TB, topic string) int64 {
	var n int64
	for _, off := range b.EndOffsets(t, topic) {
		n += off
	}
	return n
}

// Committed returns group's committed offset per partition of topic (-1 when none).
func (b *Broker) Committed(t testing.TB, group, topic string) map[int]int64 {
	t.Helper()
	res, err := b.client(10*time.Second).OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{
		GroupID: group, Topics: map[string][]int{topic: b.Partitions(t, topic)},
	})
	if err != nil {
		t.Fatalf("offset fetch %s/%s: %v", group, topic, err)
	}
	out := map[int]int64{}
	for _, p := range res.Topics[topic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

// ReadAll reads every message currently in topic (all partitions, from the start) without a
// consumer group, stopping at the end offsets observed when it was called.
func (b *Broker) ReadAll(t testing.TB, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := readback.ReadRangeWith(ctx, b.Dialer, b.Addrs, topic, nil, b.EndOffsets(t, topic))
	if err != nil {
		t.Fatal(err)
	}
	return out
}
