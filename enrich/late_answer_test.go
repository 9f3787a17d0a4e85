package enrich

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// TestLateAnswerIsKeptNotPaidAgain: a request that went out late in its event's budget (it
// waited on the shared rate) and is answered after the budget ended was still billed, so its
// answer is waited for, stored and served to the next event instead of being paid for again.
func TestLateAnswerIsKeptNotPaidAgain(t *testing.T) {
	r := newRig(t)
	p := &fakeProvider{name: providerName(t), delay: 400 * time.Millisecond}
	pol := testPolicy()
	// One request a second: the second address, asked at the same time as the first, waits about
	// a second for the rate, then its request outlasts the flight's deadline (retry budget +
	// attempt timeout = 1.05 s) but not the attempt's own timeout.
	pol.RateLimit, pol.RateBurst = 1, 1
	pol.RetryBudget, pol.AttemptTimeout = 50*time.Millisecond, time.Second
	l := NewLookuper(LookuperOptions{Provider: p, Policy: pol, Redis: r.rdb, Keys: testKeys, Cache: startedCache(t, r),
		Metrics: r.metrics, Log: testLog(t), Owner: "a"})
	t.Cleanup(l.Close)
	ctx := context.Background()
	done := make(chan *event.ProviderOutcome)
	go func() { done <- l.Lookup(ctx, ip("198.51.100.61")) }()
	time.Sleep(20 * time.Millisecond) // the first takes the rate's only token
	first := l.Lookup(ctx, ip("198.51.100.62"))
	if out := <-done; out.Status != event.StatusOK {
		t.Fatalf("first address: %+v", out)
	}
	again := l.Lookup(ctx, ip("198.51.100.62"))
	if n := p.perIP["198.51.100.62"]; n != 1 {
		t.Fatalf("the late-answered address was paid for %d times (outcomes %+v then %+v), want once", n, first, again)
	}
	if first.Status != event.StatusOK || again.Cache == nil || !again.Cache.Hit {
		t.Errorf("outcomes %+v then %+v: want the late answer, then a cache hit", first, again)
	}
}

// TestAnswerStoreRetriedWhileRedisRefusesIt: during a Sentinel failover the old primary answers
// NOREPLICAS to writes until the client follows the new one. A paid answer whose store is refused
// is stored once Redis takes it again, so another replica finds it rather than paying again.
func TestAnswerStoreRetriedWhileRedisRefusesIt(t *testing.T) {
	r := newRig(t)
	p := &fakeProvider{name: providerName(t)}
	refusing := redis.NewClient(&redis.Options{Addr: pipelinetest.Redis(t)})
	t.Cleanup(func() { _ = refusing.Close() })
	hook := &refuseStores{left: 3}
	refusing.AddHook(hook)
	b := r.lookuper(t, p, testPolicy(), "b")
	a := (&rig{rdb: refusing, metrics: r.metrics, ops: r.ops}).lookuper(t, p, testPolicy(), "a")

	ctx := context.Background()
	first := a.Lookup(ctx, ip("198.51.100.71"))
	if first.Status != event.StatusOK {
		t.Fatalf("first lookup: %+v", first)
	}
	if left := hook.remaining(); left != 0 {
		t.Fatalf("%d refusals left: the store was not retried past them", left)
	}
	other := b.Lookup(ctx, ip("198.51.100.71"))
	if n := p.perIP["198.51.100.71"]; n != 1 || other.Cache == nil || !other.Cache.Hit {
		t.Errorf("paid %d times; the other replica's outcome %+v: want one call and a cache hit", n, other)
	}
}

// refuseStores fails the first left pipelines that write (the answer's store) as a primary
// that lost its replica does.
type refuseStores struct {
	mu   sync.Mutex
	left int
}

func (h *refuseStores) remaining() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.left
}

func (h *refuseStores) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *refuseStores) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *refuseStores) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !slices.ContainsFunc(cmds, func(c redis.Cmder) bool { return c.Name() == "set" }) {
			return next(ctx, cmds)
		}
		h.mu.Lock()
		refuse := h.left > 0
		if refuse {
			h.left--
		}
		h.mu.Unlock()
		if !refuse {
			return next(ctx, cmds)
		}
		err := errors.New("NOREPLICAS Not enough good replicas to write.")
		for _, c := range cmds {
			c.SetErr(err)
		}
		return err
	}
}
