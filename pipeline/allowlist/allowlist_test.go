package allowlist

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline/gate"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newStore(t *testing.T) (*Store, *clock, redis.UniversalClient) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: pipelinetest.Redis(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	prefix := pipelinetest.Name(t, "al")
	t.Cleanup(func() {
		s := New(rdb, prefix, nil)
		_ = rdb.Del(context.Background(), s.keys()...).Err()
	})
	c := &clock{t: time.Now()}
	return New(rdb, prefix, c.now), c, rdb
}

func TestAddListRemoveAndExpiry(t *testing.T) {
	t.Parallel()
	s, c, _ := newStore(t)
	ctx := context.Background()
	now := c.now()
	e, err := s.Add(ctx, Entry{Target: "::ffff:198.51.100.7", Reason: "our scanner", Author: "ana", Expires: now.Add(time.Hour)})
	if err != nil || e.Target != "198.51.100.7" {
		t.Fatalf("Add = %+v, %v: want the canonical address", e, err)
	}
	if _, err := s.Add(ctx, Entry{Target: "203.0.113.9/24", Reason: "cdn", Author: "ana", Expires: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 2 || list[0].Target != "203.0.113.0/24" || list[1].Reason != "our scanner" {
		t.Fatalf("List = %+v, %v: want the CIDR (masked, soonest expiry) first", list, err)
	}
	c.add(2 * time.Minute)
	if list, _ := s.List(ctx); len(list) != 1 || list[0].Target != "198.51.100.7" {
		t.Fatalf("after the CIDR expired: %+v", list)
	}
	if ok, err := s.Remove(ctx, "198.51.100.7"); !ok || err != nil {
		t.Fatalf("Remove = %v, %v", ok, err)
	}
	if ok, _ := s.Remove(ctx, "198.51.100.7"); ok {
		t.Fatal("removed twice")
	}
	for _, bad := range []Entry{{Target: "not-an-ip", Expires: now.Add(time.Hour)}, {Target: "198.51.100.8", Expires: now.Add(-time.Hour)},
		{Target: "010.1.1.1", Expires: now.Add(time.Hour)}} {
		if _, err := s.Add(ctx, bad); err == nil {
			t.Errorf("Add(%+v) accepted", bad)
		}
	}
}

func TestBounded(t *testing.T) {
	t.Parallel()
	s, c, rdb := newStore(t)
	ctx := context.Background()
	// Fill the sorted set directly: MaxEntries adds would be slow for nothing.
	members := make([]redis.Z, MaxEntries)
	for i := range members {
		members[i] = redis.Z{Score: float64(c.now().Add(time.Hour).UnixMilli()), Member: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String()}
	}
	if err := rdb.ZAdd(ctx, s.keys()[0], members...).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := s.Add(ctx, Entry{Target: "198.51.100.7", Expires: c.now().Add(time.Hour)})
	if !errors.Is(err, ErrFull) {
		t.Fatalf("Add to a full allowlist = %v, want ErrFull", err)
	}
	// An existing entry can still be replaced.
	if _, err := s.Add(ctx, Entry{Target: "10.0.0.1", Expires: c.now().Add(2 * time.Hour)}); err != nil {
		t.Fatalf("replacing an entry of a full allowlist: %v", err)
	}
}

func TestRefresherFeedsTheGate(t *testing.T) {
	t.Parallel()
	s, c, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	shared := gate.NewShared()
	g := gate.New(nil, nil).WithShared(shared)
	r := NewRefresher(s, shared, 20*time.Millisecond, zap.NewNop())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	addr := netip.MustParseAddr("185.220.101.7") // public: no static range gates it
	if _, gated := g.Check(addr); gated {
		t.Fatal("gated before it was allowlisted")
	}
	if _, err := s.Add(ctx, Entry{Target: addr.String(), Reason: "fp", Author: "ana", Expires: c.now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	pipelinetest.WaitFor(t, 2*time.Second, "the gate to allowlist the address", func() bool {
		v, gated := g.Check(addr)
		return gated && v.Reason == gate.ReasonAllowlist
	})
	// A static range keeps its reason.
	if _, err := s.Add(ctx, Entry{Target: "10.1.2.3", Expires: c.now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if v, _ := g.Check(netip.MustParseAddr("10.1.2.3")); v.Reason != gate.ReasonPrivate {
		t.Errorf("a private address allowlisted: reason %q, want private", v.Reason)
	}
	c.add(2 * time.Minute) // both entries expire
	pipelinetest.WaitFor(t, 2*time.Second, "the expired entry to leave the gate", func() bool {
		_, gated := g.Check(addr)
		return !gated
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil on cancel", err)
	}
}
