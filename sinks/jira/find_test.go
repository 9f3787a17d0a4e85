package jira

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

func TestFind(t *testing.T) {
	label := keyLabel(testAction().Key)
	tests := []struct {
		name      string
		existing  [][]string // labels of issues created before, oldest first
		replies   []reply
		wantRef   string
		wantFound bool
		wantErr   string
		requests  int // 0: one
	}{
		{name: "not found", existing: [][]string{{"threatpipe", keyLabel("another key")}}},
		{name: "found", existing: [][]string{{"threatpipe", "tor"}, {"threatpipe", label}}, wantRef: "SOC-2", wantFound: true},
		{name: "oldest of several", existing: [][]string{{label}, {label}}, wantRef: "SOC-1", wantFound: true},
		{name: "retried after 503", existing: [][]string{{label}}, replies: []reply{{status: 503}}, wantRef: "SOC-1", wantFound: true, requests: 2},
		{name: "empty fixture", replies: []reply{{status: 200, body: string(fixture(t, "search_empty_200.json"))}}},
		{name: "401", replies: []reply{{status: 401, body: string(fixture(t, "error_401.json"))}}, wantErr: "HTTP 401"},
		{name: "JQL refused", replies: []reply{{status: 400, body: string(fixture(t, "error_400_jql.json"))}}, wantErr: "Error in the JQL Query"},
		{name: "not JSON", replies: []reply{{status: 200, body: "<html>login</html>"}}, wantErr: "unreadable search response"},
		{name: "no issues array", replies: []reply{{status: 200, body: `{"errorMessages":[]}`}}, wantErr: "no issues array"},
		{name: "issue without key", replies: []reply{{status: 200, body: `{"issues":[{"self":"x"}]}`}}, wantErr: "without key or id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeJira(t, testEmail, testToken)
			for _, l := range tt.existing {
				f.add(l...)
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
			case ref != tt.wantRef || found != tt.wantFound:
				t.Fatalf("Find = %q, %v; want %q, %v", ref, found, tt.wantRef, tt.wantFound)
			}
			reqs := f.recorded()
			if len(reqs) != max(tt.requests, 1) || reqs[0].path != SearchPath {
				t.Fatalf("requests %+v", reqs)
			}
			var got searchRequest
			if err := json.Unmarshal(reqs[0].body, &got); err != nil || got.JQL != `labels = "`+label+`" ORDER BY created ASC` {
				t.Fatalf("search body %s (%v)", reqs[0].body, err)
			}
		})
	}
}

// The ref Find returns for a key is the one Do returned for it, whichever way Do answered.
func TestFindAfterDo(t *testing.T) {
	f := newFakeJira(t, testEmail, testToken)
	s := newTestSink(t, testConfig(f.srv.URL))
	f.add("threatpipe") // an unrelated issue: SOC-1
	first := testAction()
	first.Key = "pb1/ticket/198.51.100.9/2025-03-01"
	res, err := s.Do(context.Background(), first)
	if err != nil {
		t.Fatal(err)
	}
	// The same key again; and another action whose Prior no longer exists, so that Do creates.
	second := testAction()
	second.Prior = "SOC-99"
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
}

func TestFindNeedsKey(t *testing.T) {
	s := newTestSink(t, testConfig("https://example.atlassian.net"))
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
	f := newFakeJira(t, testEmail, testToken)
	s := newTestSink(t, testConfig(f.srv.URL))
	f.push(reply{status: 400, body: strings.Repeat("x", 280) + testToken})
	_, _, err := s.Find(context.Background(), testAction())
	var se *sinkhttp.StatusError
	if !errors.As(err, &se) || strings.Contains(err.Error(), testToken[:8]) {
		t.Fatalf("error %v", err)
	}
}

func TestJQLString(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"tp-0123456789abcdef", `"tp-0123456789abcdef"`},
		{`a"b`, `"a\"b"`},
		{`a\b`, `"a\\b"`},
		{`\"`, `"\\\""`},
		{"a\nb\tc\rd", `"a\nb\tc\rd"`},
		{`x" OR project = "SECRET`, `"x\" OR project = \"SECRET"`},
	} {
		if got := jqlString(tt.in); got != tt.want {
			t.Errorf("jqlString(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestKeyLabel(t *testing.T) {
	l := keyLabel("pb1/ticket/203.0.113.7/2025-03-01")
	if len(l) != len("tp-")+16 || sanitizeLabel(l) != l || l != keyLabel("pb1/ticket/203.0.113.7/2025-03-01") || l == keyLabel("pb1/ticket/203.0.113.7/2025-03-02") {
		t.Fatalf("label %q", l)
	}
	if got := keyLabel("k"); got != "tp-8254c329a92850f6" {
		t.Fatalf("keyLabel(k) = %s: a change would orphan every open issue's label", got)
	}
}
