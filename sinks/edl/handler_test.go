package edl

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/threatpipe/threatpipe/sinks"
)

var start = time.Date(2025, 3, 1, 12, 0, 0, 250e6, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testConfig() *Config {
	return &Config{Enabled: true, Path: "/edl/blocklist.txt", Format: FormatPlain, DefaultTTL: 24 * time.Hour}
}

func newTestSink(t *testing.T, cfg *Config) (*Sink, *clock, *httptest.Server) {
	t.Helper()
	clk := &clock{t: start}
	s := newSink(cfg, zaptest.NewLogger(t), clk.now)
	return s, clk, serve(t, s, cfg.Path)
}

func serve(t *testing.T, s *Sink, path string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	if err := handle(mux, path, s); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

type response struct {
	status int
	header http.Header
	body   string
}

func fetch(t *testing.T, srv *httptest.Server, method, path string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, string(b)}
}

func get(t *testing.T, srv *httptest.Server, header map[string]string) response {
	t.Helper()
	return fetch(t, srv, http.MethodGet, "/edl/blocklist.txt", header)
}

func doBlock(t *testing.T, s *Sink, target string, until time.Time) {
	t.Helper()
	if _, err := s.Do(context.Background(), &sinks.Action{Target: target, Until: until}); err != nil {
		t.Fatal(err)
	}
}

func TestServeList(t *testing.T) {
	tests := []struct {
		format string
		want   string
	}{
		{FormatPlain, "11.0.0.9\n192.0.3.1\n198.51.101.7\n2001:db9::1\n2001:db9::a\n"},
		{FormatCIDR, "11.0.0.9/32\n192.0.3.1/32\n198.51.101.7/32\n2001:db9::1/128\n2001:db9::a/128\n"},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			cfg := testConfig()
			cfg.Format = tt.format
			s, clk, srv := newTestSink(t, cfg)
			for _, target := range []string{"2001:db9::a", "198.51.101.7", "2001:0db9::0001", "192.0.3.1", "::ffff:11.0.0.9"} {
				doBlock(t, s, target, clk.now().Add(time.Hour))
			}
			r := get(t, srv, nil)
			if r.status != http.StatusOK || r.body != tt.want {
				t.Fatalf("%d %q\nwant %q", r.status, r.body, tt.want)
			}
			for k, v := range map[string]string{
				"Content-Type": "text/plain; charset=utf-8", "Content-Length": "", "Cache-Control": "no-cache",
				"X-Content-Type-Options": "nosniff", "Last-Modified": "Sat, 01 Mar 2025 12:00:00 GMT",
			} {
				if got := r.header.Get(k); got == "" || v != "" && got != v {
					t.Fatalf("%s: %q, want %q", k, got, v)
				}
			}
			if etag := r.header.Get("ETag"); len(etag) != 34 || etag[0] != '"' || etag[33] != '"' {
				t.Fatalf("ETag %q", etag)
			}
		})
	}
}

func TestServeEmptyList(t *testing.T) {
	_, _, srv := newTestSink(t, testConfig())
	r := get(t, srv, nil)
	if r.status != http.StatusOK || r.body != "" || r.header.Get("Content-Length") != "0" || r.header.Get("ETag") == "" {
		t.Fatalf("%d %q %v", r.status, r.body, r.header)
	}
}

func TestMethods(t *testing.T) {
	s, clk, srv := newTestSink(t, testConfig())
	doBlock(t, s, "192.0.3.1", clk.now().Add(time.Hour))
	full := get(t, srv, nil)

	head := fetch(t, srv, http.MethodHead, "/edl/blocklist.txt", nil)
	if head.status != http.StatusOK || head.body != "" || head.header.Get("Content-Length") != "10" ||
		head.header.Get("ETag") != full.header.Get("ETag") || head.header.Get("Last-Modified") != full.header.Get("Last-Modified") {
		t.Fatalf("HEAD: %d %q %v", head.status, head.body, head.header)
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		r := fetch(t, srv, m, "/edl/blocklist.txt", nil)
		if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET, HEAD" {
			t.Fatalf("%s: %d %v", m, r.status, r.header)
		}
	}
	if r := fetch(t, srv, http.MethodGet, "/edl/blocklist.txt/x", nil); r.status != http.StatusNotFound {
		t.Fatalf("sub-path: %d", r.status)
	}
	// A query string (some pollers add cache busters) changes nothing.
	if r := fetch(t, srv, http.MethodGet, "/edl/blocklist.txt?t=1", nil); r.status != http.StatusOK || r.body != "192.0.3.1\n" {
		t.Fatalf("query: %d %q", r.status, r.body)
	}
}

