package thehive

import (
	"context"
	"strings"
	"testing"

	"github.com/threatpipe/threatpipe/sinks"
)

func TestFind(t *testing.T) {
	ref := sourceRef(testAction().Key)
	tests := []struct {
		name      string
		existing  []string // sourceRefs of alerts created before
		replies   []reply
		wantIndex int // index in existing of the alert found; -1: not found
		wantErr   string
		requests  int // 0: one
	}{
		{name: "not found", existing: []string{sourceRef("another key")}, wantIndex: -1},
		{name: "found", existing: []string{sourceRef("another key"), ref}, wantIndex: 1},
		{name: "retried after 502", existing: []string{ref}, replies: []reply{{status: 502, body: "<html>Bad Gateway</html>"}}, wantIndex: 0, requests: 2},
		{name: "empty fixture", replies: []reply{{status: 200, body: string(fixture(t, "query_empty_200.json"))}}, wantIndex: -1},
		{name: "401", replies: []reply{{status: 401, body: string(fixture(t, "error_401.json"))}}, wantErr: "AuthenticationError"},
		{name: "403", replies: []reply{{status: 403, body: string(fixture(t, "error_403.json"))}}, wantErr: "AuthorizationError"},
		{name: "not a list", replies: []reply{{status: 200, body: string(fixture(t, "alert_201.json"))}}, wantErr: "unreadable query answer"},
		{name: "alert without _id", replies: []reply{{status: 200, body: `[{"_type":"Alert"}]`}}, wantErr: "without _id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeHive(t, testKey, "")
			var ids []string
			for _, r := range tt.existing {
				ids = append(ids, f.add(r))
			}
			f.push(tt.replies...)
			s := newTestSink(t, testConfig(f.srv.URL))
			got, found, err := s.Find(context.Background(), testAction())
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || found || got != "" {
					t.Fatalf("Find = %q, %v, %v; want an error with %q", got, found, err, tt.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case tt.wantIndex < 0 && (found || got != ""):
				t.Fatalf("Find = %q, %v; want not found", got, found)
			case tt.wantIndex >= 0 && (!found || got != ids[tt.wantIndex]):
				t.Fatalf("Find = %q, %v; want %q", got, found, ids[tt.wantIndex])
			}
			reqs := f.recorded()
			if len(reqs) != max(tt.requests, 1) || reqs[0].path != QueryPath || reqs[0].query != "name=threatpipe-alert-by-source-ref" ||
				!strings.Contains(string(reqs[0].body), `"`+ref+`"`) {
				t.Fatalf("requests %+v", reqs)
			}
		})
	}
}

// The ref Find returns for a key is the one Do returned for it, whichever way Do answered:
// created, created after a deleted Prior, or found as a duplicate.
func TestFindAfterDo(t *testing.T) {
	f := newFakeHive(t, testKey, "")
	s := newTestSink(t, testConfig(f.srv.URL))
	first := testAction()
	first.Key = "pb1/ticket/198.51.100.9/2025-03-01"
	second := testAction()
	second.Prior = "~999" // gone: Do creates
	third := testAction()
	third.Key = "pb1/ticket/192.0.2.44/2025-03-01"
	f.add(sourceRef(third.Key)) // Do meets the duplicate check and finds it
	for _, a := range []*sinks.Action{first, second, third} {
		res, err := s.Do(context.Background(), a)
		if err != nil {
			t.Fatal(err)
		}
		ref, found, err := s.Find(context.Background(), a)
		if err != nil || !found || ref != res.Ref {
			t.Fatalf("Find(%s) = %q, %v, %v; Do returned %q", a.Key, ref, found, err, res.Ref)
		}
	}
	ref, found, err := s.Find(context.Background(), &sinks.Action{Key: "never done"})
	if err != nil || found || ref != "" {
		t.Fatalf("Find of a key never done = %q, %v, %v", ref, found, err)
	}
}

func TestFindNeedsKey(t *testing.T) {
	s := newTestSink(t, testConfig("https://thehive.example"))
	for _, a := range []*sinks.Action{nil, {Target: "192.0.2.1"}} {
		if _, _, err := s.Find(context.Background(), a); err == nil {
			t.Fatalf("Find(%v) without a key", a)
		}
	}
}

func TestFindErrorsNeverShowSecrets(t *testing.T) {
	f := newFakeHive(t, testKey, "")
	s := newTestSink(t, testConfig(f.srv.URL))
	f.push(reply{status: 400, body: strings.Repeat("x", 285) + testKey})
	if _, _, err := s.Find(context.Background(), testAction()); err == nil || strings.Contains(err.Error(), "TEST-k3y") {
		t.Fatalf("error %v", err)
	}
}
