package act

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// hashTag is the part of a key Redis Cluster hashes: the first {...} with something inside,
// else the whole key (https://redis.io/docs/reference/cluster-spec/#hash-tags).
func hashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

// Keys written together (a transaction or a script) must share a slot, or Redis Cluster
// rejects the call: these pin the hash tags that keep them together.
func TestLedgerKeysThatChangeTogetherShareAClusterSlot(t *testing.T) {
	l := NewLedger(nil, "tp", "me")
	for _, dry := range []bool{false, true} {
		for _, target := range []string{"185.220.101.45", "2001:db8::1"} {
			claim := l.claimKey(dry, "critical", "block", target)
			seen := l.seenSetKey(dry, "critical", "block", target)
			if hashTag(claim) != hashTag(seen) || hashTag(claim) == claim {
				t.Errorf("claim %q and seen %q are not tagged into one slot", claim, seen)
			}
			if !strings.HasPrefix(claim, "tp:"+namespace(dry)+":claim:") || !strings.Contains(claim, target) {
				t.Errorf("claim key %q", claim)
			}
		}
	}
	if a, b := l.claimKey(false, "critical", "block", "1.2.3.4"), l.claimKey(false, "critical", "block", "1.2.3.5"); hashTag(a) == hashTag(b) {
		t.Errorf("every action on every target shares one slot: %q, %q", a, b)
	}
	if l.claimKey(false, "p", "s", "t") == l.claimKey(true, "p", "s", "t") {
		t.Error("dry-run claims share the real ones' keys")
	}
	if hashTag(l.blocksKey()) != hashTag(l.blockInfoKey()) || l.blocksKey() == l.blockInfoKey() {
		t.Errorf("block keys %q and %q are not tagged into one slot", l.blocksKey(), l.blockInfoKey())
	}
	if hashTag(l.blockLeaseKey()) != hashTag(l.blocksKey()) || l.blockLeaseKey() == l.blocksKey() || l.blockLeaseKey() == l.blockInfoKey() {
		t.Errorf("block lease key %q is not tagged into the block keys' slot", l.blockLeaseKey())
	}
}

func TestLedgerClaimLifecycle(t *testing.T) {
	t.Parallel()
	rdb, prefix := newRedis(t)
	ctx := context.Background()
	a := NewLedger(rdb, prefix, "replica-a")
	b := NewLedger(rdb, prefix, "replica-b")

	res, mine, err := a.Claim(ctx, false, "p", "s", "t", time.Hour)
	if err != nil || res != Claimed || mine.State != StatePending || mine.Owner != "replica-a" || !strings.HasPrefix(mine.Key, "tpa-") {
		t.Fatalf("first claim: %v %+v %v", res, mine, err)
	}
	// This process's own pending claim: busy, never taken over.
	if res, cur, err := a.Claim(ctx, false, "p", "s", "t", time.Hour); !errors.Is(err, ErrBusy) || cur.Key != mine.Key {
		t.Fatalf("own pending claim: %v %+v %v", res, cur, err)
	}
	// Another replica's pending claim whose owner is not alive: taken over with the same key.
	res, taken, err := b.Claim(ctx, false, "p", "s", "t", time.Hour)
	if err != nil || res != TakenOver || taken.Key != mine.Key || taken.Owner != "replica-b" || taken.State != StatePending {
		t.Fatalf("takeover: %v %+v %v", res, taken, err)
	}
	// The claim keeps its window through the takeover.
	if ttl := rdb.PTTL(ctx, a.claimKey(false, "p", "s", "t")).Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("claim TTL after takeover = %s", ttl)
	}
	if err := b.Done(ctx, false, "p", "s", "t", taken, "ref-1", "evt-1", time.Hour); err != nil {
		t.Fatal(err)
	}
	res, done, err := a.Claim(ctx, false, "p", "s", "t", time.Hour)
	if err != nil || res != AlreadyDone || done.Ref != "ref-1" || done.Key != mine.Key || done.State != StateDone {
		t.Fatalf("after done: %v %+v %v", res, done, err)
	}
	for id, want := range map[string]bool{"evt-1": true, "evt-2": false} {
		if seen, err := a.Seen(ctx, false, "p", "s", "t", id); err != nil || seen != want {
			t.Errorf("Seen(%s) = %v, %v", id, seen, err)
		}
	}
	if seen, _ := a.Seen(ctx, true, "p", "s", "t", "evt-1"); seen {
		t.Error("a real event is seen by the dry-run namespace")
	}

	// A released claim is free for the next event, under a new key.
	if err := b.Release(ctx, false, "p", "s", "t", taken); err != nil {
		t.Fatal(err)
	}
	if res, again, err := b.Claim(ctx, false, "p", "s", "t", time.Hour); err != nil || res != Claimed || again.Key == mine.Key {
		t.Errorf("after release: %v %+v %v", res, again, err)
	}
}

