package pagerduty

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

func newTestSink(t *testing.T, srvURL string, budget time.Duration) *Sink {
	t.Helper()
	cfg := &Config{RoutingKey: config.Secret(testKey), URL: srvURL + enqueuePath, PolicyConfig: sinkhttp.PolicyConfig{AttemptTimeout: min(2*time.Second, budget), RetryBudget: budget}}
	if err := cfg.Resolve(); err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, sinkhttp.NewHTTPClient())
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return fixedNow }
	return s
}

func TestDo(t *testing.T) {
	fake, srv := newFakePD(t, nil)
	s := newTestSink(t, srv.URL, 5*time.Second)
	res, err := s.Do(context.Background(), testAction())
	if err != nil {
		t.Fatal(err)
	}
	if res.Ref != "threatpipe:203.0.113.7" || !strings.Contains(res.Detail, res.Ref) {
		t.Fatalf("result %+v", res)
	}
	ev := fake.last()
	if ev["event_action"] != "trigger" || ev["routing_key"] != testKey {
		t.Fatalf("event %v", ev)
	}
	if sev := ev["payload"].(map[string]any)["severity"]; sev != "critical" {
		t.Fatalf("severity %v", sev)
	}
}

func TestDoSeverityParam(t *testing.T) {
	fake, srv := newFakePD(t, nil)
	s := newTestSink(t, srv.URL, 5*time.Second)
	a := testAction()
	a.Params = map[string]string{ParamSeverity: "warning"}
	if _, err := s.Do(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if sev := fake.last()["payload"].(map[string]any)["severity"]; sev != "warning" {
		t.Fatalf("severity %v, want the param's", sev)
	}
	a.Params = map[string]string{ParamSeverity: "high"}
	if _, err := s.Do(context.Background(), a); err == nil || !strings.Contains(err.Error(), `"high"`) {
		t.Fatalf("invalid severity: %v", err)
	}
	if fake.count() != 1 {
		t.Fatal("request sent with an invalid param")
	}
}

func TestDoRefIsTheAnsweredKey(t *testing.T) {
	_, srv := newFakePD(t, func(_ int, w http.ResponseWriter) bool {
		writeJSON(w, http.StatusAccepted, fixture(t, "accepted.json"))
		return true
	})
	res, err := newTestSink(t, srv.URL, time.Second).Do(context.Background(), testAction())
	if err != nil || res.Ref != "srv01/HTTP" {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestUndo(t *testing.T) {
	fake, srv := newFakePD(t, nil)
	s := newTestSink(t, srv.URL, 5*time.Second)
	res, err := s.Do(context.Background(), testAction())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Undo(context.Background(), testAction(), res.Ref); err != nil {
		t.Fatal(err)
	}
	ev := fake.last()
	if ev["event_action"] != "resolve" || ev["dedup_key"] != res.Ref || len(ev) != 3 {
		t.Fatalf("resolve event %v", ev)
	}
	// Without a ref (a ledger entry from before refs were kept) the key is derived.
	a := testAction()
	a.Target = "198.51.100.9"
	if err := s.Undo(context.Background(), a, ""); err != nil {
		t.Fatal(err)
	}
	if ev := fake.last(); ev["dedup_key"] != "threatpipe:198.51.100.9" {
		t.Fatalf("resolve event %v", ev)
	}
	if err := s.Undo(context.Background(), &sinks.Action{}, ""); err == nil {
		t.Fatal("undo without ref or target accepted")
	}
}

func TestDoRetries(t *testing.T) {
	for _, tt := range []struct {
		name    string
		status  int
		header  map[string]string
		minWait time.Duration
	}{
		{"429 with Retry-After", http.StatusTooManyRequests, map[string]string{"Retry-After": "1"}, time.Second},
		{"429 without Retry-After", http.StatusTooManyRequests, nil, 0},
		{"500", http.StatusInternalServerError, nil, 0},
		{"502", http.StatusBadGateway, nil, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fake, srv := newFakePD(t, func(n int, w http.ResponseWriter) bool {
				if n > 0 {
					return false
				}
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				return true
			})
			start := time.Now()
			res, err := newTestSink(t, srv.URL, 10*time.Second).Do(context.Background(), testAction())
			if err != nil || res.Ref == "" {
				t.Fatalf("%+v %v", res, err)
			}
			if fake.count() != 2 {
				t.Fatalf("%d requests, want 2", fake.count())
			}
			if el := time.Since(start); el < tt.minWait {
				t.Fatalf("retried after %s, Retry-After asked for %s", el, tt.minWait)
			}
		})
	}
}

func TestPermanentFailures(t *testing.T) {
	for _, tt := range []struct {
		name   string
		status int
		body   []byte
		want   string
	}{
		{"invalid event", http.StatusBadRequest, fixture(t, "invalid_event.json"), "HTTP 400: invalid event: Event object is invalid: Length of 'routing_key'"},
		{"unrecognized", http.StatusBadRequest, fixture(t, "unrecognized.json"), "HTTP 400: Unrecognized object"},
		{"key echoed", http.StatusBadRequest, []byte(`{"status":"invalid event","message":"Event object is invalid","errors":["routing_key ` + testKey + ` is not recognized"]}`), "routing_key [redacted] is not"},
		{"key echoed in a long body", http.StatusBadRequest, []byte(strings.Repeat("x", 280) + testKey), "x[redacted]"},
		{"unauthorized", http.StatusUnauthorized, []byte(`{"status":"unauthorized","message":"nope"}`), "HTTP 401"},
		{"redirect", http.StatusFound, nil, "HTTP 302"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fake, srv := newFakePD(t, func(_ int, w http.ResponseWriter) bool {
				if tt.status == http.StatusFound {
					w.Header().Set("Location", "https://elsewhere.example/v2/enqueue")
				}
				writeJSON(w, tt.status, tt.body)
				return true
			})
			_, err := newTestSink(t, srv.URL, 10*time.Second).Do(context.Background(), testAction())
			var se *sinkhttp.StatusError
			if !errors.As(err, &se) || se.Status != tt.status || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if fake.count() != 1 {
				t.Fatalf("%d requests: a permanent failure was retried", fake.count())
			}
			assertNoKey(t, err)
		})
	}
}

func TestUnexpectedAnswers(t *testing.T) {
	for _, tt := range []struct {
		status int
		body   string
	}{
		{http.StatusOK, "<html>captive portal</html>"},
		{http.StatusAccepted, `{"status":"` + testKey + `"}`},
		{http.StatusAccepted, ""},
	} {
		_, srv := newFakePD(t, func(_ int, w http.ResponseWriter) bool {
			writeJSON(w, tt.status, []byte(tt.body))
			return true
		})
		_, err := newTestSink(t, srv.URL, time.Second).Do(context.Background(), testAction())
		if err == nil {
			t.Errorf("%d %q accepted", tt.status, tt.body)
			continue
		}
		assertNoKey(t, err)
	}
}

func TestWrongPathIsPermanent(t *testing.T) {
	fake, srv := newFakePD(t, nil)
	cfg := &Config{RoutingKey: testKey, URL: srv.URL + "/v1/enqueue", PolicyConfig: sinkhttp.PolicyConfig{AttemptTimeout: time.Second, RetryBudget: time.Second}}
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Do(context.Background(), testAction()); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("error %v", err)
	}
	if fake.count() != 1 {
		t.Fatalf("%d requests", fake.count())
	}
}

