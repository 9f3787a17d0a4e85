package ingest

import (
	"context"
	"time"
	"unicode/utf8"
)

// withGrace returns a context that ends grace after ctx ends (or when cancel is called), for
// work that must be finished once begun rather than cut at the signal.
func withGrace(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		// Owned by AfterFunc; it ends at the grace's end or when the caller cancels.
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-fctx.Done():
		}
	})
	return fctx, func() { stop(); cancel() }
}

// clip cuts s to n bytes on a rune boundary, for log fields holding a platform's values.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
