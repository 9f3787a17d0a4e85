package greynoise

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

const testKey = "gn-TEST-k3y-0123456789abcdef"

var fixedNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// day is UTC midnight of a YYYY-MM-DD date, for Results' LastSeen.
func day(s string) *time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return &t
}

func fixture(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// answer is how the fake API answers one address.
type answer struct {
	status int // 0 means 200
	file   string
	body   string
	ctype  string // default application/json
	header map[string]string
}

func write(w http.ResponseWriter, a answer, body string) {
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", or(a.ctype, "application/json"))
	status := a.status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// strictServer is GreyNoise as the client must find it: exact path, GET, the key in the "key"
// header and nowhere else. Anything off is answered 401 with the reason.
func strictServer(t *testing.T, answers map[string]answer, calls *atomic.Int64) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls != nil {
			calls.Add(1)
		}
		ip, ok := strings.CutPrefix(r.URL.Path, CommunityPath)
		reject := func(why string) {
			write(w, answer{status: 401}, fmt.Sprintf(`{"message":%q}`, "rejected by test server: "+why))
		}
		switch {
		case r.Method != http.MethodGet:
			reject("method " + r.Method)
		case !ok || strings.Contains(ip, "/"):
			reject("path " + r.URL.Path)
		case r.URL.RawQuery != "":
			reject("query " + r.URL.RawQuery)
		case r.Header.Get("key") != testKey || len(r.Header.Values("key")) != 1:
			reject("key header")
		case r.Header.Get("Accept") != "application/json" || !strings.HasPrefix(r.Header.Get("User-Agent"), "threatpipe"):
			reject("Accept or User-Agent")
		default:
			a, found := answers[ip]
			if !found {
				reject("no answer for " + ip)
				return
			}
			body := a.body
			if a.file != "" {
				body = fixture(t, a.file)
			}
			write(w, a, body)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func newTestClient(t *testing.T, baseURL, key string) *Client {
	t.Helper()
	c, err := New(&Config{providerhttp.Config{APIKey: config.Secret(key), BaseURL: baseURL}}, &http.Client{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.http.Now = func() time.Time { return fixedNow }
	return c
}

func indicator(s string) event.Indicator {
	a := netip.MustParseAddr(s)
	typ := event.IPv4
	if a.Is6() {
		typ = event.IPv6
	}
	return event.Indicator{Type: typ, Value: a.String(), Addr: a}
}

type wantErr struct {
	kind       enrich.ErrorKind
	status     int
	retryAfter time.Duration
	message    string
}

func TestLookup(t *testing.T) {
	srv := strictServer(t, map[string]answer{
		"8.8.8.8":       {file: "riot.json"},
		"203.0.113.10":  {file: "noise_malicious.json"},
		"71.6.135.131":  {file: "noise_benign.json"},
		"198.51.100.7":  {file: "noise_unknown.json"},
		"198.51.100.8":  {file: "quiet.json"},
		"203.0.113.11":  {file: "odd_types.json"},
		"192.0.2.1":     {status: 404, file: "not_found.json"},
		"192.0.2.2":     {status: 400, file: "bad_request.json"},
		"192.0.2.3":     {status: 401, file: "unauthorized.json"},
		"192.0.2.4":     {status: 429, file: "rate_limited.json", header: map[string]string{"Retry-After": "60"}},
		"192.0.2.5":     {status: 500, file: "server_error.json"},
		"192.0.2.6":     {status: 404, body: "<html><body>Not Found</body></html>", ctype: "text/html"},
		"192.0.2.7":     {status: 404, body: "404 page not found\n", ctype: "text/plain"},
		"192.0.2.8":     {file: "truncated.json"},
		"192.0.2.9":     {body: `{"message":"Success"}`},
		"192.0.2.10":    {body: `[]`},
		"192.0.2.11":    {status: 503, body: ``},
		"192.0.2.12":    {status: 401, body: `{"message":"bad key ` + testKey + `"}`},
		"192.0.2.13":    {status: 429, file: "rate_limited.json"},
		"198.51.100.99": {body: ``},
	}, nil)
	c := newTestClient(t, srv.URL+"/", testKey)

	tests := []struct {
		name string
		ip   string
		want *enrich.Result
		err  *wantErr
	}{
		{name: "RIOT", ip: "8.8.8.8", want: &enrich.Result{Verdict: enrich.VerdictBenign,
			Service: "Google Public DNS", Detail: `GreyNoise: RIOT known business service "Google Public DNS"`}},
		{name: "noise malicious", ip: "203.0.113.10", want: &enrich.Result{Verdict: enrich.VerdictMalicious, Score: 80, Tags: []string{"scanner"},
			Detail: "GreyNoise: scanning the internet, classification malicious, last seen 2024-05-01", LastSeen: day("2024-05-01")}},
		{name: "noise benign actor", ip: "71.6.135.131", want: &enrich.Result{Verdict: enrich.VerdictBenign, Tags: []string{"scanner"}, Service: "Shodan.io",
			Detail: `GreyNoise: scanning the internet, classification benign, actor "Shodan.io", last seen 2024-04-30`, LastSeen: day("2024-04-30")}},
		{name: "noise unknown", ip: "198.51.100.7", want: &enrich.Result{Verdict: enrich.VerdictSuspicious, Score: 40, Tags: []string{"scanner"},
			Detail: "GreyNoise: scanning the internet, classification unknown, last seen 2024-04-29", LastSeen: day("2024-04-29")}},
		{name: "neither noise nor RIOT", ip: "198.51.100.8", want: &enrich.Result{Verdict: event.VerdictUnrated,
			Detail: "GreyNoise: not seen scanning, not in RIOT, classification unknown"}},
		{name: "odd types", ip: "203.0.113.11", want: &enrich.Result{Verdict: event.VerdictUnrated,
			Detail: "GreyNoise: not seen scanning, not in RIOT, classification unknown"}},
		{name: "404 not observed", ip: "192.0.2.1", want: &enrich.Result{Verdict: enrich.VerdictNotFound, Detail: detailNotObserved}},

		{name: "400", ip: "192.0.2.2", err: &wantErr{kind: enrich.KindPermanent, status: 400, message: "not a valid routable IPv4"}},
		{name: "401", ip: "192.0.2.3", err: &wantErr{kind: enrich.KindUnauthorized, status: 401, message: "check your API key"}},
		{name: "401 echoing the key", ip: "192.0.2.12", err: &wantErr{kind: enrich.KindUnauthorized, status: 401, message: "bad key [redacted]"}},
		{name: "429 with Retry-After", ip: "192.0.2.4", err: &wantErr{kind: enrich.KindRateLimited, status: 429, retryAfter: time.Minute,
			message: "plan unauthenticated, 100-lookups/day: You have hit your daily rate limit"}},
		{name: "429 without Retry-After", ip: "192.0.2.13", err: &wantErr{kind: enrich.KindRateLimited, status: 429}},
		{name: "500", ip: "192.0.2.5", err: &wantErr{kind: enrich.KindTransient, status: 500, message: "Encountered error"}},
		{name: "503 empty", ip: "192.0.2.11", err: &wantErr{kind: enrich.KindTransient, status: 503}},
		{name: "HTML 404", ip: "192.0.2.6", err: &wantErr{kind: enrich.KindPermanent, status: 404, message: "BASE_URL"}},
		{name: "text 404", ip: "192.0.2.7", err: &wantErr{kind: enrich.KindPermanent, status: 404, message: "not-found body"}},
		{name: "truncated JSON", ip: "192.0.2.8", err: &wantErr{kind: enrich.KindTransient, message: "malformed response: not JSON"}},
		{name: "no noise or riot", ip: "192.0.2.9", err: &wantErr{kind: enrich.KindTransient, message: "malformed response: no noise or riot"}},
		{name: "JSON array", ip: "192.0.2.10", err: &wantErr{kind: enrich.KindTransient, message: "malformed response"}},
		{name: "empty 200", ip: "198.51.100.99", err: &wantErr{kind: enrich.KindTransient, message: "malformed response: empty body"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Lookup(context.Background(), indicator(tt.ip))
			if tt.err != nil {
				checkErr(t, err, tt.err)
				if got != nil {
					t.Errorf("a result with the error: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			// Every answer carries the body for the enrichment rules' field mapping.
			if !json.Valid(got.Raw) {
				t.Errorf("Raw is not the response body: %q", got.Raw)
			}
			got.Raw = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("result\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func checkErr(t *testing.T, err error, w *wantErr) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", w.kind)
	}
	if s := fmt.Sprintf("%v %+v %#v", err, err, err); strings.Contains(s, testKey) {
		t.Fatalf("error shows the API key: %s", s)
	}
	var pe *enrich.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %T %v is not *enrich.Error", err, err)
	}
	if pe.Provider != Name || pe.Kind != w.kind || pe.Status != w.status || pe.RetryAfter != w.retryAfter {
		t.Errorf("got %s %s status %d retry-after %s (%v); want %s %d %s", pe.Provider, pe.Kind, pe.Status, pe.RetryAfter, err, w.kind, w.status, w.retryAfter)
	}
	if !strings.Contains(err.Error(), w.message) {
		t.Errorf("error %q does not contain %q", err, w.message)
	}
}

func TestLookupIPv6IsNotSent(t *testing.T) {
	var calls atomic.Int64
	srv := strictServer(t, nil, &calls)
	c := newTestClient(t, srv.URL, testKey)
	res, err := c.Lookup(context.Background(), indicator("2001:db8::1"))
	if err != nil || res.Verdict != enrich.VerdictNotFound || res.Detail != detailIPv6 || res.Score != 0 {
		t.Fatalf("got %+v, %v", res, err)
	}
	if calls.Load() != 0 {
		t.Fatalf("%d requests for an IPv6 address", calls.Load())
	}
	// An IPv4-mapped address is IPv4 and is sent in its IPv4 spelling.
	srv2 := strictServer(t, map[string]answer{"203.0.113.10": {file: "noise_malicious.json"}}, &calls)
	res, err = newTestClient(t, srv2.URL, testKey).Lookup(context.Background(),
		event.Indicator{Type: event.IPv4, Addr: netip.MustParseAddr("::ffff:203.0.113.10")})
	if err != nil || res.Verdict != enrich.VerdictMalicious {
		t.Fatalf("mapped address: %+v, %v", res, err)
	}
}

func TestLookupWrongKeyIsRejected(t *testing.T) {
	srv := strictServer(t, map[string]answer{"8.8.8.8": {file: "riot.json"}}, nil)
	_, err := newTestClient(t, srv.URL, "some-other-key").Lookup(context.Background(), indicator("8.8.8.8"))
	checkErr(t, err, &wantErr{kind: enrich.KindUnauthorized, status: 401, message: "key header"})
}

func TestLookupBadIndicator(t *testing.T) {
	c := newTestClient(t, "http://127.0.0.1:9", testKey)
	for _, ind := range []event.Indicator{{Type: "domain-name", Value: "example.test"}, {Type: event.IPv4, Value: "nope"}} {
		if _, err := c.Lookup(context.Background(), ind); enrich.KindOf(err) != enrich.KindPermanent {
			t.Errorf("%+v: %v, want a permanent error", ind, err)
		}
	}
}

func TestPing(t *testing.T) {
	for _, tt := range []struct {
		name   string
		status int
		body   string
		want   string
		err    *wantErr
	}{
		{name: "ok", body: fixture(t, "ping.json"), want: "offering community, expires 2026-12-31, seen from 192.0.2.200"},
		{name: "401", status: 401, body: fixture(t, "unauthorized.json"), err: &wantErr{kind: enrich.KindUnauthorized, status: 401, message: "check your API key"}},
		{name: "404", status: 404, body: "404 page not found", err: &wantErr{kind: enrich.KindPermanent, status: 404}},
		{name: "not pong", body: `{"hello":"world"}`, err: &wantErr{kind: enrich.KindTransient, message: "no pong"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != PingPath || r.Header.Get("key") != testKey {
					write(w, answer{status: 418}, "")
					return
				}
				write(w, answer{status: tt.status}, tt.body)
			}))
			defer srv.Close()
			got, err := newTestClient(t, srv.URL, testKey).CheckAccount(context.Background())
			if tt.err != nil {
				checkErr(t, err, tt.err)
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestProviderIdentity(t *testing.T) {
	c := newTestClient(t, DefaultBaseURL, testKey)
	if c.Name() != "greynoise" || c.Cost() != enrich.CostFree {
		t.Fatalf("Name %q Cost %q", c.Name(), c.Cost())
	}
}

func TestNewRejects(t *testing.T) {
	for name, cfg := range map[string]*Config{
		"nil":      nil,
		"no key":   {providerhttp.Config{BaseURL: DefaultBaseURL}},
		"bad url":  {providerhttp.Config{APIKey: testKey, BaseURL: "api.greynoise.io"}},
		"key ctrl": {providerhttp.Config{APIKey: "abc\ndef", BaseURL: DefaultBaseURL}},
	} {
		if _, err := New(cfg, nil); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

// TestDecodeLastSeen: last_seen is the evidence's date of a noise or malicious answer when it
// is a readable, sane date; RIOT and quiet answers, and absent or garbage dates, have none.
func TestDecodeLastSeen(t *testing.T) {
	tomorrow := time.Now().UTC().Add(24 * time.Hour).Format(time.DateOnly)
	nextWeek := time.Now().UTC().Add(7 * 24 * time.Hour).Format(time.DateOnly)
	for _, tt := range []struct {
		body string
		want *time.Time
	}{
		{`{"noise":true,"riot":false,"classification":"malicious","last_seen":"2024-05-01"}`, day("2024-05-01")},
		{`{"noise":true,"riot":false,"classification":"unknown","last_seen":" 2024-04-29 "}`, day("2024-04-29")},
		{`{"noise":true,"riot":false,"classification":"benign","name":"Shodan.io","last_seen":"2024-04-30"}`, day("2024-04-30")},
		{`{"noise":false,"riot":false,"classification":"malicious","last_seen":"2024-05-01"}`, day("2024-05-01")},
		{`{"noise":true,"classification":"malicious","last_seen":"2024-05-01T13:14:15Z"}`, func() *time.Time { t := time.Date(2024, 5, 1, 13, 14, 15, 0, time.UTC); return &t }()},
		{`{"noise":true,"classification":"malicious","last_seen":"` + tomorrow + `"}`, day(tomorrow)},
		{`{"noise":false,"riot":true,"classification":"benign","name":"Google Public DNS","last_seen":"2024-05-01"}`, nil},
		{`{"noise":false,"riot":false,"classification":"unknown","last_seen":"2024-05-01"}`, nil},
		{`{"noise":true,"classification":"malicious"}`, nil},
		{`{"noise":true,"classification":"malicious","last_seen":null}`, nil},
		{`{"noise":true,"classification":"malicious","last_seen":""}`, nil},
		{`{"noise":true,"classification":"malicious","last_seen":"2024-13-01"}`, nil},
		{`{"noise":true,"classification":"malicious","last_seen":"last week"}`, nil},
		{`{"noise":true,"classification":"malicious","last_seen":20240501}`, nil},
		{`{"noise":true,"classification":"malicious","last_seen":"1999-12-31"}`, nil},
		{`{"noise":true,"classification":"malicious","last_seen":"` + nextWeek + `"}`, nil},
	} {
		res, err := decodeCommunity([]byte(tt.body))
		if err != nil {
			t.Fatalf("%s: %v", tt.body, err)
		}
		if !reflect.DeepEqual(res.LastSeen, tt.want) {
			t.Errorf("%s: LastSeen %v, want %v", tt.body, res.LastSeen, tt.want)
		}
	}
}
