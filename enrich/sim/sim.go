// Package sim is a Criminal IP API simulator for the embedded demo mode, benchmarks and
// integration tests. Server is an http.Handler that answers GET /v1/asset/ip/report and
// POST /v1/user/me with the real response shapes and deterministic verdicts (see
// CriminalIPProfile), with knobs for latency, errors, rate limits, quota and bad keys that can
// be changed at runtime through methods or the admin API under /_sim/.
//
// Answer forms, in the order the checks run for every API request:
//
//   - unknown path: HTTP 404 {"status":404,"message":"not found"}; wrong method: HTTP 405;
//   - latency (Latency plus a uniform 0..Jitter) before anything else;
//   - Force429For window: HTTP 429, Retry-After = seconds left, {"status":429,...};
//   - missing or unknown x-api-key, or InvalidKeyMode: HTTP 401 {"status":401,"message":"invalid api key"};
//   - RateLimit (token bucket, burst = ceil(rate)): HTTP 429, Retry-After in whole seconds;
//   - report only: ErrorRate: HTTP 500 {"status":500,...}, drawn from a math/rand/v2 PCG seeded
//     with Seed, so a given sequence of requests fails the same way every run;
//   - report only: DailyQuota spent (successful lookups today, UTC): HTTP 200 with body
//     {"status":402,"message":"..."}, the in-body form third-party clients report for exhausted keys;
//   - report: an ip that is not an address: HTTP 200 {"status":400,...}; a not-found IP
//     (CriminalIPProfile): HTTP 200 {"status":404,"message":"..."}; otherwise HTTP 200 with the
//     full report and "status":200. Both 200 answers spend one unit of quota;
//   - user/me: {"status":200,"message":"api success","data":{...,"max_search":N}} where N is
//     the quota left today (DailyQuota - used), or 1,000,000 - used when unmetered.
package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Paths served.
const (
	ReportPath  = "/v1/asset/ip/report"
	AccountPath = "/v1/user/me"
	AdminPrefix = "/_sim/"
)

// UnmeteredAllowance is the max_search reported when DailyQuota is 0.
const UnmeteredAllowance = 1_000_000

// DefaultMaxTrackedIPs bounds the per-IP call counters.
const DefaultMaxTrackedIPs = 1 << 20

