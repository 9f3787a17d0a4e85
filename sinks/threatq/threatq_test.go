package threatq

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
	"github.com/threatpipe/threatpipe/sinks/threatq/threatqtest"
)

func newSink(t *testing.T, srv *threatqtest.Server, password bool) *Sink {
	t.Helper()
	o := srv.Options()
	cfg := &Config{
		Auth:   Auth{URL: srv.URL(), ClientID: o.ClientID, ClientSecret: "s3cret"},
		Status: "Active", Source: "threatpipe",
		PolicyConfig: sinkhttp.PolicyConfig{AttemptTimeout: 2 * time.Second, RetryBudget: 5 * time.Second},
	}
	if password {
		cfg.ClientSecret = ""
		cfg.Username, cfg.Password = o.Username, "pa55word"
	}
	s, err := New(cfg, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func action(target string, score int) *sinks.Action {
	return &sinks.Action{
		Key: "k-" + target, Kind: sinks.KindIntel, Target: target, Score: score, Severity: event.SeverityHigh,
		Tags: []string{"scanner", "tor", "scanner"}, Country: "DE",
		Event: &event.Scored{
			Confidence: 80, ValidatedBy: []string{"abuseipdb", "criminalip"}, ISP: "Example ISP",
			AS: &event.AS{Number: 64500, Organization: &event.ASOrgRef{Name: "Example AS"}},
			Providers: map[string]*event.ProviderOutcome{
				"criminalip": {Status: event.StatusOK, Result: &event.Intel{Verdict: event.VerdictMalicious, Score: 90}},
				"greynoise":  {Status: event.StatusOK, Result: &event.Intel{Verdict: event.VerdictSuspicious, Score: 60}},
			},
		},
	}
}

// onePerName fails when any attribute name appears more than once.
func onePerName(t *testing.T, ind threatqtest.Indicator) {
	t.Helper()
	seen := map[string]bool{}
	for _, a := range ind.Attributes {
		if seen[a.Name] {
			t.Errorf("attribute %q duplicated: %+v", a.Name, ind.Attributes)
		}
		seen[a.Name] = true
	}
}

func TestCreateThenUpdate(t *testing.T) {
	for _, tc := range []struct {
		name, target, typ string
		password          bool
	}{
		{"ipv4 client_credentials", "203.0.113.7", "IP Address", false},
		{"ipv6 password grant", "2001:db8::7", "IPv6 Address", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := threatqtest.Start(t, threatqtest.Options{})
			s := newSink(t, srv, tc.password)
			ctx := context.Background()
			res, err := s.Do(ctx, action(tc.target, 72))
			if err != nil {
				t.Fatal(err)
			}
			ind, ok := srv.Indicator(tc.target)
			if !ok || res.Ref != id(ind.ID) || !strings.HasPrefix(res.Detail, "created indicator "+res.Ref) {
				t.Fatalf("result %+v, stored %+v", res, ind)
			}
			if ind.Type != tc.typ || ind.Status != "Active" || len(ind.Sources) != 1 || ind.Sources[0] != "threatpipe" {
				t.Fatalf("stored %+v", ind)
			}
			want := map[string]string{
				AttrScore: "72", AttrSeverity: "high", AttrConfidence: "80", AttrValidatedBy: "abuseipdb, criminalip",
				AttrCountry: "DE", AttrASN: "AS64500", AttrASOrg: "Example AS", AttrISP: "Example ISP",
				"Criminal IP Verdict": "malicious (90)", "GreyNoise Verdict": "suspicious (60)",
			}
			for name, v := range want {
				if got := ind.AttributeValues(name); len(got) != 1 || got[0] != v {
					t.Errorf("%s = %q, want %q", name, got, v)
				}
			}
			if strings.Join(ind.Tags, ",") != "scanner,tor" {
				t.Errorf("tags %q", ind.Tags)
			}

			res2, err := s.Do(ctx, action(tc.target, 95))
			if err != nil {
				t.Fatal(err)
			}
			if res2.Ref != res.Ref || !strings.Contains(res2.Detail, "updated indicator "+res.Ref+" ("+tc.target+"): 1 attributes changed, 0 added, 0 tags added") {
				t.Fatalf("second result %+v", res2)
			}
			if n := len(srv.Indicators()); n != 1 {
				t.Fatalf("%d indicators", n)
			}
			ind, _ = srv.Indicator(tc.target)
			if got := ind.AttributeValues(AttrScore); len(got) != 1 || got[0] != "95" {
				t.Fatalf("score %q", got)
			}
			onePerName(t, ind)
		})
	}
}

func TestRedeliveryDoesNotDuplicate(t *testing.T) {
	srv := threatqtest.Start(t, threatqtest.Options{})
	s := newSink(t, srv, false)
	a := action("198.51.100.9", 60)
	for i := range 3 {
		res, err := s.Do(context.Background(), a)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && !strings.Contains(res.Detail, "already up to date") {
			t.Fatalf("repeat %d: %q", i, res.Detail)
		}
	}
	all := srv.Indicators()
	if len(all) != 1 {
		t.Fatalf("%d indicators", len(all))
	}
	onePerName(t, all[0])
	if srv.Count(http.MethodPost, "/api/indicators/"+id(all[0].ID)+"/attributes") != 0 ||
		srv.Count(http.MethodPut, "/api/indicators/") != 0 || srv.Count(http.MethodPost, "/api/indicators/"+id(all[0].ID)+"/tags") != 2 {
		t.Fatalf("requests %+v", srv.Requests())
	}
}

func TestUpdatesSeededIndicator(t *testing.T) {
	srv := threatqtest.Start(t, threatqtest.Options{})
	srv.Seed(threatqtest.Seed{Value: "192.0.2.1", Status: "Review", Tags: []string{"TOR"}, Attributes: map[string]string{AttrScore: "10", "Other": "x"}})
	s := newSink(t, srv, false)
	res, err := s.Do(context.Background(), action("192.0.2.1", 80))
	if err != nil {
		t.Fatal(err)
	}
	ind, _ := srv.Indicator("192.0.2.1")
	if !strings.Contains(res.Detail, "1 attributes changed, 9 added, 1 tags added") || ind.Status != "Review" {
		t.Fatalf("%q %+v", res.Detail, ind)
	}
	onePerName(t, ind)
}

func TestFind(t *testing.T) {
	srv := threatqtest.Start(t, threatqtest.Options{})
	ids := srv.Seed(threatqtest.Seed{Value: "192.0.2.1"}, threatqtest.Seed{Value: "192.0.2.10"}, threatqtest.Seed{Value: "192.0.2.1", Type: "FQDN"})
	s := newSink(t, srv, false)
	for _, tc := range []struct {
		target, ref string
		found       bool
	}{{"192.0.2.1", id(ids[0]), true}, {"192.0.2.10", id(ids[1]), true}, {"192.0.2.2", "", false}} {
		ref, found, err := s.Find(context.Background(), &sinks.Action{Target: tc.target})
		if err != nil || ref != tc.ref || found != tc.found {
			t.Errorf("%s: %q %v %v", tc.target, ref, found, err)
		}
	}
}

func TestTokens(t *testing.T) {
	t.Run("cached", func(t *testing.T) {
		srv := threatqtest.Start(t, threatqtest.Options{})
		s := newSink(t, srv, false)
		for _, ip := range []string{"192.0.2.1", "192.0.2.2"} {
			if _, err := s.Do(context.Background(), action(ip, 50)); err != nil {
				t.Fatal(err)
			}
		}
		if n := srv.TokensIssued(); n != 1 {
			t.Fatalf("%d tokens", n)
		}
	})
	t.Run("refreshed before expiry", func(t *testing.T) {
		srv := threatqtest.Start(t, threatqtest.Options{TokenTTL: time.Second})
		s := newSink(t, srv, true)
		if _, err := s.Do(context.Background(), action("192.0.2.1", 50)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		if _, err := s.Do(context.Background(), action("192.0.2.1", 51)); err != nil {
			t.Fatal(err)
		}
		if n := srv.TokensIssued(); n != 2 {
			t.Fatalf("%d tokens", n)
		}
		for _, r := range srv.Requests() {
			if r.Status == http.StatusUnauthorized {
				t.Fatalf("a request went out with an expired token: %+v", r)
			}
		}
	})
	t.Run("refreshed once after a 401", func(t *testing.T) {
		srv := threatqtest.Start(t, threatqtest.Options{})
		s := newSink(t, srv, false)
		if _, _, err := s.Find(context.Background(), &sinks.Action{Target: "192.0.2.1"}); err != nil {
			t.Fatal(err)
		}
		srv.RevokeTokens()
		if _, _, err := s.Find(context.Background(), &sinks.Action{Target: "192.0.2.1"}); err != nil {
			t.Fatal(err)
		}
		if n := srv.TokensIssued(); n != 2 {
			t.Fatalf("%d tokens", n)
		}
		srv.Fail(2, http.StatusUnauthorized, "")
		_, _, err := s.Find(context.Background(), &sinks.Action{Target: "192.0.2.1"})
		if !sinkhttp.IsStatus(err, http.StatusUnauthorized) || srv.TokensIssued() != 3 {
			t.Fatalf("two 401s: %v, %d tokens", err, srv.TokensIssued())
		}
	})
	t.Run("bad credentials", func(t *testing.T) {
		srv := threatqtest.Start(t, threatqtest.Options{ClientSecret: "other"})
		s := newSink(t, srv, false)
		_, err := s.Do(context.Background(), action("192.0.2.1", 50))
		if !sinkhttp.IsStatus(err, http.StatusUnauthorized) || strings.Contains(err.Error(), "s3cret") ||
			!strings.Contains(err.Error(), "client_credentials") || srv.TokensIssued() != 0 {
			t.Fatalf("err %v", err)
		}
	})
}

func TestRetries(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		retryAfter string
		token      bool
		ok         bool
		attempts   int // requests to the failing endpoint
	}{
		{"429 with Retry-After", http.StatusTooManyRequests, "1", false, true, 2},
		{"503", http.StatusServiceUnavailable, "", false, true, 2},
		{"500 on the token", http.StatusInternalServerError, "", true, true, 2},
		{"400 not retried", http.StatusBadRequest, "", false, false, 1},
		{"403 not retried", http.StatusForbidden, "", false, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := threatqtest.Start(t, threatqtest.Options{})
			s := newSink(t, srv, false)
			path := QueryPath
			if tc.token {
				srv.FailToken(1, tc.status, tc.retryAfter)
				path = TokenPath
			} else {
				srv.Fail(1, tc.status, tc.retryAfter)
			}
			start := time.Now()
			_, err := s.Do(context.Background(), action("192.0.2.1", 50))
			if (err == nil) != tc.ok {
				t.Fatalf("err %v", err)
			}
			if !tc.ok && !sinkhttp.IsStatus(err, tc.status) {
				t.Fatalf("err %v", err)
			}
			if n := srv.Count(http.MethodPost, path); n != tc.attempts {
				t.Fatalf("%d requests to %s", n, path)
			}
			if tc.retryAfter != "" && time.Since(start) < time.Second {
				t.Fatalf("Retry-After not honoured: %s", time.Since(start))
			}
		})
	}
}

