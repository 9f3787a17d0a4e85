package enrich

import (
	"context"
	"sync/atomic"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// KeyGuard switches the provider off the first time it rejects its key (401/403): retrying
// cannot help, and every further request would be refused too. Requests after that fail at once
// with KindUnauthorized and reach no provider; onDisable runs once, to alert.
type KeyGuard struct {
	wrapped
	disabled  atomic.Bool
	reason    atomic.Pointer[string]
	onDisable func(err error)
}

var _ Provider = (*KeyGuard)(nil)

// NewKeyGuard wraps next; onDisable may be nil.
func NewKeyGuard(next Provider, onDisable func(err error)) *KeyGuard {
	return &KeyGuard{wrapped: wrapped{next}, onDisable: onDisable}
}

// Disabled reports whether the provider was switched off, and why.
func (g *KeyGuard) Disabled() (bool, string) {
	if !g.disabled.Load() {
		return false, ""
	}
	return true, *g.reason.Load()
}

// Lookup implements Provider.
func (g *KeyGuard) Lookup(ctx context.Context, ind event.Indicator) (*Result, error) {
	if g.disabled.Load() {
		return nil, &Error{Provider: g.Name(), Kind: KindUnauthorized, Message: "provider disabled"}
	}
	r, err := g.next.Lookup(ctx, ind)
	if err != nil && KindOf(err) == KindUnauthorized {
		g.disable(err)
	}
	return r, err
}

func (g *KeyGuard) disable(err error) {
	reason := "provider rejected the API key: " + err.Error()
	g.reason.Store(&reason)
	if g.disabled.CompareAndSwap(false, true) && g.onDisable != nil {
		g.onDisable(err)
	}
}
