package sim

// The simulator's run-time knobs: Patch, the Set* helpers and the /_sim/ admin endpoints.

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"
)

// Patch changes some knobs; nil fields are left alone.
type Patch struct {
	Latency        *Duration `json:"latency,omitempty"`
	Jitter         *Duration `json:"jitter,omitempty"`
	ErrorRate      *float64  `json:"error_rate,omitempty"`
	FailFirst      *float64  `json:"fail_first,omitempty"`
	RateLimit      *float64  `json:"rate_limit,omitempty"`
	DailyQuota     *int64    `json:"daily_quota,omitempty"`
	ValidKeys      *[]string `json:"valid_keys,omitempty"`
	InvalidKeyMode *bool     `json:"invalid_key_mode,omitempty"`
	// Force429For starts a forced-429 window of this length from now; 0 ends one.
	Force429For *Duration `json:"force_429_for,omitempty"`
	// Seed restarts the error and jitter sequences from a new seed.
	Seed *uint64 `json:"seed,omitempty"`
	// Fault modes (faults.go): StallFor starts a stall of this length from now; 0 ends one.
	GarbageRate *float64  `json:"garbage_rate,omitempty"`
	ResetRate   *float64  `json:"reset_rate,omitempty"`
	StallFor    *Duration `json:"stall_for,omitempty"`
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
func (s *API) Configure(p Patch) error {
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
	if p.FailFirst != nil {
		check(*p.FailFirst >= 0 && *p.FailFirst <= 1, "fail_first must be between 0 and 1")
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
	errs = append(errs, checkFaults(p)...)
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
	if p.FailFirst != nil {
		s.opts.FailFirst = *p.FailFirst
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
	s.applyFaults(p)
	return nil
}

// SetLatency sets Latency and Jitter.
func (s *API) SetLatency(latency, jitter time.Duration) error {
	return s.Configure(Patch{Latency: dur(latency), Jitter: dur(jitter)})
}

// SetErrorRate sets ErrorRate.
func (s *API) SetErrorRate(rate float64) error { return s.Configure(Patch{ErrorRate: &rate}) }

// SetRateLimit sets RateLimit (0 unlimited) and refills the bucket.
func (s *API) SetRateLimit(perSecond float64) error {
	return s.Configure(Patch{RateLimit: &perSecond})
}

// SetDailyQuota sets DailyQuota (0 unmetered); today's use is kept.
func (s *API) SetDailyQuota(n int64) error { return s.Configure(Patch{DailyQuota: &n}) }

// SetValidKeys replaces ValidKeys.
func (s *API) SetValidKeys(keys ...string) error { return s.Configure(Patch{ValidKeys: &keys}) }

// SetInvalidKeyMode makes every key invalid (or not).
func (s *API) SetInvalidKeyMode(on bool) error { return s.Configure(Patch{InvalidKeyMode: &on}) }

// Force429For answers 429 to everything for d from now (0 ends a window).
func (s *API) Force429For(d time.Duration) error { return s.Configure(Patch{Force429For: dur(d)}) }

// configView is GET/POST /_sim/config's answer.
type configView struct {
	Latency        Duration `json:"latency"`
	Jitter         Duration `json:"jitter"`
	ErrorRate      float64  `json:"error_rate"`
	FailFirst      float64  `json:"fail_first"`
	RateLimit      float64  `json:"rate_limit"`
	DailyQuota     int64    `json:"daily_quota"`
	ValidKeys      []string `json:"valid_keys"`
	InvalidKeyMode bool     `json:"invalid_key_mode"`
	Force429For    Duration `json:"force_429_for"`
	Seed           uint64   `json:"seed"`
	GarbageRate    float64  `json:"garbage_rate"`
	ResetRate      float64  `json:"reset_rate"`
	StallFor       Duration `json:"stall_for"`
}

func (s *API) view() configView {
	o := s.Options()
	keys := o.ValidKeys
	if keys == nil {
		keys = []string{}
	}
	return configView{Duration(o.Latency), Duration(o.Jitter), o.ErrorRate, o.FailFirst, o.RateLimit, o.DailyQuota, keys, o.InvalidKeyMode,
		Duration(o.Force429For), o.Seed, o.GarbageRate, o.ResetRate, Duration(o.StallFor)}
}

// admin serves the admin API: GET stats, GET calls?ip=, POST reset, GET or POST config (a JSON
// Patch); route is the path after the admin prefix.
func (s *API) admin(w http.ResponseWriter, r *http.Request, route string) {
	want := map[string]string{"stats": http.MethodGet, "calls": http.MethodGet, "reset": http.MethodPost, "config": ""}
	m, known := want[route]
	if !known {
		WriteJSON(w, http.StatusNotFound, map[string]string{"error": "unknown admin endpoint; try stats, calls?ip=, reset, config"})
		return
	}
	if m != "" && r.Method != m {
		w.Header().Set("Allow", m)
		WriteJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use " + m})
		return
	}
	switch route {
	case "stats":
		WriteJSON(w, http.StatusOK, s.Stats())
	case "calls":
		ip, ok := Canonical(r.URL.Query().Get("ip"))
		if !ok {
			WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "ip must be an IP address"})
			return
		}
		WriteJSON(w, http.StatusOK, map[string]any{"ip": ip, "calls": s.Calls(ip)})
	case "reset":
		s.Reset()
		WriteJSON(w, http.StatusOK, s.Stats())
	case "config":
		switch r.Method {
		case http.MethodGet:
		case http.MethodPost, http.MethodPatch:
			var p Patch
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&p); err != nil {
				WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "bad patch: " + err.Error()})
				return
			}
			if err := s.Configure(p); err != nil {
				WriteJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
				return
			}
		default:
			w.Header().Set("Allow", "GET, POST")
			WriteJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use GET or POST"})
			return
		}
		WriteJSON(w, http.StatusOK, s.view())
	}
}
