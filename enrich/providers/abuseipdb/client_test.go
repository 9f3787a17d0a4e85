package abuseipdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

const testKey = "abuse-TEST-k3y-0123456789abcdef"

// fixedNow is the client's clock in tests (Retry-After dates, quota resets).
var fixedNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// resetEpoch is the X-RateLimit-Reset the fake API sends: the next UTC midnight.
const resetEpoch = "1740873600"

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// scenario is how the fake API answers one ipAddress.
type scenario struct {
	status int               // 0 means 200
	file   string            // body from testdata
	body   string            // inline body when file is ""
	header map[string]string // extra response headers
}

func writeErr(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `{"errors":[{"detail":%q,"status":%d}]}`, "rejected by test server: "+detail, status)
}

// strict answers only requests shaped exactly as AbuseIPDB documents them; anything else is a
// 401 or 422 naming what was wrong, which the tests then see as a failure.
func strict(w http.ResponseWriter, r *http.Request, maxAge string) bool {
	q := r.URL.Query()
	switch {
	case r.Method != http.MethodGet:
		writeErr(w, 405, "method "+r.Method)
	case r.URL.Path != CheckPath:
		writeErr(w, 404, "path "+r.URL.Path)
	case r.Header.Get("Key") != testKey:
		writeErr(w, 401, "Key header")
	case r.Header.Get("Accept") != "application/json":
		writeErr(w, 401, "Accept header")
	case !strings.HasPrefix(r.Header.Get("User-Agent"), "threatpipe"):
		writeErr(w, 401, "User-Agent header")
	case strings.Contains(r.URL.RawQuery, testKey) || q.Has("key") || q.Has("verbose"):
		writeErr(w, 422, "unexpected query "+r.URL.RawQuery)
	case len(q) != 2 || len(q["ipAddress"]) != 1 || q.Get("maxAgeInDays") != maxAge:
		writeErr(w, 422, "query "+r.URL.RawQuery)
	case strings.Contains(q.Get("ipAddress"), ":") && !strings.Contains(r.URL.RawQuery, "ipAddress="+strings.ReplaceAll(q.Get("ipAddress"), ":", "%3A")):
		writeErr(w, 422, "IPv6 not URL-encoded: "+r.URL.RawQuery)
	default:
		return true
	}
	return false
}

