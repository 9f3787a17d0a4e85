package sim

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// AdminPrefix is where the admin API lives.
const AdminPrefix = "/_sim/"

// UnmeteredAllowance is the allowance an account check reports when DailyQuota is 0.
const UnmeteredAllowance = 1_000_000

// DefaultMaxTrackedIPs bounds the per-IP call counters.
const DefaultMaxTrackedIPs = 1 << 20

// Options are the simulator's knobs.
type Options struct {
	// Latency delays every API answer; Jitter adds a uniform random 0..Jitter on top.
	Latency time.Duration
	Jitter  time.Duration
	// ErrorRate is the fraction (0-1) of authenticated lookups answered with HTTP 500.
	ErrorRate float64
	// FailFirst is the fraction (0-1) of addresses whose first lookup fails, as real APIs do in
	// a bad minute: half of them (drawn per address) with a 500, half with a 429 and
	// Retry-After: 1. Later lookups of the address are answered normally.
	FailFirst float64
	// RateLimit is requests per second across all API requests; 0 means unlimited.
	RateLimit float64
	// DailyQuota is lookups answered per UTC day (answers and not-found answers); 0 means
	// unmetered.
	DailyQuota int64
	// ValidKeys are the accepted x-api-key values; empty accepts any non-empty key.
	ValidKeys []string
	// InvalidKeyMode rejects every key.
	InvalidKeyMode bool
	// Force429For answers HTTP 429 to everything for this long from New (or Configure).
	Force429For time.Duration
	// GarbageRate is the fraction (0-1) of authenticated lookups answered HTTP 200 with a body
	// that is not the provider's JSON (a truncated report, an HTML page, binary noise).
	GarbageRate float64
	// ResetRate is the fraction (0-1) of authenticated lookups whose connection is reset (TCP
	// RST) without an answer.
	ResetRate float64
	// StallFor holds every request for this long from New (or Configure): each is answered
	// when the stall ends, or never if its client gives up first.
	StallFor time.Duration
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
	Lookups        int64 `json:"lookups"`        // authenticated lookup requests, whatever their answer
	Answered       int64 `json:"answered"`       // reports and not-found answers (quota-spending)
	NotFound       int64 `json:"not_found"`      // of Answered, "no data" answers
	AccountChecks  int64 `json:"account_checks"` // successful account-check answers
	Rejected       int64 `json:"rejected"`       // HTTP 401
	RateLimited    int64 `json:"rate_limited"`   // HTTP 429 (rate limit and Force429For)
	Errors         int64 `json:"errors"`         // HTTP 500 (ErrorRate)
	QuotaExceeded  int64 `json:"quota_exceeded"` // quota-spent answers
	BadRequests    int64 `json:"bad_requests"`   // invalid addresses, unknown routes, wrong methods
	QuotaUsed      int64 `json:"quota_used"`     // successful lookups today
	DistinctIPs    int   `json:"distinct_ips"`   // IPs with at least one lookup
	MaxCallsPerIP  int64 `json:"max_calls_per_ip"`
	UntrackedCalls int64 `json:"untracked_calls"` // lookups not counted per IP (over MaxTrackedIPs)
	Garbage        int64 `json:"garbage"`         // HTTP 200 bodies that are not JSON (GarbageRate)
	Resets         int64 `json:"resets"`          // connections reset unanswered (ResetRate)
	Stalled        int64 `json:"stalled"`         // requests held by a stall (StallFor)
}

// API is one provider's simulated API: a Dialect driven by the engine below, with its own
// knobs and counters. It is safe for concurrent use.
type API struct {
	dialect Dialect
	now     func() time.Time

	mu            sync.Mutex
	opts          Options
	keys          map[string]bool
	errRNG        *rand.Rand
	jitterRNG     *rand.Rand
	tokens        float64
	tokensAt      time.Time
	force429Until time.Time
	stallUntil    time.Time
	quotaDay      string
	stats         Stats
	perIP         map[string]int64
}

