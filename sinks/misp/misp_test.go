package misp

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/misp/misptest"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

const testKey = "misp-TEST-k3y-0123456789abcdefABCDEF0123"

var day1 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func testConfig(url string) *Config {
	return &Config{
		URL: url, Key: config.Secret(testKey), Distribution: 0, ThreatLevel: 2, Analysis: 1, TagPrefix: "threatpipe", ToIDSScore: 75,
		PolicyConfig: sinkhttp.PolicyConfig{AttemptTimeout: 2 * time.Second, RetryBudget: 5 * time.Second},
	}
}

func newTestSink(t *testing.T, cfg *Config) *Sink {
	t.Helper()
	s, err := New(cfg, sinkhttp.NewHTTPClient())
	if err != nil {
		t.Fatal(err)
	}
	s.client.SetInitialBackoff(time.Millisecond)
	s.now = func() time.Time { return day1 }
	return s
}

func testAction(target string, observed time.Time) *sinks.Action {
	return &sinks.Action{
		Key: "pb1/intel/" + target, Playbook: "pb1", Step: "intel", Kind: sinks.KindIntel,
		Target: target, Score: 92, Severity: event.SeverityCritical, Tags: []string{"tor"},
		Reasons: []event.Reason{{Source: "abuseipdb", Detail: "confidence 100", Points: 40}},
		Event:   &event.Scored{EventID: "ev-" + observed.Format(time.RFC3339), ObservedAt: observed, ValidatedBy: []string{"abuseipdb", "criminalip"}},
	}
}

func fakeAndSink(t *testing.T) (*misptest.Server, *Sink) {
	f := misptest.New(t, testKey)
	f.SetNow(func() time.Time { return day1 })
	return f, newTestSink(t, testConfig(f.URL))
}

