package slack

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

func testAction() *sinks.Action {
	return &sinks.Action{
		Key:      "alert:203.0.113.7:2025-03-01",
		Playbook: "critical-ips",
		Step:     "notify-soc",
		Kind:     sinks.KindAlert,
		Target:   "203.0.113.7",
		Score:    92,
		Severity: event.SeverityCritical,
		Tags:     []string{"botnet", "scanner"},
		Reasons: []event.Reason{
			{Source: "abuseipdb", Detail: "reported 120 times, confidence 100", Points: 40},
			{Source: "criminalip", Detail: "inbound critical", Points: 35},
		},
		ISP:     "Example <!channel> & Co",
		Country: "NL",
		Title:   "threatpipe: 203.0.113.7 scored 92 (critical)",
		Params:  map[string]string{ParamChannelNote: "@here please triage"},
		ViewURL: "https://threatpipe.example.com/indicators/203.0.113.7",
	}
}

func newTestSink(t *testing.T, srvURL string, budget time.Duration) *Sink {
	t.Helper()
	cfg := &Config{WebhookURL: config.Secret(srvURL + webhookPath), PolicyConfig: sinkhttp.PolicyConfig{AttemptTimeout: min(2*time.Second, budget), RetryBudget: budget}}
	if err := cfg.Resolve(); err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, sinkhttp.NewHTTPClient())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDo(t *testing.T) {
	fake, srv := newFakeSlack(t, nil)
	s := newTestSink(t, srv.URL, 5*time.Second)
	res, err := s.Do(context.Background(), testAction())
	if err != nil {
		t.Fatal(err)
	}
	if res.Ref != "" || res.Detail == "" {
		t.Fatalf("result %+v", res)
	}
	msg := fake.last()
	if txt := msg["text"].(string); txt != "<!here> please triage threatpipe: 203.0.113.7 scored 92 (critical)" {
		t.Fatalf("fallback text %q", txt)
	}
	blocks := msg["blocks"].([]any)
	var types []string
	for _, b := range blocks {
		types = append(types, b.(map[string]any)["type"].(string))
	}
	if got := strings.Join(types, ","); got != "section,header,section,section,actions" {
		t.Fatalf("block types %s", got)
	}
	raw := mustJSON(t, msg)
	for _, want := range []string{
		`"text":"threatpipe: 203.0.113.7 scored 92 (critical)"`,
		`Example \u0026lt;!channel\u0026gt; \u0026amp; Co`, // escaped: no mention from event data
		`"url":"https://threatpipe.example.com/indicators/203.0.113.7"`,
		`*abuseipdb* (+40) reported 120 times`,
	} {
		if !strings.Contains(raw, want) {
			t.Errorf("message lacks %s:\n%s", want, raw)
		}
	}
}

