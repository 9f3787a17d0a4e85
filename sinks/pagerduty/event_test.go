package pagerduty

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/sinks"
)

var fixedNow = time.Date(2025, 3, 1, 12, 30, 0, 0, time.UTC)

func testAction() *sinks.Action {
	return &sinks.Action{
		Key:      "alert:203.0.113.7:2025-03-01",
		Playbook: "critical-ips",
		Step:     "page-oncall",
		Kind:     sinks.KindAlert,
		Target:   "203.0.113.7",
		Score:    92,
		Severity: event.SeverityCritical,
		Tags:     []string{"botnet", "scanner"},
		Reasons: []event.Reason{
			{Source: "abuseipdb", Detail: "reported 120 times, confidence 100", Points: 40},
			{Source: "criminalip", Detail: "inbound critical", Points: 35},
		},
		ISP:     "Example Hosting",
		Country: "NL",
		Title:   "threatpipe: 203.0.113.7 scored 92 (critical)",
		ViewURL: "https://threatpipe.example.com/indicators/203.0.113.7",
		Event: &event.Scored{
			EventID:     "evt-0001",
			ObservedAt:  time.Date(2025, 3, 1, 11, 59, 58, 0, time.UTC),
			ProcessedAt: time.Date(2025, 3, 1, 13, 0, 5, 0, time.FixedZone("CET", 3600)),
			Providers: map[string]*event.ProviderOutcome{
				"abuseipdb":  {Status: event.StatusOK, Result: &event.Intel{Verdict: event.VerdictMalicious, Score: 100}},
				"criminalip": {Status: event.StatusOK, Result: &event.Intel{Verdict: event.VerdictMalicious, Score: 90}},
				"greynoise":  {Status: event.StatusQuotaExhausted},
			},
		},
	}
}

// jsonEqual compares two JSON documents by value.
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

func TestTriggerEventGolden(t *testing.T) {
	got, err := json.Marshal(triggerEvent(testKey, "threatpipe:203.0.113.7", "critical", testAction(), fixedNow))
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, got, fixture(t, "trigger_full.json"))
	var ev map[string]any
	_ = json.Unmarshal(got, &ev)
	if why := checkEvent(ev); why != "" {
		t.Fatalf("the API would reject it: %s", why)
	}
}

func TestTriggerEventVariants(t *testing.T) {
	for _, tt := range []struct {
		name  string
		edit  func(a *sinks.Action)
		check func(t *testing.T, ev pdEvent)
	}{
		{"bare action", func(a *sinks.Action) {
			*a = sinks.Action{Target: "2001:db8::7", Score: 45, Severity: event.SeverityMedium}
		}, func(t *testing.T, ev pdEvent) {
			p := ev.Payload
			if p.Summary != "threatpipe: 2001:db8::7 scored 45 (medium)" || p.Source != "2001:db8::7" || p.Group != "" {
				t.Fatalf("payload %+v", p)
			}
			if p.Timestamp != "2025-03-01T12:30:00Z" {
				t.Fatalf("timestamp %q, want now", p.Timestamp)
			}
			if ev.Links != nil || p.CustomDetails.Tags == nil || p.CustomDetails.Reasons == nil || p.CustomDetails.Providers != nil {
				t.Fatalf("event %+v", ev)
			}
		}},
		{"long multi-line title", func(a *sinks.Action) { a.Title = "line\n" + strings.Repeat("ü", 2000) }, func(t *testing.T, ev pdEvent) {
			s := ev.Payload.Summary
			if utf8.RuneCountInString(s) != maxSummary || strings.Contains(s, "\n") || !strings.HasSuffix(s, "…") {
				t.Fatalf("summary of %d characters: %q...", utf8.RuneCountInString(s), s[:20])
			}
		}},
		{"no target", func(a *sinks.Action) { a.Target = "" }, func(t *testing.T, ev pdEvent) {
			if ev.Payload.Source != "threatpipe" {
				t.Fatalf("source %q", ev.Payload.Source)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := testAction()
			tt.edit(a)
			ev := triggerEvent(testKey, "threatpipe:x", severityOf(a.Severity), a, fixedNow)
			tt.check(t, ev)
			b, _ := json.Marshal(ev)
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			if why := checkEvent(m); why != "" {
				t.Fatalf("the API would reject it: %s", why)
			}
		})
	}
}

func TestResolveEvent(t *testing.T) {
	got, _ := json.Marshal(resolveEvent(testKey, "threatpipe:203.0.113.7"))
	jsonEqual(t, got, []byte(`{"routing_key":"`+testKey+`","event_action":"resolve","dedup_key":"threatpipe:203.0.113.7"}`))
}

func TestSeverityOf(t *testing.T) {
	for in, want := range map[event.Severity]string{
		event.SeverityCritical: "critical", event.SeverityHigh: "error", event.SeverityMedium: "warning",
		event.SeverityLow: "info", event.SeverityInfo: "info", "": "info", "bogus": "info",
	} {
		if got := severityOf(in); got != want {
			t.Errorf("severityOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDedupKey(t *testing.T) {
	if k, err := dedupKey("203.0.113.7"); err != nil || k != "threatpipe:203.0.113.7" {
		t.Fatalf("%q %v", k, err)
	}
	if _, err := dedupKey(""); err == nil {
		t.Fatal("empty target accepted")
	}
	if _, err := dedupKey(strings.Repeat("a", 250)); err == nil {
		t.Fatal("over-long key accepted")
	}
}

func TestDecodeAccepted(t *testing.T) {
	for _, tt := range []struct {
		body, want, err string
	}{
		{string(fixture(t, "accepted.json")), "srv01/HTTP", ""},
		{`{"status":"success"}`, "", ""},
		{`<html>hello</html>`, "", "not the Events API's JSON"},
		{`{"status":"invalid event","message":"Event object is invalid"}`, "", `status "invalid event"`},
		{`{"status":"success","dedup_key":"` + strings.Repeat("k", 256) + `"}`, "", "invalid dedup_key"},
		{`{"status":"success","dedup_key":7}`, "", "not the Events API's JSON"},
	} {
		got, err := decodeAccepted([]byte(tt.body))
		if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%.40s: got %q %v, want %q %q", tt.body, got, err, tt.want, tt.err)
		}
	}
}

func TestDescribeError(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{string(fixture(t, "invalid_event.json")), "invalid event: Event object is invalid: Length of 'routing_key' is incorrect (should be 32 characters)"},
		{string(fixture(t, "unrecognized.json")), "Unrecognized object: Event object format is unrecognized: JSON parse error"},
		{`{"status":"throttled","message":"Too many events"}`, "throttled: Too many events"},
		{`{"status":"x","message":"a\nb","errors":["e1","e2"]}`, "x: a b: e1; e2"},
		{"plain text body", "plain text body"},
		{"", ""},
		{`{"unrelated":true}`, `{"unrelated":true}`},
	} {
		if got := describeError(tt.body); got != tt.want {
			t.Errorf("describeError(%q) = %q, want %q", tt.body, got, tt.want)
		}
	}
}
