package enrich

import (
	"context"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Middleware wraps a Provider with one cross-cutting concern (retries, a concurrency bound, the
// key guard, the shared rate limit, the quota ledger, instrumentation, the circuit breaker).
// Each returns a Provider, so they compose; NewChain composes them in the one order that is
// correct, and a provider package holds only its HTTP and its decoding.
type Middleware func(Provider) Provider

// wrapped is the part every middleware shares: the provider it wraps, whose name and cost it
// keeps.
type wrapped struct{ next Provider }

func (w wrapped) Name() string { return w.next.Name() }
func (w wrapped) Cost() Cost   { return w.next.Cost() }

// providerFunc adapts a function to a Provider, for middleware that only needs Lookup.
type providerFunc struct {
	wrapped
	lookup func(ctx context.Context, ind event.Indicator) (*Result, error)
}

func (p providerFunc) Lookup(ctx context.Context, ind event.Indicator) (*Result, error) {
	return p.lookup(ctx, ind)
}
