package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap/zaptest"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/gate"
	"github.com/threatpipe/threatpipe/pipeline/telemetry"
)

// fakeSource serves a fixed list of messages, then blocks; it records commits the way kafka-go
// does (the committed offset is the message offset + 1, highest wins).
type fakeSource struct {
	msgs    chan kafka.Message
	errs    chan error // returned by fetches before any message, one each
	fetched atomic.Int64

	mu        sync.Mutex
	committed map[int]int64
}

func newFakeSource(msgs []kafka.Message) *fakeSource {
	s := &fakeSource{msgs: make(chan kafka.Message, len(msgs)), errs: make(chan error, 16), committed: map[int]int64{}}
	for _, m := range msgs {
		s.msgs <- m
	}
	return s
}

func (s *fakeSource) FetchMessage(ctx context.Context) (kafka.Message, error) {
	select {
	case err := <-s.errs:
		return kafka.Message{}, err
	default:
	}
	select {
	case m := <-s.msgs:
		s.fetched.Add(1)
		return m, nil
	case <-ctx.Done():
		return kafka.Message{}, ctx.Err()
	}
}

func (s *fakeSource) CommitMessages(_ context.Context, msgs ...kafka.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range msgs {
		if m.Offset+1 > s.committed[m.Partition] {
			s.committed[m.Partition] = m.Offset + 1
		}
	}
	return nil
}

func (s *fakeSource) committedAt(partition int) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.committed[partition]
}

// fakePublisher acknowledges asynchronously like kafka-go's async Writer. fail decides, per
// attempt, whether a write fails; hold blocks acknowledgements until closed.
type fakePublisher struct {
	done func([]kafka.Message, error)
	fail func(attempt int64) error
	// failBatch, when set, decides per write from its messages.
	failBatch func(batch []kafka.Message) error
	hold      chan struct{}
	attempts  atomic.Int64
	wg        sync.WaitGroup

	mu    sync.Mutex
	acked []kafka.Message
}

func (p *fakePublisher) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	batch := append([]kafka.Message(nil), msgs...)
	attempt := p.attempts.Add(1)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if p.hold != nil {
			<-p.hold
		}
		if p.fail != nil {
			if err := p.fail(attempt); err != nil {
				p.done(batch, err)
				return
			}
		}
		if p.failBatch != nil {
			if err := p.failBatch(batch); err != nil {
				p.done(batch, err)
				return
			}
		}
		p.mu.Lock()
		p.acked = append(p.acked, batch...)
		p.mu.Unlock()
		p.done(batch, nil)
	}()
	return nil
}

func (p *fakePublisher) Close() error { p.wg.Wait(); return nil }

