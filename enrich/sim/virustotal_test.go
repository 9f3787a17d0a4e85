package sim

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/enrich/providers/virustotal"
	"github.com/threatpipe/threatpipe/pipeline/config"
)

func vtClient(t *testing.T, url string) *virustotal.Client {
	t.Helper()
	c, err := virustotal.New(&virustotal.Config{Config: providerhttp.Config{APIKey: config.Secret(key), BaseURL: url, MaxBodyBytes: 1 << 20}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type vtTally struct{ n, detected int }

func TestVirusTotalDistributions(t *testing.T) {
	_, url := dialectServer(t, VirusTotal{}, Options{})
	c := vtClient(t, url)
	tally := map[Class]*vtTally{ClassClean: {}, ClassSuspect: {}, ClassHostile: {}, ClassService: {}}
	const n = 2000
	notFound := 0
	for i := range n {
		ip := nthIP(i)
		truth, _ := TruthOf(ip)
		res, err := c.Lookup(context.Background(), indicator(ip))
		if err != nil {
			t.Fatalf("%s: %v", ip, err)
		}
		if res.Verdict == enrich.VerdictNotFound {
			notFound++
			continue
		}
		var body struct{ Data vtObject }
		if err := json.Unmarshal(res.Raw, &body); err != nil {
			t.Fatalf("%s: %v", ip, err)
		}
		a := &body.Data.Attributes
		m, s := a.LastAnalysisStats["malicious"], a.LastAnalysisStats["suspicious"]
		tl := tally[truth.Class]
		tl.n++
		if vtDetectedBand(truth.Class, m) {
			tl.detected++
		}
		if !vtInBand(truth.Class, a) {
			t.Errorf("%s (%s): out of the documented band: stats %v reputation %d votes %v", ip, truth.Class, a.LastAnalysisStats, a.Reputation, a.TotalVotes)
		}
		checkVTResult(t, ip, truth, m, s, res)
	}
	for class, tl := range tally {
		t.Logf("%s: %d answered, %d detected", class, tl.n, tl.detected)
	}
	if s := classShare(notFound, n); s < 0.005 || s > 0.04 {
		t.Errorf("not-found share %.3f, documented 0.02", s)
	}
	for _, c := range []struct {
		class  Class
		lo, hi float64
	}{{ClassHostile, 0.60, 0.80}, {ClassSuspect, 0.30, 0.50}, {ClassClean, 0.005, 0.07}, {ClassService, 0, 0.30}} {
		if s := classShare(tally[c.class].detected, tally[c.class].n); s < c.lo || s > c.hi {
			t.Errorf("%s: detected share %.3f outside %.2f-%.2f", c.class, s, c.lo, c.hi)
		}
	}
}

// vtDetectedBand says whether m is the class's "detected" draw (hostile 3-15, others 1+).
func vtDetectedBand(class Class, m int) bool {
	if class == ClassHostile {
		return m >= 3
	}
	return m >= 1
}

// vtInBand restates the documented ranges of one answer.
func vtInBand(class Class, a *vtAttributes) bool {
	st := a.LastAnalysisStats
	m, s, h := st["malicious"], st["suspicious"], st["harmless"]
	if m+s+h+st["undetected"] != vtEngineCount || len(a.LastAnalysisResults) != vtEngineCount || !within(h, 60, 70) || st["timeout"] != 0 {
		return false
	}
	votes := a.TotalVotes
	switch class {
	case ClassHostile:
		return (within(m, 3, 15) && within(s, 0, 2) || within(m, 0, 1) && s == 0) &&
			within(a.Reputation, -50, -5) && within(votes["malicious"], 0, 10)
	case ClassSuspect:
		return (m == 0 || within(m, 1, 3)) && s == 0 && within(a.Reputation, -10, 0)
	case ClassClean:
		return within(m, 0, 1) && s == 0 && a.Reputation == 0 && votes["malicious"] == 0
	case ClassService:
		return within(m, 0, 1) && s == 0 && within(a.Reputation, 1, 20) && within(votes["harmless"], 1, 20)
	}
	return false
}

// checkVTResult checks that the client's Result follows the normalisation and the truth.
func checkVTResult(t *testing.T, ip string, truth *Truth, m, s int, res *enrich.Result) {
	t.Helper()
	want := enrich.VerdictBenign
	switch {
	case m >= 3:
		want = enrich.VerdictMalicious
	case m >= 1 || s >= 2:
		want = enrich.VerdictSuspicious
	}
	score := int(math.Round(100 * (1 - math.Pow(0.75, float64(m)+0.5*float64(s)))))
	n := networkOf(truth, "virustotal:network")
	if res.Verdict != want || res.Score != score || res.ASNumber != n.asn || res.ASOrganization != n.asName ||
		res.CountryISO != strings.ToUpper(n.cc) || len(res.Tags) != 0 || !strings.HasPrefix(res.Detail, "VirusTotal: ") {
		t.Errorf("%s: result %+v from m=%d s=%d network %+v", ip, res, m, s, n)
	}
	if !truth.CIP.NotFound && (n.asn != truth.CIP.ASNumber || n.cc != truth.CIP.Country) {
		t.Errorf("%s: network %+v differs from Criminal IP's", ip, n)
	}
}

func TestVirusTotalDeterministic(t *testing.T) {
	bodies := func() []string {
		_, url := dialectServer(t, VirusTotal{}, Options{})
		var out []string
		for i := range 300 {
			_, body, _ := rawCall(t, http.MethodGet, url+VirusTotalIPPath+nthIP(i), "x-apikey", key)
			out = append(out, body)
		}
		return out
	}
	if a, b := bodies(), bodies(); !slices.Equal(a, b) {
		t.Fatal("two simulators gave different answers")
	}
}

func TestVirusTotalOutcomes(t *testing.T) {
	known := findIP(t, func(p Profile) bool { tr, _ := TruthOf(p.IP); return VirusTotal{}.Knows(tr) })
	unknown := findIP(t, func(p Profile) bool { tr, _ := TruthOf(p.IP); return !VirusTotal{}.Knows(tr) })
	lookup := VirusTotalIPPath + known
	tests := []struct {
		name, path, method, key string
		opts                    Options
		first                   bool // send one lookup before the one checked
		status                  int
		body                    string // exact, or "~substring"
		headers                 map[string]string
	}{
		{name: "answer", path: lookup, status: 200, body: `~{"data":{"id":"` + known + `","type":"ip_address","links":{"self":"https://www.virustotal.com/api/v3/ip_addresses/` + known + `"},"attributes":{`,
			headers: map[string]string{"X-RateLimit-Remaining": ""}},
		{name: "ipv6 answer", path: VirusTotalIPPath + "2001:db8::1", status: 200, body: `~"network":"2001:db8::/48"`},
		{name: "not found", path: VirusTotalIPPath + unknown, status: 404, body: `{"error":{"code":"NotFoundError","message":"IP address \"` + unknown + `\" not found"}}`},
		{name: "quota spent", path: lookup, opts: Options{DailyQuota: 1}, first: true, status: 429,
			body: `{"error":{"code":"QuotaExceededError","message":"Daily quota exceeded"}}`, headers: map[string]string{"Retry-After": "50400"}},
		{name: "forced 429", path: lookup, opts: Options{Force429For: time.Minute}, status: 429,
			body: `{"error":{"code":"QuotaExceededError","message":"Quota exceeded"}}`, headers: map[string]string{"Retry-After": "60"}},
		{name: "rate limited", path: lookup, opts: Options{RateLimit: 0.066}, first: true, status: 429, body: `~QuotaExceededError`,
			headers: map[string]string{"Retry-After": "16"}},
		{name: "rejected key", path: lookup, key: "wrong", status: 401, body: `{"error":{"code":"WrongCredentialsError","message":"Wrong API key"}}`},
		{name: "server error", path: lookup, opts: Options{ErrorRate: 1}, status: 503, body: `~{"error":{"code":"TransientError","message":`},
		{name: "bad address", path: VirusTotalIPPath + "999.1.1.1", status: 400, body: `{"error":{"code":"InvalidArgumentError","message":"\"999.1.1.1\" is not a valid IP address"}}`},
		{name: "sub-resource", path: lookup + "/comments", status: 404, body: `~"code":"NotFoundError"`},
		{name: "unknown route", path: "/api/v3/domains/example.com", status: 404, body: `~"code":"NotFoundError"`},
		{name: "wrong method", path: lookup, method: http.MethodDelete, status: 405, body: `~"code":"BadRequestError"`, headers: map[string]string{"Allow": "GET"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, url := dialectServer(t, VirusTotal{}, tt.opts)
			k, method := orDefault(tt.key, key), orDefault(tt.method, http.MethodGet)
			if tt.first {
				rawCall(t, method, url+VirusTotalIPPath+nthIP(1), "x-apikey", k)
			}
			status, body, h := rawCall(t, method, url+tt.path, "x-apikey", k)
			checkRaw(t, status, body, h, tt.status, tt.body, tt.headers)
		})
	}
}

// TestVirusTotalThroughClient checks what the client makes of the dialect's answers.
func TestVirusTotalThroughClient(t *testing.T) {
	unknown := findIP(t, func(p Profile) bool { tr, _ := TruthOf(p.IP); return !VirusTotal{}.Knows(tr) })
	_, url := dialectServer(t, VirusTotal{}, Options{})
	res, err := vtClient(t, url).Lookup(context.Background(), indicator(unknown))
	if err != nil || res.Verdict != enrich.VerdictNotFound || res.Score != 0 {
		t.Fatalf("unknown address: %+v %v", res, err)
	}
	for _, tt := range []struct {
		name  string
		opts  Options
		first bool
		kind  enrich.ErrorKind
	}{
		{"quota spent", Options{DailyQuota: 1}, true, enrich.KindRateLimited},
		{"forced 429", Options{Force429For: time.Hour}, false, enrich.KindRateLimited},
		{"rejected key", Options{InvalidKeyMode: true}, false, enrich.KindUnauthorized},
		{"server error", Options{ErrorRate: 1}, false, enrich.KindTransient},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, url := dialectServer(t, VirusTotal{}, tt.opts)
			c := vtClient(t, url)
			if tt.first {
				_, _ = c.Lookup(context.Background(), indicator(nthIP(4)))
			}
			_, err := c.Lookup(context.Background(), indicator(nthIP(3)))
			var pe *enrich.Error
			if !asErr(err, &pe) || pe.Kind != tt.kind || (pe.Status == 429 && pe.RetryAfter <= 0) {
				t.Fatalf("got %v, want %s", err, tt.kind)
			}
		})
	}
}
