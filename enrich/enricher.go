package enrich

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/threatpipe/threatpipe/enrich/score"
	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/gate"
)

// Enricher is the pipeline.Processor that consults the sources of its Plan, stage by stage,
// and fuses their answers into the scored event with its Scorer.
type Enricher struct {
	plan    Plan
	scorer  Scorer
	order   []string // every source, in cascade order: context precedence and reason order
	ownAny  bool     // some source is asked about own-range addresses
	needMid bool     // conditions read the verdict between stages
	metrics *Metrics
	parking *Parking         // nil: pending lookups are not parked (the Lookupers do not defer)
	now     func() time.Time // the clock the evidence's age is measured by (time.Now)
}

var (
	_ pipeline.Processor         = (*Enricher)(nil)
	_ pipeline.GateObserver      = (*Enricher)(nil)
	_ pipeline.OwnRangeProcessor = (*Enricher)(nil)
)

// NewEnricher returns a processor running plan, scoring with scorer (score.Default() when nil).
func NewEnricher(plan Plan, scorer Scorer, m *Metrics) *Enricher {
	if scorer == nil {
		scorer = score.Default()
	}
	e := &Enricher{plan: plan, scorer: scorer, metrics: m, needMid: len(plan.StopWhen) > 0, now: time.Now}
	for i, st := range plan.Stages {
		for _, s := range st.Sources {
			e.order = append(e.order, s.Lookuper.Name())
			e.ownAny = e.ownAny || s.OwnRanges
			e.needMid = e.needMid || (s.When != nil && i > 0)
		}
	}
	return e
}

// ParkWith makes the Enricher park the pending lookups of every event in p, for a Retrier to
// finish them and publish revisions.
func (e *Enricher) ParkWith(p *Parking) *Enricher {
	e.parking = p
	return e
}

// Sources lists the plan's sources in cascade order.
func (e *Enricher) Sources() []string { return append([]string(nil), e.order...) }

