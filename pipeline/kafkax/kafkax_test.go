package kafkax

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/kafkax/readback"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

func load(t *testing.T, env ...string) *config.Config {
	t.Helper()
	c, err := config.Load(env)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSASLMechanisms(t *testing.T) {
	for mech, want := range map[string]string{"plain": "PLAIN", "scram-sha-256": "SCRAM-SHA-256", "scram-sha-512": "SCRAM-SHA-512"} {
		c := load(t, "THREATPIPE_KAFKA_SASL_MECHANISM="+mech, "THREATPIPE_KAFKA_SASL_USERNAME=u", "THREATPIPE_KAFKA_SASL_PASSWORD=p")
		clients, err := New(&c.Kafka, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		if got := clients.Transport().SASL; got == nil || got.Name() != want {
			t.Errorf("%s: transport mechanism %v, want %s", mech, got, want)
		}
		if got := clients.ReaderConfig("t").Dialer.SASLMechanism; got == nil || got.Name() != want {
			t.Errorf("%s: reader mechanism %v, want %s", mech, got, want)
		}
	}
	c := load(t)
	clients, err := New(&c.Kafka, zap.NewNop())
	if err != nil || clients.Transport().SASL != nil || clients.Transport().TLS != nil {
		t.Fatalf("defaults must use neither SASL nor TLS: %v", err)
	}
}

func TestReaderAndWriterSettings(t *testing.T) {
	c := load(t, "THREATPIPE_KAFKA_GROUP_ID=g1", "THREATPIPE_KAFKA_BATCH_TIMEOUT=3ms")
	clients, err := New(&c.Kafka, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	rc := clients.ReaderConfig("in")
	if err := rc.Validate(); err != nil {
		t.Fatalf("reader config: %v", err)
	}
	if rc.GroupID != "g1" || rc.CommitInterval != 0 || rc.StartOffset != kafka.FirstOffset {
		t.Errorf("reader: group %q, commit interval %s (0 = synchronous explicit commits), start %d", rc.GroupID, rc.CommitInterval, rc.StartOffset)
	}
	w := clients.Writer(func([]kafka.Message, error) {})
	if w.RequiredAcks != kafka.RequireAll || !w.Async || w.BatchTimeout != 3*time.Millisecond {
		t.Errorf("writer: acks %v async %v batch timeout %s", w.RequiredAcks, w.Async, w.BatchTimeout)
	}
	if _, ok := w.Balancer.(*kafka.Hash); !ok {
		t.Errorf("writer balancer %T, want key hashing", w.Balancer)
	}
	if sync := clients.Writer(nil); sync.Async {
		t.Error("a writer without completion must be synchronous")
	}
}

func TestEnsureTopicsAndPingOnRealBroker(t *testing.T) {
	brokers := pipelinetest.Kafka(t)
	c := load(t, "THREATPIPE_KAFKA_BROKERS="+strings.Join(brokers, ","), "THREATPIPE_KAFKA_TOPIC_PARTITIONS=3")
	clients, err := New(&c.Kafka, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	topic := pipelinetest.Name(t, "created")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := clients.EnsureTopics(ctx, topic); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = (&kafka.Client{Addr: kafka.TCP(brokers...)}).DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	})
	if err := clients.EnsureTopics(ctx, topic); err != nil {
		t.Fatalf("an existing topic must not be an error: %v", err)
	}
	// A topic just created reaches the broker's metadata a moment later.
	var parts []int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if parts, err = readback.Partitions(ctx, &kafka.Client{Addr: kafka.TCP(brokers...)}, topic); err == nil {
			break
		}
	}
	if len(parts) != 3 {
		t.Errorf("created partitions %v (%v), want 3", parts, err)
	}
	if err := clients.Ping(ctx, topic); err != nil {
		t.Errorf("ping: %v", err)
	}

	down := load(t, "THREATPIPE_KAFKA_BROKERS=127.0.0.1:1")
	dead, err := New(&down.Kafka, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
	defer pcancel()
	if err := dead.Ping(pctx, topic); err == nil {
		t.Error("ping of a closed port must fail")
	}
}

// The readiness check must see a broker that went away after it answered once: kafka-go's
// transport keeps serving the last metadata it knew, so a check through it stayed ready.
func TestPingSeesTheBrokerGoAwayAndComeBack(t *testing.T) {
	brokers := pipelinetest.Kafka(t)
	proxy := pipelinetest.NewProxy(t, brokers[0])
	c := load(t, "THREATPIPE_KAFKA_BROKERS="+proxy.Addr())
	clients, err := New(&c.Kafka, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	topic := pipelinetest.Topic(t, brokers, "ping", 1)
	ping := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return clients.Ping(ctx, topic)
	}
	if err := ping(); err != nil {
		t.Fatalf("ping through the proxy: %v", err)
	}
	proxy.Down()
	if err := ping(); err == nil {
		t.Error("ping succeeded while the broker was unreachable")
	}
	proxy.Up()
	if err := ping(); err != nil {
		t.Errorf("ping after the broker came back: %v", err)
	}
}
