package webhook

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/sinks"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testAction() *sinks.Action {
	reasons := []event.Reason{
		{Source: "abuseipdb", Detail: "reported 120 times, confidence 100", Points: 40},
		{Source: "criminalip", Detail: "inbound critical", Points: 35},
	}
	tags := []string{"botnet", "scanner"}
	return &sinks.Action{
		Key:      "block:203.0.113.7:2025-03-01",
		Playbook: "critical-ips",
		Step:     "block-edge",
		Kind:     sinks.KindBlock,
		Target:   "203.0.113.7",
		Score:    92,
		Severity: event.SeverityCritical,
		Tags:     tags,
		Reasons:  reasons,
		ISP:      "Example Hosting",
		Country:  "NL",
		Title:    "threatpipe: 203.0.113.7 scored 92 (critical)",
		Until:    time.Date(2025, 3, 2, 13, 0, 0, 0, time.FixedZone("CET", 3600)),
		ViewURL:  "https://threatpipe.example.com/indicators/203.0.113.7",
		Event: &event.Scored{
			SchemaVersion: "2",
			EventID:       "evt-0001",
			ObservedAt:    time.Date(2025, 3, 1, 11, 59, 58, 0, time.UTC),
			ProcessedAt:   time.Date(2025, 3, 1, 12, 0, 5, 0, time.UTC),
			Source:        "siem",
			InputFormat:   event.FormatNative,
			Indicator:     event.Indicator{Type: event.IPv4, Value: "203.0.113.7", Addr: netip.MustParseAddr("203.0.113.7")},
			Score:         92,
			Severity:      event.SeverityCritical,
			Confidence:    80,
			ValidatedBy:   []string{"abuseipdb", "criminalip"},
			Tags:          tags,
			Reasons:       reasons,
			Origin:        event.Origin{Topic: "indicators", Partition: 3, Offset: 1042},
		},
	}
}

func jsonEqual(t *testing.T, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestBuildPayloadGolden(t *testing.T) {
	got, err := json.Marshal(BuildPayload(ActionBlock, testAction()))
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, got, fixture(t, "payload_block.json"))
}

func TestBuildPayloadVariants(t *testing.T) {
	for _, tt := range []struct {
		name   string
		action string
		edit   func(a *sinks.Action)
		check  func(t *testing.T, p map[string]any)
	}{
		{"alert has no until", ActionAlert, func(*sinks.Action) {}, func(t *testing.T, p map[string]any) {
			if _, ok := p["until"]; ok || p["action"] != "alert" {
				t.Fatalf("payload %v", p)
			}
		}},
		{"unblock has no until", ActionUnblock, func(*sinks.Action) {}, func(t *testing.T, p map[string]any) {
			if _, ok := p["until"]; ok || p["action"] != "unblock" || p["key"] != "block:203.0.113.7:2025-03-01" {
				t.Fatalf("payload %v", p)
			}
		}},
		{"block without expiry", ActionBlock, func(a *sinks.Action) { a.Until = time.Time{} }, func(t *testing.T, p map[string]any) {
			if _, ok := p["until"]; ok {
				t.Fatalf("until %v", p["until"])
			}
		}},
		{"bare action: arrays, no event", ActionAlert, func(a *sinks.Action) { *a = sinks.Action{Target: "2001:db8::1"} }, func(t *testing.T, p map[string]any) {
			if _, ok := p["tags"].([]any); !ok {
				t.Fatalf("tags %v", p["tags"])
			}
			if _, ok := p["reasons"].([]any); !ok {
				t.Fatalf("reasons %v", p["reasons"])
			}
			if _, ok := p["event"]; ok {
				t.Fatal("event present")
			}
			if _, ok := p["view_url"]; ok {
				t.Fatal("empty view_url present")
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := testAction()
			tt.edit(a)
			b, err := json.Marshal(BuildPayload(tt.action, a))
			if err != nil {
				t.Fatal(err)
			}
			var p map[string]any
			if err := json.Unmarshal(b, &p); err != nil {
				t.Fatal(err)
			}
			if why := checkPayload(p); why != "" {
				t.Fatalf("receiver would reject it: %s", why)
			}
			tt.check(t, p)
		})
	}
}
