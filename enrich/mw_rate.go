package enrich

import (
	"context"

	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// RateLimit holds each request until the provider's shared rate (across every replica, in
// Redis) allows it. When Redis cannot answer, the request goes out unthrottled rather than
// not at all: the provider's own 429 and Retry-After still hold it back.
func RateLimit(limiter *RateLimiter, log *zap.Logger) Middleware {
	return func(next Provider) Provider {
		return providerFunc{wrapped{next}, func(ctx context.Context, ind event.Indicator) (*Result, error) {
			if err := limiter.Wait(ctx); err != nil {
				if ctx.Err() != nil {
					return nil, err
				}
				log.Warn("shared rate limiter unavailable; sending without it", zap.Error(err))
			}
			return next.Lookup(ctx, ind)
		}}
	}
}
