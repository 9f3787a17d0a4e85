package health

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// Report writes the snapshots collect returns, stamped with owner and role, every interval
// (ReportInterval when zero), each valid for three intervals, until ctx ends. It writes once at
// start, so a replica shows in the view as soon as it runs. collect gets a context bounded by
// the interval, for the reads it makes (the quota ledger, say), and the time of the round.
//
// A failed write is logged when writes start failing and when they recover, never in between,
// and never stops the loop: health reporting must not take a role down. Report returns nil
// when ctx ends.
func Report(ctx context.Context, store *Store, owner, role string, every time.Duration,
	collect func(ctx context.Context, now time.Time) []Snapshot, log *zap.Logger) error {
	if every <= 0 {
		every = ReportInterval
	}
	if log == nil {
		log = zap.NewNop()
	}
	ttl := 3 * every
	failing := false
	round := func() {
		rctx, cancel := context.WithTimeout(ctx, every)
		defer cancel()
		now := time.Now()
		var err error
		for _, s := range collect(rctx, now) {
			s.Owner, s.Role = owner, role
			if s.At.IsZero() {
				s.At = now.UTC()
			}
			if err = store.Put(rctx, s, ttl); err != nil {
				break // the store is down: the next round tries again
			}
		}
		switch {
		case ctx.Err() != nil:
		case err != nil && !failing:
			failing = true
			log.Warn("integration health not written; the view shows this replica as gone until it is", zap.Error(err))
		case err == nil && failing:
			failing = false
			log.Info("integration health written again")
		}
	}
	round()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			round()
		}
	}
}
