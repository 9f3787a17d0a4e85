package pipeline

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/gate"
	"github.com/threatpipe/threatpipe/pipeline/telemetry"
)

// forcedProcessor counts the events it was asked to look up with forced lookups.
type forcedProcessor struct{ forced, plain atomic.Int64 }

func (p *forcedProcessor) Process(ctx context.Context, _ *event.Scored) error {
	if ForcedLookup(ctx) {
		p.forced.Add(1)
	} else {
		p.plain.Add(1)
	}
	return nil
}

func TestRefreshHeaderHonouredOnlyWhereAllowed(t *testing.T) {
	t.Parallel()
	native := `{"event_id":"refresh:20.0.0.1:1","source":"analyst","indicator":{"type":"ipv4-addr","value":"20.0.0.1"}}`
	refresh := []kafka.Header{{Key: RefreshHeader, Value: []byte("1")}}
	for _, tc := range []struct {
		name    string
		opts    []HandlerOption
		headers []kafka.Header
		forced  bool
	}{
		{"no option: ignored", nil, refresh, false},
		{"allowed", []HandlerOption{WithRefreshRequests(func(kafka.Message) bool { return true })}, refresh, true},
		{"refused (unsigned)", []HandlerOption{WithRefreshRequests(func(kafka.Message) bool { return false })}, refresh, false},
		{"no header", []HandlerOption{WithRefreshRequests(func(kafka.Message) bool { return true })}, nil, false},
		{"another value", []HandlerOption{WithRefreshRequests(func(kafka.Message) bool { return true })},
			[]kafka.Header{{Key: RefreshHeader, Value: []byte("0")}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := telemetry.NewPipelineMetrics(prometheus.NewRegistry())
			opts := Options{OutputTopic: "out", DLQTopic: "dlq", MaxEventBytes: 1 << 20, MaxIndicators: 32}
			p := &forcedProcessor{}
			msg := ecsMsg(1, native)
			msg.Headers = tc.headers
			if _, err := NewEnrichHandler(opts, p, gate.New(nil, nil), m, tc.opts...).Handle(context.Background(), msg); err != nil {
				t.Fatal(err)
			}
			if got := p.forced.Load() == 1; got != tc.forced || p.forced.Load()+p.plain.Load() != 1 {
				t.Errorf("forced %d, plain %d; want forced %v", p.forced.Load(), p.plain.Load(), tc.forced)
			}
		})
	}
}
