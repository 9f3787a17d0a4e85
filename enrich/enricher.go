package enrich

import (
	"context"
	"slices"
	"strconv"
	"sync"

	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Enricher is the pipeline.Processor that asks every configured provider about an indicator
// (concurrently) and fuses the answers into the scored event.
type Enricher struct {
	lookupers []*Lookuper
	names     []string
	metrics   *Metrics
}

var (
	_ pipeline.Processor    = (*Enricher)(nil)
	_ pipeline.GateObserver = (*Enricher)(nil)
)

// NewEnricher returns a processor over lookupers, in the order their answers take precedence
// for context fields (AS, geo, ISP).
func NewEnricher(lookupers []*Lookuper, m *Metrics) *Enricher {
	names := make([]string, len(lookupers))
	for i, l := range lookupers {
		names[i] = l.Name()
	}
	return &Enricher{lookupers: lookupers, names: names, metrics: m}
}

// Process implements pipeline.Processor. Provider problems become statuses in the event; only
// the end of ctx (a hard shutdown) is returned as an error.
func (e *Enricher) Process(ctx context.Context, ev *event.Scored) error {
	outcomes := make([]*event.ProviderOutcome, len(e.lookupers))
	if len(e.lookupers) == 1 {
		outcomes[0] = e.lookupers[0].Lookup(ctx, ev.Indicator)
	} else {
		var wg sync.WaitGroup
		for i, l := range e.lookupers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outcomes[i] = l.Lookup(ctx, ev.Indicator)
			}()
		}
		wg.Wait()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ev.Providers = make(map[string]*event.ProviderOutcome, len(outcomes))
	for i, l := range e.lookupers {
		ev.Providers[l.Name()] = outcomes[i]
	}
	Fuse(ev, e.names)
	return nil
}

// Gated implements pipeline.GateObserver: a gated indicator is a lookup saved per provider.
func (e *Enricher) Gated() {
	for _, l := range e.lookupers {
		l.savedGated.Inc()
	}
}

// Fuse computes the event's score, tags, reasons and context from its provider outcomes
// (docs/scoring.md): the score is the highest provider score among answers; tags are the union;
// every provider contributes one reason saying what it said (or why it said nothing) and the
// points it brought; AS, geo and ISP come from the first provider, in order, that has them.
func Fuse(ev *event.Scored, order []string) {
	score := 0
	var tags []string
	for _, name := range order {
		out, ok := ev.Providers[name]
		if !ok {
			continue
		}
		r := out.Result
		switch {
		case out.Status == event.StatusOK && r != nil:
			score = max(score, r.Score)
			tags = append(tags, r.Tags...)
			detail := r.Detail
			if out.Cache != nil && out.Cache.Hit {
				detail += " (cached " + strconv.FormatInt(out.Cache.AgeSeconds, 10) + "s ago)"
			}
			ev.Reasons = append(ev.Reasons, event.Reason{Source: name, Detail: detail, Points: r.Score})
			fuseContext(ev, r)
		case out.Status == event.StatusNotFound:
			ev.Reasons = append(ev.Reasons, event.Reason{Source: name, Detail: "no record of this address", Points: 0})
		default:
			ev.Reasons = append(ev.Reasons, event.Reason{Source: name, Detail: "not consulted: " + string(out.Status), Points: 0})
		}
	}
	slices.Sort(tags)
	ev.Tags = slices.Compact(append(ev.Tags, tags...))
	ev.Score = min(max(score, 0), 100)
	ev.Severity = event.SeverityOf(ev.Score)
}

func fuseContext(ev *event.Scored, r *event.Intel) {
	if ev.AS == nil && (r.ASNumber != 0 || r.ASOrganization != "") {
		ev.AS = &event.AS{Number: r.ASNumber}
		if r.ASOrganization != "" {
			ev.AS.Organization = &event.ASOrgRef{Name: r.ASOrganization}
		}
	}
	if ev.Geo == nil && (r.CountryISO != "" || r.City != "" || r.Location != nil) {
		ev.Geo = &event.GeoInfo{CountryISOCode: r.CountryISO, CityName: r.City, Location: r.Location}
	}
	if ev.ISP == "" {
		ev.ISP = r.ISP
	}
}
