package enrich

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Retry retries transient failures and rate-limit answers with jittered exponential backoff
// (200 ms doubling to 5 s) until budget has passed, honouring a Retry-After that fits in what
// is left of it. Other failures are final at once: a rejected key or a spent quota will not
// change by asking again, and an open breaker says to stop asking for a while.
func Retry(budget time.Duration) Middleware {
	return func(next Provider) Provider {
		return providerFunc{wrapped{next}, func(ctx context.Context, ind event.Indicator) (*Result, error) {
			return retry(ctx, next, ind, budget)
		}}
	}
}

func retry(ctx context.Context, next Provider, ind event.Indicator, budget time.Duration) (*Result, error) {
	b := backoff.NewExponentialBackOff() // RandomizationFactor 0.5: replicas do not retry in step
	b.InitialInterval = 200 * time.Millisecond
	b.MaxInterval = 5 * time.Second
	b.MaxElapsedTime = budget
	var res *Result
	op := func() error {
		r, err := next.Lookup(ctx, ind)
		if err == nil {
			res = r
			return nil
		}
		if ctx.Err() != nil || !retryable(err) {
			return backoff.Permanent(err)
		}
		var pe *Error
		if errors.As(err, &pe) && pe.Kind == KindRateLimited && pe.RetryAfter > 0 {
			if pe.RetryAfter > b.MaxElapsedTime-b.GetElapsedTime() {
				return backoff.Permanent(err) // waiting would outlast the budget
			}
			if !pipeline.Sleep(ctx, pe.RetryAfter) {
				return backoff.Permanent(err)
			}
		}
		return err
	}
	if err := backoff.Retry(op, backoff.WithContext(b, ctx)); err != nil {
		return nil, err
	}
	return res, nil
}

// retryable reports whether asking again may help: outages and rate limits.
func retryable(err error) bool {
	switch KindOf(err) {
	case KindTransient, KindRateLimited:
		return true
	default:
		return false
	}
}
