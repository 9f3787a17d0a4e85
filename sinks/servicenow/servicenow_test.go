package servicenow

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
	testUser     = "threatpipe.integration"
	testPassword = "hunter2-Pa55w0rd-TEST"
	testToken    = "oauth-TEST-t0ken-abcdef0123456789"
)

var fixedNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

func testConfig(instanceURL string) *Config {
	return &Config{
		InstanceURL: instanceURL, Username: testUser, Password: config.Secret(testPassword), Category: "security",
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

func decodeIncident(t *testing.T, b []byte) incident {
	t.Helper()
	var inc incident
	if err := json.Unmarshal(b, &inc); err != nil {
		t.Fatal(err)
	}
	return inc
}

func TestDoCreate(t *testing.T) {
	for _, auth := range []string{"basic", "bearer"} {
		t.Run(auth, func(t *testing.T) {
			cfg := testConfig("")
			header := basic(testUser, testPassword)
			if auth == "bearer" {
				cfg.Username, cfg.Password, cfg.Token = "", "", testToken
				header = "Bearer " + testToken
			}
			f := newFakeNow(t, header)
			cfg.InstanceURL = f.srv.URL
			s := newTestSink(t, cfg)
			res, err := s.Do(context.Background(), testAction())
			if err != nil {
				t.Fatal(err)
			}
			reqs := f.recorded()
			if len(reqs) != 1 || reqs[0].method != http.MethodPost || reqs[0].path != IncidentPath ||
				reqs[0].query != "sysparm_fields=sys_id%2Cnumber" {
				t.Fatalf("requests %+v", reqs)
			}
			if len(res.Ref) != 32 || res.Detail != "created INC0010001" {
				t.Fatalf("result %+v", res)
			}
			inc := decodeIncident(t, reqs[0].body)
			if inc.Urgency != "1" || inc.Impact != "1" || inc.Category != "security" || inc.CorrelationID != correlationID(testAction().Key) ||
				inc.AssignmentGroup != "" || inc.CallerID != "" {
				t.Fatalf("incident %+v", inc)
			}
		})
	}
}

func TestDoParams(t *testing.T) {
	f := newFakeNow(t, basic(testUser, testPassword))
	cfg := testConfig(f.srv.URL)
	cfg.AssignmentGroup, cfg.CallerID = "default-group", "46d44a23a9fe19810012d100cca80666"
	s := newTestSink(t, cfg)
	a := testAction()
	a.Params = map[string]string{ParamAssignmentGroup: "287ebd7da9fe198100f92cc8d1d2154e", ParamCategory: "network", ParamUrgency: "3", ParamImpact: "2"}
	if _, err := s.Do(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	inc := decodeIncident(t, f.recorded()[0].body)
	if inc.AssignmentGroup != "287ebd7da9fe198100f92cc8d1d2154e" || inc.Category != "network" || inc.Urgency != "3" || inc.Impact != "2" ||
		inc.CallerID != "46d44a23a9fe19810012d100cca80666" {
		t.Fatalf("incident %+v", inc)
	}
}

func TestDoWorkNote(t *testing.T) {
	f := newFakeNow(t, basic(testUser, testPassword))
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
	if res != (sinks.Result{Ref: first.Ref, Detail: "commented on " + first.Ref + " (INC0010001)"}) {
		t.Fatalf("result %+v", res)
	}
	reqs := f.recorded()
	if len(reqs) != 2 || reqs[1].method != http.MethodPatch || reqs[1].path != IncidentPath+"/"+first.Ref {
		t.Fatalf("requests %+v", reqs)
	}
	var note workNote
	if err := json.Unmarshal(reqs[1].body, &note); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"seen again at 2025-03-01T12:00:00Z", "scored 97 (critical)", "abuseipdb (+40): confidence 100"} {
		if !strings.Contains(note.WorkNotes, want) {
			t.Fatalf("work note lacks %q: %s", want, note.WorkNotes)
		}
	}
}

func TestDoWorkNoteOnDeletedIncidentCreates(t *testing.T) {
	f := newFakeNow(t, basic(testUser, testPassword))
	s := newTestSink(t, testConfig(f.srv.URL))
	a := testAction()
	a.Prior = "0123456789abcdef0123456789abcdef" // unknown to the fake: 404
	res, err := s.Do(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Ref) != 32 || res.Ref == a.Prior || res.Detail != "created INC0010001 (incident "+a.Prior+" no longer exists)" {
		t.Fatalf("result %+v", res)
	}
	reqs := f.recorded()
	if len(reqs) != 2 || reqs[0].method != http.MethodPatch || reqs[1].method != http.MethodPost {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestDoWorkNoteFailureDoesNotCreate(t *testing.T) {
	f := newFakeNow(t, basic(testUser, testPassword))
	s := newTestSink(t, testConfig(f.srv.URL))
	f.push(reply{status: 403, body: string(fixture(t, "error_403.json"))})
	a := testAction()
	a.Prior = "0123456789abcdef0123456789abcdef"
	if _, err := s.Do(context.Background(), a); err == nil || !strings.Contains(err.Error(), "HTTP 403") {
		t.Fatalf("err %v", err)
	}
	if n := len(f.recorded()); n != 1 {
		t.Fatalf("%d requests, want only the PATCH", n)
	}
}

func TestDoBadPrior(t *testing.T) {
	s := newTestSink(t, testConfig("https://instance.service-now.com"))
	a := testAction()
	a.Prior = "INC0010001"
	if _, err := s.Do(context.Background(), a); err == nil || !strings.Contains(err.Error(), "not a sys_id") {
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
		{"502 and 503 then success", []reply{{status: 502, body: "<html>Bad Gateway</html>"}, {status: 503}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeNow(t, basic(testUser, testPassword))
			s := newTestSink(t, testConfig(f.srv.URL))
			f.push(tt.replies...)
			start := time.Now()
			res, err := s.Do(context.Background(), testAction())
			if err != nil {
				t.Fatal(err)
			}
			if res.Detail != "created INC0010001" || len(f.recorded()) != len(tt.replies)+1 {
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
		{400, "error_400.json", "The payload is not valid JSON."},
		{401, "error_401.json", "User Not Authenticated"},
		{403, "error_403.json", "ACL Exception Insert Failed"},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			f := newFakeNow(t, basic(testUser, testPassword))
			s := newTestSink(t, testConfig(f.srv.URL))
			f.push(reply{status: tt.status, body: string(fixture(t, tt.file))})
			_, err := s.Do(context.Background(), testAction())
			var se *sinkhttp.StatusError
			if !errors.As(err, &se) || se.Status != tt.status || !strings.Contains(err.Error(), tt.want) ||
				!strings.Contains(err.Error(), "create incident") {
				t.Fatalf("err %v", err)
			}
			if n := len(f.recorded()); n != 1 {
				t.Fatalf("%d requests, want no retry", n)
			}
		})
	}
}

func TestDoWrongCredentialsRejected(t *testing.T) {
	f := newFakeNow(t, basic(testUser, testPassword))
	cfg := testConfig(f.srv.URL)
	cfg.Password = "wrong-password"
	if _, err := newTestSink(t, cfg).Do(context.Background(), testAction()); !sinkhttp.IsStatus(err, 401) {
		t.Fatalf("err %v", err)
	}
}

func TestErrorsNeverShowSecrets(t *testing.T) {
	cred := strings.TrimPrefix(basic(testUser, testPassword), "Basic ")
	for _, tt := range []struct {
		auth    string
		secrets []string
	}{
		{"basic", []string{testPassword, cred}},
		{"bearer", []string{testToken}},
	} {
		t.Run(tt.auth, func(t *testing.T) {
			cfg := testConfig("")
			header := basic(testUser, testPassword)
			if tt.auth == "bearer" {
				cfg.Username, cfg.Password, cfg.Token = "", "", testToken
				header = "Bearer " + testToken
			}
			f := newFakeNow(t, header)
			cfg.InstanceURL = f.srv.URL
			s := newTestSink(t, cfg)
			for _, sec := range tt.secrets {
				for _, body := range []string{
					`{"error":{"message":"bad credentials","detail":"got ` + sec + `"},"status":"failure"}`,
					strings.Repeat("x", 280) + sec, // cut by sinkhttp's 300-byte truncation
				} {
					f.push(reply{status: 400, body: body})
					_, err := s.Do(context.Background(), testAction())
					if err == nil {
						t.Fatal("no error")
					}
					if strings.Contains(err.Error(), sec[:8]) {
						t.Fatalf("error shows a secret: %v", err)
					}
				}
			}
		})
	}
}

func TestDoHonoursContext(t *testing.T) {
	f := newFakeNow(t, basic(testUser, testPassword))
	s := newTestSink(t, testConfig(f.srv.URL))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Do(ctx, testAction()); err == nil {
		t.Fatal("no error with a cancelled context")
	}
}

func TestDoUnreadableCreateResponse(t *testing.T) {
	f := newFakeNow(t, basic(testUser, testPassword))
	s := newTestSink(t, testConfig(f.srv.URL))
	f.push(reply{status: 201, body: `{"result":{"number":"INC0010009"}}`})
	if _, err := s.Do(context.Background(), testAction()); err == nil || !strings.Contains(err.Error(), "no result.sys_id") {
		t.Fatalf("err %v", err)
	}
	f.push(reply{status: 201, body: string(fixture(t, "create_201_full.json"))})
	res, err := s.Do(context.Background(), testAction())
	if err != nil || res != (sinks.Result{Ref: "a9e30c7dc61122760116894de7bcc7bd", Detail: "created INC0010002"}) {
		t.Fatalf("full record answer: %+v %v", res, err)
	}
}

func TestValidateParams(t *testing.T) {
	s := newTestSink(t, testConfig("https://instance.service-now.com"))
	tests := []struct {
		params map[string]string
		want   string
	}{
		{nil, ""},
		{map[string]string{ParamAssignmentGroup: "SOC Tier 1", ParamCategory: "network", ParamUrgency: "1", ParamImpact: "3"}, ""},
		{map[string]string{ParamUrgency: "0"}, `param "urgency"`},
		{map[string]string{ParamImpact: "high"}, `param "impact"`},
		{map[string]string{ParamCategory: ""}, `param "category"`},
		{map[string]string{ParamCategory: strings.Repeat("c", 41)}, `param "category"`},
		{map[string]string{ParamAssignmentGroup: "a\nb"}, `param "assignment_group"`},
		{map[string]string{"priority": "1"}, `param "priority": unknown`},
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
	s := newTestSink(t, testConfig("https://instance.service-now.com"))
	if s.Name() != "servicenow" || s.Kind() != sinks.KindTicket {
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