func TestBasicAuth(t *testing.T) {
	cfg := testConfig()
	cfg.Username, cfg.Password = "paloalto", testPassword
	s, clk, srv := newTestSink(t, cfg)
	doBlock(t, s, "192.0.3.1", clk.now().Add(time.Hour))

	auth := func(user, pass string) map[string]string {
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.SetBasicAuth(user, pass)
		return map[string]string{"Authorization": req.Header.Get("Authorization")}
	}
	tests := []struct {
		name   string
		method string
		header map[string]string
		status int
	}{
		{"no credentials", http.MethodGet, nil, http.StatusUnauthorized},
		{"wrong password", http.MethodGet, auth("paloalto", testPassword+"x"), http.StatusUnauthorized},
		{"password prefix", http.MethodGet, auth("paloalto", testPassword[:5]), http.StatusUnauthorized},
		{"wrong user", http.MethodGet, auth("fortigate", testPassword), http.StatusUnauthorized},
		{"empty", http.MethodGet, auth("", ""), http.StatusUnauthorized},
		{"bearer", http.MethodGet, map[string]string{"Authorization": "Bearer " + testPassword}, http.StatusUnauthorized},
		{"not base64", http.MethodGet, map[string]string{"Authorization": "Basic %%%"}, http.StatusUnauthorized},
		{"unauthenticated POST", http.MethodPost, nil, http.StatusUnauthorized},
		{"unauthenticated HEAD", http.MethodHead, nil, http.StatusUnauthorized},
		{"right", http.MethodGet, auth("paloalto", testPassword), http.StatusOK},
		{"right HEAD", http.MethodHead, auth("paloalto", testPassword), http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fetch(t, srv, tt.method, "/edl/blocklist.txt", tt.header)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d", r.status, tt.status)
			}
			if tt.status == http.StatusUnauthorized {
				if r.header.Get("WWW-Authenticate") != `Basic realm="threatpipe EDL", charset="UTF-8"` {
					t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
				}
				// Nothing about the list leaks to an unauthenticated client, not even its validators.
				if strings.Contains(r.body, "192.0.3.1") || r.header.Get("ETag") != "" || strings.Contains(r.body, testPassword) {
					t.Fatalf("401 leaks: %q %v", r.body, r.header)
				}
			}
		})
	}
}

func TestConditionalRequests(t *testing.T) {
	s, clk, srv := newTestSink(t, testConfig())
	doBlock(t, s, "192.0.3.1", clk.now().Add(time.Hour))
	first := get(t, srv, nil)
	etag, lm := first.header.Get("ETag"), first.header.Get("Last-Modified")
	weak := "W/" + etag
	lmTime, _ := http.ParseTime(lm)
	tests := []struct {
		name   string
		header map[string]string
		status int
	}{
		{"etag", map[string]string{"If-None-Match": etag}, http.StatusNotModified},
		{"weak etag", map[string]string{"If-None-Match": weak}, http.StatusNotModified},
		{"in a list", map[string]string{"If-None-Match": `"aaa", W/"bbb" ,` + etag}, http.StatusNotModified},
		{"star", map[string]string{"If-None-Match": "*"}, http.StatusNotModified},
		{"other etag", map[string]string{"If-None-Match": `"0123"`}, http.StatusOK},
		{"unquoted", map[string]string{"If-None-Match": strings.Trim(etag, `"`)}, http.StatusOK},
		{"etag wins over date", map[string]string{"If-None-Match": `"0123"`, "If-Modified-Since": lm}, http.StatusOK},
		{"same date", map[string]string{"If-Modified-Since": lm}, http.StatusNotModified},
		{"later date", map[string]string{"If-Modified-Since": lmTime.Add(time.Hour).Format(http.TimeFormat)}, http.StatusNotModified},
		{"earlier date", map[string]string{"If-Modified-Since": lmTime.Add(-time.Second).Format(http.TimeFormat)}, http.StatusOK},
		{"bad date", map[string]string{"If-Modified-Since": "yesterday"}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := get(t, srv, tt.header)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d", r.status, tt.status)
			}
			if r.header.Get("ETag") != etag || r.header.Get("Last-Modified") != lm {
				t.Fatalf("validators %v", r.header)
			}
			if tt.status == http.StatusNotModified && r.body != "" {
				t.Fatalf("304 with a body %q", r.body)
			}
		})
	}
	if r := fetch(t, srv, http.MethodHead, "/edl/blocklist.txt", map[string]string{"If-None-Match": etag}); r.status != http.StatusNotModified {
		t.Fatalf("HEAD: %d", r.status)
	}
}