// Options are the simulator's knobs.
type Options struct {
	// Latency delays every API answer; Jitter adds a uniform random 0..Jitter on top.
	Latency time.Duration
	Jitter  time.Duration
	// ErrorRate is the fraction (0-1) of authenticated report lookups answered with HTTP 500.
	ErrorRate float64
	// RateLimit is requests per second across all API requests; 0 means unlimited.
	RateLimit float64
	// DailyQuota is successful lookups allowed per UTC day; 0 means unmetered.
	DailyQuota int64
	// ValidKeys are the accepted x-api-key values; empty accepts any non-empty key.
	ValidKeys []string
	// InvalidKeyMode rejects every key.
	InvalidKeyMode bool
	// Force429For answers HTTP 429 to everything for this long from New (or Configure).
	Force429For time.Duration
	// Seed seeds the error and jitter sequences.
	Seed uint64
	// MaxTrackedIPs bounds the per-IP counters (default DefaultMaxTrackedIPs); calls for
	// further IPs are counted in Stats.UntrackedCalls.
	MaxTrackedIPs int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Stats are the simulator's counters since New or the last Reset.
type Stats struct {
	Total          int64 `json:"total"`          // every API request (admin requests excluded)
	Lookups        int64 `json:"lookups"`        // authenticated report requests, whatever their answer
	Answered       int64 `json:"answered"`       // reports and not-found answers (quota-spending)
	NotFound       int64 `json:"not_found"`      // of Answered, body status 404
	AccountChecks  int64 `json:"account_checks"` // successful user/me answers
	Rejected       int64 `json:"rejected"`       // HTTP 401
	RateLimited    int64 `json:"rate_limited"`   // HTTP 429 (rate limit and Force429For)
	Errors         int64 `json:"errors"`         // HTTP 500 (ErrorRate)
	QuotaExceeded  int64 `json:"quota_exceeded"` // body status 402
	BadRequests    int64 `json:"bad_requests"`   // body status 400, 404/405 on unknown routes
	QuotaUsed      int64 `json:"quota_used"`     // successful lookups today
	DistinctIPs    int   `json:"distinct_ips"`   // IPs with at least one lookup
	MaxCallsPerIP  int64 `json:"max_calls_per_ip"`
	UntrackedCalls int64 `json:"untracked_calls"` // lookups not counted per IP (over MaxTrackedIPs)
}

// Server is the simulator. It is safe for concurrent use.
type Server struct {
	now func() time.Time

	mu            sync.Mutex
	opts          Options
	keys          map[string]bool
	errRNG        *rand.Rand
	jitterRNG     *rand.Rand
	tokens        float64
	tokensAt      time.Time
	force429Until time.Time
	quotaDay      string
	stats         Stats
	perIP         map[string]int64
}

// New returns a simulator configured by opts.
func New(opts Options) *Server {
	s := &Server{now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	opts.Now = nil
	if opts.MaxTrackedIPs <= 0 {
		opts.MaxTrackedIPs = DefaultMaxTrackedIPs
	}
	opts.ErrorRate = min(max(opts.ErrorRate, 0), 1)
	opts.RateLimit = max(opts.RateLimit, 0)
	opts.DailyQuota = max(opts.DailyQuota, 0)
	opts.Latency, opts.Jitter = max(opts.Latency, 0), max(opts.Jitter, 0)
	s.opts = opts
	s.setKeys(opts.ValidKeys)
	s.reseed()
	s.resetUsage()
	if opts.Force429For > 0 {
		s.force429Until = s.now().Add(opts.Force429For)
	}
	return s
}

func (s *Server) setKeys(keys []string) {
	s.opts.ValidKeys = append([]string(nil), keys...)
	s.keys = make(map[string]bool, len(keys))
	for _, k := range keys {
		if k != "" {
			s.keys[k] = true
		}
	}
}

func (s *Server) reseed() {
	s.errRNG = rand.New(rand.NewPCG(s.opts.Seed, 0x7468726561747069)) // "threatpi"
	s.jitterRNG = rand.New(rand.NewPCG(s.opts.Seed, 0x6a6974746572))  // "jitter"
}

// resetUsage clears counters, quota use and the rate bucket. Caller holds mu (or owns s).
func (s *Server) resetUsage() {
	s.stats = Stats{}
	s.perIP = make(map[string]int64)
	s.quotaDay = s.now().UTC().Format(time.DateOnly)
	s.tokens = s.burst()
	s.tokensAt = s.now()
}

func (s *Server) burst() float64 { return max(1, math.Ceil(s.opts.RateLimit)) }

// Reset clears the counters, the per-IP calls, today's quota use and the rate-limit bucket, and
// restarts the error sequence from the seed. Knobs are kept.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reseed()
	s.resetUsage()
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rollDay()
	st := s.stats
	st.DistinctIPs = len(s.perIP)
	return st
}

// Calls returns how many authenticated report lookups named ip (any spelling of it).
func (s *Server) Calls(ip string) int64 {
	c, ok := Canonical(ip)
	if !ok {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perIP[c]
}

// Options returns the current knobs; Force429For is the time left of a forced-429 window.
func (s *Server) Options() Options {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.opts
	o.ValidKeys = append([]string(nil), s.opts.ValidKeys...)
	o.Force429For = max(s.force429Until.Sub(s.now()), 0)
	return o
}

// Patch changes some knobs; nil fields are left alone.
type Patch struct {
	Latency        *Duration `json:"latency,omitempty"`
	Jitter         *Duration `json:"jitter,omitempty"`
	ErrorRate      *float64  `json:"error_rate,omitempty"`
	RateLimit      *float64  `json:"rate_limit,omitempty"`
	DailyQuota     *int64    `json:"daily_quota,omitempty"`
	ValidKeys      *[]string `json:"valid_keys,omitempty"`
	InvalidKeyMode *bool     `json:"invalid_key_mode,omitempty"`
	// Force429For starts a forced-429 window of this length from now; 0 ends one.
	Force429For *Duration `json:"force_429_for,omitempty"`
	// Seed restarts the error and jitter sequences from a new seed.
	Seed *uint64 `json:"seed,omitempty"`
}

// Duration is a time.Duration that reads JSON strings ("150ms", "2s") or numbers of
// milliseconds, and writes strings.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var ms float64
	if err := json.Unmarshal(b, &ms); err != nil {
		return errors.New("duration must be a string like \"150ms\" or a number of milliseconds")
	}
	*d = Duration(ms * float64(time.Millisecond))
	return nil
}

func dur(v time.Duration) *Duration { d := Duration(v); return &d }

// Configure applies p, all or nothing.
func (s *Server) Configure(p Patch) error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	if p.Latency != nil {
		check(*p.Latency >= 0, "latency must not be negative")
	}
	if p.Jitter != nil {
		check(*p.Jitter >= 0, "jitter must not be negative")
	}
	if p.ErrorRate != nil {
		check(*p.ErrorRate >= 0 && *p.ErrorRate <= 1, "error_rate must be between 0 and 1")
	}
	if p.RateLimit != nil {
		check(*p.RateLimit >= 0 && !math.IsInf(*p.RateLimit, 0), "rate_limit must be a non-negative number")
	}
	if p.DailyQuota != nil {
		check(*p.DailyQuota >= 0, "daily_quota must not be negative")
	}
	if p.Force429For != nil {
		check(*p.Force429For >= 0, "force_429_for must not be negative")
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.Latency != nil {
		s.opts.Latency = time.Duration(*p.Latency)
	}
	if p.Jitter != nil {
		s.opts.Jitter = time.Duration(*p.Jitter)
	}
	if p.ErrorRate != nil {
		s.opts.ErrorRate = *p.ErrorRate
	}
	if p.RateLimit != nil {
		s.opts.RateLimit = *p.RateLimit
		s.tokens, s.tokensAt = s.burst(), s.now()
	}
	if p.DailyQuota != nil {
		s.opts.DailyQuota = *p.DailyQuota
	}
	if p.ValidKeys != nil {
		s.setKeys(*p.ValidKeys)
	}
	if p.InvalidKeyMode != nil {
		s.opts.InvalidKeyMode = *p.InvalidKeyMode
	}
	if p.Force429For != nil {
		s.force429Until = s.now().Add(time.Duration(*p.Force429For))
	}
	if p.Seed != nil {
		s.opts.Seed = *p.Seed
		s.reseed()
	}
	return nil
}

// SetLatency sets Latency and Jitter.
func (s *Server) SetLatency(latency, jitter time.Duration) error {
	return s.Configure(Patch{Latency: dur(latency), Jitter: dur(jitter)})
}

// SetErrorRate sets ErrorRate.
func (s *Server) SetErrorRate(rate float64) error { return s.Configure(Patch{ErrorRate: &rate}) }

// SetRateLimit sets RateLimit (0 unlimited) and refills the bucket.
func (s *Server) SetRateLimit(perSecond float64) error {
	return s.Configure(Patch{RateLimit: &perSecond})
}

// SetDailyQuota sets DailyQuota (0 unmetered); today's use is kept.
func (s *Server) SetDailyQuota(n int64) error { return s.Configure(Patch{DailyQuota: &n}) }

// SetValidKeys replaces ValidKeys.
func (s *Server) SetValidKeys(keys ...string) error { return s.Configure(Patch{ValidKeys: &keys}) }

// SetInvalidKeyMode makes every key invalid (or not).
func (s *Server) SetInvalidKeyMode(on bool) error { return s.Configure(Patch{InvalidKeyMode: &on}) }

// Force429For answers 429 to everything for d from now (0 ends a window).
func (s *Server) Force429For(d time.Duration) error { return s.Configure(Patch{Force429For: dur(d)}) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, AdminPrefix) {
		s.admin(w, r)
		return
	}
	switch r.URL.Path {
	case ReportPath:
		s.api(w, r, http.MethodGet, true)
	case AccountPath:
		s.api(w, r, http.MethodPost, false)
	default:
		s.count(func(st *Stats) { st.Total++; st.BadRequests++ })
		writeJSON(w, http.StatusNotFound, errorBody{404, "not found"})
	}
}

