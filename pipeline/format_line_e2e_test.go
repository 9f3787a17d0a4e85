package pipeline

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/format/all"
	"github.com/threatpipe/threatpipe/pipeline/gate"
	"github.com/threatpipe/threatpipe/pipeline/telemetry"
)

// lineFixture is one message of a line format's testdata file with the addresses it must
// yield ("# want:") or its dead-letter class ("# class:").
type lineFixture struct {
	line  int
	value []byte
	want  []string
	class string
}

func readLineFixtures(t *testing.T, path string) []lineFixture {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []lineFixture
	var next lineFixture
	for n, l := range strings.Split(string(data), "\n") {
		switch l = strings.TrimRight(l, "\r"); {
		case l == "":
		case strings.HasPrefix(l, "# want:"):
			next.want = strings.Fields(strings.TrimPrefix(l, "# want:"))
		case strings.HasPrefix(l, "# class:"):
			next.class = strings.TrimSpace(strings.TrimPrefix(l, "# class:"))
		case strings.HasPrefix(l, "#"):
		default:
			next.line, next.value = n+1, []byte(l)
			out = append(out, next)
			next = lineFixture{}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no fixtures in %s", path)
	}
	return out
}

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
			for i, f := range readLineFixtures(t, tc.file) {
				msg := kafka.Message{Topic: "in", Partition: 1, Offset: int64(i), Value: f.value, Time: time.Unix(1700000000, 0)}
				outs, err := h.Handle(context.Background(), msg)
				if err != nil {
					t.Fatalf("line %d: %v", f.line, err)
				}
				if f.class != "" {
					// A line its format does not claim (no address key, so Sniff says no) is
					// offered to the JSON parser in auto mode, which names it malformed_json.
					class := f.class
					if !dec.Sniff(f.value) {
						class = string(event.ClassMalformedJSON)
					}
					if len(outs) != 1 || outs[0].Topic != "dlq" || header(outs[0], HeaderErrorClass) != class {
						t.Errorf("line %d: %d outputs, want one %s dead letter", f.line, len(outs), class)
					}
					continue
				}
				var got []string
				for _, o := range outs {
					if o.Topic != "out" {
						t.Errorf("line %d: output to %s: %s", f.line, o.Topic, header(o, HeaderErrorMessage))
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
						t.Fatalf("line %d: scored event is not strict JSON (%v): %s", f.line, err, o.Value)
					}
					if ev.InputFormat != string(tc.format) {
						t.Errorf("line %d: input_format %q, want %s", f.line, ev.InputFormat, tc.format)
					}
					if len(ev.Context) == 0 {
						t.Errorf("line %d: no context", f.line)
					}
					got = append(got, ev.Indicator.Value)
				}
				slices.Sort(got)
				want := slices.Clone(f.want)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("line %d: scored %v, want %v", f.line, got, want)
				}
			}
		})
	}
}
