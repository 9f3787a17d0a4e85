package otx

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
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

const testKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

var fixedNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

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

// strictServer is OTX as the client must find it: GET of exactly
// /api/v1/indicators/{IPv4|IPv6}/{ip}/general with the type matching the address, the key in
// X-OTX-API-KEY and nowhere else. Anything off is answered 403 with the reason.
func strictServer(t *testing.T, answers map[string]answer) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reject := func(why string) {
			write(w, answer{status: 403}, fmt.Sprintf(`{"detail":%q}`, "rejected by test server: "+why))
		}
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, IndicatorsPath), "/")
		switch {
		case r.Method != http.MethodGet:
			reject("method " + r.Method)
		case !strings.HasPrefix(r.URL.Path, IndicatorsPath) || len(parts) != 3 || parts[2] != "general":
			reject("path " + r.URL.Path)
		case r.URL.RawQuery != "":
			reject("query " + r.URL.RawQuery)
		case r.Header.Get(AuthHeader) != testKey || r.Header.Get("key") != "" || r.Header.Get("Authorization") != "":
			reject("X-OTX-API-KEY header")
		case r.Header.Get("Accept") != "application/json" || !strings.HasPrefix(r.Header.Get("User-Agent"), "threatpipe"):
			reject("Accept or User-Agent")
		default:
			a, err := netip.ParseAddr(parts[1])
			if err != nil || (parts[0] == "IPv4") != a.Is4() || (parts[0] != "IPv4" && parts[0] != "IPv6") {
				reject("type " + parts[0] + " for " + parts[1])
				return
			}
			ans, ok := answers[parts[1]]
			if !ok {
				reject("no answer for " + parts[1])
				return
			}
			body := ans.body
			if ans.file != "" {
				body = fixture(t, ans.file)
			}
			write(w, ans, body)
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
		"8.8.8.8":      {file: "general_8888.json", header: map[string]string{"X-OTX-ACTIVE": "1"}},
		"203.0.113.10": {file: "general_pulses.json"},
		"198.51.100.7": {file: "general_no_pulses.json"},
		"2001:db8::7":  {file: "general_ipv6.json"},
		"192.0.2.50":   {file: "general_false_positive_pulses.json"},
		"192.0.2.1":    {status: 403, file: "forbidden.json"},
		"192.0.2.2":    {status: 404, file: "not_found.json"},
		"192.0.2.3":    {status: 429, file: "throttled.json", header: map[string]string{"Retry-After": "30"}},
		"192.0.2.4":    {status: 500, file: "server_error.json"},
		"192.0.2.5":    {status: 400, file: "bad_request.json"},
		"192.0.2.6":    {status: 404, body: "<!DOCTYPE html><html>Page not found</html>", ctype: "text/html; charset=utf-8"},
		"192.0.2.7":    {file: "truncated.json"},
		"192.0.2.8":    {body: `{"detail":"ok"}`},
		"192.0.2.9":    {status: 502, body: "<html>Bad Gateway</html>", ctype: "text/html"},
		"192.0.2.10":   {status: 401, body: `{"detail":"key ` + testKey + ` is not valid"}`},
		"192.0.2.11":   {body: ``},
	})
	c := newTestClient(t, srv.URL+"/", testKey)

	tests := []struct {
		name string
		ip   string
		want *enrich.Result
		err  *wantErr
	}{
		{name: "8.8.8.8 capture, whitelisted", ip: "8.8.8.8", want: &enrich.Result{
			Verdict: enrich.VerdictBenign, Service: "Whitelisted IP",
			Detail:   `OTX: whitelisted as "Whitelisted IP", in no pulses; AS15169 google llc (US)`,
			ASNumber: 15169, ASOrganization: "google llc", CountryISO: "US", Location: &enrich.Geo{Lat: 37.751, Lon: -97.822}}},
		{name: "in pulses", ip: "203.0.113.10", want: &enrich.Result{
			Verdict: enrich.VerdictMalicious, Score: 70,
			Detail:   "OTX: in 4 pulses (Mirai botnet C2, SSH brute force, Gafgyt telnet scanners, +1 more); malware Mirai, Gafgyt; AS64500 EXAMPLE-HOSTING-AS (DE)",
			ASNumber: 64500, ASOrganization: "EXAMPLE-HOSTING-AS", CountryISO: "DE", City: "Frankfurt am Main",
			Location: &enrich.Geo{Lat: 50.1109, Lon: 8.6821}, LastSeen: utc(2024, 5, 1, 10, 11, 12, 0)}},
		{name: "no pulses, empty base_indicator, null city", ip: "198.51.100.7", want: &enrich.Result{
			Verdict: event.VerdictUnrated, Detail: "OTX: in no pulses; AS64501 example isp sas (FR)",
			ASNumber: 64501, ASOrganization: "example isp sas", CountryISO: "FR", Location: &enrich.Geo{Lat: 48.8582, Lon: 2.3387}}},
		{name: "IPv6 path, count missing, nulls", ip: "2001:db8::7", want: &enrich.Result{
			Verdict: enrich.VerdictSuspicious, Score: 40, Detail: "OTX: in 1 pulse (IPv6 scanners); AS64502", ASNumber: 64502}},
		{name: "false positive does not outweigh pulses", ip: "192.0.2.50", want: &enrich.Result{
			Verdict: enrich.VerdictSuspicious, Score: 50, Detail: "OTX: in 2 pulses (Open resolvers, DNS amplification sources); (JP)",
			CountryISO: "JP", City: "Tokyo"}},
		{name: "404", ip: "192.0.2.2", want: &enrich.Result{Verdict: enrich.VerdictNotFound, Detail: "OTX: not found"}},

		{name: "403 rejected key", ip: "192.0.2.1", err: &wantErr{kind: enrich.KindUnauthorized, status: 403, message: "Authentication required"}},
		{name: "401 echoing the key", ip: "192.0.2.10", err: &wantErr{kind: enrich.KindUnauthorized, status: 401, message: "key [redacted] is not valid"}},
		{name: "429", ip: "192.0.2.3", err: &wantErr{kind: enrich.KindRateLimited, status: 429, retryAfter: 30 * time.Second, message: "throttled"}},
		{name: "500", ip: "192.0.2.4", err: &wantErr{kind: enrich.KindTransient, status: 500, message: "server error"}},
		{name: "502 HTML", ip: "192.0.2.9", err: &wantErr{kind: enrich.KindTransient, status: 502}},
		{name: "400", ip: "192.0.2.5", err: &wantErr{kind: enrich.KindPermanent, status: 400, message: "Invalid IP"}},
		{name: "HTML 404", ip: "192.0.2.6", err: &wantErr{kind: enrich.KindPermanent, status: 404, message: "BASE_URL"}},
		{name: "truncated JSON", ip: "192.0.2.7", err: &wantErr{kind: enrich.KindTransient, message: "malformed response: not JSON"}},
		{name: "not the general section", ip: "192.0.2.8", err: &wantErr{kind: enrich.KindTransient, message: "malformed response: no indicator or pulse_info"}},
		{name: "empty 200", ip: "192.0.2.11", err: &wantErr{kind: enrich.KindTransient, message: "malformed response: empty body"}},
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

func TestIndicatorPath(t *testing.T) {
	for in, want := range map[string]string{
		"8.8.8.8":          "/api/v1/indicators/IPv4/8.8.8.8/general",
		"2001:db8::7":      "/api/v1/indicators/IPv6/2001:db8::7/general",
		"::ffff:192.0.2.1": "/api/v1/indicators/IPv4/192.0.2.1/general",
	} {
		got, err := IndicatorPath(event.Indicator{Type: event.IPv6, Value: in})
		if err != nil || got != want {
			t.Errorf("%s: got %q %v, want %q", in, got, err, want)
		}
	}
	if _, err := IndicatorPath(event.Indicator{Type: "domain-name", Value: "example.test"}); enrich.KindOf(err) != enrich.KindPermanent {
		t.Errorf("domain: %v", err)
	}
}

func TestLookupWrongKeyIsRejected(t *testing.T) {
	srv := strictServer(t, map[string]answer{"8.8.8.8": {file: "general_8888.json"}})
	_, err := newTestClient(t, srv.URL, "some-other-key").Lookup(context.Background(), indicator("8.8.8.8"))
	checkErr(t, err, &wantErr{kind: enrich.KindUnauthorized, status: 403, message: "X-OTX-API-KEY"})
}

func TestUser(t *testing.T) {
	for _, tt := range []struct {
		name   string
		status int
		body   string
		want   string
		err    *wantErr
	}{
		{name: "ok", body: fixture(t, "user_me.json"), want: `user "example_analyst", member since 2019-03-14T08:00:00`},
		{name: "403", status: 403, body: fixture(t, "forbidden.json"), err: &wantErr{kind: enrich.KindUnauthorized, status: 403}},
		{name: "429", status: 429, body: fixture(t, "throttled.json"), err: &wantErr{kind: enrich.KindRateLimited, status: 429}},
		{name: "no username", body: `{"detail":"?"}`, err: &wantErr{kind: enrich.KindTransient, message: "no username"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != UserPath || r.Header.Get(AuthHeader) != testKey {
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

func TestScoreRule(t *testing.T) {
	for count, want := range map[int64]struct {
		score   int
		verdict enrich.Verdict
	}{
		0: {0, event.VerdictUnrated}, 1: {40, enrich.VerdictSuspicious}, 2: {50, enrich.VerdictSuspicious},
		3: {60, enrich.VerdictMalicious}, 6: {90, enrich.VerdictMalicious}, 1 << 62: {90, enrich.VerdictMalicious},
	} {
		res, err := decodeGeneral(fmt.Appendf(nil, `{"pulse_info":{"count":%d}}`, count))
		if err != nil || res.Score != want.score || res.Verdict != want.verdict {
			t.Errorf("count %d: got %+v %v, want %+v", count, res, err, want)
		}
	}
}

func TestProviderIdentity(t *testing.T) {
	c := newTestClient(t, DefaultBaseURL, testKey)
	if c.Name() != "otx" || c.Cost() != enrich.CostFree {
		t.Fatalf("Name %q Cost %q", c.Name(), c.Cost())
	}
	for name, cfg := range map[string]*Config{
		"nil": nil, "no key": {providerhttp.Config{BaseURL: DefaultBaseURL}},
		"bad url": {providerhttp.Config{APIKey: testKey, BaseURL: "otx.alienvault.com"}},
	} {
		if _, err := New(cfg, nil); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

// utc is a time in UTC, for Results' LastSeen.
func utc(y int, mo time.Month, d, h, mi, sec, ns int) *time.Time {
	t := time.Date(y, mo, d, h, mi, sec, ns, time.UTC)
	return &t
}

// TestDecodeLastSeen: the newest sane pulses[].modified is the evidence's date when the address
// is in pulses; absent, garbage and insane dates are skipped, and none leaves LastSeen nil.
func TestDecodeLastSeen(t *testing.T) {
	nextWeek := time.Now().UTC().Add(7 * 24 * time.Hour).Format("2006-01-02T15:04:05.000000")
	body := func(count int, modified ...string) string {
		var pulses []string
		for i, m := range modified {
			pulses = append(pulses, fmt.Sprintf(`{"name":"p%d","modified":%s}`, i, m))
		}
		return fmt.Sprintf(`{"indicator":"203.0.113.10","pulse_info":{"count":%d,"pulses":[%s]}}`, count, strings.Join(pulses, ","))
	}
	for _, tt := range []struct {
		name string
		body string
		want *time.Time
	}{
		{"OTX's spelling", body(1, `"2024-05-01T12:34:56.789000"`), utc(2024, 5, 1, 12, 34, 56, 789000000)},
		{"the newest of several", body(3, `"2024-04-20T00:00:00.000000"`, `"2024-05-01T10:11:12.000000"`, `"2024-03-01T09:00:00"`), utc(2024, 5, 1, 10, 11, 12, 0)},
		{"RFC 3339 with a zone", body(1, `"2024-05-01T12:00:00+02:00"`), utc(2024, 5, 1, 10, 0, 0, 0)},
		{"garbage and insane skipped", body(4, `"soon"`, `null`, `"1970-01-01T00:00:00"`, `"2024-02-02T02:02:02.5"`), utc(2024, 2, 2, 2, 2, 2, 500000000)},
		{"future skipped", body(2, `"`+nextWeek+`"`, `"2024-01-01T00:00:00.000000"`), utc(2024, 1, 1, 0, 0, 0, 0)},
		{"no modified", body(2, `""`, `17`), nil},
		{"no pulses", body(0), nil},
		{"count 0 with a pulse listed", `{"indicator":"x","pulse_info":{"count":0,"pulses":[{"modified":"2024-05-01T12:34:56"}]}}`, nil},
	} {
		res, err := decodeGeneral([]byte(tt.body))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if !reflect.DeepEqual(res.LastSeen, tt.want) {
			t.Errorf("%s: LastSeen %v, want %v", tt.name, res.LastSeen, tt.want)
		}
	}
}
