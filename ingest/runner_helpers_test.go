package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap/zaptest"

	"github.com/threatpipe/threatpipe/ingest"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

var t0 = time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)

// scripted is an in-memory Source: its cursor is the index of the next indicator, and polls
// can be scripted to fail.
type scripted struct {
	mu    sync.Mutex
	inds  []ingest.Indicator
	polls []string
	fails map[int]error // by poll number, from 0
}

var _ ingest.Source = (*scripted)(nil)

func (s *scripted) Name() string { return "scripted" }

func (s *scripted) Poll(ctx context.Context, cursor string, limit int) (ingest.Page, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.polls)
	s.polls = append(s.polls, cursor)
	if err := s.fails[n]; err != nil {
		return ingest.Page{}, err
	}
	if err := ctx.Err(); err != nil {
		return ingest.Page{}, err
	}
	i := 0
	if cursor != "" {
		var err error
		if i, err = strconv.Atoi(cursor); err != nil {
			return ingest.Page{}, err
		}
	}
	end := min(i+limit, len(s.inds))
	return ingest.Page{Indicators: append([]ingest.Indicator(nil), s.inds[i:end]...), Next: strconv.Itoa(end), More: end < len(s.inds)}, nil
}

func (s *scripted) add(inds ...ingest.Indicator) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inds = append(s.inds, inds...)
}

func (s *scripted) polled() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.polls...)
}

// ips returns n indicators from first, every fifth one (i%5 == 4) a domain, not an address.
func ips(first, n int) []ingest.Indicator {
	out := make([]ingest.Indicator, n)
	for k := range n {
		i := first + k
		v := fmt.Sprintf("198.51.%d.%d", i/250, i%250+1)
		if i%5 == 4 {
			v = fmt.Sprintf("host%d.example", i)
		}
		out[k] = ingest.Indicator{Value: v, Ref: fmt.Sprintf("rec-%d", i), Modified: t0.Add(time.Duration(i) * time.Minute),
			Tags: []string{"botnet"}, Context: map[string]string{"score": "80"}}
	}
	return out
}

// publisher wraps a real writer: it fails the writes numbered in failOn (from 0) without
// writing, and calls before ahead of each write. Set both before the runner starts.
type publisher struct {
	w      *kafka.Writer
	failOn map[int]bool
	before func(write int)
	mu     sync.Mutex
	writes int
}

func (p *publisher) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	p.mu.Lock()
	n := p.writes
	p.writes++
	p.mu.Unlock()
	if p.before != nil {
		p.before(n)
	}
	if p.failOn[n] {
		return errors.New("injected: broker unreachable")
	}
	return p.w.WriteMessages(ctx, msgs...)
}

// rig is a runner's surroundings on the real broker and Redis.
type rig struct {
	brokers []string
	topic   string
	rdb     *redis.Client
	cursors *ingest.Cursors
	reg     *prometheus.Registry
	metrics *ingest.Metrics
	pub     *publisher
}

func newRig(t *testing.T) *rig {
	t.Helper()
	brokers := pipelinetest.Kafka(t)
	rdb := redis.NewClient(&redis.Options{Addr: pipelinetest.Redis(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), RequiredAcks: kafka.RequireAll, Balancer: &kafka.Hash{}, BatchTimeout: 5 * time.Millisecond}
	t.Cleanup(func() { _ = w.Close() })
	r := &rig{brokers: brokers, topic: pipelinetest.Topic(t, brokers, "in", 3), rdb: rdb,
		cursors: ingest.NewCursors(rdb, pipelinetest.Name(t, "tp")), pub: &publisher{w: w}}
	r.fresh()
	return r
}

// fresh gives the rig new metrics, as a restarted process has.
func (r *rig) fresh() {
	r.reg = prometheus.NewRegistry()
	r.metrics = ingest.NewMetrics(r.reg)
}

func (r *rig) runner(t *testing.T, src ingest.Source, opts ingest.Options) *ingest.Runner {
	opts.Topic = r.topic
	if opts.PageSize == 0 {
		opts.PageSize = 10
	}
	if opts.Interval == 0 {
		opts.Interval = time.Hour
	}
	opts.NewBackOff = func() backoff.BackOff { return backoff.NewConstantBackOff(20 * time.Millisecond) }
	return ingest.NewRunner([]ingest.Source{src}, r.pub, r.cursors, r.metrics, zaptest.NewLogger(t), opts)
}

// start runs the runner until the test stops it with the returned function, which waits for
// Run to return and reports its error.
func start(t *testing.T, run *ingest.Runner) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				err = errors.New("Run did not return within 20s of the cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func (r *rig) cursor(t *testing.T) string {
	t.Helper()
	c, err := r.cursors.Get(context.Background(), "scripted")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// published returns the native events on the topic, decoded.
func (r *rig) published(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, m := range pipelinetest.ReadAll(t, r.brokers, r.topic) {
		var ev map[string]any
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Fatalf("not JSON: %s", m.Value)
		}
		if ind, _ := ev["indicator"].(map[string]any); ind == nil || string(m.Key) != ind["value"] {
			t.Errorf("message key %q does not name the indicator of %s", m.Key, m.Value)
		}
		out = append(out, ev)
	}
	return out
}

// eventIDs counts the published events by id.
func eventIDs(evs []map[string]any) map[string]int {
	ids := map[string]int{}
	for _, ev := range evs {
		ids[ev["event_id"].(string)]++
	}
	return ids
}
