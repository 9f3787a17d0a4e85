package jira

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

const (
	testEmail = "soc-bot@example.com"
	testToken = "ATATT3xFfGF0-TEST-t0ken-0123456789"
)

var fixedNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func basic(email, token string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(email+":"+token))
}

func testConfig(baseURL string) *Config {
	return &Config{
		BaseURL: baseURL, Email: testEmail, APIToken: config.Secret(testToken), ProjectKey: "SOC",
		IssueType: "Task", PolicyConfig: sinkhttp.PolicyConfig{AttemptTimeout: 2 * time.Second, RetryBudget: 5 * time.Second},
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

func TestDoCreate(t *testing.T) {
	f := newFakeJira(t, testEmail, testToken)
	s := newTestSink(t, testConfig(f.srv.URL))
	res, err := s.Do(context.Background(), testAction())
	if err != nil {
		t.Fatal(err)
	}
	if res != (sinks.Result{Ref: "SOC-1", Detail: "created SOC-1"}) {
		t.Fatalf("result %+v", res)
	}
	reqs := f.recorded()
	if len(reqs) != 1 || reqs[0].path != IssuePath {
		t.Fatalf("requests %+v", reqs)
	}
	var got createRequest
	if err := json.Unmarshal(reqs[0].body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Fields.Project.Key != "SOC" || got.Fields.IssueType.Name != "Task" || got.Fields.Priority != nil {
		t.Fatalf("fields %+v", got.Fields)
	}
}

func TestDoParams(t *testing.T) {
	f := newFakeJira(t, testEmail, testToken)
	s := newTestSink(t, testConfig(f.srv.URL))
	a := testAction()
	a.Params = map[string]string{ParamProject: "IR", ParamIssueType: "Incident", ParamPriority: "Highest", ParamLabels: "sev1, edr"}
	if _, err := s.Do(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	var got createRequest
	if err := json.Unmarshal(f.recorded()[0].body, &got); err != nil {
		t.Fatal(err)
	}
	fl := got.Fields
	if fl.Project.Key != "IR" || fl.IssueType.Name != "Incident" || fl.Priority == nil || fl.Priority.Name != "Highest" {
		t.Fatalf("fields %+v", fl)
	}
	if strings.Join(fl.Labels, ",") != "threatpipe,"+keyLabel(a.Key)+",tor,scanner,sev1,edr" {
		t.Fatalf("labels %q", fl.Labels)
	}
}

func TestDoComment(t *testing.T) {
	f := newFakeJira(t, testEmail, testToken)
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
	if res != (sinks.Result{Ref: "SOC-1", Detail: "commented on SOC-1"}) {
		t.Fatalf("result %+v", res)
	}
	reqs := f.recorded()
	if len(reqs) != 2 || reqs[1].path != "/rest/api/3/issue/SOC-1/comment" {
		t.Fatalf("requests %+v", reqs)
	}
	if b := string(reqs[1].body); !strings.Contains(b, "scored 97 (critical)") || !strings.Contains(b, "2025-03-01T12:00:00Z") ||
		!strings.Contains(b, "confidence 100") {
		t.Fatalf("comment body lacks score, time or reasons: %s", b)
	}
}

func TestDoCommentOnDeletedIssueCreates(t *testing.T) {
	f := newFakeJira(t, testEmail, testToken)
	s := newTestSink(t, testConfig(f.srv.URL))
	a := testAction()
	a.Prior = "SOC-99" // the fake has no such issue: 404
	res, err := s.Do(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if res != (sinks.Result{Ref: "SOC-1", Detail: "created SOC-1 (SOC-99 no longer exists)"}) {
		t.Fatalf("result %+v", res)
	}
	reqs := f.recorded()
	if len(reqs) != 2 || reqs[0].path != "/rest/api/3/issue/SOC-99/comment" || reqs[1].path != IssuePath {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestDoCommentFailureDoesNotCreate(t *testing.T) {
	f := newFakeJira(t, testEmail, testToken)
	s := newTestSink(t, testConfig(f.srv.URL))
	f.push(reply{status: 403, body: string(fixture(t, "error_403.json"))})
	a := testAction()
	a.Prior = "SOC-5"
	if _, err := s.Do(context.Background(), a); err == nil || !strings.Contains(err.Error(), "HTTP 403") {
		t.Fatalf("err %v", err)
	}
	if n := len(f.recorded()); n != 1 {
		t.Fatalf("%d requests, want only the comment", n)
	}
}

func TestDoBadPrior(t *testing.T) {
	s := newTestSink(t, testConfig("https://example.atlassian.net"))
	a := testAction()
	a.Prior = "../../myself"
	if _, err := s.Do(context.Background(), a); err == nil || !strings.Contains(err.Error(), "not an issue key") {
		t.Fatalf("err %v", err)
	}
}

func TestDoRetries(t *testing.T) {
	tests := []struct {
		name    string
		replies []reply
		minWait time.Duration
	}{
		{"429 with Retry-After", []reply{{status: 429, header: map[string]string{"Retry-After": "1"}, body: string(fixture(t, "error_429.json"))}}, time.Second},
		{"500 then success", []reply{{status: 500, body: string(fixture(t, "error_500.json"))}}, 0},
		{"503 twice then success", []reply{{status: 503, body: "<html>maintenance</html>"}, {status: 503}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeJira(t, testEmail, testToken)
			s := newTestSink(t, testConfig(f.srv.URL))
			f.push(tt.replies...)
			start := time.Now()
			res, err := s.Do(context.Background(), testAction())
			if err != nil {
				t.Fatal(err)
			}
			if res.Ref != "SOC-1" || len(f.recorded()) != len(tt.replies)+1 {
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
		{400, "error_400.json", "You must specify a summary"},
		{401, "error_401.json", "You are not authenticated"},
		{403, "error_403.json", "do not have permission"},
		{404, "error_404.json", "HTTP 404"},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			f := newFakeJira(t, testEmail, testToken)
			s := newTestSink(t, testConfig(f.srv.URL))
			f.push(reply{status: tt.status, body: string(fixture(t, tt.file))})
			_, err := s.Do(context.Background(), testAction())
			var se *sinkhttp.StatusError
			if !errors.As(err, &se) || se.Status != tt.status || !strings.Contains(err.Error(), tt.want) ||
				!strings.Contains(err.Error(), "create issue in project SOC") {
				t.Fatalf("err %v", err)
			}
			if n := len(f.recorded()); n != 1 {
				t.Fatalf("%d requests, want no retry", n)
			}
		})
	}
}

func TestDoWrongTokenRejected(t *testing.T) {
	f := newFakeJira(t, testEmail, testToken)
	cfg := testConfig(f.srv.URL)
	cfg.APIToken = "some-other-token"
	s := newTestSink(t, cfg)
	if _, err := s.Do(context.Background(), testAction()); !sinkhttp.IsStatus(err, 401) {
		t.Fatalf("err %v", err)
	}
}

func TestErrorsNeverShowSecrets(t *testing.T) {
	f := newFakeJira(t, testEmail, testToken)
	s := newTestSink(t, testConfig(f.srv.URL))
	cred := strings.TrimPrefix(basic(testEmail, testToken), "Basic ")
	long := strings.Repeat("x", 270) + testToken // cut by sinkhttp's 300-byte truncation
	for _, body := range []string{
		`{"errorMessages":["bad token ` + testToken + `"],"errors":{}}`,
		`{"errorMessages":["bad header Basic ` + cred + `"],"errors":{}}`,
		long,
	} {
		f.push(reply{status: 400, body: body})
		_, err := s.Do(context.Background(), testAction())
		if err == nil {
			t.Fatal("no error")
		}
		msg := err.Error()
		for _, secret := range []string{testToken, cred, testToken[:12], cred[:12]} {
			if strings.Contains(msg, secret) {
				t.Fatalf("error shows a secret: %s", msg)
			}
		}
	}
}

func TestDoHonoursContext(t *testing.T) {
	f := newFakeJira(t, testEmail, testToken)
	s := newTestSink(t, testConfig(f.srv.URL))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Do(ctx, testAction()); err == nil {
		t.Fatal("no error with a cancelled context")
	}
}

func TestDoUnreadableCreateResponse(t *testing.T) {
	f := newFakeJira(t, testEmail, testToken)
	s := newTestSink(t, testConfig(f.srv.URL))
	f.push(reply{status: 201, body: `<html>login</html>`})
	if _, err := s.Do(context.Background(), testAction()); err == nil || !strings.Contains(err.Error(), "unreadable create response") {
		t.Fatalf("err %v", err)
	}
	f.push(reply{status: 201, body: string(fixture(t, "create_id_only.json"))})
	res, err := s.Do(context.Background(), testAction())
	if err != nil || res.Ref != "10001" {
		t.Fatalf("id-only answer: %+v %v", res, err)
	}
}

func TestValidateParams(t *testing.T) {
	s := newTestSink(t, testConfig("https://example.atlassian.net"))
	tests := []struct {
		params map[string]string
		want   string // "" for valid
	}{
		{nil, ""},
		{map[string]string{ParamProject: "IR", ParamIssueType: "Bug", ParamPriority: "High", ParamLabels: "a,b-c"}, ""},
		{map[string]string{ParamProject: "ir"}, `param "project"`},
		{map[string]string{ParamProject: "TOOLONGPROJECTKEY"}, `param "project"`},
		{map[string]string{ParamIssueType: " "}, `param "issue_type"`},
		{map[string]string{ParamPriority: "High\n"}, `param "priority"`},
		{map[string]string{ParamLabels: "two words"}, `param "labels"`},
		{map[string]string{ParamLabels: "a,,b"}, `param "labels"`},
		{map[string]string{"assignee": "bob"}, `param "assignee": unknown`},
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
	a := testAction()
	a.Params = map[string]string{"queue": "x"}
	if _, err := s.Do(context.Background(), a); err == nil {
		t.Fatal("Do accepted an unknown param")
	}
}

func TestIdentity(t *testing.T) {
	s := newTestSink(t, testConfig("https://example.atlassian.net"))
	if s.Name() != "jira" || s.Kind() != sinks.KindTicket {
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
