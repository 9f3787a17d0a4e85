package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/gate"
	"github.com/threatpipe/threatpipe/pipeline/kafkax"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
	"github.com/threatpipe/threatpipe/pipeline/telemetry"
)

type topics struct{ in, out, dlq, group string }

func newTopics(t *testing.T, brokers []string, partitions int) topics {
	return topics{
		in:    pipelinetest.Topic(t, brokers, "in", partitions),
		out:   pipelinetest.Topic(t, brokers, "out", partitions),
		dlq:   pipelinetest.Topic(t, brokers, "dlq", 1),
		group: pipelinetest.Name(t, "group"),
	}
}

// instance is one in-process enricher on the real broker.
type instance struct {
	metrics  *telemetry.PipelineMetrics
	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
}

func startEnricher(t *testing.T, brokers []string, tp topics, g *gate.Gate) *instance {
	t.Helper()
	cfg, err := config.Load([]string{
		"THREATPIPE_KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"THREATPIPE_KAFKA_GROUP_ID=" + tp.group,
		"THREATPIPE_KAFKA_COMMIT_INTERVAL=200ms",
		"THREATPIPE_KAFKA_SESSION_TIMEOUT=6s", "THREATPIPE_KAFKA_HEARTBEAT_INTERVAL=1s",
	})
	if err != nil {
		t.Fatal(err)
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	clients, err := kafkax.New(&cfg.Kafka, log)
	if err != nil {
		t.Fatal(err)
	}
	reader := kafka.NewReader(clients.ReaderConfig(tp.in))
	m := telemetry.NewPipelineMetrics(prometheus.NewRegistry())
	opts := pipeline.Options{
		InputTopic: tp.in, OutputTopic: tp.out, DLQTopic: tp.dlq, Workers: 16, MaxInFlight: 512,
		MaxEventBytes: 1 << 20, MaxIndicators: 32, CommitInterval: cfg.Kafka.CommitInterval, ShutdownTimeout: 20 * time.Second,
	}
	eng := pipeline.New(opts, reader, func(done func([]kafka.Message, error)) pipeline.Publisher { return clients.Writer(done) },
		pipeline.NewEnrichHandler(opts, enrich.Unscored{}, g, m), m, log)
	ctx, cancel := context.WithCancel(context.Background())
	inst := &instance{metrics: m, cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := eng.Run(ctx)
		_ = reader.Close()
		inst.done <- err
	}()
	t.Cleanup(func() { inst.stop(t) })
	return inst
}

func (i *instance) stop(t *testing.T) {
	t.Helper()
	i.stopOnce.Do(func() {
		i.cancel()
		select {
		case err := <-i.done:
			if err != nil {
				t.Errorf("enricher stopped with: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("enricher did not stop within 30s")
		}
	})
}

func native(id, ip string) kafka.Message {
	return kafka.Message{Value: []byte(fmt.Sprintf(
		`{"event_id":%q,"observed_at":"2026-11-27T10:00:00Z","source":"it","indicator":{"type":"ipv4-addr","value":%q},"context":{"n":1},"vendor_field":"kept"}`, id, ip))}
}

func TestIntegrationMixedBatchOnRealBroker(t *testing.T) {
	brokers := pipelinetest.Kafka(t)
	tp := newTopics(t, brokers, 3)

	input := []kafka.Message{
		native("n-public", "185.220.101.4"),
		native("n-private", "192.168.7.7"),
		native("n-allow", "198.51.100.23"),
		native("n-own", "81.2.69.160"),
		native("n-v6", "2a06:98c0:3600::103"),
		{Value: []byte(`{"@timestamp":"2026-11-27T10:00:04Z","event":{"id":"ecs-1"},"source":{"ip":"45.155.205.233"},"destination":{"ip":"10.1.1.1"},"related":{"ip":["45.155.205.233","91.240.118.172"]}}`)},
		{Key: []byte("bad-1"), Value: []byte(`{"event_id": "truncated`), Headers: []kafka.Header{{Key: "origin", Value: []byte("syslog")}}},
		{Value: []byte(`{"event_id":"n-bad-ip","indicator":{"type":"ipv4-addr","value":"300.1.1.1"}}`)},
		{Value: []byte(`{"event_id":"n-domain","indicator":{"type":"domain-name","value":"evil.example"}}`)},
		{Value: []byte(`{"@timestamp":"2026-11-27T10:00:04Z","source":{"port":80}}`)},
		{Value: []byte("\xff\xfe not utf-8")},
	}
	wantScored := map[string]string{ // event_id/indicator -> gate reason ("" = looked up)
		"n-public/185.220.101.4":   "",
		"n-private/192.168.7.7":    gate.ReasonPrivate,
		"n-allow/198.51.100.23":    gate.ReasonAllowlist,
		"n-own/81.2.69.160":        gate.ReasonOwnRange,
		"n-v6/2a06:98c0:3600::103": "",
		"ecs-1/45.155.205.233":     "",
		"ecs-1/10.1.1.1":           gate.ReasonPrivate,
		"ecs-1/91.240.118.172":     "",
	}
	wantDLQ := map[string]bool{
		string(event.ClassMalformedJSON): true, string(event.ClassInvalidIndicator): true,
		string(event.ClassUnsupportedIndicator): true, string(event.ClassNoIndicator): true,
		string(event.ClassInvalidEncoding): true,
	}
	pipelinetest.Produce(t, brokers, tp.in, input)

	g := gate.New([]netipPrefix{mustPrefix("81.2.69.0/24")}, []netipPrefix{mustPrefix("198.51.100.23/32")})
	inst := startEnricher(t, brokers, tp, g)
	pipelinetest.WaitFor(t, 60*time.Second, "all scored events and dead letters", func() bool {
		return pipelinetest.Count(t, brokers, tp.out) >= int64(len(wantScored)) && pipelinetest.Count(t, brokers, tp.dlq) >= int64(len(wantDLQ))
	})
	inst.stop(t)

	got := map[string]string{}
	for _, m := range pipelinetest.ReadAll(t, brokers, tp.out) {
		var ev event.Scored
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Fatalf("scored event is not JSON: %v\n%s", err, m.Value)
		}
		if string(m.Key) != ev.Indicator.Value {
			t.Errorf("message key %q != indicator %q", m.Key, ev.Indicator.Value)
		}
		reason := ""
		if ev.Gate != nil {
			reason = ev.Gate.Reason
		}
		k := ev.EventID + "/" + ev.Indicator.Value
		if _, dup := got[k]; dup {
			t.Errorf("duplicate scored event %s after a clean run", k)
		}
		got[k] = reason
		if ev.EventID == "n-public" && (string(ev.Context) != `{"n":1}` || string(ev.Extra["vendor_field"]) != `"kept"`) {
			t.Errorf("context/extra not carried: %s %v", ev.Context, ev.Extra)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(wantScored) {
		t.Errorf("scored events\n got %v\nwant %v", got, wantScored)
	}

	dlq := pipelinetest.ReadAll(t, brokers, tp.dlq)
	if len(dlq) != len(wantDLQ) {
		t.Fatalf("dead letters: %d, want %d", len(dlq), len(wantDLQ))
	}
	for _, m := range dlq {
		class := pipelinetest.Header(m, pipeline.HeaderErrorClass)
		if !wantDLQ[class] {
			t.Errorf("unexpected dead letter class %q", class)
		}
		if pipelinetest.Header(m, pipeline.HeaderOriginalTopic) != tp.in || pipelinetest.Header(m, pipeline.HeaderErrorMessage) == "" ||
			pipelinetest.Header(m, pipeline.HeaderOriginalOffset) == "" || pipelinetest.Header(m, pipeline.HeaderOriginalPartition) == "" {
			t.Errorf("dead letter %s lacks origin headers: %v", class, m.Headers)
		}
		if class == string(event.ClassMalformedJSON) {
			if string(m.Key) != "bad-1" || string(m.Value) != `{"event_id": "truncated` || pipelinetest.Header(m, "origin") != "syslog" {
				t.Errorf("dead letter must keep key, bytes and headers: key %q value %q", m.Key, m.Value)
			}
		}
	}

	committed := pipelinetest.Committed(t, brokers, tp.group, tp.in)
	for p, end := range pipelinetest.EndOffsets(t, brokers, tp.in) {
		if committed[p] != end {
			t.Errorf("partition %d: committed %d, end %d: a clean stop must commit everything", p, committed[p], end)
		}
	}
	if n := testutil.ToFloat64(inst.metrics.Consumed.WithLabelValues(tp.in)); n != float64(len(input)) {
		t.Errorf("consumed metric %v, want %d", n, len(input))
	}
}

func TestIntegrationTwoInstancesShareTheGroup(t *testing.T) {
	brokers := pipelinetest.Kafka(t)
	tp := newTopics(t, brokers, 4)
	const n = 2000
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = native(fmt.Sprintf("e-%d", i), fmt.Sprintf("45.%d.%d.%d", i%7, i/256%256, i%256))
		msgs[i].Key = []byte(fmt.Sprint(i)) // spread over all partitions
	}
	a := startEnricher(t, brokers, tp, gate.New(nil, nil))
	b := startEnricher(t, brokers, tp, gate.New(nil, nil))
	// Wait until both are members, so the second join's rebalance is not what this test sees.
	pipelinetest.WaitFor(t, 60*time.Second, "two members in the group", func() bool {
		return groupMembers(t, brokers, tp.group) == 2
	})
	pipelinetest.Produce(t, brokers, tp.in, msgs)
	pipelinetest.WaitFor(t, 90*time.Second, "every event scored", func() bool {
		return pipelinetest.Count(t, brokers, tp.out) >= n
	})
	ca := testutil.ToFloat64(a.metrics.Consumed.WithLabelValues(tp.in))
	cb := testutil.ToFloat64(b.metrics.Consumed.WithLabelValues(tp.in))
	if ca == 0 || cb == 0 {
		t.Fatalf("consumed %v and %v: both members must get partitions", ca, cb)
	}
	seen := map[string]bool{}
	for _, m := range pipelinetest.ReadAll(t, brokers, tp.out) {
		var ev event.Scored
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Fatal(err)
		}
		seen[ev.EventID] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct events scored, want %d", len(seen), n)
	}
	t.Logf("instance A consumed %.0f, instance B %.0f", ca, cb)
}

func groupMembers(t *testing.T, brokers []string, group string) int {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	res, err := client.DescribeGroups(context.Background(), &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil || len(res.Groups) != 1 || res.Groups[0].GroupState != "Stable" {
		return 0
	}
	return len(res.Groups[0].Members)
}