func TestParams(t *testing.T) {
	srv := threatqtest.Start(t, threatqtest.Options{})
	s := newSink(t, srv, false)
	if err := s.ValidateParams(map[string]string{ParamStatus: "Review"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []map[string]string{{"queue": "x"}, {ParamStatus: ""}, {ParamStatus: "a\nb"}} {
		if err := s.ValidateParams(p); err == nil {
			t.Errorf("%v accepted", p)
		}
	}
	a := action("192.0.2.5", 50)
	a.Params = map[string]string{ParamStatus: "Review"}
	if _, err := s.Do(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if ind, _ := srv.Indicator("192.0.2.5"); ind.Status != "Review" {
		t.Fatalf("status %q", ind.Status)
	}
	a.Params = map[string]string{ParamStatus: "NoSuchStatus"}
	a.Target = "192.0.2.6"
	if _, err := s.Do(context.Background(), a); !sinkhttp.IsStatus(err, http.StatusUnprocessableEntity) || !strings.Contains(err.Error(), "status") {
		t.Fatalf("unknown status: %v", err)
	}
}

func TestKindAndName(t *testing.T) {
	srv := threatqtest.Start(t, threatqtest.Options{})
	s := newSink(t, srv, false)
	if s.Name() != "threatq" || s.Kind() != sinks.KindIntel || Registration.Kind != sinks.KindIntel {
		t.Fatal(s.Name(), s.Kind())
	}
}