func mustDo(t *testing.T, s *Sink, a *sinks.Action) sinks.Result {
	t.Helper()
	res, err := s.Do(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestEventPerPlaybookAndDay(t *testing.T) {
	f, s := fakeAndSink(t)
	mustDo(t, s, testAction("203.0.113.7", day1))
	mustDo(t, s, testAction("198.51.100.9", day1.Add(time.Hour)))
	other := testAction("203.0.113.7", day1)
	other.Playbook = "pb2"
	mustDo(t, s, other)
	mustDo(t, s, testAction("203.0.113.7", day1.Add(24*time.Hour)))
	var infos []string
	for _, e := range f.Events() {
		infos = append(infos, e.Info)
		if e.Distribution != "0" || e.ThreatLevel != "2" || e.Analysis != "1" {
			t.Errorf("event settings %+v", e)
		}
	}
	want := []string{"threatpipe: pb1 2025-03-01", "threatpipe: pb2 2025-03-01", "threatpipe: pb1 2025-03-02"}
	if !slices.Equal(infos, want) {
		t.Fatalf("events %q, want %q", infos, want)
	}
	if n := len(f.Attributes()); n != 4 {
		t.Fatalf("%d attributes", n)
	}
}

func TestFixedEventID(t *testing.T) {
	f := misptest.New(t, testKey)
	id := f.SeedEvent("SOC feed")
	cfg := testConfig(f.URL)
	cfg.EventID = id
	s := newTestSink(t, cfg)
	mustDo(t, s, testAction("203.0.113.7", day1))
	mustDo(t, s, testAction("203.0.113.7", day1.Add(48*time.Hour)))
	if n := len(f.Events()); n != 1 || f.CountRequests(EventsIndexPath)+f.CountRequests(EventsAddPath) != 0 {
		t.Fatalf("%d events, %d requests", n, len(f.Requests()))
	}
	at := f.Attributes()
	if len(at) != 1 || at[0].EventID != id {
		t.Fatalf("attributes %+v", at)
	}
}

func scoreTags(a misptest.Attribute) []string {
	return slices.DeleteFunc(slices.Clone(a.Tags), func(t string) bool {
		return !strings.HasPrefix(t, "threatpipe:score=") && !strings.HasPrefix(t, "threatpipe:severity=")
	})
}

func TestRepeatUpdatesTheAttribute(t *testing.T) {
	f, s := fakeAndSink(t)
	first := mustDo(t, s, testAction("203.0.113.7", day1))
	a := testAction("203.0.113.7", day1.Add(time.Hour))
	a.Score, a.Severity = 55, event.SeverityMedium
	second := mustDo(t, s, a)
	at := f.Attributes()
	if len(at) != 1 || first.Ref != at[0].UUID || second.Ref != first.Ref {
		t.Fatalf("attributes %+v; refs %q %q", at, first.Ref, second.Ref)
	}
	got := at[0]
	if got.Type != TypeIPDst || got.Category != "Network activity" || got.ToIDS || !strings.Contains(got.Comment, "scored 55 (medium)") {
		t.Fatalf("attribute %+v", got)
	}
	if st := scoreTags(got); !slices.Equal(st, []string{`threatpipe:severity="medium"`, `threatpipe:score="55"`}) {
		t.Fatalf("score tags %q (all %q)", st, got.Tags)
	}
	for _, want := range []string{`threatpipe:validated-by="criminalip"`, `threatpipe:validated-by="abuseipdb"`, "tor"} {
		if !slices.Contains(got.Tags, want) {
			t.Errorf("tags %q lack %s", got.Tags, want)
		}
	}
	if !strings.HasPrefix(first.Detail, "added ip-dst 203.0.113.7") || !strings.HasPrefix(second.Detail, "updated") {
		t.Fatalf("details %q / %q", first.Detail, second.Detail)
	}
}

func TestParams(t *testing.T) {
	f, s := fakeAndSink(t)
	a := testAction("2001:db8::1", day1)
	a.Score = 10
	a.Params = map[string]string{ParamAttributeType: TypeIPSrc, ParamToIDS: "true", ParamTags: "tlp:amber, edr"}
	mustDo(t, s, a)
	at := f.Attributes()
	if len(at) != 1 || at[0].Type != TypeIPSrc || !at[0].ToIDS || !slices.Contains(at[0].Tags, "tlp:amber") || !slices.Contains(at[0].Tags, "edr") {
		t.Fatalf("attributes %+v", at)
	}
	for _, bad := range []map[string]string{{ParamAttributeType: "domain"}, {ParamToIDS: "maybe"}, {ParamTags: "a,,b"}, {"queue": "x"}} {
		if err := s.ValidateParams(bad); err == nil {
			t.Errorf("ValidateParams(%v) accepted", bad)
		}
	}
	if _, err := s.Do(context.Background(), &sinks.Action{Target: "example.com"}); err == nil {
		t.Fatal("a target that is no IP address was accepted")
	}
}

func TestSightingPerObservation(t *testing.T) {
	f, s := fakeAndSink(t)
	a := testAction("203.0.113.7", day1)
	mustDo(t, s, a)
	res := mustDo(t, s, a) // redelivery: same observation
	if strings.Contains(res.Detail, "sighting") || res.Detail[:9] != "unchanged" {
		t.Fatalf("redelivery detail %q", res.Detail)
	}
	mustDo(t, s, testAction("203.0.113.7", day1.Add(time.Minute)))
	sg := f.Sightings()
	if len(sg) != 2 || sg[0].Timestamp != day1.Unix() || sg[1].Timestamp != day1.Add(time.Minute).Unix() || sg[0].Source != SightingSource {
		t.Fatalf("sightings %+v", sg)
	}
	if n := len(f.Attributes()); n != 1 {
		t.Fatalf("%d attributes", n)
	}
}

// Two writers racing: the second's add meets MISP's duplicate check and edits the first's.
func TestDuplicateAddEdits(t *testing.T) {
	f, s := fakeAndSink(t)
	mustDo(t, s, testAction("203.0.113.7", day1))
	ev := f.Events()[0].ID
	// Hide the attribute from the next search only, as a race would.
	f.Fail(misptest.Fault{Path: AttributesSearchPath, Status: 200, Body: `{"response":{"Attribute":[]}}`})
	a := testAction("203.0.113.7", day1)
	a.Score = 60
	res := mustDo(t, s, a)
	if at := f.Attributes(); len(at) != 1 || at[0].EventID != ev || !strings.Contains(at[0].Comment, "scored 60") || !strings.HasPrefix(res.Detail, "updated") {
		t.Fatalf("attributes %+v, detail %q", at, res.Detail)
	}
}

func TestFailures(t *testing.T) {
	tests := []struct {
		name     string
		key      string
		faults   []misptest.Fault
		wantErr  string
		requests int // to /events/index
	}{
		{name: "bad key", key: "wrong-key", wantErr: "refused the auth key", requests: 1},
		{name: "403 injected", faults: []misptest.Fault{{Path: EventsIndexPath, Status: 403}}, wantErr: "refused the auth key", requests: 1},
		{name: "429 then ok", faults: []misptest.Fault{{Path: EventsIndexPath, Status: 429, RetryAfter: "1"}}, requests: 2},
		{name: "500 then ok", faults: []misptest.Fault{{Path: EventsIndexPath, Status: 500}, {Path: EventsIndexPath, Status: 502, Body: "<html>"}}, requests: 3},
		{name: "retry-after beyond budget", faults: []misptest.Fault{{Path: EventsIndexPath, Status: 429, RetryAfter: "60"}}, wantErr: "retry budget", requests: 1},
		{name: "404 not retried", faults: []misptest.Fault{{Path: EventsIndexPath, Status: 404}}, wantErr: "HTTP 404", requests: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := misptest.New(t, testKey)
			f.Fail(tt.faults...)
			cfg := testConfig(f.URL)
			if tt.key != "" {
				cfg.Key = config.Secret(tt.key)
			}
			s := newTestSink(t, cfg)
			start := time.Now()
			_, err := s.Do(context.Background(), testAction("203.0.113.7", day1))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatal(err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err %v, want %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), testKey) {
				t.Fatalf("error shows the key: %v", err)
			}
			if strings.Contains(tt.wantErr, "auth key") && !IsAuthError(err) {
				t.Fatalf("IsAuthError(%v) = false", err)
			}
			if n := f.CountRequests(EventsIndexPath); n != tt.requests {
				t.Fatalf("%d index requests, want %d", n, tt.requests)
			}
			if tt.faults != nil && tt.faults[0].RetryAfter == "1" && time.Since(start) < time.Second {
				t.Fatalf("Retry-After not honoured: %s", time.Since(start))
			}
		})
	}
}

