package servicenow

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

func TestFind(t *testing.T) {
	corr := correlationID(testAction().Key)
	tests := []struct {
		name      string
		existing  []string // correlation ids of incidents created before, oldest first
		replies   []reply
		wantIndex int // index in existing of the incident found; -1: not found
		wantErr   string
		requests  int // 0: one
	}{
		{name: "not found", existing: []string{correlationID("another key")}, wantIndex: -1},
		{name: "found", existing: []string{correlationID("another key"), corr}, wantIndex: 1},
		{name: "oldest of several", existing: []string{corr, corr}, wantIndex: 0},
		{name: "retried after 429", existing: []string{corr}, replies: []reply{{status: 429, body: string(fixture(t, "error_429.json"))}}, wantIndex: 0, requests: 2},
		{name: "empty fixture", replies: []reply{{status: 200, body: string(fixture(t, "list_empty_200.json"))}}, wantIndex: -1},
		{name: "401", replies: []reply{{status: 401, body: string(fixture(t, "error_401.json"))}}, wantErr: "HTTP 401"},
		{name: "403", replies: []reply{{status: 403, body: string(fixture(t, "error_403.json"))}}, wantErr: "HTTP 403"},
		{name: "not JSON", replies: []reply{{status: 200, body: "<html>Instance Hibernating</html>"}}, wantErr: "unreadable response"},
		{name: "a record, not a list", replies: []reply{{status: 200, body: string(fixture(t, "create_201.json"))}}, wantErr: "unreadable response"},
		{name: "no result", replies: []reply{{status: 200, body: `{"status":"success"}`}}, wantErr: "no result array"},
		{name: "record without sys_id", replies: []reply{{status: 200, body: `{"result":[{"number":"INC0010001"}]}`}}, wantErr: "without sys_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeNow(t, basic(testUser, testPassword))
			var ids []string
			for _, c := range tt.existing {
				ids = append(ids, f.add(c))
			}
			f.push(tt.replies...)
			s := newTestSink(t, testConfig(f.srv.URL))
			ref, found, err := s.Find(context.Background(), testAction())
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || found || ref != "" {
					t.Fatalf("Find = %q, %v, %v; want an error with %q", ref, found, err, tt.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case tt.wantIndex < 0 && (found || ref != ""):
				t.Fatalf("Find = %q, %v; want not found", ref, found)
			case tt.wantIndex >= 0 && (!found || ref != ids[tt.wantIndex]):
				t.Fatalf("Find = %q, %v; want %q", ref, found, ids[tt.wantIndex])
			}
			reqs := f.recorded()
			if len(reqs) != max(tt.requests, 1) || reqs[0].method != http.MethodGet || reqs[0].path != IncidentPath || len(reqs[0].body) != 0 {
				t.Fatalf("requests %+v", reqs)
			}
			q, err := url.ParseQuery(reqs[0].query)
			if err != nil || q.Get("sysparm_query") != "correlation_id="+corr+"^ORDERBYsys_created_on" ||
				q.Get("sysparm_fields") != "sys_id,number" || q.Get("sysparm_limit") != "1" {
				t.Fatalf("query %q", reqs[0].query)
			}
		})
	}
}

// The query string is encoded: the encoded query's "=" and "^" do not split parameters.
func TestFindQueryEncoding(t *testing.T) {
	got := findQuery("threatpipe:0123456789abcdef0123456789abcdef")
	want := "sysparm_fields=sys_id%2Cnumber&sysparm_limit=1&sysparm_query=correlation_id%3Dthreatpipe%3A0123456789abcdef0123456789abcdef%5EORDERBYsys_created_on"
	if got != want {
		t.Fatalf("query\n%s\nwant\n%s", got, want)
	}
}

// The ref Find returns for a key is the one Do returned for it, whichever way Do answered.
func TestFindAfterDo(t *testing.T) {
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
			f.add(correlationID("unrelated"))
			first := testAction()
			first.Key = "pb1/ticket/198.51.100.9/2025-03-01"
			res, err := s.Do(context.Background(), first)
			if err != nil {
				t.Fatal(err)
			}
			second := testAction()
			second.Prior = "0123456789abcdef0123456789abcdef" // gone: Do creates
			res2, err := s.Do(context.Background(), second)
			if err != nil {
				t.Fatal(err)
			}
			for _, tt := range []struct {
				a    *sinks.Action
				want string
			}{{first, res.Ref}, {second, res2.Ref}} {
				ref, found, err := s.Find(context.Background(), tt.a)
				if err != nil || !found || ref != tt.want {
					t.Fatalf("Find(%s) = %q, %v, %v; Do returned %q", tt.a.Key, ref, found, err, tt.want)
				}
			}
			ref, found, err := s.Find(context.Background(), &sinks.Action{Key: "never done"})
			if err != nil || found || ref != "" {
				t.Fatalf("Find of a key never done = %q, %v, %v", ref, found, err)
			}
		})
	}
}

func TestFindNeedsKey(t *testing.T) {
	s := newTestSink(t, testConfig("https://instance.service-now.com"))
	for _, a := range []*sinks.Action{nil, {Target: "192.0.2.1"}} {
		if _, _, err := s.Find(context.Background(), a); err == nil {
			t.Fatalf("Find(%v) without a key", a)
		}
	}
	a := testAction()
	a.Key = ""
	if _, err := s.Do(context.Background(), a); err == nil || !strings.Contains(err.Error(), "no Key") {
		t.Fatalf("Do without a key: %v", err)
	}
}

func TestFindErrorsNeverShowSecrets(t *testing.T) {
	f := newFakeNow(t, basic(testUser, testPassword))
	s := newTestSink(t, testConfig(f.srv.URL))
	f.push(reply{status: 400, body: strings.Repeat("x", 285) + testPassword})
	_, _, err := s.Find(context.Background(), testAction())
	var se *sinkhttp.StatusError
	if !errors.As(err, &se) || strings.Contains(err.Error(), testPassword[:6]) {
		t.Fatalf("error %v", err)
	}
}

func TestCorrelationID(t *testing.T) {
	id := correlationID(testAction().Key)
	if !findQueryRE.MatchString("correlation_id="+id+"^ORDERBYsys_created_on") || len(id) > maxCorrelation ||
		id == correlationID("pb1/ticket/203.0.113.7/2025-03-02") {
		t.Fatalf("correlation_id %q", id)
	}
	if got := correlationID("k"); got != "threatpipe:8254c329a92850f6d539dd376f4816ee" {
		t.Fatalf("correlationID(k) = %s: a change would hide every open incident from Find", got)
	}
}
