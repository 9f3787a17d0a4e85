package act

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestDurableClaimWaitsForAReplica: with WaitForReplicas a claim the primary took but no replica
// acknowledged is not reported claimed (the test's Redis has no replica): the worker keeps
// waiting for the ledger instead of acting on a claim a failover could lose.
func TestDurableClaimWaitsForAReplica(t *testing.T) {
	t.Parallel()
	rdb, prefix := newRedis(t)
	l := NewLedger(rdb, prefix, "durable-owner").WaitForReplicas(1, 20*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, _, err := l.Claim(ctx, false, "p", "s", "203.0.113.9", time.Hour)
	if !errors.Is(err, errNotReplicated) {
		t.Fatalf("claim without a replica: %v, want errNotReplicated", err)
	}
	if n, _ := rdb.Exists(context.Background(), l.claimKey(false, "p", "s", "203.0.113.9")).Result(); n != 1 {
		t.Errorf("the primary must hold the claim the retries wrote (exists %d)", n)
	}
}

// TestDurableScriptsRepeatNothing: the scripts the ledger runs again until a replica has them
// give the same answer when run twice with the same arguments, as after a failover.
func TestDurableScriptsRepeatNothing(t *testing.T) {
	t.Parallel()
	rdb, prefix := newRedis(t)
	l := NewLedger(rdb, prefix, "owner-a")
	ctx := context.Background()
	key := l.claimKey(false, "p", "s", "203.0.113.10")
	for i := range 2 {
		reply, err := claimScript.Run(ctx, rdb, []string{key}, `{"state":"pending","key":"k1","owner":"owner-a"}`, 60000).Slice()
		if err != nil || reply[0].(int64) != 1 {
			t.Fatalf("claim run %d: %v %v, want created", i+1, reply, err)
		}
	}
	for i := range 2 {
		ok, err := takeoverScript.Run(ctx, rdb, []string{key}, `{"state":"pending","key":"k1","owner":"owner-a"}`,
			`{"state":"pending","key":"k1","owner":"owner-b"}`).Int()
		if err != nil || ok != 1 {
			t.Fatalf("takeover run %d: %d %v, want 1", i+1, ok, err)
		}
	}
	c := &Claim{State: StatePending, Key: "k1", Owner: "owner-b"}
	lb := NewLedger(rdb, prefix, "owner-b")
	for i := range 2 {
		if err := lb.Done(ctx, false, "p", "s", "203.0.113.10", c, "ref-1", "e1", time.Hour); err != nil {
			t.Fatalf("done run %d: %v", i+1, err)
		}
	}
	if seen, err := lb.Seen(ctx, false, "p", "s", "203.0.113.10", "e1"); err != nil || !seen {
		t.Errorf("the event must be seen: %v %v", seen, err)
	}
}