// NewAPI returns a provider's simulated API configured by opts.
func NewAPI(d Dialect, opts Options) *API {
	s := &API{dialect: d, now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	opts.Now = nil
	if opts.MaxTrackedIPs <= 0 {
		opts.MaxTrackedIPs = DefaultMaxTrackedIPs
	}
	opts.ErrorRate = min(max(opts.ErrorRate, 0), 1)
	opts.FailFirst = min(max(opts.FailFirst, 0), 1)
	opts.GarbageRate = min(max(opts.GarbageRate, 0), 1)
	opts.ResetRate = min(max(opts.ResetRate, 0), 1)
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
	if opts.StallFor > 0 {
		s.stallUntil = s.now().Add(opts.StallFor)
	}
	return s
}

func (s *API) setKeys(keys []string) {
	s.opts.ValidKeys = append([]string(nil), keys...)
	s.keys = make(map[string]bool, len(keys))
	for _, k := range keys {
		if k != "" {
			s.keys[k] = true
		}
	}
}

func (s *API) reseed() {
	s.errRNG = rand.New(rand.NewPCG(s.opts.Seed, 0x7468726561747069)) // "threatpi"
	s.jitterRNG = rand.New(rand.NewPCG(s.opts.Seed, 0x6a6974746572))  // "jitter"
}

// resetUsage clears counters, quota use and the rate bucket. Caller holds mu (or owns s).
func (s *API) resetUsage() {
	s.stats = Stats{}
	s.perIP = make(map[string]int64)
	s.quotaDay = s.now().UTC().Format(time.DateOnly)
	s.tokens = s.burst()
	s.tokensAt = s.now()
}

func (s *API) burst() float64 { return max(1, math.Ceil(s.opts.RateLimit)) }

// Reset clears the counters, the per-IP calls, today's quota use and the rate-limit bucket, and
// restarts the error sequence from the seed. Knobs are kept.
func (s *API) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reseed()
	s.resetUsage()
}

// Stats returns a snapshot of the counters.
func (s *API) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rollDay()
	st := s.stats
	st.DistinctIPs = len(s.perIP)
	return st
}

// Name is the provider's name.
func (s *API) Name() string { return s.dialect.Name() }

