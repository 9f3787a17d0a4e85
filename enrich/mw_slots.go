package enrich

import (
	"context"

	"golang.org/x/sync/semaphore"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Concurrency bounds the requests in flight to the provider from this replica: a key rejection
// or a spent quota can then cost at most that many answers, and the provider's connection pool
// stays bounded. A request waits for a slot for as long as its context allows.
func Concurrency(n int64) Middleware {
	slots := semaphore.NewWeighted(max(n, 1))
	return func(next Provider) Provider {
		return providerFunc{wrapped{next}, func(ctx context.Context, ind event.Indicator) (*Result, error) {
			if err := slots.Acquire(ctx, 1); err != nil {
				return nil, err
			}
			defer slots.Release(1)
			return next.Lookup(ctx, ind)
		}}
	}
}
