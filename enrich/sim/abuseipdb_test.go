package sim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers/abuseipdb"
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// dialectServer serves d with opts (the test key accepted, the test clock) and returns its URL.
func dialectServer(t *testing.T, d Dialect, opts Options) (*API, string) {
	t.Helper()
	if opts.ValidKeys == nil {
		opts.ValidKeys = []string{key}
	}
	if opts.Now == nil {
		opts.Now = newClock().Now
	}
	api := NewAPI(d, opts)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return api, srv.URL
}

func abuseClient(t *testing.T, url string) *abuseipdb.Client {
	t.Helper()
	c, err := abuseipdb.New(&abuseipdb.Config{Config: providerhttp.Config{APIKey: config.Secret(key), BaseURL: url, MaxBodyBytes: 1 << 20}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rawCall sends a GET (or method) with one header and returns status, body and headers.
func rawCall(t *testing.T, method, url, header, value string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if header != "" {
		req.Header.Set(header, value)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// classShare is a count over a total, 0 for an empty class.
func classShare(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}

func within(v, lo, hi int) bool { return v >= lo && v <= hi }

type abuseTally struct{ n, reported, whitelisted int }

func TestAbuseIPDBDistributions(t *testing.T) {
	_, url := dialectServer(t, AbuseIPDB{}, Options{})
	c := abuseClient(t, url)
	tally := map[Class]*abuseTally{ClassClean: {}, ClassSuspect: {}, ClassHostile: {}, ClassService: {}}
	const n = 2000
	for i := range n {
		ip := nthIP(i)
		truth, _ := TruthOf(ip)
		res, err := c.Lookup(context.Background(), indicator(ip))
		if err != nil {
			t.Fatalf("%s: %v", ip, err)
		}
		var body struct{ Data abuseCheck }
		if err := json.Unmarshal(res.Raw, &body); err != nil {
			t.Fatalf("%s: %v", ip, err)
		}
		d := &body.Data
		tl := tally[truth.Class]
		tl.n++
		if d.IsWhitelisted {
			tl.whitelisted++
		} else if d.TotalReports > 0 {
			tl.reported++
		}
		if !abuseInBand(truth.Class, d) {
			t.Errorf("%s (%s): out of the documented band: %+v", ip, truth.Class, d)
		}
		checkAbuseResult(t, ip, truth, d, res)
		if q := res.Quota; q == nil || q.Limit != UnmeteredAllowance || q.Remaining != UnmeteredAllowance-int64(i+1) {
			t.Fatalf("%s: quota report %+v after %d lookups", ip, q, i+1)
		}
	}
	for class, tl := range tally {
		t.Logf("%s: %d addresses, %d reported, %d whitelisted", class, tl.n, tl.reported, tl.whitelisted)
	}
	for _, c := range []struct {
		class  Class
		got    int
		lo, hi float64
	}{
		{ClassHostile, tally[ClassHostile].reported, 0.65, 0.95},
		{ClassSuspect, tally[ClassSuspect].reported, 0.30, 0.50},
		{ClassClean, tally[ClassClean].reported, 0.01, 0.10},
		{ClassService, tally[ClassService].whitelisted, 0.25, 0.75},
		{ClassService, tally[ClassService].reported, 0, 0},
	} {
		if s := classShare(c.got, tally[c.class].n); s < c.lo || s > c.hi {
			t.Errorf("%s: share %.3f outside %.2f-%.2f", c.class, s, c.lo, c.hi)
		}
	}
}

// abuseInBand restates the documented ranges of one answer.
func abuseInBand(class Class, d *abuseCheck) bool {
	conf, reports, users := d.AbuseConfidenceScore, d.TotalReports, d.NumDistinctUsers
	switch {
	case d.IsWhitelisted:
		return class == ClassService && conf == 0 && within(reports, 0, 20) && users <= reports
	case reports == 0:
		return conf == 0 && users == 0 && d.LastReportedAt == nil
	case d.LastReportedAt == nil || users > reports || users < 1:
		return false
	}
	switch class {
	case ClassHostile:
		return within(conf, 60, 100) && within(reports, 5, 400) && within(users, 2, 60)
	case ClassSuspect:
		return within(conf, 10, 60) && within(reports, 1, 30)
	case ClassClean:
		return within(conf, 0, 15) && within(reports, 1, 3)
	}
	return false
}

// checkAbuseResult checks that the client's Result follows from the body and the truth.
func checkAbuseResult(t *testing.T, ip string, truth *Truth, d *abuseCheck, res *enrich.Result) {
	t.Helper()
	want := enrich.VerdictBenign
	switch {
	case d.IsWhitelisted:
	case d.TotalReports == 0:
		want = event.VerdictUnrated
	case d.AbuseConfidenceScore >= 75:
		want = enrich.VerdictMalicious
	case d.AbuseConfidenceScore >= 25:
		want = enrich.VerdictSuspicious
	}
	n := networkOf(truth, "abuseipdb:network")
	if res.Verdict != want || d.IsTor != truth.Tagged("is_tor") || slices.Contains(res.Tags, "tor") != d.IsTor ||
		res.CountryISO != strings.ToUpper(n.cc) || res.ISP != n.org || d.UsageType != abuseUsage(truth) {
		t.Errorf("%s: result %+v from %+v", ip, res, d)
	}
	if d.UsageType == "Data Center/Web Hosting/Transit" && !truth.Tagged("is_hosting") && !truth.Tagged("is_cloud") {
		t.Errorf("%s: hosting usage without the flag", ip)
	}
}

func TestAbuseIPDBDeterministic(t *testing.T) {
	bodies := func() []string {
		_, url := dialectServer(t, AbuseIPDB{}, Options{})
		var out []string
		for i := range 300 {
			_, body, _ := rawCall(t, http.MethodGet, url+AbuseIPDBCheckPath+"?ipAddress="+nthIP(i), "Key", key)
			out = append(out, body)
		}
		return out
	}
	if a, b := bodies(), bodies(); !slices.Equal(a, b) {
		t.Fatal("two simulators gave different answers")
	}
}

func TestAbuseIPDBOutcomes(t *testing.T) {
	hostile := findIP(t, func(p Profile) bool { tr, _ := TruthOf(p.IP); return tr.Class == ClassHostile })
	check := AbuseIPDBCheckPath + "?ipAddress=" + hostile
	midnight := strconv.FormatInt(time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC).Unix(), 10)
	tests := []struct {
		name, path, method, header, key string
		opts                            Options
		first                           bool // send one lookup before the one checked
		status                          int
		body                            string // exact, or "~substring"
		headers                         map[string]string
	}{
		{name: "answer", path: check, status: 200, body: `~"ipAddress":"` + hostile + `"`,
			headers: map[string]string{"X-RateLimit-Limit": "1000000", "X-RateLimit-Remaining": "999999", "X-RateLimit-Reset": midnight}},
		{name: "key as query parameter", path: check + "&key=" + key, header: "-", status: 200, body: `~"data"`},
		{name: "quota spent", path: check, opts: Options{DailyQuota: 1}, first: true, status: 429,
			body:    `{"errors":[{"detail":"Daily rate limit of 1 requests exceeded for this endpoint. See headers for additional details.","status":429}]}`,
			headers: map[string]string{"X-RateLimit-Limit": "1", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": midnight, "Retry-After": "50400"}},
		{name: "forced 429", path: check, opts: Options{Force429For: time.Minute}, status: 429,
			body:    `{"errors":[{"detail":"Too Many Attempts.","status":429}]}`,
			headers: map[string]string{"Retry-After": "60", "X-RateLimit-Remaining": "1000000", "X-RateLimit-Reset": midnight}},
		{name: "rate limited", path: check, opts: Options{RateLimit: 0.01}, first: true, status: 429, body: `~Too Many Attempts.`,
			headers: map[string]string{"Retry-After": "100", "X-RateLimit-Limit": "1000000"}},
		{name: "rejected key", path: check, key: "wrong", status: 401,
			body: `{"errors":[{"detail":"Authentication failed. Your API key is either missing, incorrect, or revoked. Note: The APIv2 key differs from the APIv1 key.","status":401}]}`},
		{name: "no key", path: check, header: "-", status: 401, body: `~Authentication failed`},
		{name: "server error", path: check, opts: Options{ErrorRate: 1}, status: 500, body: `~{"errors":[{"detail":`},
		{name: "bad address", path: AbuseIPDBCheckPath + "?ipAddress=999.1.1.1", status: 422,
			body: `{"errors":[{"detail":"The ip address must be a valid IPv4 or IPv6 address (e.g. 8.8.8.8 or 2001:4860:4860::8888).","status":422,"source":{"parameter":"ipAddress"}}]}`},
		{name: "no address", path: AbuseIPDBCheckPath, status: 422, body: `~"detail":"The ip address field is required."`},
		{name: "unknown route", path: "/api/v2/blacklist", status: 404, body: `~{"errors":[{"detail":`},
		{name: "wrong method", path: check, method: http.MethodPost, status: 405, body: `~"status":405`, headers: map[string]string{"Allow": "GET"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, url := dialectServer(t, AbuseIPDB{}, tt.opts)
			header, k := "Key", key
			if tt.header == "-" {
				header = ""
			}
			if tt.key != "" {
				k = tt.key
			}
			method := orDefault(tt.method, http.MethodGet)
			if tt.first {
				rawCall(t, method, url+AbuseIPDBCheckPath+"?ipAddress="+nthIP(1), header, k)
			}
			status, body, h := rawCall(t, method, url+tt.path, header, k)
			checkRaw(t, status, body, h, tt.status, tt.body, tt.headers)
		})
	}
}

// checkRaw compares a raw answer; want is the exact body (less its newline), or a
// substring after "~".
func checkRaw(t *testing.T, status int, body string, h http.Header, wantStatus int, want string, headers map[string]string) {
	t.Helper()
	body = strings.TrimSuffix(body, "\n")
	if sub, ok := strings.CutPrefix(want, "~"); (ok && !strings.Contains(body, sub)) || (!ok && body != want) || status != wantStatus {
		t.Errorf("got %d %s\nwant %d %s", status, body, wantStatus, want)
	}
	if !json.Valid([]byte(body)) || h.Get("Content-Type") != "application/json" {
		t.Errorf("not a JSON answer: %s %q", h.Get("Content-Type"), body)
	}
	for k, v := range headers {
		if h.Get(k) != v {
			t.Errorf("header %s: got %q, want %q", k, h.Get(k), v)
		}
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// TestAbuseIPDBThroughClient checks the failures the client sees from the dialect.
func TestAbuseIPDBThroughClient(t *testing.T) {
	ip := indicator(nthIP(3))
	for _, tt := range []struct {
		name  string
		opts  Options
		first bool
		kind  enrich.ErrorKind
	}{
		{"quota spent", Options{DailyQuota: 1}, true, enrich.KindQuotaExhausted},
		{"forced 429", Options{Force429For: time.Hour}, false, enrich.KindRateLimited},
		{"rejected key", Options{InvalidKeyMode: true}, false, enrich.KindUnauthorized},
		{"server error", Options{ErrorRate: 1}, false, enrich.KindTransient},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, url := dialectServer(t, AbuseIPDB{}, tt.opts)
			c := abuseClient(t, url)
			if tt.first {
				_, _ = c.Lookup(context.Background(), indicator(nthIP(4)))
			}
			_, err := c.Lookup(context.Background(), ip)
			var pe *enrich.Error
			if !asErr(err, &pe) || pe.Kind != tt.kind || (pe.Status == 429 && pe.RetryAfter <= 0) {
				t.Fatalf("got %v, want %s", err, tt.kind)
			}
			if strings.Contains(err.Error(), key) {
				t.Fatalf("key in error: %v", err)
			}
		})
	}
}