// Calls returns how many authenticated lookups named ip (any spelling of it).
func (s *API) Calls(ip string) int64 {
	c, ok := Canonical(ip)
	if !ok {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perIP[c]
}

// Options returns the current knobs; Force429For and StallFor are the time left of their
// windows.
func (s *API) Options() Options {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.opts
	o.ValidKeys = append([]string(nil), s.opts.ValidKeys...)
	o.Force429For = max(s.force429Until.Sub(s.now()), 0)
	o.StallFor = max(s.stallUntil.Sub(s.now()), 0)
	return o
}

// ServeHTTP implements http.Handler: the API's routes, and the admin API under AdminPrefix.
func (s *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rest, ok := strings.CutPrefix(r.URL.Path, AdminPrefix); ok {
		s.admin(w, r, rest)
		return
	}
	route := s.dialect.Route(r)
	switch {
	case route.Kind == RouteUnknown:
		s.count(func(st *Stats) { st.Total++; st.BadRequests++ })
		s.dialect.Write(w, &Outcome{Kind: OutUnknownRoute, Route: route, Now: s.now()})
		return
	case r.Method != route.Method:
		s.count(func(st *Stats) { st.Total++; st.BadRequests++ })
		w.Header().Set("Allow", route.Method)
		s.dialect.Write(w, &Outcome{Kind: OutMethod, Route: route, Now: s.now()})
		return
	}
	if !s.delay(r) {
		return
	}
	if o := s.decide(r, route); !s.writeFault(w, o) {
		s.dialect.Write(w, o)
	}
}

func (s *API) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// delay applies Latency and Jitter, or a stall when longer; false when the client went away
// meanwhile.
func (s *API) delay(r *http.Request) bool {
	s.mu.Lock()
	s.stats.Total++
	d := s.opts.Latency
	if s.opts.Jitter > 0 {
		d += time.Duration(s.jitterRNG.Int64N(int64(s.opts.Jitter) + 1))
	}
	d = max(d, s.stall(s.now()))
	s.mu.Unlock()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// rollDay starts a new quota day at UTC midnight. Caller holds mu.
func (s *API) rollDay() {
	if day := s.now().UTC().Format(time.DateOnly); day != s.quotaDay {
		s.quotaDay, s.stats.QuotaUsed = day, 0
	}
}

// takeToken is the rate limiter; it returns the wait before a token is free when none is.
// Caller holds mu.
func (s *API) takeToken(now time.Time) (time.Duration, bool) {
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

// RetryAfterSeconds is a Retry-After value in whole seconds, at least 1.
func RetryAfterSeconds(d time.Duration) string {
	return fmt.Sprint(max(1, int64(math.Ceil(d.Seconds()))))
}

// decide runs the engine's checks in order (see the package comment) and counts the outcome.
func (s *API) decide(r *http.Request, route Route) *Outcome {
	var truth *Truth
	lookup := route.Kind == RouteLookup
	if lookup {
		truth, _ = TruthOf(route.IP)
	}
	key, keyless := s.dialect.Key(r)

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.rollDay()
	o := &Outcome{Route: route, Truth: truth, Now: now}
	defer func() { o.Quota = s.allowance(now) }()
	if now.Before(s.force429Until) {
		o.Kind, o.RetryAfter = OutRateLimited, s.force429Until.Sub(now)
		s.stats.RateLimited++
		return o
	}
	if !keyless && (key == "" || s.opts.InvalidKeyMode || (len(s.keys) > 0 && !s.keys[key])) {
		o.Kind = OutRejected
		s.stats.Rejected++
		return o
	}
	if lookup {
		s.stats.Lookups++
		o.Searches = s.countIP(truth)
	}
	if wait, ok := s.takeToken(now); !ok {
		o.Kind, o.RetryAfter = OutRateLimited, wait
		s.stats.RateLimited++
		return o
	}
	if !lookup {
		o.Kind = OutAccount
		s.stats.AccountChecks++
		return o
	}
	switch {
	case s.failsFirst(truth, o.Searches):
		o.Kind = OutServerError
		s.stats.Errors++
		if truth.Chance("sim:fail-first-429", 0.5) {
			o.Kind, o.RetryAfter = OutRateLimited, time.Second
			s.stats.Errors--
			s.stats.RateLimited++
		}
	case s.opts.ErrorRate > 0 && s.errRNG.Float64() < s.opts.ErrorRate:
		o.Kind = OutServerError
		s.stats.Errors++
	case s.draw(s.opts.ResetRate):
		o.Kind = OutReset
		s.stats.Resets++
	case s.draw(s.opts.GarbageRate):
		o.Kind = OutGarbage
		s.stats.Garbage++
	case s.opts.DailyQuota > 0 && s.stats.QuotaUsed >= s.opts.DailyQuota:
		o.Kind = OutQuotaExceeded
		s.stats.QuotaExceeded++
	case truth == nil:
		o.Kind = OutBadRequest
		s.stats.BadRequests++
	default:
		s.stats.QuotaUsed++
		s.stats.Answered++
		o.Kind = OutAnswer
		if !s.dialect.Knows(truth) {
			s.stats.NotFound++
			o.Kind = OutNotFound
		}
	}
	return o
}

// countIP counts a lookup of the address and returns its lookups so far. Caller holds mu.
func (s *API) countIP(t *Truth) int64 {
	if t == nil {
		return 0
	}
	n, tracked := s.perIP[t.IP]
	if !tracked && len(s.perIP) >= s.opts.MaxTrackedIPs {
		s.stats.UntrackedCalls++
		return 0
	}
	s.perIP[t.IP] = n + 1
	s.stats.MaxCallsPerIP = max(s.stats.MaxCallsPerIP, n+1)
	return n + 1
}

// allowance is the quota left today. Caller holds mu.
func (s *API) allowance(now time.Time) Allowance {
	reset := now.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	if s.opts.DailyQuota <= 0 {
		return Allowance{Remaining: max(UnmeteredAllowance-s.stats.QuotaUsed, 0), Reset: reset}
	}
	return Allowance{Limit: s.opts.DailyQuota, Remaining: max(s.opts.DailyQuota-s.stats.QuotaUsed, 0), Reset: reset}
}

// WriteJSON writes v as a JSON body with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
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

// failsFirst reports whether this lookup is the first of an address FailFirst picked.
func (s *API) failsFirst(t *Truth, searches int64) bool {
	return t != nil && searches == 1 && s.opts.FailFirst > 0 && t.Chance("sim:fail-first", s.opts.FailFirst)
}