// Process implements pipeline.Processor. Source problems become statuses in the event; only the
// end of ctx (a hard shutdown) is returned as an error.
func (e *Enricher) Process(ctx context.Context, ev *event.Scored) error {
	own := ev.Gate != nil && ev.Gate.Reason == gate.ReasonOwnRange
	outcomes := make(map[string]*event.ProviderOutcome, len(e.order))
	var fused score.Fused
	var facts *Facts
	stopped := ""
	for i, st := range e.plan.Stages {
		if i > 0 && e.needMid {
			fused = e.scorer.Fuse(outcomes, e.order, e.now())
			facts = factsOf(&fused, ev, outcomes, own)
			for _, c := range e.plan.StopWhen {
				if stopped == "" && c.Holds(facts) {
					stopped = c.String()
				}
			}
		}
		if stopped != "" {
			for _, s := range st.Sources {
				if !own || s.OwnRanges {
					outcomes[s.Lookuper.Name()] = s.Lookuper.skip("early stop: " + stopped)
				}
			}
			continue
		}
		e.runStage(ctx, st, ev, facts, own, outcomes)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	e.fuseInto(ev, outcomes)
	e.park(ctx, ev)
	return nil
}

// fuseInto scores ev from outcomes, replacing whatever an earlier fusion wrote (the gate's
// reason stays: it is the handler's).
func (e *Enricher) fuseInto(ev *event.Scored, outcomes map[string]*event.ProviderOutcome) {
	fused := e.scorer.Fuse(outcomes, e.order, e.now())
	ev.Providers = outcomes
	if len(ev.Reasons) > 0 {
		ev.Reasons = slices.DeleteFunc(ev.Reasons, func(r event.Reason) bool { return r.Source != "gate" })
	}
	ev.Tags = ev.Tags[:0]
	ev.AS, ev.Geo, ev.ISP, ev.Fields = nil, nil, "", nil
	fused.Apply(ev)
	if e.plan.Fields != nil {
		ev.Fields = e.plan.Fields.Merge(outcomes)
	}
}

// park parks ev's pending lookups. An event that cannot be parked keeps no pending part: its
// lookups are reported failed, with why, so nothing waits for a revision that cannot come.
func (e *Enricher) park(ctx context.Context, ev *event.Scored) {
	if e.parking == nil {
		return
	}
	due := map[string]time.Time{}
	for name, o := range ev.Providers {
		if o != nil && o.Status == event.StatusPending && o.RetryAt != nil {
			due[name] = *o.RetryAt
		}
	}
	if len(due) == 0 {
		return
	}
	err := e.parking.Park(ctx, ev, due)
	if err == nil {
		e.metrics.Parked.Add(float64(len(due)))
		return
	}
	for name := range due {
		ev.Providers[name] = &event.ProviderOutcome{Status: event.StatusFailed, Error: ev.Providers[name].Error + "; not parked: " + err.Error()}
	}
	e.fuseInto(ev, ev.Providers)
}

// Revise gives ev provider's final outcome, scores it again and reports whether it still waits
// on another provider. The caller numbers and publishes the revision.
func (e *Enricher) Revise(ev *event.Scored, provider string, out *event.ProviderOutcome) (stillPending bool) {
	outcomes := ev.Providers
	if outcomes == nil {
		outcomes = map[string]*event.ProviderOutcome{}
	}
	outcomes[provider] = out
	e.fuseInto(ev, outcomes)
	for _, o := range outcomes {
		if o != nil && o.Status == event.StatusPending {
			return true
		}
	}
	return false
}

// runStage asks the stage's sources at once (those whose condition holds and whose scope
// covers the address) and records every outcome.
func (e *Enricher) runStage(ctx context.Context, st Stage, ev *event.Scored, facts *Facts, own bool, outcomes map[string]*event.ProviderOutcome) {
	var asked []Source
	for _, s := range st.Sources {
		switch {
		case own && !s.OwnRanges:
		case s.When != nil && facts != nil && !s.When.Holds(facts):
			outcomes[s.Lookuper.Name()] = s.Lookuper.skip("rule: " + s.When.String() + " is false")
		default:
			asked = append(asked, s)
		}
	}
	h := hintOf(ev, facts) // assigned once: the stage's goroutines copy it rather than share it on the heap
	h.Fresh = pipeline.ForcedLookup(ctx)
	if len(asked) == 1 {
		outcomes[asked[0].Lookuper.Name()] = asked[0].Lookuper.LookupFor(ctx, ev.Indicator, h)
		return
	}
	results := make([]*event.ProviderOutcome, len(asked))
	var wg sync.WaitGroup
	for i, s := range asked {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.Lookuper.LookupFor(ctx, ev.Indicator, h)
		}()
	}
	wg.Wait()
	for i, s := range asked {
		outcomes[s.Lookuper.Name()] = results[i]
	}
}

// hintOf is what a lookup is told about the event it is for.
func hintOf(ev *event.Scored, facts *Facts) Hint {
	if facts == nil {
		return Hint{Source: ev.Source}
	}
	return Hint{Source: ev.Source, Score: facts.Score, Voters: facts.Voters}
}

func factsOf(f *score.Fused, ev *event.Scored, outcomes map[string]*event.ProviderOutcome, own bool) *Facts {
	verdicts := make(map[string]string, len(outcomes))
	for name, o := range outcomes {
		if o != nil && o.Result != nil {
			verdicts[name] = string(o.Result.Verdict)
		}
	}
	return &Facts{Score: f.Score, Confidence: f.Confidence, ValidatedBy: f.ValidatedBy, Tags: f.Tags, Lists: f.Lists,
		BlockListed: f.BlockListed, BenignService: f.BenignService != "", Voters: f.Voters, Verdicts: verdicts,
		IP: ev.Indicator.Value, Type: string(ev.Indicator.Type), OwnRange: own}
}

// EnrichesOwnRanges implements pipeline.OwnRangeProcessor: some source is asked about the
// operator's own addresses.
func (e *Enricher) EnrichesOwnRanges() bool { return e.ownAny }

// Gated implements pipeline.GateObserver: a gated indicator is a lookup saved per source.
func (e *Enricher) Gated() {
	for _, st := range e.plan.Stages {
		for _, s := range st.Sources {
			s.Lookuper.savedGated.Inc()
		}
	}
}
