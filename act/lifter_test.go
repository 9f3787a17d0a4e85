package act

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/threatpipe/threatpipe/sinks"
)

// published collects the lifter's audit records.
type published struct {
	mu   sync.Mutex
	recs []Record
}

func (p *published) publish() func(ctx context.Context, key string, value []byte) error {
	return func(_ context.Context, key string, value []byte) error {
		var rec Record
		if err := json.Unmarshal(value, &rec); err != nil {
			return err
		}
		if key != rec.Target {
			rec.Error = "keyed " + key + " instead of the target" // surfaces in the assertions
		}
		p.mu.Lock()
		p.recs = append(p.recs, rec)
		p.mu.Unlock()
		return nil
	}
}

func (p *published) all() []Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Record, len(p.recs))
	copy(out, p.recs)
	return out
}

func (r *rig) lifter(l *Ledger, pub *published) *Lifter {
	return &Lifter{
		Ledger: l, Sinks: r.f.byName, Metrics: r.metrics, Log: r.log, Publish: pub.publish(), Worker: "act-lifter",
		LiftInterval: 20 * time.Millisecond, ReconcileInterval: time.Hour,
	}
}

func TestTwoLiftersLiftEachDueBlockOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	ctx := context.Background()
	due := time.Now().Add(150 * time.Millisecond)
	const n = 30
	for i := range n {
		b := ActiveBlock{Sink: "edl", Target: fmt.Sprintf("185.220.101.%d", i), Key: fmt.Sprint("k", i), Ref: fmt.Sprint("ref", i),
			Playbook: "critical", Step: "block", Until: due}
		if err := r.ledger.AddBlock(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	later := time.Now().Add(time.Hour)
	if err := r.ledger.AddBlock(ctx, ActiveBlock{Sink: "edl", Target: "185.220.102.1", Until: later}); err != nil {
		t.Fatal(err)
	}

	// Two replicas, each with its own ledger client on the same Redis keys, race to lift.
	var pub published
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, owner := range []string{"replica-a", "replica-b"} {
		l := r.lifter(NewLedger(r.rdb, r.prefix, owner), &pub)
		wg.Go(func() {
			if err := l.Run(runCtx); err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	waitFor(t, 5*time.Second, "every due block lifted", func() bool { return len(r.f.edl.undoCalls()) >= n })
	time.Sleep(100 * time.Millisecond) // several more lift rounds on both lifters
	stop()
	wg.Wait()

	undone := map[string]int{}
	for _, u := range r.f.edl.undoCalls() {
		undone[u.Action.Target]++
		if u.Ref != "ref"+u.Action.Target[len("185.220.101."):] || u.Action.Key != "k"+u.Action.Target[len("185.220.101."):] ||
			u.Action.Kind != sinks.KindBlock || u.Action.Playbook != "critical" || !u.Action.Until.Equal(due) {
			t.Errorf("undo call %+v", u)
		}
	}
	if len(undone) != n {
		t.Errorf("%d targets undone, want %d", len(undone), n)
	}
	for target, c := range undone {
		if c != 1 {
			t.Errorf("%s undone %d times", target, c)
		}
	}
	recs := pub.all()
	if len(recs) != n {
		t.Errorf("%d audit records, want %d", len(recs), n)
	}
	for _, rec := range recs {
		if rec.Outcome != OutcomeLifted || rec.Kind != sinks.KindBlock || rec.Sink != "edl" || rec.Worker != "act-lifter" ||
			rec.SchemaVersion != RecordSchemaVersion || rec.Error != "" {
			t.Errorf("record %+v", rec)
		}
	}
	active, err := r.ledger.Active(ctx, "edl")
	if err != nil || len(active) != 1 || !active["185.220.102.1"].Equal(later) {
		t.Errorf("active after lifting = %v, %v", active, err)
	}
}

func TestLifterResolvesPagesOnceTheBlockIsLifted(t *testing.T) {
	t.Parallel()
	r := newRig(t, `
playbooks:
  - name: critical
    when: score >= 80
    steps:
      - {name: block, action: block, sink: edl, duration: 200ms}
      - {name: page, action: alert, sink: pagerduty}
      - {name: chat, action: alert, sink: slack}
`)
	block, alert := r.worker(sinks.KindBlock), r.worker(sinks.KindAlert)
	brec := r.handle(block, scored("e1", attacker, 90)).only(t)
	h := r.handle(alert, scored("e1", attacker, 90))
	if len(h.records) != 2 || h.records[0].Outcome != OutcomeDone || h.records[1].Outcome != OutcomeDone {
		t.Fatalf("alerts: %+v", h.records)
	}
	page := h.records[0]

	var pub published
	l := r.lifter(r.ledger, &pub)
	ctx := context.Background()
	l.liftDue(ctx)
	if len(pub.all()) != 0 || len(r.f.edl.undoCalls()) != 0 {
		t.Fatal("lifted before the block was due")
	}

	// The first lift fails: nothing is resolved, and the block is tried again in a minute.
	time.Sleep(time.Until(*brec.Until) + 20*time.Millisecond)
	r.f.edl.setFailUndo(1)
	l.liftDue(ctx)
	recs := pub.all()
	if len(recs) != 1 || recs[0].Outcome != OutcomeLiftFailed || recs[0].Error != errSinkDown.Error() || recs[0].Key != brec.Key || recs[0].Ref != brec.Ref {
		t.Fatalf("failed lift: %+v", recs)
	}
	if len(r.f.pd.undoCalls()) != 0 {
		t.Fatal("a page was resolved although its block stays")
	}
	active, err := r.ledger.Active(ctx, "edl")
	if err != nil || !within(active[attacker], time.Now().Add(liftRetry), 5*time.Second) {
		t.Fatalf("the failed lift was not rescheduled in %s: %v, %v", liftRetry, active, err)
	}
	l.liftDue(ctx)
	if len(pub.all()) != 1 || len(r.f.edl.undoCalls()) != 1 {
		t.Fatal("a rescheduled block was lifted again before its retry time")
	}

	// Bring the retry forward; this time the block lifts and the page is resolved.
	if err := r.rdb.ZAdd(ctx, r.ledger.blocksKey(), redis.Z{Score: float64(time.Now().UnixMilli() - 1), Member: blockMember("edl", attacker)}).Err(); err != nil {
		t.Fatal(err)
	}
	l.liftDue(ctx)
	recs = pub.all()
	if len(recs) != 3 || recs[1].Outcome != OutcomeLifted || recs[2].Outcome != OutcomeResolved {
		t.Fatalf("records: %+v", recs)
	}
	res := recs[2]
	if res.Kind != sinks.KindAlert || res.Sink != "pagerduty" || res.Playbook != "critical" || res.Step != "page" ||
		res.Key != page.Key || res.Ref != page.Ref || res.Target != attacker {
		t.Errorf("resolved record: %+v (page %+v)", res, page)
	}
	undos := r.f.pd.undoCalls()
	if len(undos) != 1 || undos[0].Ref != page.Ref || undos[0].Action.Key != page.Key || undos[0].Action.Kind != sinks.KindAlert || undos[0].Action.Target != attacker {
		t.Errorf("pagerduty undo calls: %+v", undos)
	}
	if undos := r.f.edl.undoCalls(); len(undos) != 2 || undos[1].Ref != brec.Ref || undos[1].Action.Key != brec.Key {
		t.Errorf("edl undo calls: %+v", undos)
	}
	// Pages are resolved once.
	if got, _ := r.ledger.TakeResolves(ctx, attacker); len(got) != 0 {
		t.Errorf("resolves left behind: %+v", got)
	}
}

func TestLifterSinksThatCannotUndo(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	ctx := context.Background()
	past := time.Now().Add(-time.Second)
	for _, b := range []ActiveBlock{
		{Sink: "lapse", Target: "185.220.101.1", Key: "k1", Until: past},
		{Sink: "palo", Target: "185.220.101.2", Key: "k2", Until: past},
	} {
		if err := r.ledger.AddBlock(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	// A page on the lapsing sink's target is resolved once the block has lapsed.
	if err := r.ledger.AddResolve(ctx, "185.220.101.1", Pending{Sink: "pagerduty", Key: "pk", Ref: "pr", Playbook: "p", Step: "page"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	// A page whose sink cannot resolve is reported, not lost silently.
	if err := r.ledger.AddResolve(ctx, "185.220.101.1", Pending{Sink: "slack", Key: "sk", Ref: "sr", Playbook: "p", Step: "chat"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	var pub published
	r.lifter(r.ledger, &pub).liftDue(ctx)
	byKey := map[string]Record{}
	for _, rec := range pub.all() {
		byKey[rec.Key] = rec
	}
	if rec := byKey["k1"]; rec.Outcome != OutcomeLifted || rec.Detail != "expired (the sink lets blocks lapse by themselves)" {
		t.Errorf("lapsing sink: %+v", rec)
	}
	if rec := byKey["k2"]; rec.Outcome != OutcomeLiftFailed || rec.Error != "sink palo is no longer configured; lift it by hand" {
		t.Errorf("unconfigured sink: %+v", rec)
	}
	if rec := byKey["pk"]; rec.Outcome != OutcomeResolved {
		t.Errorf("page: %+v", rec)
	}
	if rec := byKey["sk"]; rec.Outcome != OutcomeLiftFailed || rec.Error != "sink slack cannot resolve" {
		t.Errorf("unresolvable page: %+v", rec)
	}
	if len(pub.all()) != 4 {
		t.Errorf("records: %+v", pub.all())
	}
	// An unconfigured sink's block is not retried forever.
	if active, _ := r.ledger.Active(ctx, "palo"); len(active) != 0 {
		t.Errorf("palo active = %v", active)
	}
}

func TestLifterReconcilesEachBlockSinkWithItsActiveBlocks(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	ctx := context.Background()
	now := time.Now()
	blocks := []ActiveBlock{
		{Sink: "edl", Target: "185.220.101.1", Until: now.Add(time.Hour)},
		{Sink: "edl", Target: "2001:db8::7", Until: now.Add(2 * time.Hour)},
		{Sink: "edl", Target: "185.220.101.3", Until: now.Add(-time.Second)}, // expired, not yet lifted
		{Sink: "nft", Target: "185.220.101.1", Until: now.Add(3 * time.Hour)},
	}
	for _, b := range blocks {
		if err := r.ledger.AddBlock(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	var pub published
	l := r.lifter(r.ledger, &pub)
	l.LiftInterval = time.Hour // reconcile only: Run reconciles once at start
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.Run(runCtx) }()
	waitFor(t, 5*time.Second, "both block sinks reconciled", func() bool {
		return len(r.f.edl.reconcileCalls()) == 1 && len(r.f.nft.reconcileCalls()) == 1
	})
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	check := func(name string, got []map[string]time.Time, want map[string]time.Time) {
		t.Helper()
		if len(got) != 1 || len(got[0]) != len(want) {
			t.Fatalf("%s reconciled with %v, want %v", name, got, want)
		}
		for target, until := range want {
			if !got[0][target].Equal(until) {
				t.Errorf("%s: %s until %s, want %s", name, target, got[0][target], until)
			}
		}
	}
	check("edl", r.f.edl.reconcileCalls(), map[string]time.Time{"185.220.101.1": blocks[0].Until, "2001:db8::7": blocks[1].Until})
	check("nft", r.f.nft.reconcileCalls(), map[string]time.Time{"185.220.101.1": blocks[3].Until})
	if n := len(r.f.bell.reconcileCalls()); n != 0 {
		t.Errorf("an alert sink was reconciled with blocks (%d calls)", n)
	}
	if len(pub.all()) != 0 {
		t.Errorf("reconciling published records: %+v", pub.all())
	}
}

// A block of an address that is now never-block (made by an older version that missed the
// NAT64 form, or before its range was added to the list) is lifted at the next reconcile, on
// stateful and stateless block sinks alike, and left out of what the sinks reconcile to.
func TestLifterLiftsBlocksOfNeverBlockAddresses(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	blocks := []ActiveBlock{
		{Sink: "edl", Target: "185.220.101.1", Key: "k1", Until: until},
		{Sink: "edl", Target: "64:ff9b::a00:1", Key: "k2", Playbook: "critical", Step: "block", Until: until},
		{Sink: "edl", Target: "45.155.205.9", Key: "k3", Until: until},
		{Sink: "lapse", Target: "2002:a00:1::1", Key: "k4", Until: until},
	}
	for _, b := range blocks {
		if err := r.ledger.AddBlock(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	var pub published
	l := r.lifter(r.ledger, &pub)
	l.LiftInterval = time.Hour
	l.NeverBlock = r.guard.NeverBlock
	l.reconcile(ctx)

	if got := r.f.edl.reconcileCalls(); len(got) != 1 || len(got[0]) != 1 || !got[0]["185.220.101.1"].Equal(until) {
		t.Errorf("edl reconciled with %v, want only 185.220.101.1", got)
	}
	undone := map[string]bool{}
	for _, u := range r.f.edl.undoCalls() {
		undone[u.Action.Target] = true
	}
	if len(undone) != 2 || !undone["64:ff9b::a00:1"] || !undone["45.155.205.9"] {
		t.Errorf("edl undid %v, want the two never-block addresses", undone)
	}
	recs := pub.all()
	if len(recs) != 3 {
		t.Fatalf("records %+v, want 3", recs)
	}
	for _, rec := range recs {
		switch {
		case rec.Sink == "edl" && rec.Outcome == OutcomeLifted && strings.Contains(rec.Detail, "is never blocked ("):
		case rec.Sink == "lapse" && rec.Outcome == OutcomeLiftFailed &&
			strings.Contains(rec.Error, "2002:a00:1::1 is never blocked (private 10.0.0.0/8: embeds 10.0.0.1 (6to4)), but sink lapse cannot lift"):
		default:
			t.Errorf("record %+v", rec)
		}
	}
	// Reported once: a second reconcile finds nothing to lift.
	l.reconcile(ctx)
	if n := len(pub.all()); n != 3 {
		t.Errorf("%d records after a second reconcile, want still 3", n)
	}
	for _, sink := range []string{"edl", "lapse"} {
		active, err := r.ledger.Active(ctx, sink)
		if err != nil {
			t.Fatal(err)
		}
		for target := range active {
			if _, never := r.guard.NeverBlock.CheckTarget(target); never {
				t.Errorf("%s still holds never-block %s", sink, target)
			}
		}
	}
}

// webhookBlock is a block sink that undoes but does not reconcile (the webhook block sink): a
// lift lost to a crash is never repaired by reconciling, so the ledger must hand it out again.
type webhookBlock struct{ *fakeSink }

func (s webhookBlock) Undo(ctx context.Context, a *sinks.Action, ref string) error {
	return s.undo(ctx, a, ref)
}

func TestLifterLiftsABlockWhoseLifterCrashed(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	hook := newFake("hook", sinks.KindBlock)
	r.f.byName["hook"] = webhookBlock{hook}
	ctx := context.Background()
	now := time.Now()
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	l := NewLedger(r.rdb, r.prefix, "replica-b")
	l.now = func() time.Time { return time.Unix(0, clock.Load()) }
	b := ActiveBlock{Sink: "hook", Target: attacker, Key: "k1", Ref: "r1", Playbook: "critical", Step: "block", Until: now.Add(-time.Second)}
	if err := l.AddBlock(ctx, b); err != nil {
		t.Fatal(err)
	}
	// Another replica's lifter takes the block and dies before undoing it.
	crashed := NewLedger(r.rdb, r.prefix, "replica-a")
	crashed.now = l.now
	if due, err := crashed.PopDue(ctx, 100); err != nil || len(due) != 1 {
		t.Fatalf("PopDue = %+v, %v", due, err)
	}

	var pub published
	lifter := r.lifter(l, &pub)
	lifter.liftDue(ctx)
	if n := len(hook.undoCalls()); n != 0 {
		t.Fatalf("lifted while another lifter held it (%d calls)", n)
	}
	clock.Add(int64(liftRetry + time.Second))
	lifter.liftDue(ctx)
	undos := hook.undoCalls()
	if len(undos) != 1 || undos[0].Ref != "r1" || undos[0].Action.Key != "k1" || undos[0].Action.Target != attacker {
		t.Fatalf("undo calls after the crashed lifter's lease ended: %+v", undos)
	}
	if recs := pub.all(); len(recs) != 1 || recs[0].Outcome != OutcomeLifted || recs[0].Key != "k1" {
		t.Errorf("records: %+v", recs)
	}
	clock.Add(int64(10 * liftRetry))
	lifter.liftDue(ctx)
	if n := len(hook.undoCalls()); n != 1 {
		t.Errorf("lifted %d times", n)
	}
}

func TestLifterLogsAFailedLiftOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	core, logs := observer.New(zap.DebugLevel)
	r.log = zap.New(core)
	ctx := context.Background()
	if err := r.ledger.AddBlock(ctx, ActiveBlock{Sink: "edl", Target: attacker, Key: "k1", Until: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	r.f.edl.setFailUndo(1)
	var pub published
	r.lifter(r.ledger, &pub).liftDue(ctx)
	if recs := pub.all(); len(recs) != 1 || recs[0].Outcome != OutcomeLiftFailed {
		t.Fatalf("records: %+v", recs)
	}
	errs := logs.FilterLevelExact(zap.ErrorLevel).All()
	if len(errs) != 1 {
		t.Fatalf("a failed lift logged %d errors, want 1: %+v", len(errs), errs)
	}
	if f := errs[0].ContextMap(); f["sink"] != "edl" || f["target"] != attacker || f["error"] != errSinkDown.Error() {
		t.Errorf("error log fields: %+v", f)
	}
	if n := logs.Len(); n != 1 {
		t.Errorf("%d log entries, want 1: %+v", n, logs.All())
	}
}
