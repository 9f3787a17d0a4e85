package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers/greynoise"
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// The dt* helpers are shared by the dialect tests of GreyNoise, OTX and InternetDB.

const dtKey = "dialect-test-key"

// dtNow is the simulators' fixed clock: answers are a function of the address and the clock.
func dtNow() time.Time { return time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC) }

// dtServe serves d with opts (the test key and the fixed clock added) and returns its URL.
func dtServe(t *testing.T, d Dialect, opts Options) (*API, string) {
	t.Helper()
	opts.ValidKeys, opts.Now = []string{dtKey}, dtNow
	api := NewAPI(d, opts)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return api, srv.URL
}

// dtAddrs is a deterministic spread of n addresses; every tenth is IPv6 when v6 is set.
func dtAddrs(n int, v6 bool) []string {
	out := make([]string, 0, n)
	for i := range n {
		if v6 && i%10 == 9 {
			out = append(out, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)}).String())
			continue
		}
		out = append(out, netip.AddrFrom4([4]byte{byte(1 + i%197), byte(i >> 8), byte(i*29 + 3), byte(i*7 + 11)}).String())
	}
	return out
}

func dtIndicator(ip string) event.Indicator {
	a := netip.MustParseAddr(ip)
	typ := event.IPv4
	if a.Is6() {
		typ = event.IPv6
	}
	return event.Indicator{Type: typ, Value: a.String(), Addr: a}
}

// dtGet sends one request and returns the status, headers and body.
func dtGet(t *testing.T, method, url string, header map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// dtObject decodes a JSON object body.
func dtObject(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, body)
	}
	return m
}

// dtKeys are an object's keys, sorted.
func dtKeys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

// dtFind returns the first address of dtAddrs(5000, v6) whose truth satisfies pred.
func dtFind(t *testing.T, v6 bool, pred func(*Truth) bool) string {
	t.Helper()
	for _, ip := range dtAddrs(5000, v6) {
		if tr, _ := TruthOf(ip); pred(tr) {
			return ip
		}
	}
	t.Fatal("no address matches")
	return ""
}

