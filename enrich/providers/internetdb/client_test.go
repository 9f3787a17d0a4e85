package internetdb

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

var fixedNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// strayKey is set in the configuration to prove it is never sent.
const strayKey = "idb-STRAY-k3y-0123456789"

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

// authHeaders are headers some API takes a key in; InternetDB takes none.
var authHeaders = []string{"key", "Key", "X-Api-Key", "X-Apikey", "X-OTX-API-KEY", "Authorization"}

// strictServer is InternetDB as the client must find it: GET /{ip}, no query, no key anywhere.
// Anything off is answered 418 with the reason.
func strictServer(t *testing.T, answers map[string]answer) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := strings.TrimPrefix(r.URL.Path, "/")
		why := ""
		switch {
		case r.Method != http.MethodGet:
			why = "method " + r.Method
		case strings.Contains(ip, "/") || ip == "":
			why = "path " + r.URL.Path
		case r.URL.RawQuery != "":
			why = "query " + r.URL.RawQuery
		case r.Header.Get("Accept") != "application/json" || !strings.HasPrefix(r.Header.Get("User-Agent"), "threatpipe"):
			why = "Accept or User-Agent"
		}
		for _, h := range authHeaders {
			if r.Header.Get(h) != "" {
				why = "a key header: " + h
			}
		}
		a, ok := answers[ip]
		if why == "" && !ok {
			why = "no answer for " + ip
		}
		if why != "" {
			a = answer{status: http.StatusTeapot, body: fmt.Sprintf(`{"detail":%q}`, "rejected by test server: "+why)}
		}
		body := a.body
		if a.file != "" {
			body = fixture(t, a.file)
		}
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", or(a.ctype, "application/json"))
		w.WriteHeader(or(a.status, http.StatusOK))
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func or[T comparable](v, fallback T) T {
	var zero T
	if v == zero {
		return fallback
	}
	return v
}

