package criminalip

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
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

const testKey = "cip-TEST-k3y-0123456789abcdef"

// fixedNow is the client's clock in tests (Retry-After HTTP dates, quota resets).
var fixedNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// scenario is how the fake API answers one IP.
type scenario struct {
	status  int               // HTTP status; 0 means 200
	file    string            // body from testdata
	body    string            // inline body when file is ""
	header  map[string]string // extra response headers
	slow    bool              // wait for the client to give up
	hangup  bool              // close the TCP connection without answering
	partial bool              // send headers and half a body, then close
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// reject answers like Criminal IP does for a bad request in these tests: HTTP 401 JSON.
func reject(w http.ResponseWriter, why string) {
	writeJSON(w, http.StatusUnauthorized, fmt.Sprintf(`{"status":401,"message":%q}`, "rejected by test server: "+why))
}

// checkCommon verifies what every request must carry; it answers and returns false otherwise.
func checkCommon(w http.ResponseWriter, r *http.Request, method, path string) bool {
	switch {
	case r.Method != method:
		reject(w, "method "+r.Method)
	case r.URL.Path != path:
		reject(w, "path "+r.URL.Path)
	case strings.Contains(r.URL.RawQuery, testKey) || strings.Contains(r.URL.RawQuery, "key"):
		reject(w, "key in the URL")
	case r.Header.Get("x-api-key") != testKey:
		reject(w, "x-api-key header")
	case r.Header.Get("Accept") != "application/json":
		reject(w, "Accept header")
	case !strings.HasPrefix(r.Header.Get("User-Agent"), "threatpipe"):
		reject(w, "User-Agent header")
	default:
		return true
	}
	return false
}

func reportServer(t *testing.T, scenarios map[string]scenario) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !checkCommon(w, r, http.MethodGet, ReportPath) {
			return
		}
		q := r.URL.Query()
		if q.Get("full") != "true" || len(q["ip"]) != 1 || len(q) != 2 {
			reject(w, "query "+r.URL.RawQuery)
			return
		}
		ip := q.Get("ip")
		if _, err := netip.ParseAddr(ip); err != nil {
			reject(w, "ip "+ip)
			return
		}
		sc, ok := scenarios[ip]
		if !ok {
			writeJSON(w, http.StatusOK, `{"status":400,"message":"no scenario for this ip"}`)
			return
		}
		switch {
		case sc.slow:
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		case sc.hangup, sc.partial:
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			if sc.partial {
				_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"status\":200,\"ip\":")
				_ = buf.Flush()
			}
			_ = conn.Close()
			return
		}
		for k, v := range sc.header {
			w.Header().Set(k, v)
		}
		body := sc.body
		if sc.file != "" {
			body = string(fixture(t, sc.file))
		}
		status := sc.status
		if status == 0 {
			status = http.StatusOK
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func newTestClient(t *testing.T, baseURL, key string, maxBody int64) *Client {
	t.Helper()
	cfg := &Config{providerhttp.Config{APIKey: config.Secret(key), BaseURL: baseURL, MaxBodyBytes: maxBody}} // 0: New's default
	c, err := New(cfg, &http.Client{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.now = func() time.Time { return fixedNow }
	c.http.Now = c.now
	return c
}

func ipv4(s string) event.Indicator {
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
	is         error  // errors.Is target
}

func TestLookup(t *testing.T) {
	oversize := `{"status":200,"score":{"inbound":"Safe","outbound":"Safe"},"pad":"` + strings.Repeat("x", 100<<10) + `"}`
	scenarios := map[string]scenario{
		"203.0.113.10": {file: "report_full.json", header: map[string]string{
			"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "997", "X-RateLimit-Reset": "1767225600"}},
		"198.51.100.7":  {file: "report_trimmed.json"},
		"2001:db8::7":   {file: "report_trimmed.json"},
		"192.0.2.44":    {file: "report_legacy_int.json"},
		"198.51.100.23": {file: "report_string_asno.json"},
		"203.0.113.77":  {file: "report_lowercase_country.json"},
		"192.0.2.99":    {file: "report_missing_issues.json"},

		"192.0.2.1":  {status: 401, file: "status_401.json"},
		"192.0.2.2":  {status: 401, body: `{"status":401,"message":"invalid api key: ` + testKey + `"}`},
		"192.0.2.3":  {status: 402, file: "status_402.json"},
		"192.0.2.4":  {status: 403, file: "status_403.json"},
		"192.0.2.5":  {status: 429, file: "status_429.json", header: map[string]string{"Retry-After": "7"}},
		"192.0.2.6":  {status: 429, file: "status_429.json", header: map[string]string{"Retry-After": fixedNow.Add(90 * time.Second).Format(http.TimeFormat)}},
		"192.0.2.7":  {status: 429, body: ``},
		"192.0.2.8":  {status: 500, file: "status_500.json"},
		"192.0.2.9":  {status: 502, body: `<html><body>Bad Gateway</body></html>`, header: map[string]string{"Content-Type": "text/html"}},
		"192.0.2.10": {status: 503, body: `{"status":503,"message":"service unavailable"}`},
		"192.0.2.11": {status: 408, body: ``},
		"192.0.2.12": {status: 400, file: "status_400.json"},
		"192.0.2.13": {status: 302, header: map[string]string{"Location": "https://elsewhere.example.test/v1/asset/ip/report"}},

		"198.51.100.1": {file: "status_401.json"},
		"198.51.100.2": {file: "status_402.json"},
		"198.51.100.3": {file: "status_429.json", header: map[string]string{"Retry-After": "3"}},
		"198.51.100.4": {file: "status_404.json"},
		"198.51.100.5": {file: "status_400.json"},
		"198.51.100.6": {file: "status_500.json"},
		"198.51.100.8": {file: "status_403.json"},
		"198.51.100.9": {body: `{"status":"429","message":"slow down"}`},

		"203.0.113.1": {status: 404, file: "status_404.json"},
		"203.0.113.2": {status: 404, body: ``},
		"203.0.113.3": {status: 404, body: `<html>Not Found</html>`, header: map[string]string{"Content-Type": "text/html; charset=utf-8"}},

		"203.0.113.20": {file: "report_malformed.json"},
		"203.0.113.21": {body: ``},
		"203.0.113.22": {file: "report_no_status.json"},
		"203.0.113.23": {body: oversize},
		"203.0.113.24": {body: `<html>maintenance</html>`},
		"203.0.113.25": {body: `[]`},
		"203.0.113.26": {body: `{"status":999}`},
		"203.0.113.30": {slow: true},
		"203.0.113.31": {hangup: true},
		"203.0.113.32": {partial: true},
	}
	srv := reportServer(t, scenarios)
	c := newTestClient(t, srv.URL+"/", testKey, 64<<10)

	full := &enrich.Result{
		Verdict: enrich.VerdictMalicious, Score: 85,
		Detail:       "Criminal IP: inbound Dangerous, outbound Moderate; hosting, ids, scanner, tor; AS64500 EXAMPLE-TRANSIT-AS (DE)",
		Tags:         []string{"hosting", "ids", "scanner", "tor"},
		InboundLevel: "Dangerous", InboundScore: 85, OutboundLevel: "Moderate", OutboundScore: 65,
		ASNumber: 64500, ASOrganization: "EXAMPLE-TRANSIT-AS", ISP: "Example Hosting GmbH",
		CountryISO: "DE", City: "Frankfurt am Main", Location: &enrich.Geo{Lat: 50.1109, Lon: 8.6821},
		OpenPorts: []int{22}, CVECount: 1, MaxCVSS: 9.8,
		LastSeen: utc(2024, 5, 2, 13, 14, 15), // the ids row, newer than the categories
	}
	trimmed := &enrich.Result{
		Verdict: enrich.VerdictBenign, Score: 35,
		Detail:       "Criminal IP: inbound Low, outbound Safe; cloud, hosting, vpn; AS64501 EXAMPLE-CLOUD (US)",
		Tags:         []string{"cloud", "hosting", "vpn"},
		InboundLevel: "Low", InboundScore: 35, OutboundLevel: "Safe", OutboundScore: 10,
		ASNumber: 64501, ASOrganization: "EXAMPLE-CLOUD", ISP: "Example Cloud LLC",
		CountryISO: "US", City: "Ashburn", Location: &enrich.Geo{Lat: 39.0438, Lon: -77.4875},
		OpenPorts: []int{80, 443},
		LastSeen:  utc(2024, 6, 1, 0, 0, 0),
	}
	notFound := func(msg string) *enrich.Result {
		d := "Criminal IP: no data"
		if msg != "" {
			d += " (" + msg + ")"
		}
		return &enrich.Result{Verdict: enrich.VerdictNotFound, Detail: d}
	}

	tests := []struct {
		name      string
		ip        string
		timeout   time.Duration
		want      *enrich.Result
		wantQuota *enrich.QuotaReport
		err       *wantErr
	}{
		{name: "full report", ip: "203.0.113.10", want: full,
			wantQuota: &enrich.QuotaReport{Limit: 1000, Remaining: 997, Reset: time.Unix(1767225600, 0).UTC()}},
		{name: "trimmed report", ip: "198.51.100.7", want: trimmed},
		{name: "ipv6 indicator", ip: "2001:db8::7", want: trimmed},
		{name: "legacy integer scores and tags object", ip: "192.0.2.44", want: &enrich.Result{
			Verdict: enrich.VerdictMalicious, Score: 95,
			Detail:       "Criminal IP: inbound Critical, outbound Moderate; darkweb, misp, proxy; AS64502 EXAMPLE-LEGACY (KR)",
			Tags:         []string{"darkweb", "misp", "proxy"},
			InboundLevel: "Critical", InboundScore: 95, OutboundLevel: "Moderate", OutboundScore: 65,
			ASNumber: 64502, ASOrganization: "EXAMPLE-LEGACY", ISP: "Example Telecom", CountryISO: "KR", City: "Seoul",
			Location: &enrich.Geo{Lat: 37.5665, Lon: 126.978}, CVECount: 2, MaxCVSS: 7.5,
		}},
		{name: "string as_no, lower-case levels", ip: "198.51.100.23", want: &enrich.Result{
			Verdict: enrich.VerdictBenign, Score: 35,
			Detail:       "Criminal IP: inbound Safe, outbound Low; mobile; AS15169 EXAMPLE-MOBILE (DE)",
			Tags:         []string{"mobile"},
			InboundLevel: "Safe", InboundScore: 10, OutboundLevel: "Low", OutboundScore: 35,
			ASNumber: 15169, ASOrganization: "EXAMPLE-MOBILE", ISP: "Example Mobile AG", CountryISO: "DE", City: "Berlin",
			Location: &enrich.Geo{Lat: 52.52, Lon: 13.405},
		}},
		{name: "lower-case country_code, protected ip, anonymous vpn", ip: "203.0.113.77", want: &enrich.Result{
			Verdict: enrich.VerdictMalicious, Score: 95,
			Detail:       "Criminal IP: inbound Critical, outbound Dangerous; anonymous_vpn, proxy, vpn; real IP behind it; AS64510 EXAMPLE-VPN-AS (ET)",
			Tags:         []string{"anonymous_vpn", "proxy", "vpn"},
			InboundLevel: "Critical", InboundScore: 95, OutboundLevel: "Dangerous", OutboundScore: 85,
			ASNumber: 64510, ASOrganization: "EXAMPLE-VPN-AS", ISP: "Example VPN Ltd", CountryISO: "ET", City: "Addis Ababa",
			Location: &enrich.Geo{Lat: 9.03, Lon: 38.74}, OpenPorts: []int{443, 1194},
		}},
		{name: "missing issues", ip: "192.0.2.99", want: &enrich.Result{
			Verdict: enrich.VerdictSuspicious, Score: 65,
			Detail:       "Criminal IP: inbound Moderate, outbound Low; EXAMPLE-ISP (FR)",
			InboundLevel: "Moderate", InboundScore: 65, OutboundLevel: "Low", OutboundScore: 35,
			ASOrganization: "EXAMPLE-ISP", ISP: "Example ISP", CountryISO: "FR",
		}},

		{name: "HTTP 401", ip: "192.0.2.1", err: &wantErr{kind: enrich.KindUnauthorized, status: 401, message: "invalid api key"}},
		{name: "HTTP 401 echoing the key", ip: "192.0.2.2", err: &wantErr{kind: enrich.KindUnauthorized, status: 401, message: "invalid api key: [redacted]"}},
		{name: "HTTP 402", ip: "192.0.2.3", err: &wantErr{kind: enrich.KindQuotaExhausted, status: 402, message: "credits are exhausted"}},
		{name: "HTTP 403", ip: "192.0.2.4", err: &wantErr{kind: enrich.KindUnauthorized, status: 403, message: "paid plan"}},
		{name: "HTTP 429 Retry-After seconds", ip: "192.0.2.5", err: &wantErr{kind: enrich.KindRateLimited, status: 429, retryAfter: 7 * time.Second, message: "too many requests"}},
		{name: "HTTP 429 Retry-After date", ip: "192.0.2.6", err: &wantErr{kind: enrich.KindRateLimited, status: 429, retryAfter: 90 * time.Second}},
		{name: "HTTP 429 without Retry-After", ip: "192.0.2.7", err: &wantErr{kind: enrich.KindRateLimited, status: 429}},
		{name: "HTTP 500", ip: "192.0.2.8", err: &wantErr{kind: enrich.KindTransient, status: 500, message: "internal server error"}},
		{name: "HTTP 502 HTML", ip: "192.0.2.9", err: &wantErr{kind: enrich.KindTransient, status: 502}},
		{name: "HTTP 503", ip: "192.0.2.10", err: &wantErr{kind: enrich.KindTransient, status: 503, message: "service unavailable"}},
		{name: "HTTP 408", ip: "192.0.2.11", err: &wantErr{kind: enrich.KindTransient, status: 408}},
		{name: "HTTP 400", ip: "192.0.2.12", err: &wantErr{kind: enrich.KindPermanent, status: 400, message: "invalid ip address"}},
		{name: "redirect refused", ip: "192.0.2.13", err: &wantErr{kind: enrich.KindPermanent, status: 302, message: "elsewhere.example.test"}},

		{name: "body status 401", ip: "198.51.100.1", err: &wantErr{kind: enrich.KindUnauthorized, status: 401, message: "invalid api key"}},
		{name: "body status 402", ip: "198.51.100.2", err: &wantErr{kind: enrich.KindQuotaExhausted, status: 402, message: "credits are exhausted"}},
		{name: "body status 429", ip: "198.51.100.3", err: &wantErr{kind: enrich.KindRateLimited, status: 429, retryAfter: 3 * time.Second}},
		{name: "body status 429 as string", ip: "198.51.100.9", err: &wantErr{kind: enrich.KindRateLimited, status: 429, message: "slow down"}},
		{name: "body status 404", ip: "198.51.100.4", want: notFound("no data for this ip")},
		{name: "body status 400", ip: "198.51.100.5", err: &wantErr{kind: enrich.KindPermanent, status: 400, message: "invalid ip address"}},
		{name: "body status 500", ip: "198.51.100.6", err: &wantErr{kind: enrich.KindTransient, status: 500}},
		{name: "body status 403", ip: "198.51.100.8", err: &wantErr{kind: enrich.KindUnauthorized, status: 403}},

		{name: "HTTP 404 JSON", ip: "203.0.113.1", want: notFound("no data for this ip")},
		{name: "HTTP 404 empty", ip: "203.0.113.2", want: notFound("")},
		{name: "HTTP 404 HTML page", ip: "203.0.113.3", err: &wantErr{kind: enrich.KindPermanent, status: 404, message: "BASE_URL"}},

		{name: "malformed JSON", ip: "203.0.113.20", err: &wantErr{kind: enrich.KindTransient, message: "malformed response"}},
		{name: "empty body", ip: "203.0.113.21", err: &wantErr{kind: enrich.KindTransient, message: "malformed response: empty body"}},
		{name: "no status field", ip: "203.0.113.22", err: &wantErr{kind: enrich.KindTransient, message: "malformed response: no status field"}},
		{name: "oversize body", ip: "203.0.113.23", err: &wantErr{kind: enrich.KindTransient, status: 200, message: "response too large"}},
		{name: "HTML on 200", ip: "203.0.113.24", err: &wantErr{kind: enrich.KindTransient, message: "malformed response"}},
		{name: "JSON array", ip: "203.0.113.25", err: &wantErr{kind: enrich.KindTransient, message: "malformed response: no status field"}},
		{name: "absurd body status", ip: "203.0.113.26", err: &wantErr{kind: enrich.KindTransient, message: "malformed response"}},
		{name: "slow response hits the deadline", ip: "203.0.113.30", timeout: 100 * time.Millisecond,
			err: &wantErr{kind: enrich.KindTransient, message: "timed out", is: context.DeadlineExceeded}},
		{name: "connection closed", ip: "203.0.113.31", err: &wantErr{kind: enrich.KindTransient, message: "request failed"}},
		{name: "connection closed mid-body", ip: "203.0.113.32", err: &wantErr{kind: enrich.KindTransient, message: "reading response failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			got, err := c.Lookup(ctx, ipv4(tt.ip))
			if tt.err != nil {
				checkErr(t, err, tt.err)
				if got != nil {
					t.Errorf("got a result with the error: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			quota := got.Quota
			got.Quota = nil
			// The body travels with the answer for the enrichment rules' field mapping.
			if got.Verdict != enrich.VerdictNotFound && !json.Valid(got.Raw) {
				t.Errorf("Raw is not the response body: %q", got.Raw)
			}
			got.Raw = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("result\n got %+v\nwant %+v", got, tt.want)
			}
			if !reflect.DeepEqual(quota, tt.wantQuota) {
				t.Errorf("quota: got %+v, want %+v", quota, tt.wantQuota)
			}
		})
	}
}

func checkErr(t *testing.T, err error, w *wantErr) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", w.kind)
	}
	for _, s := range []string{err.Error(), fmt.Sprintf("%v %+v %#v", err, err, err)} {
		if strings.Contains(s, testKey) {
			t.Fatalf("error shows the API key: %s", s)
		}
	}
	var pe *enrich.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %T %v is not *enrich.Error", err, err)
	}
	if pe.Provider != Name {
		t.Errorf("provider %q", pe.Provider)
	}
	if pe.Kind != w.kind || pe.Status != w.status || pe.RetryAfter != w.retryAfter {
		t.Errorf("got kind %s status %d retry-after %s (%v); want %s %d %s", pe.Kind, pe.Status, pe.RetryAfter, err, w.kind, w.status, w.retryAfter)
	}
	if !strings.Contains(err.Error(), w.message) {
		t.Errorf("error %q does not contain %q", err, w.message)
	}
	if len([]rune(pe.Message)) > providerhttp.MaxMessageRunes {
		t.Errorf("message longer than %d runes: %q", providerhttp.MaxMessageRunes, pe.Message)
	}
	if w.is != nil && !errors.Is(err, w.is) {
		t.Errorf("error %v is not %v", err, w.is)
	}
}

func TestLookupWrongKeyIsRejected(t *testing.T) {
	srv := reportServer(t, map[string]scenario{"203.0.113.10": {file: "report_full.json"}})
	c := newTestClient(t, srv.URL, "some-other-key", 0)
	_, err := c.Lookup(context.Background(), ipv4("203.0.113.10"))
	checkErr(t, err, &wantErr{kind: enrich.KindUnauthorized, status: 401, message: "x-api-key"})
	if strings.Contains(err.Error(), "some-other-key") {
		t.Fatalf("error shows the key: %v", err)
	}
}

func TestLookupBadIndicator(t *testing.T) {
	srv := reportServer(t, nil)
	c := newTestClient(t, srv.URL, testKey, 0)
	for _, ind := range []event.Indicator{
		{Type: "domain-name", Value: "example.test"},
		{Type: event.IPv4, Value: "not-an-ip"},
		{Type: event.IPv4},
		{Type: event.IPv6, Value: "fe80::1%eth0"},
	} {
		_, err := c.Lookup(context.Background(), ind)
		if enrich.KindOf(err) != enrich.KindPermanent {
			t.Errorf("%+v: got %v, want a permanent error", ind, err)
		}
	}
	// An indicator with only Addr set is looked up by its canonical spelling.
	srv2 := reportServer(t, map[string]scenario{"192.0.2.44": {file: "report_legacy_int.json"}})
	c2 := newTestClient(t, srv2.URL, testKey, 0)
	res, err := c2.Lookup(context.Background(), event.Indicator{Type: event.IPv4, Addr: netip.MustParseAddr("::ffff:192.0.2.44")})
	if err != nil || res.Score != 95 {
		t.Fatalf("got %+v, %v", res, err)
	}
}

func TestLookupCancelled(t *testing.T) {
	srv := reportServer(t, map[string]scenario{"203.0.113.30": {slow: true}})
	c := newTestClient(t, srv.URL, testKey, 0)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := c.Lookup(ctx, ipv4("203.0.113.30"))
	checkErr(t, err, &wantErr{kind: enrich.KindTransient, message: "cancelled", is: context.Canceled})
}

func TestLookupConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	c := newTestClient(t, "http://"+addr, testKey, 0)
	_, err = c.Lookup(context.Background(), ipv4("192.0.2.1"))
	checkErr(t, err, &wantErr{kind: enrich.KindTransient, message: "request failed"})
}

func TestProviderIdentity(t *testing.T) {
	c := newTestClient(t, "https://api.criminalip.io", testKey, 0)
	if c.Name() != "criminalip" || c.Cost() != enrich.CostPaid {
		t.Fatalf("Name %q Cost %q", c.Name(), c.Cost())
	}
}

func TestNewRejects(t *testing.T) {
	for name, cfg := range map[string]*Config{
		"nil":      nil,
		"no key":   {providerhttp.Config{BaseURL: DefaultBaseURL}},
		"bad url":  {providerhttp.Config{APIKey: testKey, BaseURL: "api.criminalip.io"}},
		"key ctrl": {providerhttp.Config{APIKey: "abc\ndef", BaseURL: DefaultBaseURL}},
	} {
		if _, err := New(cfg, nil); err == nil {
			t.Errorf("%s: New accepted it", name)
		} else if strings.Contains(err.Error(), "abc") {
			t.Errorf("%s: error shows the key: %v", name, err)
		}
	}
}

func TestAccount(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		key    string
		want   *Account
		err    *wantErr
	}{
		{name: "ok", body: string(fixture(t, "user_me.json")), want: &Account{
			Name: "Test User", Email: "user@example.test", LastAccess: "2024-05-04 09:00:00",
			LastAccessAt: time.Date(2024, 5, 4, 9, 0, 0, 0, time.UTC), MaxSearch: 100, Plan: "Starter",
		}},
		{name: "string max_search, no plan", body: `{"status":200,"data":{"name":"N","email":"e@example.test","last_access_date":"2024-05-04","max_search":"7"}}`,
			want: &Account{Name: "N", Email: "e@example.test", LastAccess: "2024-05-04", LastAccessAt: time.Date(2024, 5, 4, 0, 0, 0, 0, time.UTC), MaxSearch: 7}},
		{name: "wrong key", key: "wrong-key", err: &wantErr{kind: enrich.KindUnauthorized, status: 401}},
		{name: "HTTP 401", status: 401, body: string(fixture(t, "status_401.json")), err: &wantErr{kind: enrich.KindUnauthorized, status: 401, message: "invalid api key"}},
		{name: "body 401", body: string(fixture(t, "status_401.json")), err: &wantErr{kind: enrich.KindUnauthorized, status: 401, message: "invalid api key"}},
		{name: "body 403", body: string(fixture(t, "status_403.json")), err: &wantErr{kind: enrich.KindUnauthorized, status: 403}},
		{name: "body 402", body: string(fixture(t, "status_402.json")), err: &wantErr{kind: enrich.KindQuotaExhausted, status: 402}},
		{name: "body 404", body: string(fixture(t, "status_404.json")), err: &wantErr{kind: enrich.KindPermanent, status: 404}},
		{name: "HTTP 429", status: 429, body: string(fixture(t, "status_429.json")), err: &wantErr{kind: enrich.KindRateLimited, status: 429}},
		{name: "HTTP 503", status: 503, body: ``, err: &wantErr{kind: enrich.KindTransient, status: 503}},
		{name: "no data", body: `{"status":200,"message":"api success"}`, err: &wantErr{kind: enrich.KindTransient, message: "malformed response: no data"}},
		{name: "no status", body: `{"data":{"name":"x"}}`, err: &wantErr{kind: enrich.KindTransient, message: "malformed response: no status"}},
		{name: "malformed", body: `{"status":200,"data":`, err: &wantErr{kind: enrich.KindTransient, message: "malformed response"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !checkCommon(w, r, http.MethodPost, AccountPath) {
					return
				}
				if r.ContentLength > 0 || r.URL.RawQuery != "" {
					reject(w, "want an empty POST")
					return
				}
				status := tt.status
				if status == 0 {
					status = 200
				}
				writeJSON(w, status, tt.body)
			}))
			defer srv.Close()
			key := testKey
			if tt.key != "" {
				key = tt.key
			}
			c := newTestClient(t, srv.URL, key, 0)
			got, err := c.Account(context.Background())
			if tt.err != nil {
				checkErr(t, err, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]Level{
		`"Critical"`: LevelCritical, `"dangerous"`: LevelDangerous, `" MODERATE "`: LevelModerate, `"low"`: LevelLow,
		`"Safe"`: LevelSafe, `"High"`: LevelUnknown, `""`: LevelUnknown, `null`: LevelUnknown, `{}`: LevelUnknown,
		`0`: LevelSafe, `1`: LevelSafe, `2`: LevelLow, `3`: LevelModerate, `4`: LevelDangerous, `5`: LevelCritical,
		`6`: LevelUnknown, `-1`: LevelUnknown, `4.0`: LevelDangerous, `4.5`: LevelUnknown, `"4"`: LevelDangerous,
	} {
		var l Level
		if err := l.UnmarshalJSON([]byte(in)); err != nil || l != want {
			t.Errorf("%s: got %v (%v), want %v", in, l, err, want)
		}
	}
}

func TestParseQuotaAndReset(t *testing.T) {
	h := http.Header{}
	if providerhttp.QuotaHeaders(h, fixedNow) != nil {
		t.Fatal("quota without headers")
	}
	h.Set("X-RateLimit-Remaining", "5")
	h.Set("X-RateLimit-Reset", "30")
	q := providerhttp.QuotaHeaders(h, fixedNow)
	if q == nil || q.Remaining != 5 || q.Limit != 0 || !q.Reset.Equal(fixedNow.Add(30*time.Second)) {
		t.Fatalf("got %+v", q)
	}
	for v, want := range map[string]time.Time{
		"1767225600":                    time.Unix(1767225600, 0).UTC(),
		"1767225600000":                 time.UnixMilli(1767225600000).UTC(),
		"Sat, 01 Mar 2025 12:01:00 GMT": fixedNow.Add(time.Minute),
		"2025-03-01T13:00:00Z":          fixedNow.Add(time.Hour),
		"soon":                          {},
	} {
		if got := providerhttp.ParseReset(v, fixedNow); !got.Equal(want) {
			t.Errorf("reset %q: got %v want %v", v, got, want)
		}
	}
}

// utc is a time in UTC, for Results' LastSeen.
func utc(y int, mo time.Month, d, h, mi, sec int) *time.Time {
	t := time.Date(y, mo, d, h, mi, sec, 0, time.UTC)
	return &t
}

// TestLastSeen: the newest sane confirmed_time of the ip_category and ids rows is the evidence's
// date; other sections' times, absent and garbage times leave LastSeen nil.
func TestLastSeen(t *testing.T) {
	nextWeek := time.Now().UTC().Add(7 * 24 * time.Hour).Format(time.DateTime)
	soon := time.Now().UTC().Add(time.Hour).Truncate(time.Second)
	row := func(section string, times ...string) string {
		var rows []string
		for _, tm := range times {
			rows = append(rows, `{"type":"scanner","confirmed_time":`+tm+`}`)
		}
		return `"` + section + `":{"count":` + strconv.Itoa(len(rows)) + `,"data":[` + strings.Join(rows, ",") + `]}`
	}
	for _, tt := range []struct {
		name string
		body string
		want *time.Time
	}{
		{"category", row("ip_category", `"2024-05-01 10:11:12"`), utc(2024, 5, 1, 10, 11, 12)},
		{"newest category", row("ip_category", `"2024-05-01 10:11:12"`, `"2024-05-03"`, `"2024-04-01 00:00:00"`), utc(2024, 5, 3, 0, 0, 0)},
		{"ids newer", row("ip_category", `"2024-05-01 10:11:12"`) + "," + row("ids", `"2024-05-02T01:02:03Z"`), utc(2024, 5, 2, 1, 2, 3)},
		{"ids only", row("ids", `" 2024-05-02 01:02:03 "`), utc(2024, 5, 2, 1, 2, 3)},
		{"clock skew", row("ids", `"`+soon.Format(time.DateTime)+`"`), &soon},
		{"garbage skipped", row("ip_category", `"yesterday"`, `12`, `null`, `"2024-02-30 00:00:00"`, `"2024-01-15"`), utc(2024, 1, 15, 0, 0, 0)},
		{"insane skipped", row("ip_category", `"1970-01-01 00:00:00"`, `"`+nextWeek+`"`), nil},
		{"no time", row("ip_category", `""`), nil},
		{"no rows", `"ip_category":{"count":0,"data":[]}`, nil},
		{"whois and port times do not count", `"whois":{"count":1,"data":[{"confirmed_time":"2024-05-01 00:00:00"}]},` +
			`"port":{"count":1,"data":[{"open_port_no":22,"confirmed_time":"2024-05-01 00:00:00"}]}`, nil},
		{"ids not an object", `"ids":[1,2]`, nil},
	} {
		res, err := decodeReport([]byte(`{"status":200,"score":{"inbound":"Dangerous","outbound":"Safe"},` + tt.body + `}`))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if !reflect.DeepEqual(res.LastSeen, tt.want) {
			t.Errorf("%s: LastSeen %v, want %v", tt.name, res.LastSeen, tt.want)
		}
	}
}

func TestParseTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		"2022-04-04 00:00:00":  time.Date(2022, 4, 4, 0, 0, 0, 0, time.UTC),
		"2023-06-15":           time.Date(2023, 6, 15, 0, 0, 0, 0, time.UTC),
		"2024-01-02T03:04:05Z": time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
		"yesterday":            {},
	} {
		if got := parseTime(in); !got.Equal(want) {
			t.Errorf("%q: got %v want %v", in, got, want)
		}
	}
}

func TestVerdictRule(t *testing.T) {
	for _, tt := range []struct {
		body string
		want enrich.Verdict
	}{
		{`{"status":200,"score":{"inbound":"Safe","outbound":"Low"}}`, enrich.VerdictBenign},
		{`{"status":200}`, enrich.VerdictBenign},
		{`{"status":200,"score":{"inbound":"Safe","outbound":"Critical"}}`, enrich.VerdictMalicious},
		{`{"status":200,"score":{"inbound":"dangerous","outbound":"Safe"}}`, enrich.VerdictMalicious},
		{`{"status":200,"score":{"inbound":"Low","outbound":"Moderate"}}`, enrich.VerdictSuspicious},
		{`{"status":200,"score":{"inbound":"Safe","outbound":"Safe"},"issues":{"is_snort":true}}`, enrich.VerdictSuspicious},
		{`{"status":200,"score":{"inbound":1,"outbound":1},"tags":{"is_tor":"true"}}`, enrich.VerdictSuspicious},
		{`{"status":200,"score":{"inbound":"Safe","outbound":"Safe"},"protected_ip":{"count":1,"data":[]}}`, enrich.VerdictSuspicious},
		{`{"status":200,"score":{"inbound":"Safe","outbound":"Safe"},"issues":{"is_vpn":true,"is_hosting":true,"is_cloud":true,"is_mobile":true}}`, enrich.VerdictBenign},
		{`{"status":200,"score":{"inbound":"Safe","outbound":"Safe"},"ip_category":{"data":[{"type":"tor"}]}}`, enrich.VerdictBenign},
	} {
		res, err := decodeReport([]byte(tt.body))
		if err != nil || res.Verdict != tt.want {
			t.Errorf("%s: got %+v %v, want %s", tt.body, res, err, tt.want)
		}
	}
}
