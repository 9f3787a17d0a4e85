package enrich

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// ChangePublisher publishes verdict changes (to the changes topic) and returns once they are
// acknowledged.
type ChangePublisher interface {
	PublishChanges(ctx context.Context, changes []*event.Change) error
}

// RefreshChanges is a Refresher's Changed callback: it rates the indicator from every source's
// cached answer with the provider's answer before and after the refresh, and publishes a change
// record when the severity moved. A refresh has no event of its own, so the record names none.
func (e *Enricher) RefreshChanges(pub ChangePublisher, log *zap.Logger) func(ctx context.Context, provider string, ind event.Indicator, before, after *CacheEntry) {
	return func(ctx context.Context, provider string, ind event.Indicator, before, after *CacheEntry) {
		if before == nil || after == nil {
			return
		}
		outcomes := e.cachedOutcomes(ctx, ind)
		rate := func(c *CacheEntry) event.Rating {
			outcomes[provider] = &event.ProviderOutcome{Status: statusOfVerdict(c.Result.Verdict), Result: c.Result, Fields: c.Fields}
			ev := &event.Scored{Indicator: ind, Tags: []string{}, Reasons: []event.Reason{}}
			e.fuseInto(ev, outcomes)
			return event.RatingOf(ev)
		}
		old, now := rate(before), rate(after)
		dir, changed := event.ChangeBetween(old, now)
		if !changed {
			return
		}
		c := &event.Change{SchemaVersion: event.SchemaVersion, Indicator: ind, EventID: "refresh:" + ind.Value, At: time.Now().UTC(),
			Cause: event.CauseRefresh, Direction: dir, Old: old, New: now, Reasons: e.reasonsFor(ind, outcomes)}
		if err := pub.PublishChanges(ctx, []*event.Change{c}); err != nil {
			log.Warn("verdict change not published", zap.String("indicator", ind.Value), zap.Error(err))
		}
	}
}

// reasonsFor are the reasons of the rating from outcomes.
func (e *Enricher) reasonsFor(ind event.Indicator, outcomes map[string]*event.ProviderOutcome) []event.Reason {
	ev := &event.Scored{Indicator: ind, Tags: []string{}, Reasons: []event.Reason{}}
	e.fuseInto(ev, outcomes)
	return ev.Reasons
}

// cachedOutcomes are the sources' answers about ind as the cache holds them, asking nothing but
// the offline sources (which cost nothing).
func (e *Enricher) cachedOutcomes(ctx context.Context, ind event.Indicator) map[string]*event.ProviderOutcome {
	out := make(map[string]*event.ProviderOutcome, len(e.order))
	for _, st := range e.plan.Stages {
		for _, s := range st.Sources {
			l := s.Lookuper
			if l.chain.Keys == nil {
				out[l.name] = l.offline(ctx, ind)
				continue
			}
			if entry, err := l.o.Cache.Get(ctx, l.o.Keys.Cache(l.name, l.shape, ind.Value)); err == nil && entry != nil {
				out[l.name] = l.answer(entry, &event.CacheInfo{Hit: true})
			}
		}
	}
	return out
}

func statusOfVerdict(v event.Verdict) event.ProviderStatus {
	if v == event.VerdictNotFound {
		return event.StatusNotFound
	}
	return event.StatusOK
}
