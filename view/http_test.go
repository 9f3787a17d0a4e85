package view

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/health"
)

const xssISP = "<script>alert(1)</script>"

// testServer serves the view over a real-Redis store holding a few indicators.
func testServer(t *testing.T) (*httptest.Server, *Store, *clock) {
	t.Helper()
	s, c := testStore(t, StoreOptions{HealthMaxAge: time.Minute})
	now := c.Now()
	mustApply(t, s,
		scored("185.220.101.45", 92, now.Add(-2*time.Minute), withTags("tor", "scanner"), withCountry("DE"), withISP("Example Hosting GmbH"),
			withAS(64500, "EXAMPLE-TRANSIT-AS"), withProviders(map[string]*event.ProviderOutcome{
				"criminalip": {Status: event.StatusOK, Cache: &event.CacheInfo{Hit: true, AgeSeconds: 412}, Result: &event.Intel{
					Verdict: event.VerdictMalicious, Score: 92, Detail: "Criminal IP: inbound Dangerous", Tags: []string{"tor"}}},
				"othertip": {Status: event.StatusFailed, Error: "provider timed out after 3 attempts"},
			})),
		scored("45.155.205.233", 65, now.Add(-30*time.Minute), withTags("scanner"), withCountry("NL"), withISP(xssISP)),
		scored("203.0.113.10", 45, now.Add(-3*time.Hour), withTags("vpn"), withCountry("US"), withISP("VPN Corp")),
	)
	ui, err := NewUI(s, UIOptions{Refresh: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ui.Handler())
	t.Cleanup(srv.Close)
	return srv, s, c
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func TestRankedPageListsIndicatorsInOrder(t *testing.T) {
	srv, _, _ := testServer(t)
	res, body := get(t, srv.URL+"/")
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("status %d, content type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	a := strings.Index(body, `href="/indicators/185.220.101.45"`)
	b := strings.Index(body, `href="/indicators/45.155.205.233"`)
	c := strings.Index(body, `href="/indicators/203.0.113.10"`)
	if a < 0 || b < 0 || c < 0 || !(a < b && b < c) {
		t.Fatalf("rows missing or out of order (%d %d %d)", a, b, c)
	}
	for _, want := range []string{
		`class="num score sev-critical">92<`, `<span class="tag">tor</span>`, "AS64500 EXAMPLE-TRANSIT-AS", ">2m ago<",
		`data-api="/api/v1/indicators"`, `data-refresh-ms="3000"`, `<script src="/static/app.js" defer></script>`,
		`<noscript><meta http-equiv="refresh" content="3"></noscript>`, "Showing 1–3 of 3 indicators",
		`<svg class="chart"`, "Score distribution",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// No inline script: the CSP would block it, and the page must not need it.
	if n := len(regexp.MustCompile(`<script(?:\s[^>]*)?>`).FindAllString(body, -1)); n != 1 {
		t.Errorf("%d script tags, want only app.js", n)
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, " style=") || strings.Contains(body, "onclick") {
		t.Error("inline script or style in the page")
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
	if res.Header.Get("Cache-Control") != "no-store" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v", res.Header)
	}
}

func TestRankedPageFilters(t *testing.T) {
	srv, _, _ := testServer(t)
	_, body := get(t, srv.URL+"/?severity=high&severity=medium&tag=&country=&isp=&since=24h&q=")
	if strings.Contains(body, `href="/indicators/185.220.101.45"`) || !strings.Contains(body, `href="/indicators/45.155.205.233"`) ||
		!strings.Contains(body, `href="/indicators/203.0.113.10"`) {
		t.Error("severity filter not applied")
	}
	for _, want := range []string{`value="high" checked`, `value="medium" checked`, `<option value="24h" selected>`,
		`data-api="/api/v1/indicators?severity=medium&amp;severity=high&amp;since=24h"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	_, body = get(t, srv.URL+"/?since=1h&country=nl")
	if !strings.Contains(body, "45.155.205.233") || strings.Contains(body, "203.0.113.10") || strings.Contains(body, `"/indicators/185.220.101.45"`) {
		t.Error("since+country filter not applied")
	}
	res, body := get(t, srv.URL+"/?severity=urgent")
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "severity: &#34;urgent&#34; is not one of") {
		t.Errorf("bad severity: %d %s", res.StatusCode, body)
	}
	_, body = get(t, srv.URL+"/?limit=1")
	if !strings.Contains(body, `href="/?limit=1&amp;offset=1"`) || !strings.Contains(body, "Showing 1–1 of 3") {
		t.Errorf("paging links missing")
	}
}

func TestPagesEscapeIndicatorData(t *testing.T) {
	srv, s, c := testServer(t)
	mustApply(t, s, scored("198.51.100.66", 30, c.Now(), withTags(`"><img src=x onerror=alert(1)>`), withISP(xssISP)))
	for _, path := range []string{"/", "/indicators/45.155.205.233", "/indicators/198.51.100.66"} {
		res, body := get(t, srv.URL+path)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", path, res.StatusCode)
		}
		if strings.Contains(body, xssISP) || strings.Contains(body, "<img src=x") {
			t.Errorf("%s: attacker-controlled markup reached the page unescaped", path)
		}
		if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s: the ISP is not shown escaped", path)
		}
	}
	_, body := get(t, srv.URL+"/api/v1/indicators")
	if strings.Contains(body, "<script>") || !strings.Contains(body, `\u003cscript\u003e`) {
		t.Errorf("JSON does not escape markup: %s", body)
	}
}

func TestDetailPageShowsReasonsProvidersAndActions(t *testing.T) {
	srv, s, c := testServer(t)
	until := c.Now().Add(time.Hour)
	if _, err := s.ApplyRecord(context.Background(), &act.Record{At: c.Now(), Outcome: act.OutcomeDone, Kind: "block", Playbook: "block-critical",
		Step: "edl", Sink: "edl", Target: "185.220.101.45", Ref: "edl:185.220.101.45", Until: &until, Detail: "block until later"}, "d1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApplyRecord(context.Background(), &act.Record{At: c.Now(), Outcome: act.OutcomeSuppressed, Kind: "block", Playbook: "block-critical",
		Step: "edl", Sink: "edl", Target: "185.220.101.45", Detail: "already done"}, "d2"); err != nil {
		t.Fatal(err)
	}
	res, body := get(t, srv.URL+"/indicators/185.220.101.45")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%d", res.StatusCode)
	}
	for _, want := range []string{
		"<td>criminalip</td><td>score 92</td>", // the reason
		"Criminal IP: inbound Dangerous", "malicious", "hit, 6m52s old",
		"othertip", "provider timed out after 3 attempts", `class="status-failed"`,
		"Example Hosting GmbH", "AS64500 EXAMPLE-TRANSIT-AS", "DE",
		"block-critical", "edl:185.220.101.45", `class="ok">done`, until.UTC().Format(time.RFC3339),
		`<svg class="sparkline"`, "<dt>Sightings</dt><dd>1</dd>", "Audit records by outcome: done 1, suppressed_window 1.",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("detail page lacks %q", want)
		}
	}
	// Other spellings redirect to the canonical address.
	res, _ = get(t, srv.URL+"/indicators/::ffff:185.220.101.45")
	if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/indicators/185.220.101.45" {
		t.Errorf("redirect: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	res, _ = get(t, srv.URL+"/indicators/198.51.100.200")
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown indicator page: %d", res.StatusCode)
	}
	res, _ = get(t, srv.URL+"/indicators/not-an-ip")
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("bad address page: %d", res.StatusCode)
	}
}