// dtShare is a/b, 0 when b is 0.
func dtShare(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func greyNoiseClient(t *testing.T, url string) *greynoise.Client {
	t.Helper()
	c, err := greynoise.New(&greynoise.Config{Config: providerhttp.Config{APIKey: config.Secret(dtKey), BaseURL: url}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGreyNoiseThroughClient(t *testing.T) {
	_, url := dtServe(t, GreyNoise{}, Options{})
	c := greyNoiseClient(t, url)
	type tally struct{ n, noise, malicious, scanner int }
	byClass := map[Class]*tally{}
	for _, ip := range dtAddrs(2000, false) {
		tr, _ := TruthOf(ip)
		res, err := c.Lookup(context.Background(), dtIndicator(ip))
		if err != nil {
			t.Fatalf("%s: %v", ip, err)
		}
		s, known := greyNoiseSees(tr)
		tl := byClass[tr.Class]
		if tl == nil {
			tl = &tally{}
			byClass[tr.Class] = tl
		}
		tl.n++
		if tr.Tagged("is_scanner") {
			tl.scanner++
		}
		if s.noise {
			tl.noise++
		}
		if s.classification == "malicious" {
			tl.malicious++
		}
		want := enrich.VerdictNotFound
		switch {
		case !known:
		case s.riot || s.classification == "benign":
			want = enrich.VerdictBenign
		case s.classification == "malicious":
			want = enrich.VerdictMalicious
		default:
			want = enrich.VerdictSuspicious
		}
		if res.Verdict != want {
			t.Errorf("%s (%s): verdict %s, want %s (%s)", ip, tr.Class, res.Verdict, want, res.Detail)
		}
		if s.riot && res.Service != tr.Service {
			t.Errorf("%s: service %q, want %q", ip, res.Service, tr.Service)
		}
		if known && !slices.Equal(dtKeys(dtObject(t, res.Raw)), []string{"classification", "ip", "last_seen", "link", "message", "name", "noise", "riot"}) {
			t.Errorf("%s: body %s", ip, res.Raw)
		}
	}
	hostile, suspect, clean, service := byClass[ClassHostile], byClass[ClassSuspect], byClass[ClassClean], byClass[ClassService]
	t.Logf("by class: hostile %+v suspect %+v clean %+v service %+v", *hostile, *suspect, *clean, *service)
	if s := dtShare(hostile.noise, hostile.n); hostile.n < 100 || s < 0.55 || s > 0.8 || hostile.malicious != hostile.noise {
		t.Errorf("hostile: %d of %d noise (%.2f), want about 64%%, all malicious", hostile.noise, hostile.n, s)
	}
	if s := dtShare(suspect.malicious, suspect.noise); suspect.noise != suspect.scanner || suspect.noise < 30 || s < 0.12 || s > 0.5 {
		t.Errorf("suspect: %d noise of %d scanners, %.2f malicious (want 30%%)", suspect.noise, suspect.scanner, s)
	}
	if clean.noise != clean.scanner || clean.malicious != 0 {
		t.Errorf("clean: %+v", *clean)
	}
	if service.n < 20 || service.noise != 0 {
		t.Errorf("service: %+v", *service)
	}
}

// dtSameAnswers checks two fresh simulators answer every address byte for byte the same.
func dtSameAnswers(t *testing.T, d Dialect, path func(ip string) string, header map[string]string) {
	t.Helper()
	_, a := dtServe(t, d, Options{})
	_, b := dtServe(t, d, Options{})
	for _, ip := range dtAddrs(300, true) {
		sa, _, ba := dtGet(t, http.MethodGet, a+path(ip), header)
		sb, _, bb := dtGet(t, http.MethodGet, b+path(ip), header)
		if sa != sb || !bytes.Equal(ba, bb) {
			t.Fatalf("%s: %d %s\nthen %d %s", ip, sa, ba, sb, bb)
		}
	}
}

func TestGreyNoiseDeterministic(t *testing.T) {
	dtSameAnswers(t, GreyNoise{}, func(ip string) string { return GreyNoiseCommunityPath + ip }, map[string]string{"key": dtKey})
}

// dtShape is one request and what its answer must look like.
type dtShape struct {
	name   string
	opts   Options
	before int // lookups of another address first (to spend a quota)
	method string
	path   string
	header map[string]string
	status int
	ctype  string
	retry  bool              // a Retry-After header
	keys   []string          // the JSON object's keys, sorted
	fields map[string]string // string fields and their values
	text   string            // a plain-text body
}

func dtCheckShapes(t *testing.T, d Dialect, warmPath string, shapes []dtShape) {
	t.Helper()
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			_, url := dtServe(t, d, s.opts)
			for range s.before {
				dtGet(t, http.MethodGet, url+warmPath, s.header)
			}
			status, h, body := dtGet(t, dtOr(s.method, http.MethodGet), url+s.path, s.header)
			if status != s.status || h.Get("Content-Type") != dtOr(s.ctype, "application/json") || (h.Get("Retry-After") != "") != s.retry {
				t.Fatalf("got %d %q Retry-After %q: %s", status, h.Get("Content-Type"), h.Get("Retry-After"), body)
			}
			if s.text != "" {
				if string(bytes.TrimSpace(body)) != s.text {
					t.Fatalf("body %q, want %q", body, s.text)
				}
				return
			}
			m := dtObject(t, body)
			if s.keys != nil && !slices.Equal(dtKeys(m), s.keys) {
				t.Errorf("keys %v, want %v", dtKeys(m), s.keys)
			}
			for k, v := range s.fields {
				if m[k] != v {
					t.Errorf("%s = %v, want %q", k, m[k], v)
				}
			}
		})
	}
}

func dtOr(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

func TestGreyNoiseOutcomeShapes(t *testing.T) {
	unknown := dtFind(t, false, func(tr *Truth) bool { _, ok := greyNoiseSees(tr); return !ok })
	riot := dtFind(t, false, func(tr *Truth) bool { return tr.Class == ClassService })
	key := map[string]string{"key": dtKey}
	limit := []string{"message", "plan", "plan_url", "rate-limit"}
	body := []string{"classification", "ip", "last_seen", "link", "message", "name", "noise", "riot"}
	dtCheckShapes(t, GreyNoise{}, GreyNoiseCommunityPath+riot, []dtShape{
		{name: "RIOT", path: GreyNoiseCommunityPath + riot, header: key, status: 200, keys: body,
			fields: map[string]string{"classification": "benign", "link": "https://viz.greynoise.io/riot/" + riot, "message": "Success"}},
		{name: "keyless lookup", path: GreyNoiseCommunityPath + riot, status: 200, keys: body},
		{name: "not observed", path: GreyNoiseCommunityPath + unknown, header: key, status: 404, keys: []string{"ip", "message", "noise", "riot"},
			fields: map[string]string{"ip": unknown, "message": "IP not observed scanning the internet or contained in RIOT data set."}},
		{name: "IPv6", path: GreyNoiseCommunityPath + "2001:db8::1", header: key, status: 400, keys: []string{"message"},
			fields: map[string]string{"message": "Request is not a valid routable IPv4 address"}},
		{name: "not an address", path: GreyNoiseCommunityPath + "nope", header: key, status: 400, keys: []string{"message"}},
		{name: "rejected key", opts: Options{InvalidKeyMode: true}, path: GreyNoiseCommunityPath + riot, header: key, status: 401,
			fields: map[string]string{"message": "Unauthorized. Please check your API key."}},
		{name: "rate limited", opts: Options{Force429For: time.Minute}, path: GreyNoiseCommunityPath + riot, header: key, status: 429, retry: true, keys: limit,
			fields: map[string]string{"plan": "unauthenticated", "rate-limit": "100-lookups/day"}},
		{name: "quota spent", opts: Options{DailyQuota: 1}, before: 1, path: GreyNoiseCommunityPath + unknown, header: key, status: 429, retry: true, keys: limit},
		{name: "server error", opts: Options{ErrorRate: 1}, path: GreyNoiseCommunityPath + riot, header: key, status: 500,
			fields: map[string]string{"message": "Encountered error while performing request"}},
		{name: "ping", path: GreyNoisePingPath, header: key, status: 200, keys: []string{"address", "expiration", "message", "offering"},
			fields: map[string]string{"message": "pong", "offering": "community", "expiration": "2026-12-31"}},
		{name: "ping without a key", path: GreyNoisePingPath, status: 401},
		{name: "unknown path", path: "/v2/noise/context/" + riot, header: key, status: 404, ctype: "text/plain; charset=utf-8", text: "404 page not found"},
		{name: "wrong method", method: http.MethodPost, path: GreyNoiseCommunityPath + riot, header: key, status: 405, ctype: "text/plain; charset=utf-8", text: "Method Not Allowed"},
	})
	// The client reads the shapes: the key check works against the simulator.
	_, url := dtServe(t, GreyNoise{}, Options{})
	if s, err := greyNoiseClient(t, url).CheckAccount(context.Background()); err != nil || s == "" {
		t.Fatalf("CheckAccount: %q %v", s, err)
	}
}
