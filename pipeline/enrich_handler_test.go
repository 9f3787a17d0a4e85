package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/gate"
	"github.com/threatpipe/threatpipe/pipeline/telemetry"
)

// noopProcessor scores nothing.
type noopProcessor struct{}

func (noopProcessor) Process(context.Context, *event.Scored) error { return nil }

func ecsMsg(offset int64, doc string) kafka.Message {
	return kafka.Message{Topic: "in", Partition: 2, Offset: offset, Value: []byte(doc), Time: time.Unix(1700000000, 0)}
}

// TestInputLimitsDeadLetterWithAClass runs the handler on one input over each limit and checks
// the outputs: dead letters with the limit's class (and scored events for the first indicators
// of an event over the indicator limit), and the dead-letter counter by class.
func TestInputLimitsDeadLetterWithAClass(t *testing.T) {
	ips := func(n int) string {
		var list []string
		for i := range n {
			list = append(list, fmt.Sprintf(`"20.0.0.%d"`, i+1))
		}
		return strings.Join(list, ",")
	}
	tests := []struct {
		name       string
		opts       []HandlerOption
		doc        string
		wantScored int
		wantClass  string
		msgHas     string
	}{
		{"too deep", nil, `{"source":{"ip":"8.8.8.8"},"x":` + strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000) + `}`,
			0, "too_deep", "deeper than the limit of 64 levels"},
		{"depth configured", []HandlerOption{WithInputLimits(3, 0)}, `{"source":{"ip":"8.8.8.8","geo":{"a":{}}}}`,
			0, "too_deep", "limit of 3 levels"},
		{"depth within the configured limit", []HandlerOption{WithInputLimits(3, 0)}, `{"source":{"ip":"8.8.8.8","geo":{}}}`, 1, "", ""},
		{"number out of range", nil, `{"source":{"ip":"8.8.8.8"},"bytes":1e400}`, 0, "number_out_of_range", "1e400"},
		{"too large", nil, `{"source":{"ip":"8.8.8.8"},"m":"` + strings.Repeat("x", 70<<10) + `"}`, 0, "too_large", "the limit is 65536"},
		{"too many indicators", nil, `{"related":{"ip":[` + ips(5) + `]}}`, 3, "too_many_indicators",
			"the event names 5 distinct addresses, over the limit of 3: the first 3 were scored, these were not: 20.0.0.4, 20.0.0.5"},
		{"at the indicator limit", nil, `{"related":{"ip":[` + ips(3) + `]}}`, 3, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := telemetry.NewPipelineMetrics(prometheus.NewRegistry())
			opts := Options{OutputTopic: "out", DLQTopic: "dlq", MaxEventBytes: 64 << 10, MaxIndicators: 3}
			h := NewEnrichHandler(opts, noopProcessor{}, gate.New(nil, nil), m, tt.opts...)
			outs, err := h.Handle(context.Background(), ecsMsg(7, tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			var scored, dead []kafka.Message
			for _, o := range outs {
				switch o.Topic {
				case "out":
					scored = append(scored, o)
				case "dlq":
					dead = append(dead, o)
				}
			}
			if len(scored) != tt.wantScored || len(scored)+len(dead) != len(outs) {
				t.Fatalf("%d scored events, %d dead letters, %d outputs; want %d scored", len(scored), len(dead), len(outs), tt.wantScored)
			}
			if tt.wantClass == "" {
				if len(dead) != 0 {
					t.Fatalf("dead letter %q", header(dead[0], HeaderErrorMessage))
				}
				return
			}
			if len(dead) != 1 {
				t.Fatalf("%d dead letters, want 1", len(dead))
			}
			dl := dead[0]
			if got := header(dl, HeaderErrorClass); got != tt.wantClass {
				t.Errorf("class %q, want %q", got, tt.wantClass)
			}
			if got := header(dl, HeaderErrorMessage); !strings.Contains(got, tt.msgHas) {
				t.Errorf("message %q lacks %q", got, tt.msgHas)
			}
			if string(dl.Value) != tt.doc || header(dl, HeaderOriginalOffset) != "7" {
				t.Errorf("dead letter is not the original at offset 7")
			}
			if n := testutil.ToFloat64(m.DeadLettered.WithLabelValues(tt.wantClass)); n != 1 {
				t.Errorf("dead-letter counter for %s is %v, want 1", tt.wantClass, n)
			}
		})
	}
}