func TestAPIIndicators(t *testing.T) {
	srv, _, _ := testServer(t)
	res, body := get(t, srv.URL+"/api/v1/indicators?severity=critical,high&limit=10")
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %v", res.StatusCode, res.Header)
	}
	var page Page
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	if got := ips(page.Rows); len(got) != 2 || got[0] != "185.220.101.45" || got[1] != "45.155.205.233" || page.Total != 2 || page.Limit != 10 {
		t.Errorf("page %+v", page)
	}
	r := page.Rows[0]
	if r.Score != 92 || r.Severity != "critical" || r.Country != "DE" || r.ASN != 64500 || r.Sightings != 1 || r.FirstSeen.IsZero() {
		t.Errorf("row %+v", r)
	}

	res, body = get(t, srv.URL+"/api/v1/indicators/185.220.101.45")
	var ind Indicator
	if res.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &ind) != nil {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
	if ind.Latest == nil || ind.Latest.Providers["criminalip"].Result.Verdict != event.VerdictMalicious || len(ind.History) != 1 {
		t.Errorf("indicator %s", body)
	}
}

func TestAPIStatusCodes(t *testing.T) {
	srv, _, _ := testServer(t)
	for _, tc := range []struct {
		path   string
		status int
		param  string
	}{
		{"/api/v1/indicators?severity=urgent", 400, "severity"},
		{"/api/v1/indicators?limit=501", 400, "limit"},
		{"/api/v1/indicators?limit=0", 400, "limit"},
		{"/api/v1/indicators?offset=-1", 400, "offset"},
		{"/api/v1/indicators?since=yesterday", 400, "since"},
		{"/api/v1/indicators?country=Germany", 400, "country"},
		{"/api/v1/indicators?q=10.0.0.0/33", 400, "q"},
		{"/api/v1/indicators?q=<b>", 400, "q"},
		{"/api/v1/indicators?severty=high", 400, "severty"},
		{"/api/v1/indicators?tag=a&tag=b", 400, "tag"},
		{"/api/v1/indicators/not-an-ip", 400, "ip"},
		{"/api/v1/indicators/198.51.100.200", 404, ""},
		{"/api/v1/indicators/185.220.101.45?x=1", 400, "x"},
		{"/api/v1/stats?x=1", 400, "x"},
		{"/api/v1/indicators?limit=500", 200, ""},
		{"/api/v1/stats", 200, ""},
		{"/api/v1/health", 200, ""},
	} {
		res, body := get(t, srv.URL+tc.path)
		if res.StatusCode != tc.status || res.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %q, want %d JSON", tc.path, res.StatusCode, res.Header.Get("Content-Type"), tc.status)
			continue
		}
		if tc.status != 200 {
			var e apiError
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" || e.Param != tc.param {
				t.Errorf("%s: error body %s, want param %q", tc.path, body, tc.param)
			}
		}
	}
	res, err := http.Post(srv.URL+"/api/v1/indicators", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", res.StatusCode)
	}
}

