package thehive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

const testKey = "thehive-TEST-k3y-0123456789abcdef"

var fixedNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func testConfig(baseURL string) *Config {
	return &Config{
		BaseURL: baseURL, APIKey: config.Secret(testKey), TLP: 2, PAP: 2,
		PolicyConfig: sinkhttp.PolicyConfig{AttemptTimeout: 2 * time.Second, RetryBudget: 5 * time.Second},
	}
}

func newTestSink(t *testing.T, cfg *Config) *Sink {
	t.Helper()
	s, err := New(cfg, sinkhttp.NewHTTPClient())
	if err != nil {
		t.Fatal(err)
	}
	s.client.Policy.InitialInterval = time.Millisecond
	s.now = func() time.Time { return fixedNow }
	return s
}

func testAction() *sinks.Action {
	return &sinks.Action{
		Key: "pb1/ticket/203.0.113.7/2025-03-01", Playbook: "pb1", Step: "ticket", Kind: sinks.KindTicket,
		Target: "203.0.113.7", Score: 92, Severity: event.SeverityCritical,
		Tags:    []string{"tor", "scanner"},
		Reasons: []event.Reason{{Source: "abuseipdb", Detail: "confidence 100", Points: 40}},
		ISP:     "Example Hosting", Country: "DE",
		Title:   "threatpipe: 203.0.113.7 scored 92 (critical)",
		ViewURL: "https://threatpipe.example/view/203.0.113.7",
	}
}