// TestCarriedContextIsBounded checks that the scored events of a big document carry the bounded
// context, the same for each of them, and say so.
func TestCarriedContextIsBounded(t *testing.T) {
	doc := `{"@timestamp":"2026-03-14T09:27:01Z","source":{"ip":"20.0.0.1"},"destination":{"ip":"20.0.0.2"},` +
		`"message":"` + strings.Repeat("m", 300<<10) + `","rule":{"name":"r"}}`
	for _, tc := range []struct {
		name        string
		opts        []HandlerOption
		wantContext string
	}{
		{"default bound", nil, `{"@timestamp":"2026-03-14T09:27:01Z","source":{"ip":"20.0.0.1"},"destination":{"ip":"20.0.0.2"},"rule":{"name":"r"}}`},
		{"configured bound", []HandlerOption{WithInputLimits(0, 60)}, `{"source":{"ip":"20.0.0.1"},"rule":{"name":"r"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := telemetry.NewPipelineMetrics(prometheus.NewRegistry())
			opts := Options{OutputTopic: "out", DLQTopic: "dlq", MaxEventBytes: 1 << 20, MaxIndicators: 32}
			outs, err := NewEnrichHandler(opts, noopProcessor{}, gate.New(nil, nil), m, tc.opts...).Handle(context.Background(), ecsMsg(9, doc))
			if err != nil || len(outs) != 2 {
				t.Fatalf("%d outputs, %v", len(outs), err)
			}
			for _, o := range outs {
				var ev event.Scored
				if err := json.Unmarshal(o.Value, &ev); err != nil {
					t.Fatal(err)
				}
				if string(ev.Context) != tc.wantContext {
					t.Errorf("context %.200s, want %s", ev.Context, tc.wantContext)
				}
				tr := ev.ContextTruncated
				if tr == nil || tr.OriginalBytes != len(doc) || tr.Omitted[0] != "context.message" || ev.Origin.Offset != 9 {
					t.Errorf("context_truncated %+v, origin %+v", tr, ev.Origin)
				}
				if len(o.Value) > 2<<10 {
					t.Errorf("scored event of %d bytes", len(o.Value))
				}
			}
		})
	}
}

// TestOversizedScoredEventSaysWhatWasDropped covers the older bound: a scored event over the
// size limit loses its context and extra fields whole, and says so.
func TestOversizedScoredEventSaysWhatWasDropped(t *testing.T) {
	m := telemetry.NewPipelineMetrics(prometheus.NewRegistry())
	opts := Options{OutputTopic: "out", DLQTopic: "dlq", MaxEventBytes: 2 << 10, MaxIndicators: 32}
	h := NewEnrichHandler(opts, noopProcessor{}, gate.New(nil, nil), m, WithInputLimits(0, 4<<10))
	doc := `{"event_id":"e","indicator":{"type":"ipv4-addr","value":"20.0.0.1"},"context":{"a":"` + strings.Repeat("x", 1900) + `"},"tenant":"t"}`
	outs, err := h.Handle(context.Background(), ecsMsg(1, doc))
	if err != nil || len(outs) != 1 {
		t.Fatalf("%d outputs, %v", len(outs), err)
	}
	var ev event.Scored
	if err := json.Unmarshal(outs[0].Value, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Context != nil || ev.Extra != nil || ev.ContextTruncated == nil ||
		strings.Join(ev.ContextTruncated.Omitted, ",") != "context,extra" || ev.ContextTruncated.OriginalBytes != 1908+15 {
		t.Errorf("context %s extra %v truncated %+v", ev.Context, ev.Extra, ev.ContextTruncated)
	}
}

// answeringProcessor gives every indicator one provider answer with members only a full scored
// event carries.
type answeringProcessor struct{}

func (answeringProcessor) Process(_ context.Context, s *event.Scored) error {
	s.Providers = map[string]*event.ProviderOutcome{"criminalip": {Status: event.StatusOK, Result: &event.Intel{
		Verdict: event.VerdictMalicious, Score: 90, Detail: "inbound Critical", Tags: []string{"scanner"},
		InboundLevel: "Critical", OpenPorts: []int{22}, ASNumber: 64500,
	}}}
	s.Reasons = []event.Reason{{Source: "criminalip", Detail: "inbound Critical", Points: 90}}
	return nil
}

// TestScoredDetail checks what the published events carry of a provider's answer: the compact
// members by default, everything with WithScoredDetail(event.DetailFull).
func TestScoredDetail(t *testing.T) {
	native := `{"event_id":"e","indicator":{"type":"ipv4-addr","value":"20.0.0.1"}}`
	for _, tc := range []struct {
		name      string
		opts      []HandlerOption
		wantPorts bool
	}{
		{"default compact", nil, false},
		{"full on request", []HandlerOption{WithScoredDetail(event.DetailFull)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := telemetry.NewPipelineMetrics(prometheus.NewRegistry())
			opts := Options{OutputTopic: "out", DLQTopic: "dlq", MaxEventBytes: 1 << 20, MaxIndicators: 32}
			outs, err := NewEnrichHandler(opts, answeringProcessor{}, gate.New(nil, nil), m, tc.opts...).Handle(context.Background(), ecsMsg(1, native))
			if err != nil || len(outs) != 1 {
				t.Fatalf("%d outputs, %v", len(outs), err)
			}
			var ev event.Scored
			if err := json.Unmarshal(outs[0].Value, &ev); err != nil {
				t.Fatal(err)
			}
			r := ev.Providers["criminalip"].Result
			if r.Verdict != event.VerdictMalicious || r.Score != 90 || len(r.Tags) != 1 {
				t.Errorf("result %+v lost what the score and playbooks read", r)
			}
			if got := len(r.OpenPorts) == 1 && r.InboundLevel != "" && r.ASNumber != 0 && r.Detail != ""; got != tc.wantPorts {
				t.Errorf("full members present = %v, want %v: %s", got, tc.wantPorts, outs[0].Value)
			}
		})
	}
}