func checkServer(t *testing.T, maxAge string, scenarios map[string]scenario) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strict(w, r, maxAge) {
			return
		}
		sc, ok := scenarios[r.URL.Query().Get("ipAddress")]
		if !ok {
			writeErr(w, 422, "no scenario for this ip")
			return
		}
		for k, v := range sc.header {
			w.Header().Set(k, v)
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		body := []byte(sc.body)
		if sc.file != "" {
			body = fixture(t, sc.file)
		}
		w.WriteHeader(max(sc.status, 200))
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func newTestClient(t *testing.T, baseURL, key string, maxAge int) *Client {
	t.Helper()
	cfg := &Config{Config: providerhttp.Config{APIKey: config.Secret(key), BaseURL: baseURL, MaxBodyBytes: 64 << 10}, MaxAgeInDays: maxAge}
	c, err := New(cfg, &http.Client{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.http.Now = func() time.Time { return fixedNow }
	return c
}

func ip(s string) event.Indicator {
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
	message    string // substring of Error()
}

// limits are the X-RateLimit-* headers AbuseIPDB sends.
func limits(remaining string) map[string]string {
	return map[string]string{"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": remaining, "X-RateLimit-Reset": resetEpoch}
}

// at is a time in RFC 3339, for Results' LastSeen.
func at(s string) *time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return &t
}

func withHeader(h map[string]string, k, v string) map[string]string { h[k] = v; return h }

func TestLookup(t *testing.T) {
	html := map[string]string{"Content-Type": "text/html; charset=utf-8"}
	srv := checkServer(t, "90", map[string]scenario{
		"203.0.113.10":  {file: "check_full.json", header: limits("997")},
		"198.51.100.7":  {file: "check_unreported.json"},
		"192.0.2.44":    {file: "check_nulls.json"},
		"198.51.100.53": {file: "check_whitelisted.json"},
		"2001:db8::7":   {file: "check_ipv6.json"},
		"192.0.2.80":    {file: "check_low.json"},

		"192.0.2.1":  {status: 401, file: "error_401.json"},
		"192.0.2.2":  {status: 422, file: "error_422_ip.json"},
		"192.0.2.3":  {status: 422, file: "error_422_max_age.json"},
		"192.0.2.4":  {status: 429, file: "error_429.json", header: withHeader(limits("0"), "Retry-After", "29241")},
		"192.0.2.5":  {status: 429, file: "error_429.json", header: limits("0")},
		"192.0.2.6":  {status: 429, body: `{"errors":[{"detail":"Too Many Attempts.","status":429}]}`, header: withHeader(limits("40"), "Retry-After", "3")},
		"192.0.2.7":  {status: 429, body: ``, header: map[string]string{"Retry-After": "9"}},
		"192.0.2.8":  {status: 500, file: "error_500.json"},
		"192.0.2.9":  {status: 503, body: `<html>maintenance</html>`, header: html},
		"192.0.2.10": {status: 404, file: "not_found.html", header: html},
		"192.0.2.11": {status: 403, body: `{"errors":[{"detail":"Your plan does not allow this endpoint.","status":"403"}]}`},
		"192.0.2.12": {status: 401, body: `{"errors":[{"detail":"bad key ` + testKey + `","status":401}]}`},

		"203.0.113.20": {file: "check_truncated.json"},
		"203.0.113.21": {body: ``},
		"203.0.113.22": {body: `{"errors":[{"detail":"odd","status":200}]}`},
		"203.0.113.23": {body: `{"data":null}`},
		"203.0.113.24": {body: `<html>hello</html>`, header: html},
		"203.0.113.25": {body: `{"data":{"abuseConfidenceScore":` + strings.Repeat("9", 70<<10) + `}}`},
	})
	c := newTestClient(t, srv.URL+"/", testKey, 0)

	tests := []struct {
		name  string
		ip    string
		want  *enrich.Result
		quota *enrich.QuotaReport
		err   *wantErr
	}{
		{name: "full answer", ip: "203.0.113.10", want: &enrich.Result{Verdict: enrich.VerdictMalicious, Score: 92,
			Detail: "AbuseIPDB: confidence 92%, 37 reports from 12 users, last 2024-05-01; Data Center/Web Hosting/Transit",
			Tags:   []string{"hosting", "tor"}, CountryISO: "NL", ISP: "Example Hosting B.V.", LastSeen: at("2024-05-01T20:55:14Z")},
			quota: &enrich.QuotaReport{Limit: 1000, Remaining: 997, Reset: time.Unix(1740873600, 0).UTC()}},
		{name: "unreported", ip: "198.51.100.7", want: &enrich.Result{Verdict: event.VerdictUnrated,
			Detail: "AbuseIPDB: no reports in 90 days; Fixed Line ISP", CountryISO: "FR", ISP: "Example Broadband SAS"}},
		{name: "nulls", ip: "192.0.2.44", want: &enrich.Result{Verdict: event.VerdictUnrated, Detail: "AbuseIPDB: no reports in 90 days"}},
		{name: "whitelisted with reports", ip: "198.51.100.53", want: &enrich.Result{Verdict: enrich.VerdictBenign,
			Detail: "AbuseIPDB: whitelisted, 120 reports from 40 users, last 2024-05-01; Content Delivery Network",
			Tags:   []string{"cdn"}, CountryISO: "US", ISP: "Example CDN Inc.", LastSeen: at("2024-05-01T01:59:59Z")}},
		{name: "ipv6, lower-case country, crawler", ip: "2001:db8::7", want: &enrich.Result{Verdict: enrich.VerdictSuspicious, Score: 30,
			Detail: "AbuseIPDB: confidence 30%, 3 reports from 2 users, last 2024-03-15; Search Engine Spider",
			Tags:   []string{"crawler"}, CountryISO: "DE", ISP: "Example Search GmbH", LastSeen: at("2024-03-15T08:00:00Z")}},
		{name: "low confidence, singular", ip: "192.0.2.80", want: &enrich.Result{Verdict: enrich.VerdictBenign, Score: 10,
			Detail: "AbuseIPDB: confidence 10%, 1 report from 1 user, last 2024-02-02; Mobile ISP", CountryISO: "BR", ISP: "Example Mobile SA",
			LastSeen: at("2024-02-02T02:02:02Z")}},

		{name: "401", ip: "192.0.2.1", err: &wantErr{kind: enrich.KindUnauthorized, status: 401, message: "Authentication failed"}},
		{name: "422 bad address", ip: "192.0.2.2", err: &wantErr{kind: enrich.KindPermanent, status: 422, message: "valid IPv4 or IPv6"}},
		{name: "422 max age", ip: "192.0.2.3", err: &wantErr{kind: enrich.KindPermanent, status: 422, message: "between 1 and 365"}},
		{name: "429 daily quota", ip: "192.0.2.4", err: &wantErr{kind: enrich.KindQuotaExhausted, status: 429, retryAfter: 29241 * time.Second, message: "Daily rate limit"}},
		{name: "429 daily quota, reset header only", ip: "192.0.2.5", err: &wantErr{kind: enrich.KindQuotaExhausted, status: 429, retryAfter: 12 * time.Hour}},
		{name: "429 rate", ip: "192.0.2.6", err: &wantErr{kind: enrich.KindRateLimited, status: 429, retryAfter: 3 * time.Second, message: "Too Many Attempts"}},
		{name: "429 without headers", ip: "192.0.2.7", err: &wantErr{kind: enrich.KindRateLimited, status: 429, retryAfter: 9 * time.Second}},
		{name: "500", ip: "192.0.2.8", err: &wantErr{kind: enrich.KindTransient, status: 500, message: "Internal server error"}},
		{name: "503 HTML", ip: "192.0.2.9", err: &wantErr{kind: enrich.KindTransient, status: 503}},
		{name: "HTML 404", ip: "192.0.2.10", err: &wantErr{kind: enrich.KindPermanent, status: 404, message: "BASE_URL"}},
		{name: "403, string status", ip: "192.0.2.11", err: &wantErr{kind: enrich.KindUnauthorized, status: 403, message: "plan does not allow"}},
		{name: "401 echoing the key", ip: "192.0.2.12", err: &wantErr{kind: enrich.KindUnauthorized, status: 401, message: "bad key [redacted]"}},

		{name: "truncated JSON", ip: "203.0.113.20", err: &wantErr{kind: enrich.KindTransient, message: "malformed response: not JSON"}},
		{name: "empty body", ip: "203.0.113.21", err: &wantErr{kind: enrich.KindTransient, message: "malformed response: empty body"}},
		{name: "errors on 200", ip: "203.0.113.22", err: &wantErr{kind: enrich.KindTransient, message: "malformed response: no data object"}},
		{name: "null data", ip: "203.0.113.23", err: &wantErr{kind: enrich.KindTransient, message: "malformed response: no data object"}},
		{name: "HTML on 200", ip: "203.0.113.24", err: &wantErr{kind: enrich.KindTransient, message: "malformed response"}},
		{name: "oversize body", ip: "203.0.113.25", err: &wantErr{kind: enrich.KindTransient, status: 200, message: "response too large"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Lookup(context.Background(), ip(tt.ip))
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
			if !reflect.DeepEqual(got.Quota, tt.quota) {
				t.Errorf("quota: got %+v, want %+v", got.Quota, tt.quota)
			}
			// The body travels with the answer for the enrichment rules' field mapping.
			if !bytes.Contains(got.Raw, []byte(`"data"`)) {
				t.Errorf("Raw is not the response body: %q", got.Raw)
			}
			got.Quota, got.Raw = nil, nil
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
		t.Errorf("got %s kind %s status %d retry-after %s (%v); want %s %d %s", pe.Provider, pe.Kind, pe.Status, pe.RetryAfter, err, w.kind, w.status, w.retryAfter)
	}
	if !strings.Contains(err.Error(), w.message) {
		t.Errorf("error %q does not contain %q", err, w.message)
	}
}

func TestLookupSendsMaxAge(t *testing.T) {
	srv := checkServer(t, "30", map[string]scenario{"198.51.100.7": {file: "check_unreported.json"}})
	res, err := newTestClient(t, srv.URL, testKey, 30).Lookup(context.Background(), ip("198.51.100.7"))
	if err != nil || res.Detail != "AbuseIPDB: no reports in 30 days; Fixed Line ISP" {
		t.Fatalf("got %+v, %v", res, err)
	}
}

func TestLookupWrongKeyIsRejected(t *testing.T) {
	srv := checkServer(t, "90", map[string]scenario{"203.0.113.10": {file: "check_full.json"}})
	_, err := newTestClient(t, srv.URL, "some-other-key", 0).Lookup(context.Background(), ip("203.0.113.10"))
	checkErr(t, err, &wantErr{kind: enrich.KindUnauthorized, status: 401, message: "Key header"})
}

func TestLookupBadIndicator(t *testing.T) {
	c := newTestClient(t, "http://127.0.0.1:1", testKey, 0)
	for _, ind := range []event.Indicator{{Type: "domain-name", Value: "example.test"}, {Type: event.IPv4, Value: "nope"}, {Type: event.IPv6, Value: "fe80::1%eth0"}} {
		if _, err := c.Lookup(context.Background(), ind); enrich.KindOf(err) != enrich.KindPermanent {
			t.Errorf("%+v: got %v, want a permanent error", ind, err)
		}
	}
}

func TestNewRejects(t *testing.T) {
	for name, cfg := range map[string]*Config{
		"nil":       nil,
		"no key":    {},
		"bad url":   {Config: providerhttp.Config{APIKey: testKey, BaseURL: "api.abuseipdb.com"}},
		"key ctrl":  {Config: providerhttp.Config{APIKey: "abc\ndef"}},
		"max age":   {Config: providerhttp.Config{APIKey: testKey}, MaxAgeInDays: 366},
		"max age 0": {Config: providerhttp.Config{APIKey: testKey}, MaxAgeInDays: -1},
	} {
		if _, err := New(cfg, nil); err == nil {
			t.Errorf("%s: New accepted it", name)
		} else if strings.Contains(err.Error(), "abc") {
			t.Errorf("%s: error shows the key: %v", name, err)
		}
	}
	c, err := New(&Config{Config: providerhttp.Config{APIKey: testKey}}, nil)
	if err != nil || c.maxAge != DefaultMaxAgeDays || c.Name() != Name || c.Cost() != enrich.CostPaid {
		t.Fatalf("defaults: %+v %v", c, err)
	}
}

// TestDecodeRules pins the normalisation's edges on inline bodies.
func TestDecodeRules(t *testing.T) {
	for _, tt := range []struct {
		body  string
		want  enrich.Verdict
		score int
	}{
		{`{"data":{"abuseConfidenceScore":75,"totalReports":1}}`, enrich.VerdictMalicious, 75},
		{`{"data":{"abuseConfidenceScore":74.6,"totalReports":1}}`, enrich.VerdictMalicious, 75},
		{`{"data":{"abuseConfidenceScore":74,"totalReports":1}}`, enrich.VerdictSuspicious, 74},
		{`{"data":{"abuseConfidenceScore":25,"totalReports":1}}`, enrich.VerdictSuspicious, 25},
		{`{"data":{"abuseConfidenceScore":24,"totalReports":1}}`, enrich.VerdictBenign, 24},
		{`{"data":{"abuseConfidenceScore":250,"totalReports":1}}`, enrich.VerdictMalicious, 100},
		{`{"data":{"abuseConfidenceScore":-5,"totalReports":1}}`, enrich.VerdictBenign, 0},
		{`{"data":{"abuseConfidenceScore":90,"totalReports":0}}`, event.VerdictUnrated, 0},
		{`{"data":{"abuseConfidenceScore":90,"totalReports":5,"isWhitelisted":true}}`, enrich.VerdictBenign, 0},
		{`{"data":{"abuseConfidenceScore":90}}`, enrich.VerdictMalicious, 90},
		{`{"data":{"abuseConfidenceScore":0}}`, event.VerdictUnrated, 0},
		{`{"data":{"abuseConfidenceScore":"90","totalReports":3}}`, enrich.VerdictBenign, 0},
		{`{"data":{}}`, event.VerdictUnrated, 0},
	} {
		res, err := decode([]byte(tt.body), 90)
		if err != nil || res.Verdict != tt.want || res.Score != tt.score {
			t.Errorf("%s: got %+v %v, want %s %d", tt.body, res, err, tt.want, tt.score)
		}
	}
}

// TestDecodeLastSeen: lastReportedAt is the evidence's date when the address was reported and
// the time is readable and sane; otherwise LastSeen is nil (and the detail names no date).
func TestDecodeLastSeen(t *testing.T) {
	future := time.Now().UTC().Add(72 * time.Hour).Format(time.RFC3339)
	soon := time.Now().UTC().Add(2 * time.Hour).Truncate(time.Second)
	for _, tt := range []struct {
		last string // the lastReportedAt JSON value
		want *time.Time
	}{
		{`"2024-05-01T20:55:14+00:00"`, at("2024-05-01T20:55:14Z")},
		{`"2024-04-30T23:59:59-02:00"`, at("2024-05-01T01:59:59Z")},
		{`" 2024-05-01T20:55:14.123Z "`, at("2024-05-01T20:55:14.123Z")},
		{`"2024-05-01T20:55:14"`, at("2024-05-01T20:55:14Z")},
		{`"2024-05-01 20:55:14"`, at("2024-05-01T20:55:14Z")},
		{`"` + soon.Format(time.RFC3339) + `"`, &soon}, // clock skew: within a day is fine
		{`null`, nil},
		{`""`, nil},
		{`"yesterday"`, nil},
		{`"2024-13-45T99:00:00Z"`, nil},
		{`1714596914`, nil},
		{`"1999-12-31T23:59:59Z"`, nil},
		{`"0001-01-01T00:00:00Z"`, nil},
		{`"` + future + `"`, nil},
	} {
		res, err := decode([]byte(`{"data":{"abuseConfidenceScore":90,"totalReports":4,"lastReportedAt":`+tt.last+`}}`), 90)
		if err != nil {
			t.Fatalf("%s: %v", tt.last, err)
		}
		if !reflect.DeepEqual(res.LastSeen, tt.want) {
			t.Errorf("%s: LastSeen %v, want %v", tt.last, res.LastSeen, tt.want)
		}
		if (tt.want == nil) == strings.Contains(res.Detail, ", last ") {
			t.Errorf("%s: detail %q", tt.last, res.Detail)
		}
	}
	// No reports: no evidence, whatever the date says.
	res, _ := decode([]byte(`{"data":{"abuseConfidenceScore":0,"totalReports":0,"lastReportedAt":"2024-05-01T20:55:14+00:00"}}`), 90)
	if res.LastSeen != nil {
		t.Errorf("unreported answer has LastSeen %v", res.LastSeen)
	}
}