// A change within the same second as the last one still moves Last-Modified, or a poller using
// If-Modified-Since would miss it.
func TestLastModifiedAlwaysAdvances(t *testing.T) {
	s, clk, srv := newTestSink(t, testConfig())
	var lastLM time.Time
	var lastETag string
	for i, target := range []string{"192.0.3.1", "192.0.3.2", "192.0.3.3"} {
		doBlock(t, s, target, clk.now().Add(time.Hour))
		r := get(t, srv, nil)
		lm, err := http.ParseTime(r.header.Get("Last-Modified"))
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && (!lm.After(lastLM) || r.header.Get("ETag") == lastETag) {
			t.Fatalf("change %d: Last-Modified %s after %s, ETag %s", i, lm, lastLM, r.header.Get("ETag"))
		}
		if r := get(t, srv, map[string]string{"If-Modified-Since": lastLM.Format(http.TimeFormat)}); i > 0 && r.status != http.StatusOK {
			t.Fatalf("change %d hidden from If-Modified-Since", i)
		}
		lastLM, lastETag = lm, r.header.Get("ETag")
	}

	// A block that changes nothing served (a new expiry) keeps the validators.
	doBlock(t, s, "192.0.3.1", clk.now().Add(2*time.Hour))
	if r := get(t, srv, map[string]string{"If-None-Match": lastETag}); r.status != http.StatusNotModified || r.header.Get("Last-Modified") != lastLM.Format(http.TimeFormat) {
		t.Fatalf("re-block: %d %v", r.status, r.header)
	}
	// Undoing an address that is not listed changes nothing either.
	if err := s.Undo(context.Background(), &sinks.Action{Target: "203.0.114.1"}, ""); err != nil {
		t.Fatal(err)
	}
	if r := get(t, srv, map[string]string{"If-None-Match": lastETag}); r.status != http.StatusNotModified {
		t.Fatalf("no-op undo: %d", r.status)
	}
}

func TestExpiryHidesEntries(t *testing.T) {
	s, clk, srv := newTestSink(t, testConfig())
	doBlock(t, s, "192.0.3.1", clk.now().Add(time.Minute))
	doBlock(t, s, "2001:db9::1", clk.now().Add(time.Hour))
	before := get(t, srv, nil)
	if before.body != "192.0.3.1\n2001:db9::1\n" {
		t.Fatalf("body %q", before.body)
	}

	clk.advance(time.Minute - time.Millisecond)
	if r := get(t, srv, map[string]string{"If-None-Match": before.header.Get("ETag")}); r.status != http.StatusNotModified {
		t.Fatalf("changed before the expiry: %d", r.status)
	}
	clk.advance(time.Millisecond) // 192.0.3.1 lapses now, with no Undo
	r := get(t, srv, map[string]string{"If-None-Match": before.header.Get("ETag")})
	if r.status != http.StatusOK || r.body != "2001:db9::1\n" {
		t.Fatalf("after expiry: %d %q", r.status, r.body)
	}
	lm, _ := http.ParseTime(r.header.Get("Last-Modified"))
	if !lm.Equal(start.Add(time.Minute).Truncate(time.Second)) {
		t.Fatalf("Last-Modified %s", lm)
	}

	clk.advance(time.Hour)
	if r := get(t, srv, nil); r.body != "" {
		t.Fatalf("after both expiries: %q", r.body)
	}
}