func TestFind(t *testing.T) {
	f, s := fakeAndSink(t)
	ctx := context.Background()
	a := testAction("203.0.113.7", day1)
	if ref, found, err := s.Find(ctx, a); err != nil || found || ref != "" {
		t.Fatalf("before Do: %q %v %v", ref, found, err)
	}
	if len(f.Events()) != 0 {
		t.Fatal("Find created an event")
	}
	res := mustDo(t, s, a)
	if ref, found, err := s.Find(ctx, a); err != nil || !found || ref != res.Ref {
		t.Fatalf("after Do: %q %v %v, want %q", ref, found, err, res.Ref)
	}
	b := testAction("198.51.100.9", day1)
	if _, found, err := s.Find(ctx, b); err != nil || found {
		t.Fatalf("other target: %v %v", found, err)
	}
	src := testAction("203.0.113.7", day1)
	src.Params = map[string]string{ParamAttributeType: TypeIPSrc}
	if _, found, err := s.Find(ctx, src); err != nil || found {
		t.Fatalf("other type: %v %v", found, err)
	}
	f.Fail(misptest.Fault{Status: 403})
	if _, _, err := s.Find(ctx, a); !IsAuthError(err) {
		t.Fatalf("403: %v", err)
	}
	if _, _, err := s.Find(ctx, nil); err == nil {
		t.Fatal("nil action")
	}
}

func TestAuthErrorIsNotRetryable(t *testing.T) {
	f := misptest.New(t, testKey)
	cfg := testConfig(f.URL)
	cfg.Key = "nope"
	s := newTestSink(t, cfg)
	_, err := s.Do(context.Background(), testAction("203.0.113.7", day1))
	var se *sinkhttp.StatusError
	if !errors.As(err, &se) || se.Status != 403 || se.Retryable() {
		t.Fatalf("err %v", err)
	}
}