func TestAPIUnavailableStore(t *testing.T) {
	srv, s, _ := testServer(t)
	_ = s.rdb.Close()
	res, body := get(t, srv.URL+"/api/v1/indicators")
	if res.StatusCode != http.StatusServiceUnavailable || strings.Contains(body, "closed") {
		t.Errorf("%d %s, want 503 without internals", res.StatusCode, body)
	}
}

func TestAPIStats(t *testing.T) {
	srv, _, _ := testServer(t)
	_, body := get(t, srv.URL+"/api/v1/stats")
	var st Stats
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Indicators != 3 || len(st.Scores) != 10 || st.Scores[9].Count != 1 || st.Scores[6].Count != 1 || st.Scores[4].Count != 1 || len(st.Minutes) != 60 {
		t.Errorf("stats %s", body)
	}
	var events, hits, lookups int64
	for _, m := range st.Minutes {
		events, hits, lookups = events+m.Events, hits+m.Hits, lookups+m.Lookups
	}
	if events != 2 || hits != 1 || lookups != 1 { // the third was processed 3h ago
		t.Errorf("last hour: %d events, %d hits, %d lookups; want 2 1 1", events, hits, lookups)
	}
}

func TestHealthPageShowsTheFilesOfOfflineSources(t *testing.T) {
	srv, s, _ := testServer(t)
	hs := health.NewStore(s.rdb, s.prefix)
	now := time.Now()
	older := []health.File{{Name: "drop", Kind: "block", Path: "/lists/drop.txt", Entries: 10, LoadedAt: now.Add(-time.Hour)}}
	newer := []health.File{
		{Name: "drop", Kind: "block", Path: "/lists/drop.txt", Format: "spamhaus", Entries: 1234, Skipped: 2, LoadedAt: now.Add(-2 * time.Minute),
			LastError: `lists: list "drop" (/lists/drop.txt): line 7 is longer than 64 bytes`},
		{Name: "THREATPIPE_GEOIP_ASN_DB", Kind: "asn", Path: "/geoip/ASN.mmdb", Format: "GeoLite2-ASN", LoadedAt: now, BuiltAt: now.Add(-100 * time.Hour)},
	}
	for _, sn := range []health.Snapshot{
		{Component: health.ComponentProvider, Name: "lists", Owner: "enrich-a-1", Role: "enrich", At: now.Add(-3 * time.Second), Status: "ok", Files: older},
		{Component: health.ComponentProvider, Name: "lists", Owner: "enrich-b-2", Role: "enrich", At: now, Status: "degraded", Files: newer},
	} {
		if err := hs.Put(context.Background(), sn, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	_, body := get(t, srv.URL+"/health")
	for _, want := range []string{"file <strong>drop</strong>", "1234 entries", "2 skipped", "reload failed", "line 7 is longer than 64 bytes",
		"/geoip/ASN.mmdb · asn · GeoLite2-ASN", "built 4d ago"} {
		if !strings.Contains(body, want) {
			t.Errorf("health page lacks %q", want)
		}
	}
	if strings.Contains(body, "10 entries") {
		t.Error("the older replica's files are shown instead of the freshest")
	}
	_, body = get(t, srv.URL+"/api/v1/health")
	var rep HealthReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatal(err)
	}
	if in := rep.Integrations[0]; len(in.Files) != 2 || in.Files[0].Entries != 1234 || in.Files[1].BuiltAt.IsZero() {
		t.Errorf("files in the JSON: %+v", in.Files)
	}
}

func TestHealthPageWarnsPastQuotaThreshold(t *testing.T) {
	srv, s, _ := testServer(t)
	hs := health.NewStore(s.rdb, s.prefix)
	now := time.Now()
	for _, sn := range []health.Snapshot{
		{Component: health.ComponentProvider, Name: "criminalip", Owner: "enrich-a-1", Role: "enrich", At: now.Add(-5 * time.Second), Status: "ok",
			Breaker: "closed", QuotaUsed: 790, QuotaLimit: 1000, Errors: 2, Timeouts: 1, Calls: map[string]int64{"ok": 700}},
		{Component: health.ComponentProvider, Name: "criminalip", Owner: "enrich-b-2", Role: "enrich", At: now, Status: "degraded",
			Breaker: "half-open", QuotaUsed: 850, QuotaLimit: 1000, Errors: 3, Calls: map[string]int64{"ok": 100, "timeout": 3},
			LastError: "criminalip: 503 Service Unavailable", LastErrorAt: now.Add(-time.Minute)},
		{Component: health.ComponentProvider, Name: "quiet", Owner: "enrich-a-1", Role: "enrich", At: now, Status: "ok", QuotaUsed: 100, QuotaLimit: 1000},
		{Component: health.ComponentSink, Name: "jira", Owner: "act-a-1", Role: "act", At: now, Status: "failing", Errors: 7,
			LastError: "jira: 401 <b>Unauthorized</b>", LastErrorAt: now},
		{Component: health.ComponentSink, Name: "stale", Owner: "gone-1", Role: "act", At: now.Add(-time.Hour), Status: "failing"},
	} {
		if err := hs.Put(context.Background(), sn, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	res, body := get(t, srv.URL+"/health")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%d", res.StatusCode)
	}
	if n := strings.Count(body, "WARNING"); n != 1 {
		t.Errorf("%d warnings, want 1 (criminalip at 85%%; quiet at 10%% has none)", n)
	}
	for _, want := range []string{
		"850 / 1000 (85.0%)", "enrich-a-1 (enrich)", "enrich-b-2 (enrich)", "half-open",
		"criminalip: 503 Service Unavailable", "jira: 401 &lt;b&gt;Unauthorized&lt;/b&gt;", ">5<", // errors summed
		"ok 800, timeout 3",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("health page lacks %q", want)
		}
	}
	if strings.Contains(body, "stale") {
		t.Error("a snapshot older than the max age is shown")
	}
	if strings.Index(body, "criminalip") > strings.Index(body, "jira") {
		t.Error("providers are not listed before sinks")
	}
	_, body = get(t, srv.URL+"/api/v1/health")
	var rep HealthReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Integrations) != 3 {
		t.Fatalf("integrations %s", body)
	}
	cip := rep.Integrations[0]
	if cip.Name != "criminalip" || cip.Status != "degraded" || cip.Breaker != "half-open" || !cip.QuotaWarning || cip.QuotaUsed != 850 ||
		cip.Errors != 5 || cip.Timeouts != 1 || len(cip.Replicas) != 2 || cip.LastError != "criminalip: 503 Service Unavailable" {
		t.Errorf("criminalip %+v", cip)
	}
	// The ranked page shows the quota too, with the same warning.
	_, body = get(t, srv.URL+"/")
	if !strings.Contains(body, "criminalip: 850 of 1000 <strong class=\"warning\">WARNING") {
		t.Error("ranked page does not warn about the quota")
	}
}