func newTestClient(t *testing.T, baseURL string) *Client {
	t.Helper()
	c, err := New(&Config{providerhttp.Config{APIKey: strayKey, BaseURL: baseURL}}, &http.Client{Timeout: 10 * time.Second})
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
		"203.0.113.10": {file: "host_full.json"},
		"198.51.100.7": {file: "host_empty.json"},
		"192.0.2.66":   {file: "host_compromised.json"},
		"192.0.2.67":   {file: "host_odd.json"},
		"2001:db8::10": {file: "host_full.json"},
		"192.0.2.1":    {status: 404, file: "not_found.json"},
		"192.0.2.2":    {status: 429, file: "rate_limited.json", header: map[string]string{"Retry-After": "5"}},
		"192.0.2.3":    {status: 404, body: "<html><body><h1>404 Not Found</h1></body></html>", ctype: "text/html"},
		"192.0.2.4":    {file: "truncated.json"},
		"192.0.2.5":    {status: 500, file: "server_error.json"},
		"192.0.2.6":    {status: 404, file: "no_route.json"},
		"192.0.2.7":    {status: 429, body: ``},
		"192.0.2.8":    {body: `{"detail":"ok"}`},
		"192.0.2.9":    {body: ``},
		"192.0.2.10":   {status: 422, body: `{"detail":[{"loc":["path","ip"],"msg":"value is not a valid IP address"}]}`},
	})
	c := newTestClient(t, srv.URL+"/")
	full := &enrich.Result{Verdict: event.VerdictUnrated, OpenPorts: []int{22, 80, 443}, CVECount: 2, Tags: []string{"cloud", "self-signed"},
		Detail: "InternetDB: ports 22, 80, 443; 2 CVEs; tags cloud, self-signed; hostnames vps-203-0-113-10.example-hosting.test, a.example"}

	tests := []struct {
		name string
		ip   string
		want *enrich.Result
		err  *wantErr
	}{
		{name: "full", ip: "203.0.113.10", want: full},
		{name: "IPv6", ip: "2001:db8::10", want: full},
		{name: "empty arrays", ip: "198.51.100.7", want: &enrich.Result{Verdict: event.VerdictUnrated, Detail: "InternetDB: no open ports, CVEs or tags"}},
		{name: "compromised", ip: "192.0.2.66", want: &enrich.Result{Verdict: enrich.VerdictMalicious, Score: 80,
			OpenPorts: []int{445, 3389}, CVECount: 1, Tags: []string{"compromised", "doublepulsar", "windows_server"},
			Detail: "InternetDB: ports 445, 3389; 1 CVE; tags compromised, doublepulsar, windows_server"}},
		{name: "odd values", ip: "192.0.2.67", want: &enrich.Result{Verdict: event.VerdictUnrated, OpenPorts: []int{8443}, CVECount: 1,
			Tags: []string{"vpn"}, Detail: "InternetDB: ports 8443; 1 CVE; tags vpn"}},
		{name: "404 no information", ip: "192.0.2.1", want: &enrich.Result{Verdict: enrich.VerdictNotFound, Detail: "InternetDB: no information available"}},

		{name: "429 with Retry-After", ip: "192.0.2.2", err: &wantErr{kind: enrich.KindRateLimited, status: 429, retryAfter: 5 * time.Second, message: "Rate limit exceeded"}},
		{name: "429 empty", ip: "192.0.2.7", err: &wantErr{kind: enrich.KindRateLimited, status: 429}},
		{name: "HTML 404", ip: "192.0.2.3", err: &wantErr{kind: enrich.KindPermanent, status: 404, message: "BASE_URL"}},
		{name: "FastAPI no-route 404", ip: "192.0.2.6", err: &wantErr{kind: enrich.KindPermanent, status: 404, message: "BASE_URL"}},
		{name: "500", ip: "192.0.2.5", err: &wantErr{kind: enrich.KindTransient, status: 500, message: "Internal Server Error"}},
		{name: "422 validation", ip: "192.0.2.10", err: &wantErr{kind: enrich.KindPermanent, status: 422}},
		{name: "truncated JSON", ip: "192.0.2.4", err: &wantErr{kind: enrich.KindTransient, message: "malformed response: not JSON"}},
		{name: "not a host", ip: "192.0.2.8", err: &wantErr{kind: enrich.KindTransient, message: "malformed response: no ip or ports"}},
		{name: "empty 200", ip: "192.0.2.9", err: &wantErr{kind: enrich.KindTransient, message: "malformed response: empty body"}},
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

func TestDetailLimits(t *testing.T) {
	body := `{"ip":"192.0.2.1","ports":[1,2,3,4,5,6,7,8,9,10,11,12],"hostnames":["a","b","c","d"],"tags":["t1","t2","t3","t4","t5","t6","t7","t8","t9"],"vulns":[]}`
	res, err := decodeHost([]byte(body))
	want := "InternetDB: ports 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, +2 more; tags t1, t2, t3, t4, t5, t6, t7, t8, +1 more; hostnames a, b, c, +1 more"
	if err != nil || res.Detail != want {
		t.Fatalf("got %q %v\nwant %q", res.Detail, err, want)
	}
}

func TestProviderIdentity(t *testing.T) {
	c := newTestClient(t, DefaultBaseURL)
	if c.Name() != "internetdb" || c.Cost() != enrich.CostFree {
		t.Fatalf("Name %q Cost %q", c.Name(), c.Cost())
	}
	if _, err := New(nil, nil); err == nil {
		t.Error("New accepted a nil config")
	}
	if _, err := New(&Config{providerhttp.Config{BaseURL: "internetdb.shodan.io"}}, nil); err == nil {
		t.Error("New accepted a base URL without a scheme")
	}
	// No key is needed.
	if _, err := New(&Config{providerhttp.Config{BaseURL: DefaultBaseURL, APIKey: config.Secret("")}}, nil); err != nil {
		t.Errorf("without a key: %v", err)
	}
}
