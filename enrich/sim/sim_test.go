package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers/criminalip"
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

const key = "sim-key"

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// start serves s and returns a criminalip client pointed at it with apiKey.
func start(t *testing.T, s *Server, apiKey string) (*httptest.Server, *criminalip.Client) {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, err := criminalip.New(&criminalip.Config{Config: providerhttp.Config{APIKey: config.Secret(apiKey), BaseURL: srv.URL, MaxBodyBytes: 1 << 20}}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

func indicator(ip string) event.Indicator {
	a := netip.MustParseAddr(ip)
	typ := event.IPv4
	if a.Is6() {
		typ = event.IPv6
	}
	return event.Indicator{Type: typ, Value: a.String(), Addr: a}
}

// nthIP is a deterministic spread of addresses (IPv4 and some IPv6).
func nthIP(i int) string {
	if i%10 == 9 {
		return fmt.Sprintf("2001:db8::%x", i)
	}
	return netip.AddrFrom4([4]byte{byte(10 + i%200), byte(i >> 8), byte(i), byte(i * 7)}).String()
}

// findIP returns the first nthIP whose profile satisfies pred.
func findIP(t *testing.T, pred func(Profile) bool) string {
	t.Helper()
	for i := range 100000 {
		ip := nthIP(i)
		if p, _ := CriminalIPProfile(ip); pred(p) {
			return ip
		}
	}
	t.Fatal("no IP matches")
	return ""
}

func found(p Profile) bool { return !p.NotFound }

var levelScore = map[string]int{"": 0, "Safe": 10, "Low": 35, "Moderate": 65, "Dangerous": 85, "Critical": 95}

// expectedVerdict restates criminalip's documented rule.
func expectedVerdict(in, out string, tags []string) enrich.Verdict {
	switch {
	case in == "Dangerous" || in == "Critical" || out == "Dangerous" || out == "Critical":
		return enrich.VerdictMalicious
	case in == "Moderate" || out == "Moderate":
		return enrich.VerdictSuspicious
	}
	for _, t := range tags {
		switch t {
		case "tor", "proxy", "anonymous_vpn", "scanner", "darkweb", "ids":
			return enrich.VerdictSuspicious
		}
	}
	return enrich.VerdictBenign
}

func TestEndToEndThroughClient(t *testing.T) {
	s := New(Options{ValidKeys: []string{key}})
	_, c := start(t, s, key)
	ctx := context.Background()
	levels := map[string]int{}
	verdicts := map[enrich.Verdict]int{}
	const n = 1500
	for i := range n {
		ip := nthIP(i)
		res, err := c.Lookup(ctx, indicator(ip))
		if err != nil {
			t.Fatalf("%s: %v", ip, err)
		}
		in, out, tags := CriminalIPVerdict(ip)
		p, _ := CriminalIPProfile(ip)
		verdicts[res.Verdict]++
		if p.NotFound {
			if res.Verdict != enrich.VerdictNotFound || in != "" || out != "" || tags != nil {
				t.Fatalf("%s: want not found, got %+v (%q %q %v)", ip, res, in, out, tags)
			}
			continue
		}
		levels[in]++
		want := expectedVerdict(in, out, tags)
		if res.InboundLevel != in || res.OutboundLevel != out || !slices.Equal(res.Tags, tags) || res.Verdict != want ||
			res.Score != max(levelScore[in], levelScore[out]) {
			t.Fatalf("%s: got %s/%s %v %s %d, want %s/%s %v %s", ip, res.InboundLevel, res.OutboundLevel, res.Tags, res.Verdict, res.Score, in, out, tags, want)
		}
		if res.ASNumber != p.ASNumber || res.ASOrganization != p.ASName || res.ISP != p.OrgName ||
			res.CountryISO != strings.ToUpper(p.Country) || res.City != p.City || !slices.Equal(res.OpenPorts, p.Ports) ||
			res.CVECount != len(p.CVEs) || res.Location == nil || res.Location.Lat != p.Lat {
			t.Fatalf("%s: network/ports mismatch: %+v vs %+v", ip, res, p)
		}
	}
	// The documented distribution, loosely: not found ~5.9%, inbound 50/20/15/10/5%.
	nf := float64(verdicts[enrich.VerdictNotFound]) / n
	if nf < 0.03 || nf > 0.09 {
		t.Errorf("not-found share %.3f", nf)
	}
	got := float64(n - verdicts[enrich.VerdictNotFound])
	for lvl, share := range map[string]float64{"Safe": .5, "Low": .2, "Moderate": .15, "Dangerous": .1, "Critical": .05} {
		if f := float64(levels[lvl]) / got; math.Abs(f-share) > 0.05 {
			t.Errorf("inbound %s share %.3f, documented %.2f", lvl, f, share)
		}
	}
	for _, v := range []enrich.Verdict{enrich.VerdictMalicious, enrich.VerdictSuspicious, enrich.VerdictBenign} {
		if verdicts[v] == 0 {
			t.Errorf("no %s answers in %d IPs", v, n)
		}
	}
	st := s.Stats()
	if st.Lookups != n || st.Answered != n || st.NotFound != int64(verdicts[enrich.VerdictNotFound]) || st.DistinctIPs != n || st.MaxCallsPerIP != 1 {
		t.Errorf("stats %+v", st)
	}

	acct, err := c.Account(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if acct.Name == "" || acct.MaxSearch != UnmeteredAllowance-n || acct.LastAccessAt.IsZero() {
		t.Errorf("account %+v", acct)
	}
}

func TestInvalidIPAnswersBodyStatus400(t *testing.T) {
	s := New(Options{})
	srv := httptest.NewServer(s)
	defer srv.Close()
	status, body, _ := call(t, srv.URL+ReportPath+"?ip=not-an-ip&full=true", http.MethodGet, key)
	if status != 200 || !strings.Contains(body, `"status":400`) {
		t.Fatalf("got %d %s", status, body)
	}
}

// TestReportShape compares the simulator's body with the client's §1.3 fixture: same keys,
// nesting and JSON types wherever both have data.
func TestReportShape(t *testing.T) {
	fixture, err := os.ReadFile(filepath.Join("..", "providers", "criminalip", "testdata", "report_full.json"))
	if err != nil {
		t.Fatal(err)
	}
	ip := findIP(t, func(p Profile) bool {
		return !p.NotFound && len(p.CVEs) > 0 && len(p.Categories) > 0 && slices.Contains(p.Flags, "is_snort")
	})
	s := New(Options{})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, ReportPath+"?ip="+ip+"&full=true", nil)
	req.Header.Set("x-api-key", key)
	s.ServeHTTP(rec, req)
	var want, got any
	if err := json.Unmarshal(fixture, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	sameShape(t, "$", want, got)
}

func sameShape(t *testing.T, path string, want, got any) {
	t.Helper()
	if want == nil || got == nil {
		return
	}
	if reflect.TypeOf(want) != reflect.TypeOf(got) {
		t.Errorf("%s: fixture has %T, simulator %T", path, want, got)
		return
	}
	switch w := want.(type) {
	case map[string]any:
		g := got.(map[string]any)
		for k := range w {
			if _, ok := g[k]; !ok {
				t.Errorf("%s.%s missing in the simulator's body", path, k)
			}
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				t.Errorf("%s.%s is not in the fixture", path, k)
			}
		}
		for k, v := range w {
			sameShape(t, path+"."+k, v, g[k])
		}
	case []any:
		g := got.([]any)
		if len(w) > 0 && len(g) > 0 {
			sameShape(t, path+"[0]", w[0], g[0])
		}
	}
}

func call(t *testing.T, url, method, apiKey string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if apiKey != "" {
		req.Header.Set("x-api-key", apiKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestLatency(t *testing.T) {
	s := New(Options{Latency: 150 * time.Millisecond})
	_, c := start(t, s, key)
	ip := findIP(t, found)
	begin := time.Now()
	if _, err := c.Lookup(context.Background(), indicator(ip)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d < 150*time.Millisecond || d > 3*time.Second {
		t.Fatalf("lookup took %s with 150ms latency", d)
	}
	// A client deadline shorter than the latency times out.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := c.Lookup(ctx, indicator(ip)); enrich.KindOf(err) != enrich.KindTransient {
		t.Fatalf("got %v, want a transient timeout", err)
	}
	// Jitter adds 0..Jitter.
	if err := s.SetLatency(0, 40*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	begin = time.Now()
	for range 5 {
		if _, err := c.Lookup(context.Background(), indicator(ip)); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(begin); d > 3*time.Second {
		t.Fatalf("5 lookups with 40ms jitter took %s", d)
	}
}

func statuses(s *Server, n int) []int {
	out := make([]int, n)
	for i := range n {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, ReportPath+"?ip="+nthIP(i)+"&full=true", nil)
		req.Header.Set("x-api-key", key)
		s.ServeHTTP(rec, req)
		out[i] = rec.Code
	}
	return out
}

func TestErrorRate(t *testing.T) {
	s := New(Options{ErrorRate: 0.2, Seed: 42})
	got := statuses(s, 1000)
	var errs int
	for _, st := range got {
		if st == http.StatusInternalServerError {
			errs++
		}
	}
	if errs < 160 || errs > 240 {
		t.Fatalf("%d of 1000 lookups failed at ErrorRate 0.2", errs)
	}
	if st := s.Stats(); st.Errors != int64(errs) || st.Lookups != 1000 || st.Answered != int64(1000-errs) {
		t.Fatalf("stats %+v", st)
	}
	// Same seed, same sequence; Reset restarts it.
	if again := statuses(New(Options{ErrorRate: 0.2, Seed: 42}), 1000); !slices.Equal(got, again) {
		t.Fatal("same seed gave a different error sequence")
	}
	s.Reset()
	if again := statuses(s, 1000); !slices.Equal(got, again) {
		t.Fatal("Reset did not restart the error sequence")
	}
	if other := statuses(New(Options{ErrorRate: 0.2, Seed: 43}), 1000); slices.Equal(got, other) {
		t.Fatal("another seed gave the same sequence")
	}
	// Through the client: a transient error with status 500.
	s2 := New(Options{ErrorRate: 1})
	_, c := start(t, s2, key)
	_, err := c.Lookup(context.Background(), indicator(findIP(t, found)))
	var pe *enrich.Error
	if !asErr(err, &pe) || pe.Kind != enrich.KindTransient || pe.Status != 500 {
		t.Fatalf("got %v", err)
	}
}

func asErr(err error, target **enrich.Error) bool {
	e, ok := err.(*enrich.Error)
	if ok {
		*target = e
	}
	return ok
}

func TestRateLimit(t *testing.T) {
	clk := newClock()
	s := New(Options{RateLimit: 5, Now: clk.Now})
	srv, c := start(t, s, key)
	ip := findIP(t, found)
	ctx := context.Background()
	for i := range 5 {
		if _, err := c.Lookup(ctx, indicator(ip)); err != nil {
			t.Fatalf("request %d within the burst: %v", i, err)
		}
	}
	_, err := c.Lookup(ctx, indicator(ip))
	var pe *enrich.Error
	if !asErr(err, &pe) || pe.Kind != enrich.KindRateLimited || pe.Status != 429 || pe.RetryAfter != time.Second {
		t.Fatalf("over the limit: %v (%+v)", err, pe)
	}
	status, body, h := call(t, srv.URL+ReportPath+"?ip="+ip, http.MethodGet, key)
	if status != 429 || h.Get("Retry-After") != "1" || !strings.Contains(body, `"status":429`) || !strings.Contains(body, `"message"`) {
		t.Fatalf("raw 429: %d %q %s", status, h.Get("Retry-After"), body)
	}
	clk.Advance(time.Second)
	for i := range 5 {
		if _, err := c.Lookup(ctx, indicator(ip)); err != nil {
			t.Fatalf("after refill, request %d: %v", i, err)
		}
	}
	if st := s.Stats(); st.RateLimited != 2 || st.Answered != 10 {
		t.Fatalf("stats %+v", st)
	}
	// Slow rates say how long to wait.
	if err := s.SetRateLimit(0.1); err != nil {
		t.Fatal(err)
	}
	_, _ = c.Lookup(ctx, indicator(ip))
	_, err = c.Lookup(ctx, indicator(ip))
	if !asErr(err, &pe) || pe.RetryAfter != 10*time.Second {
		t.Fatalf("at 0.1/s: %v", err)
	}
	if err := s.SetRateLimit(0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup(ctx, indicator(ip)); err != nil {
		t.Fatalf("unlimited: %v", err)
	}
}

func TestDailyQuota(t *testing.T) {
	clk := newClock()
	s := New(Options{DailyQuota: 3, Now: clk.Now})
	srv, c := start(t, s, key)
	ctx := context.Background()
	maxSearch := func() int64 {
		a, err := c.Account(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return a.MaxSearch
	}
	if m := maxSearch(); m != 3 {
		t.Fatalf("max_search %d before any lookup", m)
	}
	notFoundIP := findIP(t, func(p Profile) bool { return p.NotFound })
	for _, ip := range []string{nthIP(1), notFoundIP} {
		if _, err := c.Lookup(ctx, indicator(ip)); err != nil {
			t.Fatal(err)
		}
	}
	if m := maxSearch(); m != 1 {
		t.Fatalf("max_search %d after 2 lookups (one not found)", m)
	}
	if _, err := c.Lookup(ctx, indicator(nthIP(2))); err != nil {
		t.Fatal(err)
	}
	_, err := c.Lookup(ctx, indicator(nthIP(3)))
	var pe *enrich.Error
	if !asErr(err, &pe) || pe.Kind != enrich.KindQuotaExhausted || pe.Status != 402 || pe.Message == "" {
		t.Fatalf("over quota: %v", err)
	}
	status, body, _ := call(t, srv.URL+ReportPath+"?ip=192.0.2.1", http.MethodGet, key)
	if status != 200 || !strings.Contains(body, `"status":402`) {
		t.Fatalf("quota answer form: %d %s", status, body)
	}
	if m := maxSearch(); m != 0 {
		t.Fatalf("max_search %d when spent", m)
	}
	if st := s.Stats(); st.QuotaExceeded != 2 || st.QuotaUsed != 3 {
		t.Fatalf("stats %+v", st)
	}
	clk.Advance(24 * time.Hour) // a new UTC day
	if _, err := c.Lookup(ctx, indicator(nthIP(3))); err != nil {
		t.Fatalf("next day: %v", err)
	}
	if m := maxSearch(); m != 2 {
		t.Fatalf("max_search %d on the next day", m)
	}
}

func TestKeys(t *testing.T) {
	s := New(Options{ValidKeys: []string{key, "second-key"}})
	srv, good := start(t, s, key)
	_, second := start(t, s, "second-key")
	_, bad := start(t, s, "wrong-key")
	ctx := context.Background()
	ip := findIP(t, found)
	if _, err := good.Lookup(ctx, indicator(ip)); err != nil {
		t.Fatal(err)
	}
	if _, err := second.Lookup(ctx, indicator(ip)); err != nil {
		t.Fatal(err)
	}
	for _, f := range []func() error{
		func() error { _, err := bad.Lookup(ctx, indicator(ip)); return err },
		func() error { _, err := bad.Account(ctx); return err },
	} {
		err := f()
		var pe *enrich.Error
		if !asErr(err, &pe) || pe.Kind != enrich.KindUnauthorized || pe.Status != 401 || pe.Message != "invalid api key" {
			t.Fatalf("wrong key: %v", err)
		}
	}
	status, body, _ := call(t, srv.URL+ReportPath+"?ip="+ip, http.MethodGet, "")
	if status != 401 || strings.TrimSpace(body) != `{"status":401,"message":"invalid api key"}` {
		t.Fatalf("missing key: %d %s", status, body)
	}
	if err := s.SetInvalidKeyMode(true); err != nil {
		t.Fatal(err)
	}
	if _, err := good.Lookup(ctx, indicator(ip)); enrich.KindOf(err) != enrich.KindUnauthorized {
		t.Fatalf("invalid-key mode: %v", err)
	}
	if err := s.SetInvalidKeyMode(false); err != nil {
		t.Fatal(err)
	}
	if err := s.SetValidKeys(); err != nil { // empty: any non-empty key
		t.Fatal(err)
	}
	if _, err := bad.Lookup(ctx, indicator(ip)); err != nil {
		t.Fatalf("any key accepted: %v", err)
	}
	st := s.Stats()
	if st.Rejected != 4 || s.Calls(ip) != 3 {
		t.Fatalf("stats %+v, calls %d (rejected calls must not count per IP)", st, s.Calls(ip))
	}
}

func TestForce429For(t *testing.T) {
	clk := newClock()
	s := New(Options{Force429For: 2500 * time.Millisecond, Now: clk.Now})
	srv, c := start(t, s, key)
	ctx := context.Background()
	ip := findIP(t, found)
	_, err := c.Lookup(ctx, indicator(ip))
	var pe *enrich.Error
	if !asErr(err, &pe) || pe.Kind != enrich.KindRateLimited || pe.RetryAfter != 3*time.Second {
		t.Fatalf("forced 429: %v", err)
	}
	// Even without a key.
	if status, _, h := call(t, srv.URL+AccountPath, http.MethodPost, ""); status != 429 || h.Get("Retry-After") != "3" {
		t.Fatalf("forced 429 without key: %d", status)
	}
	clk.Advance(2500 * time.Millisecond)
	if _, err := c.Lookup(ctx, indicator(ip)); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	// Through the admin API.
	status, body, _ := post(t, srv.URL+"/_sim/config", `{"force_429_for":"1s"}`)
	if status != 200 || !strings.Contains(body, `"force_429_for":"1s"`) {
		t.Fatalf("admin config: %d %s", status, body)
	}
	if _, err := c.Lookup(ctx, indicator(ip)); enrich.KindOf(err) != enrich.KindRateLimited {
		t.Fatalf("after admin force: %v", err)
	}
	if err := s.Force429For(0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup(ctx, indicator(ip)); err != nil {
		t.Fatalf("window ended: %v", err)
	}
	if st := s.Stats(); st.RateLimited != 3 || st.Lookups != 2 || s.Calls(ip) != 2 {
		t.Fatalf("forced 429s are not lookups: %+v calls %d", st, s.Calls(ip))
	}
}

func post(t *testing.T, url, body string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestCountersAndAdminAPI(t *testing.T) {
	s := New(Options{ValidKeys: []string{key}})
	srv, c := start(t, s, key)
	_, bad := start(t, s, "nope")
	ctx := context.Background()
	ip := findIP(t, func(p Profile) bool { return found(p) && netip.MustParseAddr(p.IP).Is4() })
	for range 3 {
		if _, err := c.Lookup(ctx, indicator(ip)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Lookup(ctx, indicator("::ffff:"+ip)); err != nil {
		t.Fatal(err)
	}
	_, _ = c.Lookup(ctx, indicator(nthIP(2)))
	_, _ = bad.Lookup(ctx, indicator(ip))
	_, _ = c.Account(ctx)

	if got := s.Calls("::ffff:" + ip); got != 4 {
		t.Fatalf("Calls by another spelling: %d", got)
	}
	st := s.Stats()
	want := Stats{Total: 7, Lookups: 5, Answered: 5, AccountChecks: 1, Rejected: 1, QuotaUsed: 5, DistinctIPs: 2, MaxCallsPerIP: 4}
	if p, _ := CriminalIPProfile(nthIP(2)); p.NotFound {
		want.NotFound = 1
	}
	if st != want {
		t.Fatalf("stats\n got %+v\nwant %+v", st, want)
	}

	status, body, _ := call(t, srv.URL+"/_sim/stats", http.MethodGet, "")
	var fromAPI Stats
	if err := json.Unmarshal([]byte(body), &fromAPI); status != 200 || err != nil || fromAPI != want {
		t.Fatalf("GET /_sim/stats: %d %s %v", status, body, err)
	}
	if !strings.Contains(body, `"distinct_ips":2`) || !strings.Contains(body, `"max_calls_per_ip":4`) {
		t.Fatalf("stats JSON names: %s", body)
	}
	status, body, _ = call(t, srv.URL+"/_sim/calls?ip="+ip, http.MethodGet, "")
	if status != 200 || body != fmt.Sprintf(`{"calls":4,"ip":%q}`+"\n", ip) {
		t.Fatalf("GET /_sim/calls: %d %s", status, body)
	}
	if status, _, _ = call(t, srv.URL+"/_sim/calls?ip=bogus", http.MethodGet, ""); status != 400 {
		t.Fatalf("calls with a bad ip: %d", status)
	}
	if status, _, _ = call(t, srv.URL+"/_sim/reset", http.MethodGet, ""); status != 405 {
		t.Fatalf("GET reset: %d", status)
	}
	if status, _, _ = call(t, srv.URL+"/_sim/nope", http.MethodGet, ""); status != 404 {
		t.Fatalf("unknown admin endpoint: %d", status)
	}

	// Config patch.
	status, body, _ = post(t, srv.URL+"/_sim/config", `{"latency":"5ms","jitter":2,"error_rate":0.25,"rate_limit":100,"daily_quota":50,"valid_keys":["a","b"],"invalid_key_mode":false,"seed":7}`)
	if status != 200 {
		t.Fatalf("POST config: %d %s", status, body)
	}
	o := s.Options()
	if o.Latency != 5*time.Millisecond || o.Jitter != 2*time.Millisecond || o.ErrorRate != 0.25 || o.RateLimit != 100 ||
		o.DailyQuota != 50 || !slices.Equal(o.ValidKeys, []string{"a", "b"}) || o.Seed != 7 {
		t.Fatalf("options after patch: %+v", o)
	}
	var view map[string]any
	_, body, _ = call(t, srv.URL+"/_sim/config", http.MethodGet, "")
	if err := json.Unmarshal([]byte(body), &view); err != nil || view["latency"] != "5ms" || view["daily_quota"] != 50.0 {
		t.Fatalf("GET config: %s", body)
	}
	for _, bad := range []string{`{"error_rate":2}`, `{"latency":"-1s"}`, `{"latency":"soon"}`, `{"typo":1}`, `not json`} {
		if status, body, _ := post(t, srv.URL+"/_sim/config", bad); status != 400 || !strings.Contains(body, "error") {
			t.Errorf("patch %s: %d %s", bad, status, body)
		}
	}
	if s.Options().ErrorRate != 0.25 {
		t.Fatal("a rejected patch changed the knobs")
	}

	// Reset clears counters and keeps knobs.
	status, body, _ = post(t, srv.URL+"/_sim/reset", ``)
	if status != 200 || s.Stats() != (Stats{}) || s.Calls(ip) != 0 || s.Options().DailyQuota != 50 {
		t.Fatalf("reset: %d %s %+v", status, body, s.Stats())
	}
	// Admin calls are not API calls.
	if s.Stats().Total != 0 {
		t.Fatal("admin requests counted")
	}
}

func TestRoutes(t *testing.T) {
	s := New(Options{})
	srv := httptest.NewServer(s)
	defer srv.Close()
	if status, body, _ := call(t, srv.URL+"/v1/ip/data?ip=1.2.3.4", http.MethodGet, key); status != 404 || !strings.Contains(body, `"status":404`) {
		t.Fatalf("unknown path: %d %s", status, body)
	}
	if status, _, h := call(t, srv.URL+AccountPath, http.MethodGet, key); status != 405 || h.Get("Allow") != "POST" {
		t.Fatalf("GET user/me: %d", status)
	}
	if status, _, _ := call(t, srv.URL+ReportPath+"?ip=1.2.3.4", http.MethodPost, key); status != 405 {
		t.Fatalf("POST report: %d", status)
	}
}

func TestConcurrentUse(t *testing.T) {
	s := New(Options{ErrorRate: 0.1, RateLimit: 1e6, DailyQuota: 1e6, Jitter: time.Millisecond})
	_, c := start(t, s, key)
	var wg sync.WaitGroup
	for g := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				_, _ = c.Lookup(context.Background(), indicator(nthIP(g*25+i)))
				if i%10 == 0 {
					_ = s.SetErrorRate(0.1)
					_ = s.Stats()
				}
			}
		}()
	}
	wg.Wait()
	st := s.Stats()
	if st.Lookups != 500 || st.Answered+st.Errors != 500 || st.DistinctIPs != 500 {
		t.Fatalf("stats %+v", st)
	}
}

func TestMaxTrackedIPs(t *testing.T) {
	s := New(Options{MaxTrackedIPs: 2})
	statuses(s, 5)
	if st := s.Stats(); st.DistinctIPs != 2 || st.UntrackedCalls != 3 || st.Lookups != 5 {
		t.Fatalf("stats %+v", st)
	}
}

func TestProfileDeterministic(t *testing.T) {
	a, _ := CriminalIPProfile("::ffff:198.51.100.7")
	b, _ := CriminalIPProfile("198.51.100.7")
	if !reflect.DeepEqual(a, b) || a.IP != "198.51.100.7" {
		t.Fatalf("spellings differ: %+v %+v", a, b)
	}
	if _, ok := CriminalIPProfile("nope"); ok {
		t.Fatal("profile for a non-address")
	}
	in, out, tags := CriminalIPVerdict("nope")
	if in != "" || out != "" || tags != nil {
		t.Fatal("verdict for a non-address")
	}
	// Anonymous VPN implies VPN, and every category maps to a tag the flags already gave.
	for i := range 5000 {
		p, _ := CriminalIPProfile(nthIP(i))
		if slices.Contains(p.Flags, "is_anonymous_vpn") && !slices.Contains(p.Flags, "is_vpn") {
			t.Fatalf("%s: anonymous vpn without vpn", p.IP)
		}
		if len(p.Ports) == 0 && !p.NotFound {
			t.Fatalf("%s: no ports", p.IP)
		}
	}
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(buildReport(&a, 1, time.Unix(0, 0)))
	if !json.Valid(buf.Bytes()) {
		t.Fatal("invalid report JSON")
	}
}