type errorBody struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
}

func (s *Server) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// rollDay starts a new quota day at UTC midnight. Caller holds mu.
func (s *Server) rollDay() {
	if day := s.now().UTC().Format(time.DateOnly); day != s.quotaDay {
		s.quotaDay, s.stats.QuotaUsed = day, 0
	}
}

// takeToken is the rate limiter; it returns the wait before a token is free when none is.
// Caller holds mu.
func (s *Server) takeToken(now time.Time) (time.Duration, bool) {
	rate := s.opts.RateLimit
	if rate <= 0 {
		return 0, true
	}
	s.tokens = min(s.burst(), s.tokens+now.Sub(s.tokensAt).Seconds()*rate)
	s.tokensAt = now
	if s.tokens >= 1 {
		s.tokens--
		return 0, true
	}
	return time.Duration((1 - s.tokens) / rate * float64(time.Second)), false
}

func retryAfterSeconds(d time.Duration) string {
	return fmt.Sprint(max(1, int64(math.Ceil(d.Seconds()))))
}

type outcome int

const (
	outAnswer outcome = iota
	outForced429
	outRejected
	outRateLimited
	outError
	outQuota
	outBadIP
	outNotFound
)

func (s *Server) api(w http.ResponseWriter, r *http.Request, method string, report bool) {
	if r.Method != method {
		s.count(func(st *Stats) { st.Total++; st.BadRequests++ })
		w.Header().Set("Allow", method)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{405, "method not allowed"})
		return
	}
	s.mu.Lock()
	s.stats.Total++
	delay := s.opts.Latency
	if s.opts.Jitter > 0 {
		delay += time.Duration(s.jitterRNG.Int64N(int64(s.opts.Jitter) + 1))
	}
	s.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}

	var (
		p    Profile
		ipOK bool
	)
	if report {
		p, ipOK = CriminalIPProfile(r.URL.Query().Get("ip"))
	}
	ip := p.IP
	key := r.Header.Get("x-api-key")

	s.mu.Lock()
	now := s.now()
	s.rollDay()
	var (
		out      outcome
		wait     time.Duration
		searches int64
		left     int64
	)
	switch {
	case now.Before(s.force429Until):
		out, wait = outForced429, s.force429Until.Sub(now)
		s.stats.RateLimited++
	case key == "" || s.opts.InvalidKeyMode || (len(s.keys) > 0 && !s.keys[key]):
		out = outRejected
		s.stats.Rejected++
	default:
		if report {
			s.stats.Lookups++
			if ipOK {
				if n, tracked := s.perIP[ip]; tracked || len(s.perIP) < s.opts.MaxTrackedIPs {
					s.perIP[ip] = n + 1
					s.stats.MaxCallsPerIP = max(s.stats.MaxCallsPerIP, n+1)
					searches = n + 1
				} else {
					s.stats.UntrackedCalls++
				}
			}
		}
		var ok bool
		if wait, ok = s.takeToken(now); !ok {
			out = outRateLimited
			s.stats.RateLimited++
			break
		}
		if !report {
			out = outAnswer
			s.stats.AccountChecks++
			if s.opts.DailyQuota > 0 {
				left = max(s.opts.DailyQuota-s.stats.QuotaUsed, 0)
			} else {
				left = max(UnmeteredAllowance-s.stats.QuotaUsed, 0)
			}
			break
		}
		switch {
		case s.opts.ErrorRate > 0 && s.errRNG.Float64() < s.opts.ErrorRate:
			out = outError
			s.stats.Errors++
		case s.opts.DailyQuota > 0 && s.stats.QuotaUsed >= s.opts.DailyQuota:
			out = outQuota
			s.stats.QuotaExceeded++
		case !ipOK:
			out = outBadIP
			s.stats.BadRequests++
		default:
			s.stats.QuotaUsed++
			s.stats.Answered++
			out = outAnswer
			if p.NotFound {
				s.stats.NotFound++
				out = outNotFound
			}
		}
	}
	s.mu.Unlock()

	switch out {
	case outForced429, outRateLimited:
		w.Header().Set("Retry-After", retryAfterSeconds(wait))
		writeJSON(w, http.StatusTooManyRequests, errorBody{429, "too many requests: rate limit exceeded"})
	case outRejected:
		writeJSON(w, http.StatusUnauthorized, errorBody{401, "invalid api key"})
	case outError:
		writeJSON(w, http.StatusInternalServerError, errorBody{500, "internal server error (simulated)"})
	case outQuota:
		writeJSON(w, http.StatusOK, errorBody{402, "daily search credits exhausted: upgrade your plan or wait for the reset"})
	case outBadIP:
		writeJSON(w, http.StatusOK, errorBody{400, "invalid ip address"})
	case outNotFound:
		writeJSON(w, http.StatusOK, errorBody{404, "no data found for this ip"})
	default:
		if !report {
			writeJSON(w, http.StatusOK, accountBody(left, now))
			return
		}
		writeJSON(w, http.StatusOK, buildReport(&p, searches, now))
	}
}

