package pipeline

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/format/all"
	"github.com/threatpipe/threatpipe/pipeline/format/fixture"
	"github.com/threatpipe/threatpipe/pipeline/gate"
	"github.com/threatpipe/threatpipe/pipeline/telemetry"
)

// TestAutoModeReadsTheLineFormats runs the enricher's handler, configured as the enrich command
// configures it in auto mode, over the CEF and key=value fixtures: a line that decodes gives one
// scored event per address with its input_format and nothing else; one that does not gives one
// dead letter of its class; every record published parses with encoding/json.
func TestAutoModeReadsTheLineFormats(t *testing.T) {
	for _, tc := range []struct {
		format event.Format
		file   string
	}{
		{"cef", "format/cef/testdata/cef.txt"},
		{"kv", "format/kv/testdata/kv.txt"},
	} {
		t.Run(string(tc.format), func(t *testing.T) {
			m := telemetry.NewPipelineMetrics(prometheus.NewRegistry())
			opts := Options{OutputTopic: "out", DLQTopic: "dlq", MaxEventBytes: 1 << 20, MaxIndicators: 32}
			h := NewEnrichHandler(opts, noopProcessor{}, gate.New(nil, nil), m, WithInputFormats(event.AutoFormat, all.Formats()...))
			var dec event.FormatDecoder
			for _, d := range all.Formats() {
				if d.Name() == tc.format {
					dec = d
				}
			}
			if dec == nil {
				t.Fatalf("%s is not registered in pipeline/format/all", tc.format)
			}
			fixtures, err := fixture.Load(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			for i, f := range fixtures {
				msg := kafka.Message{Topic: "in", Partition: 1, Offset: int64(i), Value: f.Value, Time: time.Unix(1700000000, 0)}
				outs, err := h.Handle(context.Background(), msg)
				if err != nil {
					t.Fatalf("%s: %v", f.Name, err)
				}
				if f.Class != "" {
					// A line its format does not claim (no address key, so Sniff says no) is
					// offered to the JSON parser in auto mode, which names it malformed_json.
					class := string(f.Class)
					if !dec.Sniff(f.Value) {
						class = string(event.ClassMalformedJSON)
					}
					if len(outs) != 1 || outs[0].Topic != "dlq" || header(outs[0], HeaderErrorClass) != class {
						t.Errorf("%s: %d outputs, want one %s dead letter", f.Name, len(outs), class)
					}
					continue
				}
				var got []string
				for _, o := range outs {
					if o.Topic != "out" {
						t.Errorf("%s: output to %s: %s", f.Name, o.Topic, header(o, HeaderErrorMessage))
						continue
					}
					var ev struct {
						InputFormat string `json:"input_format"`
						Indicator   struct {
							Value string `json:"value"`
						} `json:"indicator"`
						Context map[string]string `json:"context"`
					}
					if err := json.Unmarshal(o.Value, &ev); err != nil {
						t.Fatalf("%s: scored event is not strict JSON (%v): %s", f.Name, err, o.Value)
					}
					if ev.InputFormat != string(tc.format) {
						t.Errorf("%s: input_format %q, want %s", f.Name, ev.InputFormat, tc.format)
					}
					if len(ev.Context) == 0 {
						t.Errorf("%s: no context", f.Name)
					}
					got = append(got, ev.Indicator.Value)
				}
				slices.Sort(got)
				want := slices.Clone(f.Indicators)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("%s: scored %v, want %v", f.Name, got, want)
				}
			}
		})
	}
}
