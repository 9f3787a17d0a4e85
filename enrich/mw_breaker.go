package enrich

import (
	"context"
	"errors"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// breakerTimeout is how long the breaker stays open before one probe decides.
const breakerTimeout = 30 * time.Second

// Breaker is the provider's circuit breaker: five outages in a row (transient failures: 5xx,
// timeouts, broken connections) open it for 30 s, during which requests fail at once with
// KindUnavailable and reach no provider; then one probe decides. A rate limit or a rejected
// request says the provider is up, so neither trips it.
type Breaker struct {
	wrapped
	cb *gobreaker.CircuitBreaker[*Result]
}

var _ Provider = (*Breaker)(nil)

// NewBreaker wraps next; onChange sees every state change.
func NewBreaker(next Provider, onChange func(from, to gobreaker.State)) *Breaker {
	return &Breaker{wrapped: wrapped{next}, cb: gobreaker.NewCircuitBreaker[*Result](gobreaker.Settings{
		Name:         next.Name(),
		MaxRequests:  1,
		Timeout:      breakerTimeout,
		ReadyToTrip:  func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 5 },
		IsSuccessful: func(err error) bool { return err == nil || KindOf(err) != KindTransient },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			if onChange != nil {
				onChange(from, to)
			}
		},
	})}
}

// State is the breaker's state.
func (b *Breaker) State() gobreaker.State { return b.cb.State() }

// Lookup implements Provider.
func (b *Breaker) Lookup(ctx context.Context, ind event.Indicator) (*Result, error) {
	r, err := b.cb.Execute(func() (*Result, error) { return b.next.Lookup(ctx, ind) })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return nil, &Error{Provider: b.Name(), Kind: KindUnavailable, Message: "circuit breaker open", Err: err}
	}
	return r, err
}