func accountBody(left int64, now time.Time) any {
	type data struct {
		Name           string `json:"name"`
		Email          string `json:"email"`
		LastAccessDate string `json:"last_access_date"`
		MaxSearch      int64  `json:"max_search"`
		Plan           string `json:"plan"`
	}
	return struct {
		Status  int    `json:"status"`
		Message string `json:"message"`
		Data    data   `json:"data"`
	}{200, "api success", data{"threatpipe simulator", "sim@example.test", now.UTC().Format(time.DateTime), left, "Simulator"}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// configView is GET/POST /_sim/config's answer.
type configView struct {
	Latency        Duration `json:"latency"`
	Jitter         Duration `json:"jitter"`
	ErrorRate      float64  `json:"error_rate"`
	RateLimit      float64  `json:"rate_limit"`
	DailyQuota     int64    `json:"daily_quota"`
	ValidKeys      []string `json:"valid_keys"`
	InvalidKeyMode bool     `json:"invalid_key_mode"`
	Force429For    Duration `json:"force_429_for"`
	Seed           uint64   `json:"seed"`
}

func (s *Server) view() configView {
	o := s.Options()
	keys := o.ValidKeys
	if keys == nil {
		keys = []string{}
	}
	return configView{Duration(o.Latency), Duration(o.Jitter), o.ErrorRate, o.RateLimit, o.DailyQuota, keys, o.InvalidKeyMode, Duration(o.Force429For), o.Seed}
}

// admin serves /_sim/: GET stats, GET calls?ip=, POST reset, GET or POST config (a JSON Patch).
func (s *Server) admin(w http.ResponseWriter, r *http.Request) {
	route := strings.TrimPrefix(r.URL.Path, AdminPrefix)
	want := map[string]string{"stats": http.MethodGet, "calls": http.MethodGet, "reset": http.MethodPost, "config": ""}
	m, known := want[route]
	if !known {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown admin endpoint; try stats, calls?ip=, reset, config"})
		return
	}
	if m != "" && r.Method != m {
		w.Header().Set("Allow", m)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use " + m})
		return
	}
	switch route {
	case "stats":
		writeJSON(w, http.StatusOK, s.Stats())
	case "calls":
		ip, ok := Canonical(r.URL.Query().Get("ip"))
		if !ok {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "ip must be an IP address"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"ip": ip, "calls": s.Calls(ip)})
	case "reset":
		s.Reset()
		writeJSON(w, http.StatusOK, s.Stats())
	case "config":
		switch r.Method {
		case http.MethodGet:
		case http.MethodPost, http.MethodPatch:
			var p Patch
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&p); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad patch: " + err.Error()})
				return
			}
			if err := s.Configure(p); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
				return
			}
		default:
			w.Header().Set("Allow", "GET, POST")
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use GET or POST"})
			return
		}
		writeJSON(w, http.StatusOK, s.view())
	}
}