func assertNoKey(t *testing.T, err error) {
	t.Helper()
	for n := 8; n <= len(testKey); n++ {
		if strings.Contains(err.Error(), testKey[:n]) || strings.Contains(err.Error(), testKey[len(testKey)-n:]) {
			t.Fatalf("error shows (part of) the routing key: %v", err)
		}
	}
}

func TestValidateParams(t *testing.T) {
	s := &Sink{}
	for _, tt := range []struct {
		params map[string]string
		want   string
	}{
		{nil, ""},
		{map[string]string{"severity": "critical"}, ""},
		{map[string]string{"severity": "error"}, ""},
		{map[string]string{"severity": "warning"}, ""},
		{map[string]string{"severity": "info"}, ""},
		{map[string]string{"severity": "Critical"}, "not one of"},
		{map[string]string{"severity": ""}, "not one of"},
		{map[string]string{"urgency": "high"}, `unknown param "urgency"`},
	} {
		err := s.ValidateParams(tt.params)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%v: %v", tt.params, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%v: got %v, want %q", tt.params, err, tt.want)
		}
	}
}

func TestNameAndKind(t *testing.T) {
	s := &Sink{}
	if s.Name() != "pagerduty" || s.Kind() != sinks.KindAlert {
		t.Fatalf("%s %s", s.Name(), s.Kind())
	}
}

func TestNilAction(t *testing.T) {
	fake, srv := newFakePD(t, nil)
	s := newTestSink(t, srv.URL, time.Second)
	if _, err := s.Do(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "pagerduty: nil action") {
		t.Fatalf("Do: %v", err)
	}
	if err := s.Undo(context.Background(), nil, ""); err == nil || !strings.Contains(err.Error(), "nil action") {
		t.Fatalf("Undo without ref: %v", err)
	}
	if fake.count() != 0 {
		t.Fatalf("%d requests for a nil action", fake.count())
	}
}