func TestLedgerDoneAfterTheWindowDoesNotRecreateTheClaim(t *testing.T) {
	t.Parallel()
	rdb, prefix := newRedis(t)
	ctx := context.Background()
	l := NewLedger(rdb, prefix, "me")
	_, c, err := l.Claim(ctx, false, "p", "s", "t", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := l.Done(ctx, false, "p", "s", "t", c, "ref", "evt", time.Hour); err != nil {
		t.Fatalf("Done after the claim lapsed: %v", err)
	}
	if n := rdb.Exists(ctx, l.claimKey(false, "p", "s", "t")).Val(); n != 0 {
		t.Error("Done recreated a lapsed claim (without a TTL)")
	}
	if seen, _ := l.Seen(ctx, false, "p", "s", "t", "evt"); !seen {
		t.Error("the event was not recorded as handled")
	}
}

func TestLedgerAddBlockKeepsTheLongerBlock(t *testing.T) {
	t.Parallel()
	rdb, prefix := newRedis(t)
	ctx := context.Background()
	l := NewLedger(rdb, prefix, "me")
	now := time.Now()
	add := func(sink, key string, until time.Time) {
		t.Helper()
		if err := l.AddBlock(ctx, ActiveBlock{Sink: sink, Target: "t", Key: key, Playbook: "p", Step: "s", Until: until}); err != nil {
			t.Fatal(err)
		}
	}
	add("edl", "long", now.Add(2*time.Hour))
	add("edl", "short", now.Add(time.Hour)) // a later but shorter block must not cut the first one short
	add("nft", "other-sink", now.Add(time.Minute))
	active, err := l.Active(ctx, "edl")
	if err != nil || len(active) != 1 || !active["t"].Equal(now.Add(2*time.Hour)) {
		t.Fatalf("edl active = %v, %v; want the 2h block", active, err)
	}
	if active, _ := l.Active(ctx, "nft"); !active["t"].Equal(now.Add(time.Minute)) {
		t.Errorf("nft active = %v", active)
	}
	add("edl", "longer", now.Add(3*time.Hour))
	if active, _ := l.Active(ctx, "edl"); !active["t"].Equal(now.Add(3 * time.Hour)) {
		t.Errorf("a longer block did not replace: %v", active)
	}
	// The record that is lifted is the longer block's.
	l.now = func() time.Time { return now.Add(4 * time.Hour) }
	due, err := l.PopDue(ctx, 10)
	if err != nil || len(due) != 2 {
		t.Fatalf("PopDue = %+v, %v", due, err)
	}
	for _, b := range due {
		if b.Sink == "edl" && b.Key != "longer" {
			t.Errorf("edl block popped with key %q, want the longer block's", b.Key)
		}
	}
}

func TestLedgerPopDueTakesOnlyDueBlocksOnce(t *testing.T) {
	t.Parallel()
	rdb, prefix := newRedis(t)
	ctx := context.Background()
	l := NewLedger(rdb, prefix, "me")
	now := time.Now()
	for i, d := range []time.Duration{-time.Minute, -time.Second, 0, time.Second, time.Hour} {
		b := ActiveBlock{Sink: "edl", Target: string(rune('a' + i)), Until: now.Add(d)}
		if err := l.AddBlock(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	l.now = func() time.Time { return now }
	active, _ := l.Active(ctx, "edl")
	if len(active) != 2 {
		t.Errorf("active = %v, want the two blocks still to come", active)
	}
	due, err := l.PopDue(ctx, 2)
	if err != nil || len(due) != 2 {
		t.Fatalf("PopDue(2) = %+v, %v", due, err)
	}
	due2, _ := l.PopDue(ctx, 100)
	if len(due2) != 1 {
		t.Fatalf("second PopDue = %+v, want the third due block only", due2)
	}
	got := map[string]bool{}
	for _, b := range append(due, due2...) {
		got[b.Target] = true
	}
	if !got["a"] || !got["b"] || !got["c"] {
		t.Errorf("popped %v", got)
	}
	if again, _ := l.PopDue(ctx, 100); len(again) != 0 {
		t.Errorf("popped twice: %+v", again)
	}
}

func TestLedgerResolves(t *testing.T) {
	t.Parallel()
	rdb, prefix := newRedis(t)
	ctx := context.Background()
	l := NewLedger(rdb, prefix, "me")
	for _, p := range []Pending{
		{Sink: "pagerduty", Key: "k1", Ref: "r1", Playbook: "critical", Step: "page"},
		{Sink: "pagerduty", Key: "k2", Ref: "r2", Playbook: "other", Step: "page"},
		{Sink: "pagerduty", Key: "k3", Ref: "r3", Playbook: "critical", Step: "page"}, // replaces k1
	} {
		if err := l.AddResolve(ctx, "t", p, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	got, err := l.TakeResolves(ctx, "t")
	if err != nil || len(got) != 2 {
		t.Fatalf("TakeResolves = %+v, %v", got, err)
	}
	refs := map[string]bool{got[0].Ref: true, got[1].Ref: true}
	if !refs["r2"] || !refs["r3"] {
		t.Errorf("resolves = %+v", got)
	}
	if again, err := l.TakeResolves(ctx, "t"); err != nil || len(again) != 0 {
		t.Errorf("resolves are taken once: %+v, %v", again, err)
	}
}

func TestLedgerTrip(t *testing.T) {
	t.Parallel()
	rdb, prefix := newRedis(t)
	ctx := context.Background()
	l := NewLedger(rdb, prefix, "me")
	if first, err := l.Trip(ctx, false, 200*time.Millisecond, "why"); !first || err != nil {
		t.Fatalf("first trip: %v, %v", first, err)
	}
	if first, _ := l.Trip(ctx, false, time.Minute, "again"); first {
		t.Error("a second trip reported first")
	}
	if on, _ := l.Tripped(ctx, false); !on {
		t.Error("not tripped")
	}
	if on, _ := l.Tripped(ctx, true); on {
		t.Error("a real trip trips dry-run playbooks")
	}
	time.Sleep(300 * time.Millisecond)
	if on, _ := l.Tripped(ctx, false); on {
		t.Error("the trip did not lapse")
	}
}

// A live owner that lost Redis for longer than the liveness TTL may find its claim taken over by
// another replica: its late Done or Release must not overwrite or delete the new owner's claim.
func TestLedgerDoneAndReleaseLeaveAnotherOwnersClaimBe(t *testing.T) {
	t.Parallel()
	rdb, prefix := newRedis(t)
	ctx := context.Background()
	a := NewLedger(rdb, prefix, "replica-a")
	b := NewLedger(rdb, prefix, "replica-b")
	key := a.claimKey(false, "p", "s", "t")

	_, mine, err := a.Claim(ctx, false, "p", "s", "t", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	res, taken, err := b.Claim(ctx, false, "p", "s", "t", time.Hour) // a's heartbeat lapsed
	if err != nil || res != TakenOver {
		t.Fatalf("takeover: %v %+v %v", res, taken, err)
	}
	stored := func() string {
		t.Helper()
		raw, err := rdb.Get(ctx, key).Result()
		if err != nil {
			t.Fatalf("the claim is gone: %v", err)
		}
		return raw
	}
	bPending := stored()

	// a comes back and settles its action: b's pending claim stays b's, pending.
	if err := a.Done(ctx, false, "p", "s", "t", mine, "ref-a", "evt-a", time.Hour); !errors.Is(err, ErrClaimLost) {
		t.Errorf("Done on a claim taken over = %v, want ErrClaimLost", err)
	}
	if got := stored(); got != bPending {
		t.Errorf("a's Done overwrote b's claim: %s, was %s", got, bPending)
	}
	if seen, err := a.Seen(ctx, false, "p", "s", "t", "evt-a"); err != nil || !seen {
		t.Errorf("a's event is not recorded as handled: %v, %v", seen, err)
	}
	// a's action failed instead: its release leaves b's claim be.
	if err := a.Release(ctx, false, "p", "s", "t", mine); err != nil {
		t.Fatal(err)
	}
	if got := stored(); got != bPending {
		t.Errorf("a's Release touched b's claim: %s", got)
	}
	if res, cur, err := b.Claim(ctx, false, "p", "s", "t", time.Hour); !errors.Is(err, ErrBusy) || cur.Owner != "replica-b" {
		t.Errorf("b's claim after a's release: %v %+v %v", res, cur, err)
	}

	// b settles it; a's late calls still change nothing.
	if err := b.Done(ctx, false, "p", "s", "t", taken, "ref-b", "evt-b", time.Hour); err != nil {
		t.Fatal(err)
	}
	bDone := stored()
	if err := a.Done(ctx, false, "p", "s", "t", mine, "ref-a", "evt-a2", time.Hour); !errors.Is(err, ErrClaimLost) {
		t.Errorf("Done on a claim another owner settled = %v, want ErrClaimLost", err)
	}
	if err := a.Release(ctx, false, "p", "s", "t", mine); err != nil {
		t.Fatal(err)
	}
	if got := stored(); got != bDone {
		t.Errorf("a's late calls changed b's settled claim: %s, was %s", got, bDone)
	}
	if res, cur, err := a.Claim(ctx, false, "p", "s", "t", time.Hour); err != nil || res != AlreadyDone || cur.Ref != "ref-b" {
		t.Errorf("after b's done: %v %+v %v", res, cur, err)
	}
	if ttl := rdb.PTTL(ctx, key).Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("claim TTL = %s, want the window's", ttl)
	}

	// A claim made anew after a release is not the old claim's either, even by the same owner.
	if err := b.Release(ctx, false, "p", "s", "t", taken); err != nil {
		t.Fatal(err)
	}
	_, fresh, err := b.Claim(ctx, false, "p", "s", "t", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Release(ctx, false, "p", "s", "t", taken); err != nil {
		t.Fatal(err)
	}
	if err := b.Done(ctx, false, "p", "s", "t", taken, "stale", "evt-c", time.Hour); !errors.Is(err, ErrClaimLost) {
		t.Errorf("Done with a released claim = %v, want ErrClaimLost", err)
	}
	if res, cur, err := b.Claim(ctx, false, "p", "s", "t", time.Hour); !errors.Is(err, ErrBusy) || cur.Key != fresh.Key || cur.State != StatePending {
		t.Errorf("the fresh claim after stale calls: %v %+v %v", res, cur, err)
	}
}

func TestLedgerHeartbeatLogsFailuresOnceAndRecovery(t *testing.T) {
	t.Parallel()
	rdb, prefix := newRedis(t)
	l := NewLedger(rdb, prefix, "replica-a")
	l.beat = 10 * time.Millisecond
	core, logs := observer.New(zap.DebugLevel)
	l.Log = zap.New(core)
	alive := l.aliveKey("replica-a")
	fault := addFault(rdb, func(cmd redis.Cmder) bool {
		args := cmd.Args()
		return strings.EqualFold(cmd.Name(), "set") && len(args) > 1 && args[1] == alive
	})
	fault.on.Store(true)

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Heartbeat(ctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	waitFor(t, 5*time.Second, "several failed beats", func() bool { return fault.hits.Load() >= 5 })
	warns := func() []observer.LoggedEntry { return logs.FilterLevelExact(zap.WarnLevel).All() }
	if w := warns(); len(w) != 1 || !strings.Contains(w[0].Message, "heartbeat failing") ||
		!strings.Contains(fmt.Sprint(w[0].ContextMap()["error"]), errLedgerDown.Error()) {
		t.Fatalf("after %d failed beats, warnings %+v; want exactly one, naming the error", fault.hits.Load(), w)
	}

	fault.on.Store(false)
	waitFor(t, 5*time.Second, "beats again", func() bool { return rdb.Exists(context.Background(), alive).Val() == 1 })
	time.Sleep(60 * time.Millisecond) // several good beats
	if w := warns(); len(w) != 2 || !strings.Contains(w[1].Message, "heartbeat recovered") {
		t.Fatalf("after recovering, warnings %+v; want one more saying so", w)
	}

	fault.on.Store(true)
	hits := fault.hits.Load()
	waitFor(t, 5*time.Second, "failing again", func() bool { return fault.hits.Load() >= hits+3 })
	if w := warns(); len(w) != 3 || !strings.Contains(w[2].Message, "heartbeat failing") {
		t.Fatalf("failing again, warnings %+v", w)
	}
	if n := logs.Len(); n != 3 {
		t.Errorf("%d log entries, want the 3 warnings only: %+v", n, logs.All())
	}
}

// PopDue leases due blocks: a lifter that crashes after popping one (before Undo, or before
// Lifted) leaves it to be handed out again once the lease ends.
func TestLedgerPopDueLeasesUntilLifted(t *testing.T) {
	t.Parallel()
	rdb, prefix := newRedis(t)
	ctx := context.Background()
	l := NewLedger(rdb, prefix, "me")
	now := time.Now()
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	l.now = func() time.Time { return time.Unix(0, clock.Load()) }
	b := ActiveBlock{Sink: "webhook", Target: "t", Key: "k1", Ref: "r1", Playbook: "p", Step: "s", Until: now.Add(-time.Second)}
	if err := l.AddBlock(ctx, b); err != nil {
		t.Fatal(err)
	}
	first, err := l.PopDue(ctx, 10)
	if err != nil || len(first) != 1 || first[0].Key != "k1" || first[0].Ref != "r1" || !first[0].Until.Equal(b.Until) {
		t.Fatalf("PopDue = %+v, %v", first, err)
	}
	if again, _ := l.PopDue(ctx, 10); len(again) != 0 {
		t.Fatalf("a leased block was handed out twice: %+v", again)
	}
	if active, _ := l.Active(ctx, "webhook"); !within(active["t"], now.Add(liftRetry), time.Second) {
		t.Errorf("active while leased = %v, want until the lease ends", active)
	}

	// The lifter crashed: nothing is lost, the block comes back once the lease ends.
	clock.Add(int64(liftRetry + time.Millisecond))
	second, err := l.PopDue(ctx, 10)
	if err != nil || len(second) != 1 || second[0].Key != "k1" || second[0].Ref != "r1" {
		t.Fatalf("PopDue after the lease ended = %+v, %v; want the block again", second, err)
	}
	// The first lifter's late report does not end the second's lease.
	if err := l.Lifted(ctx, first[0]); err != nil {
		t.Fatal(err)
	}
	if n := rdb.ZCard(ctx, l.blocksKey()).Val(); n != 1 {
		t.Fatalf("a stale Lifted removed the block (%d left)", n)
	}
	if err := l.Lifted(ctx, second[0]); err != nil {
		t.Fatal(err)
	}
	for _, k := range l.blockKeys() {
		if n := rdb.Exists(ctx, k).Val(); n != 0 {
			t.Errorf("%s left behind after Lifted", k)
		}
	}
	clock.Add(int64(10 * liftRetry))
	if again, _ := l.PopDue(ctx, 10); len(again) != 0 {
		t.Errorf("a lifted block came back: %+v", again)
	}
	if err := l.Lifted(ctx, b); err == nil {
		t.Error("Lifted of a block PopDue did not hand out succeeded")
	}
}

// A new block of the target recorded while the old one is being lifted survives the lift's
// Lifted, however short it is.
func TestLedgerLiftedLeavesANewerBlockBe(t *testing.T) {
	t.Parallel()
	rdb, prefix := newRedis(t)
	ctx := context.Background()
	l := NewLedger(rdb, prefix, "me")
	now := time.Now()
	l.now = func() time.Time { return now }
	if err := l.AddBlock(ctx, ActiveBlock{Sink: "webhook", Target: "t", Key: "old", Until: now.Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	due, err := l.PopDue(ctx, 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("PopDue = %+v, %v", due, err)
	}
	for _, until := range []time.Time{now.Add(time.Second), now.Add(2 * time.Hour)} { // shorter, longer than the lease
		if err := l.AddBlock(ctx, ActiveBlock{Sink: "webhook", Target: "t", Key: "new", Until: until}); err != nil {
			t.Fatal(err)
		}
		if err := l.Lifted(ctx, due[0]); err != nil {
			t.Fatal(err)
		}
		if active, _ := l.Active(ctx, "webhook"); !active["t"].Equal(until) {
			t.Errorf("the newer block until %s did not survive the old one's lift: %v", until, active)
		}
		l.now = func() time.Time { return until }
		next, err := l.PopDue(ctx, 10)
		if err != nil || len(next) != 1 || next[0].Key != "new" {
			t.Fatalf("the newer block is not lifted when due: %+v, %v", next, err)
		}
		due = next
		l.now = func() time.Time { return now }
	}
}