func TestDo(t *testing.T) {
	s, clk, srv := newTestSink(t, testConfig())
	res, err := s.Do(context.Background(), &sinks.Action{Target: "::ffff:198.51.101.7"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ref != "198.51.101.7" || res.Detail != "listed 198.51.101.7 on the EDL until 2025-03-02T12:00:00Z" {
		t.Fatalf("result %+v", res)
	}
	res, err = s.Do(context.Background(), &sinks.Action{Target: "192.0.3.1", Until: clk.now()})
	if err != nil || res.Detail != "not listed: the block of 192.0.3.1 lapsed at 2025-03-01T12:00:00Z" {
		t.Fatalf("lapsed: %+v %v", res, err)
	}
	if r := get(t, srv, nil); r.body != "198.51.101.7\n" {
		t.Fatalf("body %q", r.body)
	}
	// The default TTL applies: a day later the address is gone.
	clk.advance(24 * time.Hour)
	if r := get(t, srv, nil); r.body != "" {
		t.Fatalf("after the default TTL: %q", r.body)
	}

	for target, want := range map[string]string{
		"":                 `edl: target "" is not an IP address`,
		"example.com":      `edl: target "example.com" is not an IP address`,
		"192.0.3.0/24":     "is not an IP address",
		"192.0.3.1\nevil":  "is not an IP address",
		"fe80::1%eth0":     "has an IPv6 zone",
		"127.0.0.1":        "refusing to list 127.0.0.1",
		"::":               "refusing to list ::",
		"ff02::1":          "refusing to list ff02::1",
		"::ffff:127.0.0.1": "refusing to list 127.0.0.1",
	} {
		if _, err := s.Do(context.Background(), &sinks.Action{Target: target}); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%q: %v, want %q", target, err, want)
		}
	}
}

func TestUndo(t *testing.T) {
	s, clk, srv := newTestSink(t, testConfig())
	doBlock(t, s, "192.0.3.1", clk.now().Add(time.Hour))
	doBlock(t, s, "2001:db9::1", clk.now().Add(time.Hour))
	if err := s.Undo(context.Background(), &sinks.Action{Target: "2001:0db9::1"}, "2001:db9::1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Undo(context.Background(), nil, "192.0.3.1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Undo(context.Background(), &sinks.Action{Target: "192.0.3.1"}, ""); err != nil {
		t.Fatalf("second undo: %v", err)
	}
	if r := get(t, srv, nil); r.body != "" {
		t.Fatalf("body %q", r.body)
	}
	if err := s.Undo(context.Background(), &sinks.Action{Target: "nope"}, ""); err == nil {
		t.Fatal("undid an invalid target")
	}
}

func TestMaxEntries(t *testing.T) {
	cfg := testConfig()
	cfg.MaxEntries = 2
	s, clk, srv := newTestSink(t, cfg)
	doBlock(t, s, "192.0.3.1", clk.now().Add(time.Minute))
	doBlock(t, s, "192.0.3.2", clk.now().Add(time.Hour))
	_, err := s.Do(context.Background(), &sinks.Action{Target: "192.0.3.3", Until: clk.now().Add(time.Hour)})
	if err == nil || err.Error() != "edl: cannot list 192.0.3.3: edl: the list holds THREATPIPE_SINK_EDL_MAX_ENTRIES=2 addresses" {
		t.Fatalf("full: %v", err)
	}
	doBlock(t, s, "192.0.3.2", clk.now().Add(2*time.Hour)) // a listed address may be refreshed
	clk.advance(time.Minute)                               // an expired entry frees its place
	doBlock(t, s, "192.0.3.3", clk.now().Add(time.Hour))
	if r := get(t, srv, nil); r.body != "192.0.3.2\n192.0.3.3\n" {
		t.Fatalf("body %q", r.body)
	}

	err = s.Reconcile(context.Background(), map[string]time.Time{
		"192.0.3.10": clk.now().Add(time.Hour), "192.0.3.11": clk.now().Add(3 * time.Hour),
		"192.0.3.12": clk.now().Add(2 * time.Hour), "192.0.3.13": clk.now().Add(time.Minute),
	})
	if err == nil || !strings.Contains(err.Error(), "edl: 2 active blocks left off") {
		t.Fatalf("reconcile past the maximum: %v", err)
	}
	if r := get(t, srv, nil); r.body != "192.0.3.11\n192.0.3.12\n" {
		t.Fatalf("kept %q, want the longest-lived", r.body)
	}
}

func TestReconcile(t *testing.T) {
	s, clk, srv := newTestSink(t, testConfig())
	doBlock(t, s, "203.0.114.1", clk.now().Add(time.Hour)) // not in the ledger: goes
	err := s.Reconcile(context.Background(), map[string]time.Time{
		"192.0.3.1":          clk.now().Add(time.Hour),
		"2001:db9::1":        clk.now().Add(time.Minute),
		"2001:0db9:0::1":     clk.now().Add(2 * time.Hour), // the same address: the later expiry wins
		"198.51.101.1":       clk.now().Add(-time.Second),  // expired: skipped
		"not an address":     clk.now().Add(time.Hour),
		"::ffff:203.0.114.5": clk.now().Add(time.Hour),
	})
	if err == nil || !strings.Contains(err.Error(), `edl: target "not an address" is not an IP address`) {
		t.Fatalf("error %v", err)
	}
	if r := get(t, srv, nil); r.body != "192.0.3.1\n203.0.114.5\n2001:db9::1\n" {
		t.Fatalf("body %q", r.body)
	}
	clk.advance(time.Hour)
	if r := get(t, srv, nil); r.body != "2001:db9::1\n" {
		t.Fatalf("after an hour: %q", r.body)
	}
	if err := s.Reconcile(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if r := get(t, srv, nil); r.body != "" {
		t.Fatalf("empty reconcile: %q", r.body)
	}
}

func TestValidateParams(t *testing.T) {
	s := New(testConfig(), nil)
	if err := s.ValidateParams(map[string]string{}); err != nil {
		t.Fatal(err)
	}
	if err := s.ValidateParams(map[string]string{"list": "x"}); err == nil || !strings.Contains(err.Error(), `unknown param "list"`) {
		t.Fatalf("got %v", err)
	}
	if s.Name() != "edl" || s.Kind() != sinks.KindBlock {
		t.Fatal("identity")
	}
}

func TestETagMatch(t *testing.T) {
	const etag = `"abc"`
	tests := []struct {
		field string
		want  bool
	}{
		{`"abc"`, true},
		{`W/"abc"`, true},
		{` "x" , "abc"`, true},
		{`"x",W/"abc"`, true},
		{`*`, true},
		{` * `, true},
		{`"ab"`, false},
		{`"abcd"`, false},
		{`abc`, false},
		{`"abc`, false},
		{`"x", *`, false},
		{`W/`, false},
		{``, false},
		{`,,,`, false},
		{`"a,b", "abc"`, true},
	}
	for _, tt := range tests {
		if got := etagMatch(tt.field, etag); got != tt.want {
			t.Errorf("etagMatch(%q) = %v, want %v", tt.field, got, tt.want)
		}
	}
}

func TestValidateParamsListsEveryKey(t *testing.T) {
	s := New(testConfig(), nil)
	err := s.ValidateParams(map[string]string{"list": "x", "format": "y"})
	if err == nil || !strings.Contains(err.Error(), `edl: unknown param "format"`) || !strings.Contains(err.Error(), `edl: unknown param "list"`) {
		t.Fatalf("got %v", err)
	}
	if i, j := strings.Index(err.Error(), `"format"`), strings.Index(err.Error(), `"list"`); i > j {
		t.Fatalf("keys not sorted: %v", err)
	}
}

func TestDoNilAction(t *testing.T) {
	s := New(testConfig(), nil)
	if _, err := s.Do(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "edl: nil action") {
		t.Fatalf("got %v", err)
	}
}