func (p *fakePublisher) messages(topic string) []kafka.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []kafka.Message
	for _, m := range p.acked {
		if m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// blockingProcessor blocks events whose indicator is in blocked until release is closed.
type blockingProcessor struct {
	blocked map[string]bool
	release chan struct{}
	calls   atomic.Int64
	err     error
}

func (p *blockingProcessor) Process(ctx context.Context, ev *event.Scored) error {
	p.calls.Add(1)
	if p.blocked[ev.Indicator.Value] {
		select {
		case <-p.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	ev.Score = 42
	return p.err
}

func nativeMsg(partition int, offset int64, ip string) kafka.Message {
	v := fmt.Sprintf(`{"event_id":"e-%d-%d","observed_at":"2026-11-27T10:00:00Z","source":"fw","indicator":{"type":"ipv4-addr","value":%q}}`, partition, offset, ip)
	return kafka.Message{Topic: "in", Partition: partition, Offset: offset, Value: []byte(v), Time: time.Now()}
}

type harness struct {
	engine  *Engine
	source  *fakeSource
	pub     *fakePublisher
	metrics *telemetry.PipelineMetrics
	cancel  context.CancelFunc
	result  chan error
}

func defaultOptions() Options {
	return Options{InputTopic: "in", OutputTopic: "out", DLQTopic: "dlq", Workers: 4, MaxInFlight: 64,
		MaxEventBytes: 1 << 20, MaxIndicators: 8, CommitInterval: 10 * time.Millisecond, ShutdownTimeout: 5 * time.Second}
}

func start(t *testing.T, opts Options, msgs []kafka.Message, proc Processor, pub *fakePublisher) *harness {
	t.Helper()
	return startSource(t, opts, newFakeSource(msgs), proc, pub)
}

func startSource(t *testing.T, opts Options, src *fakeSource, proc Processor, pub *fakePublisher) *harness {
	t.Helper()
	h := &harness{source: src, pub: pub, result: make(chan error, 1)}
	h.metrics = telemetry.NewPipelineMetrics(prometheus.NewRegistry())
	h.engine = New(opts, h.source, func(done func([]kafka.Message, error)) Publisher {
		pub.done = done
		return pub
	}, NewEnrichHandler(opts, proc, gate.New(nil, nil), h.metrics), h.metrics, zaptest.NewLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.result <- h.engine.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.result:
		case <-time.After(10 * time.Second):
			t.Error("engine did not stop")
		}
	})
	return h
}

func (h *harness) stop(t *testing.T) error {
	t.Helper()
	h.cancel()
	select {
	case err := <-h.result:
		h.result <- err // let Cleanup see it too
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("engine did not stop within 10s")
		return nil
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSlowEventHoldsCommitButNotOthers(t *testing.T) {
	var msgs []kafka.Message
	for i := range 10 {
		msgs = append(msgs, nativeMsg(0, int64(i), fmt.Sprintf("8.8.8.%d", i)))
	}
	proc := &blockingProcessor{blocked: map[string]bool{"8.8.8.3": true}, release: make(chan struct{})}
	h := start(t, defaultOptions(), msgs, proc, &fakePublisher{})

	waitUntil(t, "the nine fast events to be published", func() bool { return len(h.pub.messages("out")) == 9 })
	time.Sleep(50 * time.Millisecond) // several commit intervals
	if got := h.source.committedAt(0); got != 3 {
		t.Fatalf("committed offset while event 3 is in flight = %d, want 3 (offsets 0-2 done)", got)
	}
	close(proc.release)
	waitUntil(t, "commit past the slow event", func() bool { return h.source.committedAt(0) == 10 })
	if err := h.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := len(h.pub.messages("out")); got != 10 {
		t.Fatalf("published %d scored events, want 10", got)
	}
}

func TestScoredEventsAndDeadLetters(t *testing.T) {
	bad := []kafka.Message{
		{Topic: "in", Partition: 1, Offset: 7, Key: []byte("k1"), Value: []byte(`{"event_id":`),
			Headers: []kafka.Header{{Key: "trace", Value: []byte("abc")}}},
		{Topic: "in", Partition: 1, Offset: 8, Value: []byte{0xff, 0xfe, '{', '}'}},
		{Topic: "in", Partition: 1, Offset: 9, Value: []byte(`{"@timestamp":"2026-11-27T10:00:00Z","source":{"ip":"not-an-ip"}}`)},
	}
	msgs := append([]kafka.Message{
		nativeMsg(0, 0, "8.8.8.8"),
		nativeMsg(0, 1, "192.168.1.10"),
		{Topic: "in", Partition: 0, Offset: 2, Value: []byte(`{"@timestamp":"2026-11-27T10:00:00Z","event":{"id":"ecs-1"},"source":{"ip":"1.1.1.1"},"destination":{"ip":"10.0.0.5"},"related":{"ip":["1.1.1.1","9.9.9.9"]}}`)},
	}, bad...)
	proc := &blockingProcessor{}
	h := start(t, defaultOptions(), msgs, proc, &fakePublisher{})
	waitUntil(t, "all offsets committed", func() bool { return h.source.committedAt(0) == 3 && h.source.committedAt(1) == 10 })
	if err := h.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}

	scored := map[string]event.Scored{}
	for _, m := range h.pub.messages("out") {
		var ev event.Scored
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Fatalf("scored event is not JSON: %v", err)
		}
		if string(m.Key) != ev.Indicator.Value {
			t.Errorf("key %q, want the indicator value %q", m.Key, ev.Indicator.Value)
		}
		scored[ev.EventID+"/"+ev.Indicator.Value] = ev
	}
	want := map[string]struct {
		gated string
		score int
	}{
		"e-0-0/8.8.8.8":      {"", 42},
		"e-0-1/192.168.1.10": {gate.ReasonPrivate, 0},
		"ecs-1/1.1.1.1":      {"", 42},
		"ecs-1/10.0.0.5":     {gate.ReasonPrivate, 0},
		"ecs-1/9.9.9.9":      {"", 42},
	}
	if len(scored) != len(want) {
		t.Fatalf("scored events %v, want %d", keys(scored), len(want))
	}
	for k, w := range want {
		ev, ok := scored[k]
		if !ok {
			t.Fatalf("missing scored event %s (have %v)", k, keys(scored))
		}
		if (ev.Gate != nil) != (w.gated != "") || (ev.Gate != nil && ev.Gate.Reason != w.gated) {
			t.Errorf("%s: gate %+v, want %q", k, ev.Gate, w.gated)
		}
		if ev.Score != w.score || ev.Severity != event.SeverityOf(w.score) {
			t.Errorf("%s: score %d severity %s, want %d", k, ev.Score, ev.Severity, w.score)
		}
		if ev.SchemaVersion != event.SchemaVersion || ev.Origin.Topic != "in" {
			t.Errorf("%s: schema %q origin %+v", k, ev.SchemaVersion, ev.Origin)
		}
	}
	if got := scored["ecs-1/1.1.1.1"].ECSFields; strings.Join(got, ",") != "source.ip,related.ip" {
		t.Errorf("ECS fields of 1.1.1.1 = %v, want [source.ip related.ip]", got)
	}
	if calls := proc.calls.Load(); calls != 3 {
		t.Errorf("processor called %d times, want 3 (gated indicators are not looked up)", calls)
	}

	dlq := h.pub.messages("dlq")
	if len(dlq) != len(bad) {
		t.Fatalf("dead letters: %d, want %d", len(dlq), len(bad))
	}
	classes := map[string]kafka.Message{}
	for _, m := range dlq {
		classes[header(m, HeaderErrorClass)] = m
	}
	for class, orig := range map[event.ErrorClass]kafka.Message{
		event.ClassMalformedJSON: bad[0], event.ClassInvalidEncoding: bad[1], event.ClassNoIndicator: bad[2],
	} {
		m, ok := classes[string(class)]
		if !ok {
			t.Fatalf("no dead letter of class %s (have %v)", class, keys(classes))
		}
		if string(m.Value) != string(orig.Value) || string(m.Key) != string(orig.Key) {
			t.Errorf("%s: dead letter must carry the original key and bytes unchanged", class)
		}
		if header(m, HeaderOriginalTopic) != "in" || header(m, HeaderOriginalPartition) != "1" ||
			header(m, HeaderOriginalOffset) != fmt.Sprint(orig.Offset) || header(m, HeaderErrorMessage) == "" ||
			header(m, HeaderSchemaVersion) != event.SchemaVersion {
			t.Errorf("%s: headers %v", class, m.Headers)
		}
	}
	if header(classes[string(event.ClassMalformedJSON)], "trace") != "abc" {
		t.Error("the original headers must be kept on the dead letter")
	}
	if got := testutil.ToFloat64(h.metrics.DeadLettered.WithLabelValues(string(event.ClassMalformedJSON))); got != 1 {
		t.Errorf("dead letter metric = %v, want 1", got)
	}
	if got := testutil.ToFloat64(h.metrics.Gated.WithLabelValues(gate.ReasonPrivate)); got != 2 {
		t.Errorf("gated metric = %v, want 2", got)
	}
}

func TestBackpressureBoundsInFlight(t *testing.T) {
	var msgs []kafka.Message
	for i := range 100 {
		msgs = append(msgs, nativeMsg(0, int64(i), "8.8.4.4"))
	}
	opts := defaultOptions()
	opts.MaxInFlight = 5
	pub := &fakePublisher{hold: make(chan struct{})}
	h := start(t, opts, msgs, &blockingProcessor{}, pub)

	waitUntil(t, "the in-flight window to fill", func() bool { return h.source.fetched.Load() == 5 })
	time.Sleep(50 * time.Millisecond)
	if got := h.source.fetched.Load(); got != 5 {
		t.Fatalf("fetched %d messages with the output stalled, want exactly MaxInFlight=5", got)
	}
	if got := testutil.ToFloat64(h.metrics.InFlight); got != 5 {
		t.Errorf("in-flight gauge = %v, want 5", got)
	}
	close(pub.hold)
	waitUntil(t, "everything committed once the output recovers", func() bool { return h.source.committedAt(0) == 100 })
}

func TestPublishFailuresAreRetriedBeforeCommit(t *testing.T) {
	msgs := []kafka.Message{nativeMsg(0, 0, "8.8.8.8"), nativeMsg(0, 1, "8.8.4.4")}
	pub := &fakePublisher{fail: func(attempt int64) error {
		if attempt <= 3 {
			return kafka.LeaderNotAvailable
		}
		return nil
	}}
	h := start(t, defaultOptions(), msgs, &blockingProcessor{}, pub)
	waitUntil(t, "both events acknowledged and committed", func() bool { return h.source.committedAt(0) == 2 })
	if got := len(pub.messages("out")); got != 2 {
		t.Fatalf("acknowledged %d scored events, want 2", got)
	}
	if got := testutil.ToFloat64(h.metrics.PublishRetries); got < 1 {
		t.Errorf("publish retries metric = %v, want >= 1", got)
	}
}

func TestShutdownDrainsInFlightEvents(t *testing.T) {
	var msgs []kafka.Message
	for i := range 20 {
		msgs = append(msgs, nativeMsg(0, int64(i), fmt.Sprintf("8.8.8.%d", i)))
	}
	proc := &blockingProcessor{blocked: map[string]bool{"8.8.8.5": true}, release: make(chan struct{})}
	opts := defaultOptions()
	opts.CommitInterval = time.Hour // only the final commit counts
	h := start(t, opts, msgs, proc, &fakePublisher{})
	waitUntil(t, "the other events published", func() bool { return len(h.pub.messages("out")) == 19 })

	go func() { time.Sleep(100 * time.Millisecond); close(proc.release) }()
	if err := h.stop(t); err != nil {
		t.Fatalf("Run after a clean drain: %v", err)
	}
	if got := len(h.pub.messages("out")); got != 20 {
		t.Fatalf("published %d, want 20: the drain must finish in-flight events", got)
	}
	if got := h.source.committedAt(0); got != 20 {
		t.Fatalf("final commit at %d, want 20", got)
	}
}

func TestShutdownTimeoutLeavesStuckEventUncommitted(t *testing.T) {
	msgs := []kafka.Message{nativeMsg(0, 0, "8.8.8.8"), nativeMsg(0, 1, "8.8.4.4"), nativeMsg(0, 2, "9.9.9.9")}
	proc := &blockingProcessor{blocked: map[string]bool{"8.8.4.4": true}, release: make(chan struct{})}
	opts := defaultOptions()
	opts.ShutdownTimeout = 200 * time.Millisecond
	h := start(t, opts, msgs, proc, &fakePublisher{})
	waitUntil(t, "the fast events published", func() bool { return len(h.pub.messages("out")) == 2 })

	err := h.stop(t)
	if err == nil || !strings.Contains(err.Error(), "drain timed out") {
		t.Fatalf("Run = %v, want a drain timeout error", err)
	}
	if got := h.source.committedAt(0); got != 1 {
		t.Fatalf("committed %d, want 1: the stuck event at offset 1 must stay uncommitted", got)
	}
}

func TestProcessorErrorIsPublishedWithWarning(t *testing.T) {
	proc := &blockingProcessor{err: errors.New("provider exploded")}
	h := start(t, defaultOptions(), []kafka.Message{nativeMsg(0, 0, "8.8.8.8")}, proc, &fakePublisher{})
	waitUntil(t, "the event published", func() bool { return len(h.pub.messages("out")) == 1 })
	var ev event.Scored
	if err := json.Unmarshal(h.pub.messages("out")[0].Value, &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Warnings) != 1 || !strings.Contains(ev.Warnings[0], "provider exploded") {
		t.Fatalf("warnings = %v, want the processor error", ev.Warnings)
	}
	if got := testutil.ToFloat64(h.metrics.ProcessErrors); got != 1 {
		t.Errorf("process errors metric = %v", got)
	}
}

func TestTooLargeHandling(t *testing.T) {
	dlq := kafka.Message{Topic: "dlq", Value: make([]byte, 200<<10), Headers: []kafka.Header{{Key: HeaderErrorClass, Value: []byte("too_large")}}}
	ev := event.Scored{EventID: "x", Context: json.RawMessage(`{"big":"` + strings.Repeat("a", 1000) + `"}`)}
	v, _ := json.Marshal(ev)
	scored := kafka.Message{Topic: "out", Value: v}

	out := shrinkIfTooLarge([]kafka.Message{dlq, scored}, kafka.MessageSizeTooLarge)
	if len(out[0].Value) != truncatedDeadLetterBytes || header(out[0], HeaderTruncated) != fmt.Sprint(200<<10) {
		t.Errorf("dead letter: %d bytes, truncated header %q", len(out[0].Value), header(out[0], HeaderTruncated))
	}
	var got event.Scored
	if err := json.Unmarshal(out[1].Value, &got); err != nil || got.Context != nil || len(got.Warnings) != 1 {
		t.Errorf("scored event after shrinking: context %s warnings %v err %v", got.Context, got.Warnings, err)
	}
	if same := shrinkIfTooLarge([]kafka.Message{dlq}, kafka.LeaderNotAvailable); len(same[0].Value) != len(dlq.Value) {
		t.Error("other errors must leave messages unchanged")
	}
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestPublishOutageRetriesInWaves: when a broker outage fails many batches at once, they are
// retried together after one backoff, not one backoff per batch (which would take minutes
// here: 40 batches with delays doubling to 5 s).
func TestPublishOutageRetriesInWaves(t *testing.T) {
	var msgs []kafka.Message
	for i := range 40 {
		msgs = append(msgs, nativeMsg(0, int64(i), fmt.Sprintf("8.8.%d.1", i)))
	}
	// The outage refuses the first write of every output. One worker and a slow processor make
	// the events arrive one by one, so they fail as many separate batches: retried one backoff
	// per batch (doubling to 5 s), they would take minutes; retried in waves, well under a second.
	var mu sync.Mutex
	refused := map[string]bool{}
	var failedWrites atomic.Int64
	pub := &fakePublisher{}
	pub.failBatch = func(batch []kafka.Message) error {
		mu.Lock()
		defer mu.Unlock()
		fresh := false
		for _, m := range batch {
			if !refused[string(m.Key)] {
				refused[string(m.Key)], fresh = true, true
			}
		}
		if fresh {
			failedWrites.Add(1)
			return kafka.NotLeaderForPartition
		}
		return nil
	}
	opts := defaultOptions()
	opts.Workers = 1
	h := start(t, opts, msgs, slowProcessor(5*time.Millisecond), pub)
	waitUntil(t, "every event acknowledged and committed after the outage", func() bool { return h.source.committedAt(0) == 40 })
	if got := len(pub.messages("out")); got < 40 {
		t.Fatalf("%d acknowledged, want 40", got)
	}
	if n := failedWrites.Load(); n < 10 {
		t.Fatalf("only %d separate batches failed: the test did not exercise a wave of failures", n)
	}
}

// slowProcessor takes d per event.
type slowProcessor time.Duration

func (p slowProcessor) Process(ctx context.Context, _ *event.Scored) error {
	select {
	case <-time.After(time.Duration(p)):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestMessagesWithoutOutputsAreCommitted: a handler that publishes nothing for a message (a
// playbook worker with no matching step) still has its offset committed, in order with the rest.
func TestMessagesWithoutOutputsAreCommitted(t *testing.T) {
	var msgs []kafka.Message
	for i := range 20 {
		msgs = append(msgs, nativeMsg(0, int64(i), "8.8.8.8"))
	}
	pub := &fakePublisher{}
	source := newFakeSource(msgs)
	metrics := telemetry.NewPipelineMetrics(prometheus.NewRegistry())
	handler := HandlerFunc(func(_ context.Context, msg kafka.Message) ([]kafka.Message, error) {
		if msg.Offset%2 == 0 {
			return nil, nil
		}
		return []kafka.Message{{Topic: "out", Value: msg.Value}}, nil
	})
	engine := New(defaultOptions(), source, func(done func([]kafka.Message, error)) Publisher {
		pub.done = done
		return pub
	}, handler, metrics, zaptest.NewLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() { result <- engine.Run(ctx) }()
	waitUntil(t, "all 20 committed", func() bool { return source.committedAt(0) == 20 })
	cancel()
	if err := <-result; err != nil {
		t.Fatal(err)
	}
	if got := len(pub.messages("out")); got != 10 {
		t.Fatalf("%d published, want 10", got)
	}
}

// observingProcessor counts lookups and gated indicators.
type observingProcessor struct{ processed, gated atomic.Int64 }

func (p *observingProcessor) Process(context.Context, *event.Scored) error {
	p.processed.Add(1)
	return nil
}
func (p *observingProcessor) Gated() { p.gated.Add(1) }

func TestGatedIndicatorsAreObservedNotProcessed(t *testing.T) {
	msgs := []kafka.Message{nativeMsg(0, 0, "10.1.2.3"), nativeMsg(0, 1, "8.8.8.8"), nativeMsg(0, 2, "192.168.0.1")}
	proc := &observingProcessor{}
	h := start(t, defaultOptions(), msgs, proc, &fakePublisher{})
	waitUntil(t, "all committed", func() bool { return h.source.committedAt(0) == 3 })
	if p, g := proc.processed.Load(), proc.gated.Load(); p != 1 || g != 2 {
		t.Errorf("processed %d, gated %d; want 1 and 2", p, g)
	}
	if got := testutil.ToFloat64(h.metrics.Gated.WithLabelValues("private")); got != 2 {
		t.Errorf("gated{reason=private} = %v, want 2", got)
	}
}
