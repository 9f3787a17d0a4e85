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

// TestAutoModeReadsEveryFormat runs the enricher's handler, configured as the enrich command
// configures it in auto mode, over the published-sample fixtures of every registered format: a
// message that decodes gives one scored event per address (and is counted), with its
// input_format and its context (a JSON format's whole document, a line format's flat map of
// strings), every record parsing with encoding/json; one that does not gives one dead letter,
// of its class whenever its format claims it.
func TestAutoModeReadsEveryFormat(t *testing.T) {
	for _, tc := range []struct {
		format event.Format
		file   string
	}{
		{"eve", "format/eve/testdata/eve.jsonl"},
		{"zeek", "format/zeek/testdata/zeek.jsonl"},
		{"cef", "format/cef/testdata/cef.txt"},
		{"kv", "format/kv/testdata/kv.txt"},
	} {
		t.Run(string(tc.format), func(t *testing.T) {
			dec := registered(t, tc.format)
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
					checkDeadLetter(t, dec, f.Name, f.Value, string(f.Class), outs)
					continue
				}
				wantIndicators += len(f.Indicators)
				var got []string
				for _, o := range outs {
					if o.Topic != "out" {
						t.Errorf("%s: output to %s: %s", f.Name, o.Topic, header(o, HeaderErrorMessage))
						continue
					}
					got = append(got, checkScored(t, dec, f.Name, f.Value, o.Value))
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

func registered(t *testing.T, name event.Format) event.FormatDecoder {
	t.Helper()
	for _, d := range all.Formats() {
		if d.Name() == name {
			return d
		}
	}
	t.Fatalf("%s is not registered in pipeline/format/all", name)
	return nil
}

// checkDeadLetter wants one dead letter of class for a rejected fixture. A message its format
// does not claim (a line with no address key, say) goes on through auto mode: a line to the
// JSON parser, which names it malformed_json; a JSON document to native and ECS, whose class
// is theirs.
func checkDeadLetter(t *testing.T, dec event.FormatDecoder, name string, value []byte, class string, outs []kafka.Message) {
	t.Helper()
	if len(outs) != 1 || outs[0].Topic != "dlq" {
		t.Errorf("%s: %d outputs, want one dead letter", name, len(outs))
		return
	}
	switch got := header(outs[0], HeaderErrorClass); {
	case dec.Sniff(value) && got != class:
		t.Errorf("%s: dead letter of class %s, want %s", name, got, class)
	case !dec.Sniff(value) && !dec.JSON() && got != string(event.ClassMalformedJSON):
		t.Errorf("%s: unclaimed line dead-lettered as %s, want %s", name, got, event.ClassMalformedJSON)
	}
}

// checkScored checks one scored event of a fixture and returns its address.
func checkScored(t *testing.T, dec event.FormatDecoder, name string, value, scored []byte) string {
	t.Helper()
	var s struct {
		InputFormat string          `json:"input_format"`
		Indicator   event.Indicator `json:"indicator"`
		Context     json.RawMessage `json:"context"`
	}
	if err := json.Unmarshal(scored, &s); err != nil {
		t.Fatalf("%s: scored event is not strict JSON (%v): %s", name, err, scored)
	}
	if s.InputFormat != string(dec.Name()) {
		t.Errorf("%s: input_format %q, want %q", name, s.InputFormat, dec.Name())
	}
	if dec.JSON() {
		if !jsonEqual(t, s.Context, value) {
			t.Errorf("%s: context is not the original document", name)
		}
		return s.Indicator.Value
	}
	var flat map[string]string
	if err := json.Unmarshal(s.Context, &flat); err != nil || len(flat) == 0 {
		t.Errorf("%s: context %s is not a flat map of strings (%v)", name, s.Context, err)
	}
	return s.Indicator.Value
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