func TestStaticFiles(t *testing.T) {
	srv, _, _ := testServer(t)
	for path, ctype := range map[string]string{"/static/app.js": "text/javascript; charset=utf-8", "/static/style.css": "text/css; charset=utf-8"} {
		res, body := get(t, srv.URL+path)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != ctype || len(body) < 100 || res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d %q %d bytes", path, res.StatusCode, res.Header.Get("Content-Type"), len(body))
		}
	}
	if res, _ := get(t, srv.URL+"/static/nope.js"); res.StatusCode != 404 {
		t.Errorf("missing static file: %d", res.StatusCode)
	}
	_, js := get(t, srv.URL+"/static/app.js")
	if strings.Contains(js, "innerHTML") || strings.Contains(js, "eval(") {
		t.Error("app.js writes markup: indicator data must go in as text")
	}
}

func TestAgo(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{-time.Second, "just now"}, {0, "0s ago"}, {59 * time.Second, "59s ago"}, {time.Minute, "1m ago"}, {3 * time.Hour, "3h ago"},
		{47 * time.Hour, "47h ago"}, {72 * time.Hour, "3d ago"}} {
		if got := Ago(now, now.Add(-tc.d)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.d, got, tc.want)
		}
	}
	if Ago(now, time.Time{}) != "never" {
		t.Error("zero time")
	}
}

