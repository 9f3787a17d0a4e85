package enrich

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// TestForcedLookupPaysOncePerForce: a cached address is served from the cache, looked up again
// when the lookup is forced (an analyst's re-enrich), once for two replicas forced at the same
// time, and the new answer is what the cache serves afterwards.
func TestForcedLookupPaysOncePerForce(t *testing.T) {
	r := newRig(t)
	p := &fakeProvider{name: providerName(t), delay: 150 * time.Millisecond,
		answer: func(call int64, _ event.Indicator) (*event.Intel, error) {
			if call == 1 {
				return &event.Intel{Verdict: event.VerdictMalicious, Score: 85}, nil
			}
			return &event.Intel{Verdict: event.VerdictBenign, Score: 3}, nil
		}}
	a, b := r.lookuper(t, p, testPolicy(), "r1"), r.lookuper(t, p, testPolicy(), "r2")
	ctx := context.Background()
	addr := ip("45.1.2.4")
	if out := a.Lookup(ctx, addr); out.Status != event.StatusOK || out.Result.Score != 85 {
		t.Fatalf("first lookup: %+v", out)
	}
	if out := b.Lookup(ctx, addr); out.Cache == nil || !out.Cache.Hit || p.calls.Load() != 1 {
		t.Fatalf("without the header: %+v after %d calls, want a cache hit", out, p.calls.Load())
	}

	var wg sync.WaitGroup
	outs := make([]*event.ProviderOutcome, 2)
	for i, l := range []*Lookuper{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i] = l.LookupFor(ctx, addr, Hint{Source: "analyst", Fresh: true})
		}()
	}
	wg.Wait()
	if got := p.calls.Load(); got != 2 {
		t.Fatalf("two replicas forced at once made %d provider calls in all, want 2 (1 + 1 forced)", got)
	}
	for i, out := range outs {
		if out.Status != event.StatusOK || out.Result.Score != 3 {
			t.Errorf("forced lookup %d: %+v, want the new answer", i, out)
		}
	}
	if out := a.Lookup(ctx, addr); out.Cache == nil || !out.Cache.Hit || out.Result.Score != 3 || p.calls.Load() != 2 {
		t.Errorf("after the forced lookup: %+v after %d calls, want the new answer from the cache", out, p.calls.Load())
	}
}
