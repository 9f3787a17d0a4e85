package sim

import (
	"errors"
	"net"
	"net/http"
	"time"
)

// The fault modes below are the provider storms of the chaos suite (docs/reliability.md) that
// HTTP status codes alone cannot express: bodies that are not the provider's JSON, connections
// reset without an answer, and stalls in which the provider answers nothing for a while. They
// are engine knobs (Options, Patch), the same for every dialect, since a broken proxy or a
// half-deployed API breaks every vendor's answers alike.

// garbageBodies are 200 answers no provider decoder can read: a truncated report, a proxy's
// HTML page served as JSON, and binary noise.
var garbageBodies = [][]byte{
	[]byte(`{"ip":"192.0.2.1","score":{"inbound":"Dangerous","outb`),
	[]byte("<html><head><title>502 Bad Gateway</title></head><body>upstream reset</body></html>"),
	{0x1f, 0x8b, 0x08, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x00, 0xff, 0x7b, 0x22},
}

// checkFaults validates p's fault knobs.
func checkFaults(p Patch) []error {
	var errs []error
	for name, rate := range map[string]*float64{"garbage_rate": p.GarbageRate, "reset_rate": p.ResetRate} {
		if rate != nil && (*rate < 0 || *rate > 1) {
			errs = append(errs, errors.New(name+" must be between 0 and 1"))
		}
	}
	if p.StallFor != nil && *p.StallFor < 0 {
		errs = append(errs, errors.New("stall_for must not be negative"))
	}
	return errs
}

// applyFaults sets p's fault knobs. Caller holds mu.
func (s *API) applyFaults(p Patch) {
	if p.GarbageRate != nil {
		s.opts.GarbageRate = *p.GarbageRate
	}
	if p.ResetRate != nil {
		s.opts.ResetRate = *p.ResetRate
	}
	if p.StallFor != nil {
		s.stallUntil = s.now().Add(time.Duration(*p.StallFor))
	}
}

// SetGarbageRate sets GarbageRate.
func (s *API) SetGarbageRate(rate float64) error { return s.Configure(Patch{GarbageRate: &rate}) }

// SetResetRate sets ResetRate.
func (s *API) SetResetRate(rate float64) error { return s.Configure(Patch{ResetRate: &rate}) }

// StallFor holds every request for d from now (0 ends a stall).
func (s *API) StallFor(d time.Duration) error { return s.Configure(Patch{StallFor: dur(d)}) }

// stall is how long a request arriving now waits for the stall window to end. Caller holds mu.
func (s *API) stall(now time.Time) time.Duration {
	d := s.stallUntil.Sub(now)
	if d > 0 {
		s.stats.Stalled++
	}
	return max(d, 0)
}

// draw reports whether a lookup falls in a fault of the given rate. Caller holds mu.
func (s *API) draw(rate float64) bool { return rate > 0 && s.errRNG.Float64() < rate }

// writeFault answers the outcomes no dialect speaks; it reports false for every other outcome.
func (s *API) writeFault(w http.ResponseWriter, o *Outcome) bool {
	switch o.Kind {
	case OutGarbage:
		body := garbageBodies[int(o.Searches)%len(garbageBodies)]
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
		return true
	case OutReset:
		resetConnection(w)
		return true
	}
	return false
}

// resetConnection closes the request's connection with a TCP RST and no answer. Where the
// connection cannot be taken over, the handler aborts, which also closes it unanswered.
func resetConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // close sends RST instead of FIN
	}
	_ = conn.Close()
}