func TestDoRetries(t *testing.T) {
	for _, tt := range []struct {
		name    string
		status  int
		body    string
		header  map[string]string
		minWait time.Duration
	}{
		{"429 with Retry-After", http.StatusTooManyRequests, answer(t, "rate_limited"), map[string]string{"Retry-After": "1"}, time.Second},
		{"500", http.StatusInternalServerError, answer(t, "rollup_error"), nil, 0},
		{"503", http.StatusServiceUnavailable, "", nil, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fake, srv := newFakeSlack(t, func(n int, w http.ResponseWriter) bool {
				if n > 0 {
					return false
				}
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				slackAnswer(w, tt.status, tt.body)
				return true
			})
			s := newTestSink(t, srv.URL, 10*time.Second)
			start := time.Now()
			if _, err := s.Do(context.Background(), testAction()); err != nil {
				t.Fatal(err)
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

func TestDoPermanentFailures(t *testing.T) {
	for _, tt := range []struct {
		status int
		code   string
	}{
		{http.StatusBadRequest, "invalid_payload"},
		{http.StatusBadRequest, "no_text"},
		{http.StatusForbidden, "action_prohibited"},
		{http.StatusNotFound, "channel_not_found"},
		{http.StatusNotFound, "no_service"},
		{http.StatusGone, "channel_is_archived"},
	} {
		t.Run(tt.code, func(t *testing.T) {
			fake, srv := newFakeSlack(t, func(_ int, w http.ResponseWriter) bool {
				slackAnswer(w, tt.status, answer(t, tt.code))
				return true
			})
			s := newTestSink(t, srv.URL, 10*time.Second)
			_, err := s.Do(context.Background(), testAction())
			var se *sinkhttp.StatusError
			if !errors.As(err, &se) || se.Status != tt.status || !strings.Contains(err.Error(), tt.code) {
				t.Fatalf("error %v, want HTTP %d %s", err, tt.status, tt.code)
			}
			if fake.count() != 1 {
				t.Fatalf("%d requests: a permanent failure was retried", fake.count())
			}
			assertNoSecret(t, err)
		})
	}
}

func TestDoUnexpectedAnswer(t *testing.T) {
	for _, body := range []string{"", "<html><body>Welcome to our proxy</body></html>", `{"ok":false}`} {
		_, srv := newFakeSlack(t, func(_ int, w http.ResponseWriter) bool {
			slackAnswer(w, http.StatusOK, body)
			return true
		})
		_, err := newTestSink(t, srv.URL, time.Second).Do(context.Background(), testAction())
		if err == nil || !strings.Contains(err.Error(), "incoming webhook") {
			t.Errorf("body %q: error %v", body, err)
		}
	}
}

func TestDoRejectsInvalidParams(t *testing.T) {
	fake, srv := newFakeSlack(t, nil)
	a := testAction()
	a.Params = map[string]string{"channel": "#soc"}
	if _, err := newTestSink(t, srv.URL, time.Second).Do(context.Background(), a); err == nil {
		t.Fatal("unknown param accepted")
	}
	if fake.count() != 0 {
		t.Fatal("request sent despite invalid params")
	}
}

func TestErrorsNeverShowTheWebhookURL(t *testing.T) {
	// A port nobody listens on: the transport error names the host only.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	s := newTestSink(t, "http://"+addr, 300*time.Millisecond)
	_, err = s.Do(context.Background(), testAction())
	if err == nil {
		t.Fatal("no error from a closed port")
	}
	assertNoSecret(t, err)

	// Slow answers: the attempt times out.
	_, srv := newFakeSlack(t, func(_ int, w http.ResponseWriter) bool {
		time.Sleep(300 * time.Millisecond)
		return false
	})
	cfg := &Config{WebhookURL: config.Secret(srv.URL + webhookPath), PolicyConfig: sinkhttp.PolicyConfig{AttemptTimeout: 50 * time.Millisecond, RetryBudget: 200 * time.Millisecond}}
	s, err = New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Do(context.Background(), testAction())
	if err == nil {
		t.Fatal("no error from a slow server")
	}
	assertNoSecret(t, err)
}

func assertNoSecret(t *testing.T, err error) {
	t.Helper()
	if strings.Contains(err.Error(), "s3cretT0ken") || strings.Contains(err.Error(), "/services/") {
		t.Fatalf("error shows the webhook URL: %v", err)
	}
}

func TestValidateParams(t *testing.T) {
	s := &Sink{}
	for _, tt := range []struct {
		params map[string]string
		want   string // substring of the error; "" for none
	}{
		{nil, ""},
		{map[string]string{}, ""},
		{map[string]string{"channel_note": "@here"}, ""},
		{map[string]string{"channel_note": "<!subteam^S0123ABCD> please triage"}, ""},
		{map[string]string{"channel_note": ""}, ""},
		{map[string]string{"channel_note": strings.Repeat("x", 151)}, "longer than 150"},
		{map[string]string{"channel_note": "two\nlines"}, "one line"},
		{map[string]string{"channel_note": "bad \xff utf8"}, "UTF-8"},
		{map[string]string{"channel": "#soc"}, `unknown param "channel"`},
		{map[string]string{"severity": "high", "channel_note": "@here"}, `unknown param "severity"`},
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

func TestCheckAnswer(t *testing.T) {
	for _, tt := range []struct {
		body string
		ok   bool
	}{
		{answer(t, "ok"), true},
		{"ok\n", true},
		{"", false},
		{"invalid_payload", false},
		{`{"ok":true}`, false},
	} {
		if err := checkAnswer([]byte(tt.body)); (err == nil) != tt.ok {
			t.Errorf("%q: %v", tt.body, err)
		}
	}
}

func TestNameAndKind(t *testing.T) {
	s := &Sink{}
	if s.Name() != "slack" || s.Kind() != sinks.KindAlert {
		t.Fatalf("%s %s", s.Name(), s.Kind())
	}
}

// echoServer answers every request with status and a body quoting the full request URL, as a
// proxy's or a web server's error page does.
func echoServer(t *testing.T, status int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "<html><body>No route for POST http://"+r.Host+r.URL.RequestURI()+" (path "+r.URL.Path+")</body></html>")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestErrorsRedactAnEchoedURL(t *testing.T) {
	for _, tt := range []struct {
		status int
		want   string
	}{
		{http.StatusNotFound, "HTTP 404"},
		{http.StatusOK, "incoming webhook"},
	} {
		srv := echoServer(t, tt.status)
		_, err := newTestSink(t, srv.URL, time.Second).Do(context.Background(), testAction())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Fatalf("HTTP %d: error %v, want %q", tt.status, err, tt.want)
		}
		assertNoSecret(t, err)
		if !strings.Contains(err.Error(), sinkhttp.Redacted) || !strings.Contains(err.Error(), "No route for POST") {
			t.Fatalf("HTTP %d: the echo is not quoted with the secret cut out: %v", tt.status, err)
		}
	}
}

func TestCheckAnswerRedacts(t *testing.T) {
	err := checkAnswer([]byte("cannot POST "+webhookPath), webhookPath)
	if err == nil || strings.Contains(err.Error(), "s3cretT0ken") || !strings.Contains(err.Error(), sinkhttp.Redacted) {
		t.Fatalf("error %v", err)
	}
}

func TestDoNilAction(t *testing.T) {
	fake, srv := newFakeSlack(t, nil)
	if _, err := newTestSink(t, srv.URL, time.Second).Do(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "slack: nil action") {
		t.Fatalf("error %v", err)
	}
	if fake.count() != 0 {
		t.Fatal("request sent for a nil action")
	}
}
