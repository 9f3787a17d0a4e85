// Package sim simulates the threat-intel providers threatpipe talks to, for the embedded demo
// mode, benchmarks and integration tests: Criminal IP, AbuseIPDB, VirusTotal, GreyNoise,
// AlienVault OTX and Shodan InternetDB, each with its real paths, auth header, JSON shapes,
// error bodies and rate-limit headers (shared reference providers.md), and deterministic
// answers derived from one simulated reality per address (TruthOf), so the sources agree on
// some addresses and disagree on others.
//
// Server is an http.Handler that serves every provider under /<name>/ (a provider's base URL
// is the server's URL plus /<name>), and Criminal IP also at the root, as earlier versions
// did. Each provider is an API: the same engine (knobs for latency, errors, rate limits, quota
// and bad keys, changeable at runtime through methods or the admin API, and call counters)
// speaking the provider's Dialect. The engine's checks run in this order for every request:
//
//   - unknown path: 404; wrong method: 405 (each in the provider's error shape);
//   - latency (Latency plus a uniform 0..Jitter), or a StallFor window's end when later;
//   - Force429For window: 429 with Retry-After = seconds left;
//   - missing or unknown key, or InvalidKeyMode (keyed providers only): rejected;
//   - RateLimit (token bucket, burst = ceil(rate)): 429 with Retry-After in whole seconds;
//   - account checks answer here;
//   - lookups: ErrorRate: 500, drawn from a math/rand/v2 PCG seeded with Seed, so a given
//     sequence of requests fails the same way every run; ResetRate (same sequence): the
//     connection reset unanswered; GarbageRate (same sequence): HTTP 200 with a body that is
//     not JSON; DailyQuota spent: the provider's quota answer; an ip that is not an address:
//     the provider's bad-request answer; an address the provider does not know: its not-found
//     answer; otherwise its data. Both of the last two spend one unit of quota.
//
// The admin API of each provider is under /_sim/<name>/ (stats, calls?ip=, reset, config);
// /_sim/ alone addresses Criminal IP, and GET /_sim/providers lists every provider's counters.
package sim

import (
	"net/http"
	"strings"
)

// dialects lists the simulated providers; adding one is its dialect file plus one line here.
func dialects() []Dialect {
	return []Dialect{CriminalIP{}, AbuseIPDB{}, VirusTotal{}, GreyNoise{}, OTX{}, InternetDB{}}
}

// Server serves every simulated provider. Its embedded API is Criminal IP's, so the methods of
// the simulator's first version (Stats, Calls, Configure, ...) still address Criminal IP; Provider
// returns each of them.
type Server struct {
	*API
	apis  map[string]*API
	order []string
}

// New returns a simulator whose providers all start with opts (the same keys, latency, ...).
func New(opts Options) *Server {
	s := &Server{apis: make(map[string]*API)}
	for _, d := range dialects() {
		api := NewAPI(d, opts)
		s.apis[d.Name()] = api
		s.order = append(s.order, d.Name())
	}
	s.API = s.apis[CriminalIP{}.Name()]
	return s
}

// Provider returns the named provider's API, or nil.
func (s *Server) Provider(name string) *API { return s.apis[name] }

// Providers lists the simulated providers' names.
func (s *Server) Providers() []string { return append([]string(nil), s.order...) }

// Reset resets every provider.
func (s *Server) Reset() {
	for _, a := range s.apis {
		a.Reset()
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if rest, ok := strings.CutPrefix(path, AdminPrefix); ok {
		if rest == "providers" {
			s.providersStats(w, r)
			return
		}
		if name, sub, ok := strings.Cut(rest, "/"); ok && s.apis[name] != nil {
			s.apis[name].admin(w, r, sub)
			return
		}
		s.API.admin(w, r, rest)
		return
	}
	if name, rest, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/"); ok && s.apis[name] != nil {
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + rest
		r2.URL.RawPath = ""
		s.apis[name].ServeHTTP(w, r2)
		return
	}
	s.API.ServeHTTP(w, r)
}

func (s *Server) providersStats(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		WriteJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use GET"})
		return
	}
	out := make(map[string]Stats, len(s.apis))
	for name, a := range s.apis {
		out[name] = a.Stats()
	}
	WriteJSON(w, http.StatusOK, out)
}