func decodeSent(t *testing.T, b []byte) alert {
	t.Helper()
	var a alert
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestDoCreate(t *testing.T) {
	for _, org := range []string{"", "SOC"} {
		t.Run("organisation "+org, func(t *testing.T) {
			f := newFakeHive(t, testKey, org)
			cfg := testConfig(f.srv.URL)
			cfg.Organisation = org
			s := newTestSink(t, cfg)
			res, err := s.Do(context.Background(), testAction())
			if err != nil {
				t.Fatal(err)
			}
			if res != (sinks.Result{Ref: "~40964177", Detail: "created alert ~40964177"}) {
				t.Fatalf("result %+v", res)
			}
			reqs := f.recorded()
			if len(reqs) != 1 || reqs[0].path != AlertPath {
				t.Fatalf("requests %+v", reqs)
			}
			al := decodeSent(t, reqs[0].body)
			if al.SourceRef != sourceRef(testAction().Key) || al.Severity != 4 || al.TLP != 2 || al.PAP != 2 ||
				len(al.Observables) != 1 || al.Observables[0].Data != "203.0.113.7" {
				t.Fatalf("alert %+v", al)
			}
		})
	}
}

func TestDoParams(t *testing.T) {
	f := newFakeHive(t, testKey, "")
	s := newTestSink(t, testConfig(f.srv.URL))
	a := testAction()
	a.Params = map[string]string{ParamTLP: "4", ParamPAP: "0", ParamTags: "edr, sev1"}
	if _, err := s.Do(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	al := decodeSent(t, f.recorded()[0].body)
	if al.TLP != 4 || al.PAP != 0 || strings.Join(al.Tags, ",") != "threatpipe,tor,scanner,edr,sev1" {
		t.Fatalf("alert %+v", al)
	}
}

func TestDoComment(t *testing.T) {
	f := newFakeHive(t, testKey, "")
	s := newTestSink(t, testConfig(f.srv.URL))
	first, err := s.Do(context.Background(), testAction())
	if err != nil {
		t.Fatal(err)
	}
	a := testAction()
	a.Prior, a.Score = first.Ref, 97
	res, err := s.Do(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if res != (sinks.Result{Ref: first.Ref, Detail: "commented on " + first.Ref}) {
		t.Fatalf("result %+v", res)
	}
	reqs := f.recorded()
	if len(reqs) != 2 || reqs[1].path != AlertPath+"/"+first.Ref+"/comment" {
		t.Fatalf("requests %+v", reqs)
	}
	var c comment
	if err := json.Unmarshal(reqs[1].body, &c); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"seen again at 2025-03-01T12:00:00Z", "scored **97** (critical)", "abuseipdb (+40): confidence 100"} {
		if !strings.Contains(c.Message, want) {
			t.Fatalf("comment lacks %q: %s", want, c.Message)
		}
	}
}

func TestDoCommentOnDeletedAlertCreates(t *testing.T) {
	f := newFakeHive(t, testKey, "")
	s := newTestSink(t, testConfig(f.srv.URL))
	a := testAction()
	a.Prior = "~999" // unknown to the fake: 404 NotFoundError
	res, err := s.Do(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if res != (sinks.Result{Ref: "~40964177", Detail: "created alert ~40964177 (~999 no longer exists)"}) {
		t.Fatalf("result %+v", res)
	}
	reqs := f.recorded()
	if len(reqs) != 2 || reqs[0].path != AlertPath+"/~999/comment" || reqs[1].path != AlertPath {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestDoCommentFailureDoesNotCreate(t *testing.T) {
	f := newFakeHive(t, testKey, "")
	s := newTestSink(t, testConfig(f.srv.URL))
	f.push(reply{status: 403, body: string(fixture(t, "error_403.json"))})
	a := testAction()
	a.Prior = "~5"
	if _, err := s.Do(context.Background(), a); err == nil || !strings.Contains(err.Error(), "AuthorizationError") {
		t.Fatalf("err %v", err)
	}
	if n := len(f.recorded()); n != 1 {
		t.Fatalf("%d requests, want only the comment", n)
	}
}

// A create repeated after its answer was lost (same Action.Key) meets TheHive's duplicate
// check and returns the alert the first attempt made.
func TestDoRepeatedCreateFindsExistingAlert(t *testing.T) {
	f := newFakeHive(t, testKey, "")
	s := newTestSink(t, testConfig(f.srv.URL))
	id := f.add(sourceRef(testAction().Key))
	res, err := s.Do(context.Background(), testAction())
	if err != nil {
		t.Fatal(err)
	}
	want := sinks.Result{Ref: id, Detail: "found existing alert " + id + " (sourceRef " + sourceRef(testAction().Key) + ")"}
	if res != want {
		t.Fatalf("result %+v, want %+v", res, want)
	}
	reqs := f.recorded()
	if len(reqs) != 2 || reqs[1].path != QueryPath || reqs[1].query != "name=threatpipe-alert-by-source-ref" {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestDoDuplicateNotFound(t *testing.T) {
	f := newFakeHive(t, testKey, "")
	s := newTestSink(t, testConfig(f.srv.URL))
	// TheHive says the alert exists, but the query (another organisation, no permission) does
	// not see it.
	f.push(reply{status: 400, body: string(fixture(t, "error_400_duplicate.json"))}, reply{status: 200, body: string(fixture(t, "query_empty_200.json"))})
	_, err := s.Do(context.Background(), testAction())
	if err == nil || !strings.Contains(err.Error(), "already has an alert with sourceRef") || !strings.Contains(err.Error(), "no such alert") {
		t.Fatalf("err %v", err)
	}
}

func TestIsDuplicate(t *testing.T) {
	dup := string(fixture(t, "error_400_duplicate.json"))
	long := `{"type":"CreateError","message":"Alert threatpipe:threatpipe:tp-x already exist in organisation ` + strings.Repeat("o", 300)
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"400 CreateError", &sinkhttp.StatusError{Status: 400, Body: dup}, true},
		// Older releases answered 500, which sinkhttp retries until the budget is spent.
		{"500 after the retry budget", fmt.Errorf("retry budget of 30s spent: %w", &sinkhttp.StatusError{Status: 500, Body: dup}), true},
		{"body cut by sinkhttp", &sinkhttp.StatusError{Status: 400, Body: long[:300] + "..."}, true},
		{"other CreateError", &sinkhttp.StatusError{Status: 400, Body: `{"type":"CreateError","message":"Observable is invalid"}`}, false},
		{"bad request", &sinkhttp.StatusError{Status: 400, Body: string(fixture(t, "error_400.json"))}, false},
		{"transport error", errors.New("connection refused"), false},
	}
	for _, tt := range tests {
		if got := isDuplicate(tt.err); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestDoBadPriorAndKey(t *testing.T) {
	s := newTestSink(t, testConfig("https://thehive.example"))
	a := testAction()
	a.Prior = "../case/1"
	if _, err := s.Do(context.Background(), a); err == nil || !strings.Contains(err.Error(), "not an alert id") {
		t.Fatalf("err %v", err)
	}
	a = testAction()
	a.Key = ""
	if _, err := s.Do(context.Background(), a); err == nil || !strings.Contains(err.Error(), "no Key") {
		t.Fatalf("err %v", err)
	}
}

func TestDoRetries(t *testing.T) {
	tests := []struct {
		name    string
		replies []reply
		minWait time.Duration
	}{
		{"429 with Retry-After", []reply{{status: 429, header: map[string]string{"Retry-After": "1"}, body: `{"type":"TooManyRequests","message":"slow down"}`}}, time.Second},
		{"500 then success", []reply{{status: 500, body: string(fixture(t, "error_500.json"))}}, 0},
		{"502 and 503 then success", []reply{{status: 502, body: "<html>Bad Gateway</html>"}, {status: 503}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeHive(t, testKey, "")
			s := newTestSink(t, testConfig(f.srv.URL))
			f.push(tt.replies...)
			start := time.Now()
			res, err := s.Do(context.Background(), testAction())
			if err != nil {
				t.Fatal(err)
			}
			if res.Ref != "~40964177" || len(f.recorded()) != len(tt.replies)+1 {
				t.Fatalf("result %+v after %d requests", res, len(f.recorded()))
			}
			if el := time.Since(start); el < tt.minWait {
				t.Fatalf("retried after %s, before Retry-After", el)
			}
		})
	}
}

func TestDoPermanentFailures(t *testing.T) {
	tests := []struct {
		status int
		file   string
		want   string
	}{
		{400, "error_400.json", "Invalid Json"},
		{401, "error_401.json", "AuthenticationError"},
		{403, "error_403.json", "AuthorizationError"},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			f := newFakeHive(t, testKey, "")
			s := newTestSink(t, testConfig(f.srv.URL))
			f.push(reply{status: tt.status, body: string(fixture(t, tt.file))})
			_, err := s.Do(context.Background(), testAction())
			var se *sinkhttp.StatusError
			if !errors.As(err, &se) || se.Status != tt.status || !strings.Contains(err.Error(), tt.want) ||
				!strings.Contains(err.Error(), "create alert") {
				t.Fatalf("err %v", err)
			}
			if n := len(f.recorded()); n != 1 {
				t.Fatalf("%d requests, want no retry", n)
			}
		})
	}
}

func TestDoWrongKeyOrOrganisationRejected(t *testing.T) {
	f := newFakeHive(t, testKey, "SOC")
	cfg := testConfig(f.srv.URL)
	cfg.Organisation = "SOC"
	cfg.APIKey = "other-key"
	if _, err := newTestSink(t, cfg).Do(context.Background(), testAction()); !sinkhttp.IsStatus(err, 401) {
		t.Fatalf("wrong key: %v", err)
	}
	cfg = testConfig(f.srv.URL)
	if _, err := newTestSink(t, cfg).Do(context.Background(), testAction()); !sinkhttp.IsStatus(err, 403) {
		t.Fatalf("no organisation: %v", err)
	}
}

func TestErrorsNeverShowSecrets(t *testing.T) {
	f := newFakeHive(t, testKey, "")
	s := newTestSink(t, testConfig(f.srv.URL))
	for _, body := range []string{
		`{"type":"AuthenticationError","message":"bad key Bearer ` + testKey + `"}`,
		strings.Repeat("x", 280) + testKey,
	} {
		f.push(reply{status: 400, body: body})
		_, err := s.Do(context.Background(), testAction())
		if err == nil {
			t.Fatal("no error")
		}
		if strings.Contains(err.Error(), testKey[:8]) {
			t.Fatalf("error shows the key: %v", err)
		}
	}
}

func TestDoHonoursContext(t *testing.T) {
	f := newFakeHive(t, testKey, "")
	s := newTestSink(t, testConfig(f.srv.URL))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Do(ctx, testAction()); err == nil {
		t.Fatal("no error with a cancelled context")
	}
}

func TestDoUnreadableCreateResponse(t *testing.T) {
	f := newFakeHive(t, testKey, "")
	s := newTestSink(t, testConfig(f.srv.URL))
	f.push(reply{status: 201, body: `{"_type":"Alert"}`})
	if _, err := s.Do(context.Background(), testAction()); err == nil || !strings.Contains(err.Error(), "alert has no _id") {
		t.Fatalf("err %v", err)
	}
}

func TestValidateParams(t *testing.T) {
	s := newTestSink(t, testConfig("https://thehive.example"))
	tests := []struct {
		params map[string]string
		want   string
	}{
		{nil, ""},
		{map[string]string{ParamTLP: "0", ParamPAP: "3", ParamTags: "a, b c"}, ""},
		{map[string]string{ParamTLP: "5"}, `param "tlp"`},
		{map[string]string{ParamPAP: "4"}, `param "pap"`},
		{map[string]string{ParamPAP: "amber"}, `param "pap"`},
		{map[string]string{ParamTags: "a,,b"}, `param "tags"`},
		{map[string]string{ParamTags: strings.Repeat("t", 129)}, `param "tags"`},
		{map[string]string{"severity": "4"}, `param "severity": unknown`},
	}
	for _, tt := range tests {
		err := s.ValidateParams(tt.params)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%v: %v", tt.params, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%v: got %v, want %q", tt.params, err, tt.want)
		}
	}
}

func TestIdentity(t *testing.T) {
	s := newTestSink(t, testConfig("https://thehive.example"))
	if s.Name() != "thehive" || s.Kind() != sinks.KindTicket {
		t.Fatalf("%s %s", s.Name(), s.Kind())
	}
	if _, err := s.Do(context.Background(), nil); err == nil {
		t.Fatal("nil action accepted")
	}
	if _, err := New(nil, nil); err == nil {
		t.Fatal("nil config accepted")
	}
	if _, err := New(&Config{}, nil); err == nil {
		t.Fatal("unconfigured config accepted")
	}
}