// TestAppJSRendersRowsAsText runs the page script under node with a fake DOM: it must fetch the
// page's own API URL on the configured interval and render every column, as text.
func TestAppJSRendersRowsAsText(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("THREATPIPE_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatalf("node is not installed but THREATPIPE_TEST_REQUIRE_SERVICES=1 (CI machines have /usr/bin/node): %v", err)
		}
		t.Skip("node is not installed")
	}
	page := Page{Total: 1, Limit: 50, Rows: []Row{{IP: "2001:db8::1", Score: 92, Severity: "critical", Confidence: 74,
		ValidatedBy: []string{"abuseipdb", "<i>list</i>"}, Tags: []string{"tor", "<b>x</b>"},
		Country: "DE", ISP: xssISP, ASN: 64500, ASOrg: "EX-AS", FirstSeen: time.Now().Add(-3 * time.Hour), LastSeen: time.Now().Add(-90 * time.Second), Sightings: 7}}}
	raw, _ := json.Marshal(page)
	dir := t.TempDir()
	pagePath := filepath.Join(dir, "page.json")
	if err := os.WriteFile(pagePath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(node, "testdata/appjs_harness.js", "static/app.js", pagePath).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var res struct {
		FirstDelay  int      `json:"firstDelay"`
		Fetched     []string `json:"fetched"`
		Rescheduled []int    `json:"rescheduled"`
		Rows        [][]struct {
			Text, Cls, HTML, Href string
		} `json:"rows"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if res.FirstDelay != 1500 || len(res.Fetched) != 1 || res.Fetched[0] != "/api/v1/indicators?tag=tor" || len(res.Rescheduled) != 1 || res.Rescheduled[0] != 1500 {
		t.Errorf("refresh: %+v", res)
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 13 {
		t.Fatalf("rows %+v, want one row of 13 columns", res.Rows)
	}
	r := res.Rows[0]
	want := []string{"51", "2001:db8::1", "92", "critical", "74", "abuseipdb <i>list</i> ", "tor <b>x</b> ", "DE", xssISP, "AS64500 EX-AS", "3h ago", "1m ago", "7"}
	for i, w := range want {
		if r[i].Text != w {
			t.Errorf("column %d: %q, want %q", i, r[i].Text, w)
		}
	}
	if r[1].Href != "/indicators/2001%3Adb8%3A%3A1" || r[2].Cls != "num score sev-critical" || r[8].HTML != "" || r[5].HTML != "SPAN,#text,SPAN,#text" {
		t.Errorf("link %q, score class %q, ISP children %q (text only), validators %q", r[1].Href, r[2].Cls, r[8].HTML, r[5].HTML)
	}
	if !strings.Contains(res.Status, "1 matching") {
		t.Errorf("status %q", res.Status)
	}
}

func TestDetailPageForIPv6EncodedAsTheScriptLinksIt(t *testing.T) {
	srv, s, c := testServer(t)
	mustApply(t, s, scored("2001:db8::1", 70, c.Now()))
	res, body := get(t, srv.URL+"/indicators/2001%3Adb8%3A%3A1")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `<span class="ip">2001:db8::1</span>`) {
		t.Errorf("%d", res.StatusCode)
	}
	res, _ = get(t, srv.URL+"/indicators/2001:DB8:0::1")
	if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/indicators/2001:db8::1" {
		t.Errorf("redirect %d %q", res.StatusCode, res.Header.Get("Location"))
	}
}

// TestProviderRowDetail: a full event's answer has its own summary; a compact one's is the
// source's reason; an answer-less outcome has none.
func TestProviderRowDetail(t *testing.T) {
	reasons := []event.Reason{{Source: "abuseipdb", Detail: "other"}, {Source: "criminalip", Detail: "from the reason"}}
	for _, tc := range []struct {
		name string
		out  *event.ProviderOutcome
		want string
	}{
		{"full", &event.ProviderOutcome{Status: event.StatusOK, Result: &event.Intel{Detail: "own summary"}}, "own summary"},
		{"compact", &event.ProviderOutcome{Status: event.StatusOK, Result: &event.Intel{Verdict: event.VerdictMalicious}}, "from the reason"},
		{"failed", &event.ProviderOutcome{Status: event.StatusFailed, Error: "timeout"}, ""},
	} {
		if got := newProviderRow("criminalip", tc.out, reasons).Detail; got != tc.want {
			t.Errorf("%s: detail %q, want %q", tc.name, got, tc.want)
		}
	}
}
