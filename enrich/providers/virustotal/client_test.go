package virustotal

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
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

const testKey = "vt-TEST-k3y-0123456789abcdef0123456789abcdef"

// fixedNow is the client's clock in tests (Retry-After dates).
var fixedNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// scenario is how the fake API answers one address.
type scenario struct {
	status int               // 0 means 200
	file   string            // body from testdata
	body   string            // inline body when file is ""
	header map[string]string // extra response headers
}

func writeErr(w http.ResponseWriter, status int, code, why string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `{"error":{"code":%q,"message":%q}}`, code, "rejected by test server: "+why)
}

// strict answers only requests shaped exactly as VirusTotal documents them; anything else is a
// 401 or 400 naming what was wrong, which the tests then see as a failure.
func strict(w http.ResponseWriter, r *http.Request) (string, bool) {
	ip, ok := strings.CutPrefix(r.URL.EscapedPath(), IPPath)
	switch {
	case r.Method != http.MethodGet:
		writeErr(w, 405, "BadRequestError", "method "+r.Method)
	case !ok || strings.Contains(ip, "/"):
		writeErr(w, 400, "BadRequestError", "path "+r.URL.EscapedPath())
	case r.URL.RawQuery != "":
		writeErr(w, 400, "BadRequestError", "query "+r.URL.RawQuery)
	case r.Header.Get("x-apikey") != testKey:
		writeErr(w, 401, "WrongCredentialsError", "x-apikey header")
	case r.Header.Get("Accept") != "application/json":
		writeErr(w, 400, "BadRequestError", "Accept header")
	case !strings.HasPrefix(r.Header.Get("User-Agent"), "threatpipe"):
		writeErr(w, 400, "BadRequestError", "User-Agent header")
	default:
		return ip, true
	}
	return "", false
}

