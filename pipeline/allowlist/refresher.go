package allowlist

import (
	"context"
	"net/netip"
	"time"

	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline/gate"
)

// Refresher keeps a gate's shared allowlist in step with the store: every interval it asks
// Redis for the allowlist's version (one cheap round trip) and reloads the entries only when an
// entry was added or removed, or the soonest one expired. While Redis cannot be read the gate
// keeps the last entries it loaded: an address stays allowlisted rather than being paid for.
type Refresher struct {
	store    *Store
	shared   *gate.Shared
	interval time.Duration
	log      *zap.Logger

	loaded     bool
	version    int64
	nextExpiry time.Time
	failing    bool
}

// NewRefresher returns the refresher of shared from store, every interval.
func NewRefresher(store *Store, shared *gate.Shared, interval time.Duration, log *zap.Logger) *Refresher {
	return &Refresher{store: store, shared: shared, interval: interval, log: log}
}

// Run refreshes until ctx ends; it returns nil then. A failed refresh is logged (once, until one
// succeeds) and tried again at the next tick.
func (r *Refresher) Run(ctx context.Context) error {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		r.refresh(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// refresh reloads the entries if they changed since the last load.
func (r *Refresher) refresh(ctx context.Context) {
	if r.loaded {
		v, _, err := r.store.version(ctx)
		if err != nil {
			r.failed(ctx, err)
			return
		}
		expired := !r.nextExpiry.IsZero() && !r.store.now().Before(r.nextExpiry)
		if v == r.version && !expired {
			r.recovered()
			return
		}
	}
	if err := r.reload(ctx); err != nil {
		r.failed(ctx, err)
		return
	}
	r.recovered()
}

// reload reads every live entry into the shared allowlist now.
func (r *Refresher) reload(ctx context.Context) error {
	v, entries, err := r.store.load(ctx)
	if err != nil {
		return err
	}
	prefixes := make([]netip.Prefix, 0, len(entries))
	for _, e := range entries {
		if p, err := e.Prefix(); err == nil {
			prefixes = append(prefixes, p)
		}
	}
	r.shared.Replace(prefixes)
	r.loaded, r.version, r.nextExpiry = true, v, time.Time{}
	if len(entries) > 0 {
		r.nextExpiry = entries[0].Expires // sorted, soonest first
	}
	return nil
}

func (r *Refresher) failed(ctx context.Context, err error) {
	if ctx.Err() != nil || r.failing {
		return
	}
	r.failing = true
	r.log.Warn("shared allowlist not refreshed: the gate keeps the entries it last loaded", zap.Error(err))
}

func (r *Refresher) recovered() {
	if r.failing {
		r.failing = false
		r.log.Info("shared allowlist refreshed again")
	}
}
