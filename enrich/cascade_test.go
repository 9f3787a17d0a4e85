package enrich

import (
	"context"
	"strings"
	"testing"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// offlineProvider is a local source: a block list of one address.
type offlineProvider struct {
	fakeProvider
	blocked string
}

func (p *offlineProvider) Cost() Cost { return CostOffline }
func (p *offlineProvider) Lookup(ctx context.Context, ind event.Indicator) (*event.Intel, error) {
	p.calls.Add(1)
	if ind.Value != p.blocked {
		return &event.Intel{Verdict: event.VerdictNotFound, Detail: "on no list"}, nil
	}
	return &event.Intel{Verdict: event.VerdictMalicious, Score: 90, Detail: "on drop",
		Lists: []event.ListHit{{Name: "drop", Kind: event.ListBlock, Prefix: ind.Value + "/32"}}}, nil
}

// condFunc is a Condition for tests (rules compiles the real ones from expressions).
type condFunc struct {
	name string
	f    func(*Facts) bool
}

func (c condFunc) Holds(f *Facts) bool { return c.f(f) }
func (c condFunc) String() string      { return c.name }

func TestCascadeStopsEarlyAndSpendsNothing(t *testing.T) {
	r := newRig(t)
	lists := &offlineProvider{fakeProvider: fakeProvider{name: providerName(t) + "lists"}, blocked: "185.220.101.9"}
	paid := &fakeProvider{name: providerName(t) + "paid"}
	plan := Plan{
		Stages: []Stage{
			{Name: "offline", Sources: []Source{{Lookuper: r.lookuper(t, lists, testPolicy(), "x")}}},
			{Name: "paid", Sources: []Source{{Lookuper: r.lookuper(t, paid, testPolicy(), "x")}}},
		},
		StopWhen: []Condition{condFunc{"block_listed", func(f *Facts) bool { return f.BlockListed }}},
	}
	e := NewEnricher(plan, nil, r.metrics)

	hit := scoredFor(t, "185.220.101.9")
	if err := e.Process(context.Background(), hit); err != nil {
		t.Fatal(err)
	}
	if paid.calls.Load() != 0 {
		t.Fatalf("a block list hit still cost %d paid calls", paid.calls.Load())
	}
	out := hit.Providers[paid.name]
	if out == nil || out.Status != event.StatusSkipped || out.Error != "early stop: block_listed" {
		t.Fatalf("paid outcome %+v", out)
	}
	if hit.Score != 90 || hit.ValidatedBy[0] != "list:drop" {
		t.Errorf("scored %d validated %v", hit.Score, hit.ValidatedBy)
	}

	miss := scoredFor(t, "185.220.101.10")
	if err := e.Process(context.Background(), miss); err != nil {
		t.Fatal(err)
	}
	if paid.calls.Load() != 1 || miss.Providers[paid.name].Status != event.StatusOK {
		t.Fatalf("not on a list: paid calls %d, outcome %+v", paid.calls.Load(), miss.Providers[paid.name])
	}
	if lists.calls.Load() != 2 {
		t.Errorf("offline source asked %d times, want every event (no cache)", lists.calls.Load())
	}
}

func TestCascadeConditionsAndOwnRanges(t *testing.T) {
	r := newRig(t)
	cheap := &fakeProvider{name: providerName(t) + "cheap", answer: func(_ int64, ind event.Indicator) (*event.Intel, error) {
		if strings.HasSuffix(ind.Value, ".1") {
			return &event.Intel{Verdict: event.VerdictSuspicious, Score: 60, Detail: "meh"}, nil
		}
		return &event.Intel{Verdict: event.VerdictBenign, Score: 5, Detail: "fine"}, nil
	}}
	dear := &fakeProvider{name: providerName(t) + "dear"}
	local := &offlineProvider{fakeProvider: fakeProvider{name: providerName(t) + "local"}}
	plan := Plan{Stages: []Stage{
		{Name: "first", Sources: []Source{{Lookuper: r.lookuper(t, local, testPolicy(), "x"), OwnRanges: true},
			{Lookuper: r.lookuper(t, cheap, testPolicy(), "x")}}},
		{Name: "second", Sources: []Source{{Lookuper: r.lookuper(t, dear, testPolicy(), "x"),
			When: condFunc{"score >= 40", func(f *Facts) bool { return f.Score >= 40 }}}}},
	}}
	e := NewEnricher(plan, nil, r.metrics)
	if !e.EnrichesOwnRanges() {
		t.Fatal("a source with OwnRanges makes the enricher take own-range addresses")
	}

	worth := scoredFor(t, "185.220.102.1")
	_ = e.Process(context.Background(), worth)
	notWorth := scoredFor(t, "185.220.102.2")
	_ = e.Process(context.Background(), notWorth)
	if dear.calls.Load() != 1 || worth.Providers[dear.name].Status != event.StatusOK {
		t.Fatalf("condition true: dear calls %d, outcome %+v", dear.calls.Load(), worth.Providers[dear.name])
	}
	if o := notWorth.Providers[dear.name]; o.Status != event.StatusSkipped || !strings.Contains(o.Error, "score >= 40") {
		t.Fatalf("condition false: %+v", o)
	}

	own := scoredFor(t, "185.220.103.1")
	own.Gate = &event.Gate{Reason: "own_range", Prefix: "185.220.103.0/24"}
	_ = e.Process(context.Background(), own)
	if _, asked := own.Providers[cheap.name]; asked || cheap.calls.Load() != 2 || dear.calls.Load() != 1 {
		t.Fatalf("own range: only OwnRanges sources may be asked: %+v", own.Providers)
	}
	if own.Providers[local.name] == nil {
		t.Fatal("own range: the local source was not asked")
	}
}