func ipServer(t *testing.T, scenarios map[string]scenario) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, ok := strict(w, r)
		if !ok {
			return
		}
		sc, ok := scenarios[ip]
		if !ok {
			writeErr(w, 400, "InvalidArgumentError", "no scenario for "+ip)
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

func newTestClient(t *testing.T, baseURL, key string) *Client {
	t.Helper()
	c, err := New(&Config{providerhttp.Config{APIKey: config.Secret(key), BaseURL: baseURL, MaxBodyBytes: 64 << 10}}, &http.Client{Timeout: 10 * time.Second})
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

func TestLookup(t *testing.T) {
	html := map[string]string{"Content-Type": "text/html; charset=utf-8"}
	srv := ipServer(t, map[string]scenario{
		"198.51.100.7": {file: "ip_full.json"},
		"192.0.2.80":   {file: "ip_clean.json"},
		"203.0.113.9":  {file: "ip_suspicious.json"},
		"192.0.2.44":   {file: "ip_unrated.json"},
		"2001:db8::7":  {file: "ip_ipv6.json"},
		"198.51.100.8": {body: `{"data":{"attributes":{"tags":["b","a","A"," a ","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q","r"],"last_analysis_stats":{"malicious":40,"harmless":-3}}}}`},

		"198.51.100.99": {status: 404, file: "error_404.json"},
		"192.0.2.1":     {status: 401, file: "error_401.json"},
		"192.0.2.2":     {status: 401, file: "error_401_missing.json"},
		"192.0.2.3":     {status: 403, file: "error_403.json"},
		"192.0.2.4":     {status: 429, file: "error_429_quota.json", header: map[string]string{"Retry-After": "60"}},
		"192.0.2.5":     {status: 429, file: "error_429_too_many.json"},
		"192.0.2.6":     {status: 503, file: "error_503.json"},
		"192.0.2.7":     {status: 504, file: "error_504.json"},
		"192.0.2.8":     {status: 500, body: ``},
		"192.0.2.9":     {status: 400, file: "error_400.json"},
		"192.0.2.10":    {status: 404, file: "not_found.html", header: html},
		"192.0.2.11":    {status: 404, body: `{"status":404,"message":"not found"}`},
		"192.0.2.12":    {status: 401, body: `{"error":{"code":"WrongCredentialsError","message":"Wrong API key ` + testKey + `"}}`},
		"192.0.2.13":    {status: 429, file: "error_429_quota.json", header: map[string]string{"Retry-After": fixedNow.Add(90 * time.Second).Format(http.TimeFormat)}},

		"203.0.113.20": {file: "ip_truncated.json"},
		"203.0.113.21": {body: ` `},
		"203.0.113.22": {body: `{"error":{"code":"X","message":"odd"}}`},
		"203.0.113.23": {body: `{"data":{"id":"203.0.113.23","type":"ip_address"}}`},
		"203.0.113.24": {body: `<html>hello</html>`, header: html},
		"203.0.113.25": {body: `{"data":{"attributes":{"whois":"` + strings.Repeat("x", 70<<10) + `"}}}`},
	})
	c := newTestClient(t, srv.URL+"/", testKey)

	tests := []struct {
		name string
		ip   string
		want *enrich.Result
		err  *wantErr
	}{
		{name: "full answer", ip: "198.51.100.7", want: &enrich.Result{Verdict: enrich.VerdictMalicious, Score: 73,
			Detail: "VirusTotal: 4/94 engines malicious, 1 suspicious; reputation -12; AS64501 EXAMPLE-NET (NL)",
			Tags:   []string{"known_scanner", "malware-c2"}, ASNumber: 64501, ASOrganization: "EXAMPLE-NET", CountryISO: "NL", LastSeen: unix(1714800000)}},
		{name: "clean, one suspicious engine", ip: "192.0.2.80", want: &enrich.Result{Verdict: enrich.VerdictBenign, Score: 13,
			Detail:   "VirusTotal: 0/94 engines malicious, 1 suspicious; reputation 5; AS64502 EXAMPLE-BROADBAND (FR)",
			ASNumber: 64502, ASOrganization: "EXAMPLE-BROADBAND", CountryISO: "FR", LastSeen: unix(1714800000)}},
		{name: "two suspicious engines", ip: "203.0.113.9", want: &enrich.Result{Verdict: enrich.VerdictSuspicious, Score: 25,
			Detail: "VirusTotal: 0/94 engines malicious, 2 suspicious; reputation 0; AS64497 EXAMPLE-CLOUD (US)",
			Tags:   []string{"self-signed"}, ASNumber: 64497, ASOrganization: "EXAMPLE-CLOUD", CountryISO: "US"}},
		{name: "never analysed, nulls", ip: "192.0.2.44", want: &enrich.Result{Verdict: event.VerdictUnrated,
			Detail: "VirusTotal: not analysed by any engine"}},
		{name: "ipv6, 32-bit ASN, lower-case country", ip: "2001:db8::7", want: &enrich.Result{Verdict: enrich.VerdictMalicious, Score: 58,
			Detail:   "VirusTotal: 3/94 engines malicious; reputation -3; AS4200000001 EXAMPLE-V6 NET (DE)",
			ASNumber: 4200000001, ASOrganization: "EXAMPLE-V6 NET", CountryISO: "DE"}},
		{name: "many tags, negative count", ip: "198.51.100.8", want: &enrich.Result{Verdict: enrich.VerdictMalicious, Score: 100,
			Detail: "VirusTotal: 40/40 engines malicious",
			Tags:   []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p"}}},
		{name: "404 NotFoundError", ip: "198.51.100.99", want: &enrich.Result{Verdict: enrich.VerdictNotFound, Detail: "VirusTotal: no record of this address"}},

		{name: "401 wrong key", ip: "192.0.2.1", err: &wantErr{kind: enrich.KindUnauthorized, status: 401, message: "WrongCredentialsError: Wrong API key"}},
		{name: "401 missing key", ip: "192.0.2.2", err: &wantErr{kind: enrich.KindUnauthorized, status: 401, message: "X-Apikey header is missing"}},
		{name: "403", ip: "192.0.2.3", err: &wantErr{kind: enrich.KindUnauthorized, status: 403, message: "ForbiddenError"}},
		{name: "429 quota", ip: "192.0.2.4", err: &wantErr{kind: enrich.KindRateLimited, status: 429, retryAfter: time.Minute, message: "QuotaExceededError"}},
		{name: "429 too many, no Retry-After", ip: "192.0.2.5", err: &wantErr{kind: enrich.KindRateLimited, status: 429, message: "TooManyRequestsError"}},
		{name: "429 Retry-After date", ip: "192.0.2.13", err: &wantErr{kind: enrich.KindRateLimited, status: 429, retryAfter: 90 * time.Second}},
		{name: "503 transient", ip: "192.0.2.6", err: &wantErr{kind: enrich.KindTransient, status: 503, message: "TransientError"}},
		{name: "504 deadline", ip: "192.0.2.7", err: &wantErr{kind: enrich.KindTransient, status: 504, message: "DeadlineExceededError"}},
		{name: "500 empty", ip: "192.0.2.8", err: &wantErr{kind: enrich.KindTransient, status: 500}},
		{name: "400 invalid argument", ip: "192.0.2.9", err: &wantErr{kind: enrich.KindPermanent, status: 400, message: "InvalidArgumentError"}},
		{name: "HTML 404", ip: "192.0.2.10", err: &wantErr{kind: enrich.KindPermanent, status: 404, message: "HTML 404 page: is THREATPIPE_VIRUSTOTAL_BASE_URL"}},
		{name: "404 from another API", ip: "192.0.2.11", err: &wantErr{kind: enrich.KindPermanent, status: 404, message: "without VirusTotal's NotFoundError"}},
		{name: "401 echoing the key", ip: "192.0.2.12", err: &wantErr{kind: enrich.KindUnauthorized, status: 401, message: "Wrong API key [redacted]"}},

		{name: "truncated JSON", ip: "203.0.113.20", err: &wantErr{kind: enrich.KindTransient, message: "malformed response: not JSON"}},
		{name: "blank body", ip: "203.0.113.21", err: &wantErr{kind: enrich.KindTransient, message: "malformed response: empty body"}},
		{name: "error on 200", ip: "203.0.113.22", err: &wantErr{kind: enrich.KindTransient, message: "malformed response: no data object"}},
		{name: "no attributes", ip: "203.0.113.23", err: &wantErr{kind: enrich.KindTransient, message: "malformed response: no data.attributes object"}},
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
			// An answer carries its body for the enrichment rules' field mapping.
			if tt.want.Verdict != enrich.VerdictNotFound && !bytes.Contains(got.Raw, []byte(`"attributes"`)) {
				t.Errorf("Raw is not the response body: %q", got.Raw)
			}
			if got.Quota != nil {
				t.Errorf("quota %+v from an API without rate-limit headers", got.Quota)
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
		t.Errorf("got %s kind %s status %d retry-after %s (%v); want %s %d %s", pe.Provider, pe.Kind, pe.Status, pe.RetryAfter, err, w.kind, w.status, w.retryAfter)
	}
	if !strings.Contains(err.Error(), w.message) {
		t.Errorf("error %q does not contain %q", err, w.message)
	}
}

func TestLookupWrongKeyIsRejected(t *testing.T) {
	srv := ipServer(t, map[string]scenario{"198.51.100.7": {file: "ip_full.json"}})
	_, err := newTestClient(t, srv.URL, "some-other-key").Lookup(context.Background(), ip("198.51.100.7"))
	checkErr(t, err, &wantErr{kind: enrich.KindUnauthorized, status: 401, message: "x-apikey header"})
}

func TestLookupBadIndicator(t *testing.T) {
	c := newTestClient(t, "http://127.0.0.1:1", testKey)
	for _, ind := range []event.Indicator{{Type: "domain-name", Value: "example.test"}, {Type: event.IPv4, Value: "nope"}, {Type: event.IPv6, Value: "fe80::1%eth0"}} {
		if _, err := c.Lookup(context.Background(), ind); enrich.KindOf(err) != enrich.KindPermanent {
			t.Errorf("%+v: got %v, want a permanent error", ind, err)
		}
	}
}

func TestNewRejects(t *testing.T) {
	for name, cfg := range map[string]*Config{
		"nil":      nil,
		"no key":   {},
		"bad url":  {providerhttp.Config{APIKey: testKey, BaseURL: "www.virustotal.com"}},
		"key ctrl": {providerhttp.Config{APIKey: "abc\ndef"}},
	} {
		if _, err := New(cfg, nil); err == nil {
			t.Errorf("%s: New accepted it", name)
		} else if strings.Contains(err.Error(), "abc") {
			t.Errorf("%s: error shows the key: %v", name, err)
		}
	}
	c, err := New(&Config{providerhttp.Config{APIKey: testKey}}, nil)
	if err != nil || c.Name() != Name || c.Cost() != enrich.CostPaid {
		t.Fatalf("defaults: %+v %v", c, err)
	}
}

// TestScoreCurve pins the documented points of the score curve and the verdict edges.
func TestScoreCurve(t *testing.T) {
	for _, tt := range []struct {
		m, s, h int
		score   int
		verdict enrich.Verdict
	}{
		{0, 0, 0, 0, event.VerdictUnrated}, {0, 0, 80, 0, enrich.VerdictBenign}, {0, 1, 80, 13, enrich.VerdictBenign},
		{0, 2, 80, 25, enrich.VerdictSuspicious}, {1, 0, 80, 25, enrich.VerdictSuspicious}, {2, 0, 80, 44, enrich.VerdictSuspicious},
		{3, 0, 80, 58, enrich.VerdictMalicious}, {5, 0, 80, 76, enrich.VerdictMalicious}, {10, 0, 80, 94, enrich.VerdictMalicious},
		{60, 0, 0, 100, enrich.VerdictMalicious},
	} {
		body := fmt.Sprintf(`{"data":{"attributes":{"last_analysis_stats":{"malicious":%d,"suspicious":%d,"harmless":%d}}}}`, tt.m, tt.s, tt.h)
		res, err := decode([]byte(body))
		if err != nil || res.Score != tt.score || res.Verdict != tt.verdict {
			t.Errorf("m=%d s=%d h=%d: got %+v %v, want %d %s", tt.m, tt.s, tt.h, res, err, tt.score, tt.verdict)
		}
	}
}

// unix is a Unix time in UTC, for Results' LastSeen.
func unix(sec int64) *time.Time {
	t := time.Unix(sec, 0).UTC()
	return &t
}

// TestDecodeLastSeen: last_analysis_date is the evidence's date when an engine flags the address
// and the date is sane; otherwise LastSeen is nil.
func TestDecodeLastSeen(t *testing.T) {
	nextWeek := strconv.FormatInt(time.Now().Add(7*24*time.Hour).Unix(), 10)
	soon := time.Now().Add(time.Hour).Unix()
	const flagged = `"last_analysis_stats":{"malicious":4,"harmless":60}`
	for _, tt := range []struct {
		attrs string
		want  *time.Time
	}{
		{flagged + `,"last_analysis_date":1714800000`, unix(1714800000)},
		{flagged + `,"last_analysis_date":1714800000.7`, unix(1714800000)},
		{flagged + `,"last_analysis_date":"1714800000"`, unix(1714800000)},
		{`"last_analysis_stats":{"suspicious":1,"harmless":60},"last_analysis_date":1714800000`, unix(1714800000)},
		{flagged + `,"last_analysis_date":` + strconv.FormatInt(soon, 10), unix(soon)},
		{`"last_analysis_stats":{"harmless":60,"undetected":34},"last_analysis_date":1714800000`, nil},
		{flagged, nil},
		{flagged + `,"last_analysis_date":null`, nil},
		{flagged + `,"last_analysis_date":"2024-05-04"`, nil},
		{flagged + `,"last_analysis_date":{"t":1}`, nil},
		{flagged + `,"last_analysis_date":0`, nil},
		{flagged + `,"last_analysis_date":-1714800000`, nil},
		{flagged + `,"last_analysis_date":946684799`, nil},
		{flagged + `,"last_analysis_date":1714800000000`, nil},
		{flagged + `,"last_analysis_date":1e400`, nil},
		{flagged + `,"last_analysis_date":` + nextWeek, nil},
	} {
		res, err := decode([]byte(`{"data":{"attributes":{` + tt.attrs + `}}}`))
		if err != nil {
			t.Fatalf("%s: %v", tt.attrs, err)
		}
		if !reflect.DeepEqual(res.LastSeen, tt.want) {
			t.Errorf("%s: LastSeen %v, want %v", tt.attrs, res.LastSeen, tt.want)
		}
	}
}
