package pipeline

import "context"

// RefreshHeader marks an input message as an analyst's "re-enrich now" (view/steer): its
// indicators are looked up again at the paid sources even when a cached answer is fresh, through
// the same rate, quota, lease and breaker as any lookup, and the new answer replaces the cached
// one. Its value is "1". The enricher honours it only as WithRefreshRequests allows: when
// THREATPIPE_SIGNING_KEY is set, only on messages signed for sign.Refresh, because anyone who can
// write the input topic could otherwise spend the providers' quota.
const RefreshHeader = "x-threatpipe-refresh"

type forcedKey struct{}

// WithForcedLookup marks ctx's lookups as forced: cached answers are not served.
func WithForcedLookup(ctx context.Context) context.Context {
	return context.WithValue(ctx, forcedKey{}, true)
}

// ForcedLookup reports whether ctx's lookups are forced (WithForcedLookup).
func ForcedLookup(ctx context.Context) bool {
	forced, _ := ctx.Value(forcedKey{}).(bool)
	return forced
}
