package pipeline

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/format/all"
	"github.com/threatpipe/threatpipe/pipeline/format/fixture"
	"github.com/threatpipe/threatpipe/pipeline/gate"
	"github.com/threatpipe/threatpipe/pipeline/telemetry"
)

// TestAutoModeReadsTheJSONFormats runs the enricher's handler, configured as the enrich command
// configures it in auto mode, over the published-sample fixtures of the JSON input formats: each
// message that decodes gives one scored event per address, with its input_format, its whole
// document as context and no dead letter; each that does not is dead-lettered.
func TestAutoModeReadsTheJSONFormats(t *testing.T) {
	for _, tc := range []struct {
		format event.Format
		file   string
	}{
		{"eve", "format/eve/testdata/eve.jsonl"},
		{"zeek", "format/zeek/testdata/zeek.jsonl"},
	} {
		t.Run(string(tc.format), func(t *testing.T) {
			fixtures, err := fixture.Load(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			m := telemetry.NewPipelineMetrics(prometheus.NewRegistry())
			opts := Options{OutputTopic: "out", DLQTopic: "dlq", MaxEventBytes: 1 << 20, MaxIndicators: 32}
			h := NewEnrichHandler(opts, noopProcessor{}, gate.New(nil, nil), m, WithInputFormats(event.AutoFormat, all.Formats()...))
			wantIndicators := 0
			for i, f := range fixtures {
				msg := kafka.Message{Topic: "in", Partition: 1, Offset: int64(i), Value: f.Value, Time: time.Unix(1700000000, 0)}
				outs, err := h.Handle(context.Background(), msg)
				if err != nil {
					t.Fatalf("%s: %v", f.Name, err)
				}
				if f.Class != "" {
					if len(outs) != 1 || outs[0].Topic != "dlq" {
						t.Errorf("%s: %d outputs, want one dead letter", f.Name, len(outs))
					}
					continue
				}
				wantIndicators += len(f.Indicators)
				var got []string
				for _, o := range outs {
					if o.Topic != "out" {
						t.Errorf("%s: output to %s: %s", f.Name, o.Topic, header(o, HeaderErrorMessage))
						continue
					}
					var s struct {
						InputFormat string          `json:"input_format"`
						Indicator   event.Indicator `json:"indicator"`
						Context     json.RawMessage `json:"context"`
					}
					if err := json.Unmarshal(o.Value, &s); err != nil {
						t.Fatalf("%s: scored event: %v", f.Name, err)
					}
					if s.InputFormat != string(tc.format) {
						t.Errorf("%s: input_format %q, want %q", f.Name, s.InputFormat, tc.format)
					}
					if !jsonEqual(t, s.Context, f.Value) {
						t.Errorf("%s: context is not the original document", f.Name)
					}
					got = append(got, s.Indicator.Value)
				}
				slices.Sort(got)
				want := slices.Clone(f.Indicators)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("%s: scored %v, want one event for each of %v", f.Name, got, want)
				}
			}
			if n := testutil.ToFloat64(m.Indicators.WithLabelValues(string(tc.format))); int(n) != wantIndicators {
				t.Errorf("indicators counted for %s: %v, want %d", tc.format, n, wantIndicators)
			}
		})
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xs, _ := json.Marshal(x)
	ys, _ := json.Marshal(y)
	return string(xs) == string(ys)
}
