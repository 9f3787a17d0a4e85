package enrich

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Instrument gives each request its own deadline (ATTEMPT_TIMEOUT) and records how it ended:
// the calls and latency metrics, and the provider's health counters.
type Instrument struct {
	wrapped
	timeout time.Duration
	health  *providerHealth
	latency prometheus.Observer
	calls   func(outcome string) prometheus.Counter
	now     func() time.Time
}

var _ Provider = (*Instrument)(nil)

// Lookup implements Provider.
//
// A request sent is a request billed, so its answer is waited for up to ATTEMPT_TIMEOUT even when
// the caller's deadline (the event's retry budget) passes first: cut short, the answer would be
// paid for and thrown away, and the next lookup of the address would pay again. Cancellation
// (shutdown) still stops it.
func (in *Instrument) Lookup(ctx context.Context, ind event.Indicator) (*Result, error) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.timeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			cancel()
		}
	})
	defer stop()
	start := time.Now()
	r, err := in.next.Lookup(actx, ind)
	outcome := classifyCall(ctx, err, attemptTimedOut(actx, err))
	if outcome != callBreakerOpen {
		in.latency.Observe(time.Since(start).Seconds())
	}
	in.health.observe(in.now(), outcome, err)
	label := "ok"
	switch {
	case outcome == callBreakerOpen:
		label = "breaker_open"
	case err != nil:
		label = string(KindOf(err))
	}
	in.calls(label).Inc()
	return r, err
}
