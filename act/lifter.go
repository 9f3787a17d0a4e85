package act

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline/neverblock"
	"github.com/threatpipe/threatpipe/sinks"
)

// Lifter lifts expired blocks (and resolves the pages raised with them) and keeps stateful block
// sinks (the EDL, nftables) matching the ledger. Every replica runs one: the ledger hands each
// expired block to exactly one of them, and each reconciles its own local sinks.
type Lifter struct {
	Ledger  *Ledger
	Sinks   map[string]sinks.Sink
	Metrics *Metrics
	Log     *zap.Logger
	// Publish writes one audit record (keyed by target) and returns once it is acknowledged.
	Publish           func(ctx context.Context, key string, value []byte) error
	Worker            string
	LiftInterval      time.Duration
	ReconcileInterval time.Duration
	// NeverBlock, when set, has blocks of never-block targets lifted at each reconcile: blocks
	// made before the target became never-block (a range added to the list since, or an older
	// version that missed an embedded IPv4 form).
	NeverBlock *neverblock.List
}

// liftRetry is when a block whose lift failed (or whose lifter crashed mid-lift) is tried again:
// the lease PopDue hands a due block out under.
const liftRetry = time.Minute

// Run lifts and reconciles until ctx ends. It reconciles once at start, so that a restarted
// replica's EDL and nftables set hold the ledger's blocks before it acts on anything new.
func (l *Lifter) Run(ctx context.Context) error {
	l.reconcile(ctx)
	lift := time.NewTicker(l.LiftInterval)
	defer lift.Stop()
	rec := time.NewTicker(l.ReconcileInterval)
	defer rec.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-lift.C:
			l.liftDue(ctx)
		case <-rec.C:
			l.reconcile(ctx)
		}
	}
}

// Reconcile lifts the blocks of never-block targets and makes every stateful block sink match
// the ledger now.
func (l *Lifter) reconcile(ctx context.Context) {
	for name, s := range l.Sinks {
		if s.Kind() != sinks.KindBlock {
			continue
		}
		r, stateful := s.(sinks.Reconciler)
		if !stateful && l.NeverBlock == nil {
			continue
		}
		active, err := l.Ledger.Active(ctx, name)
		if err == nil {
			active = l.liftNeverBlock(ctx, name, active)
			if stateful {
				err = r.Reconcile(ctx, active)
			}
		}
		if err != nil && ctx.Err() == nil {
			l.Log.Warn("reconciling a block sink with the ledger failed; retrying next interval", zap.String("sink", name), zap.Error(err))
		}
	}
}

// liftNeverBlock lifts the blocks of sink whose target is never-block and returns active
// without them. A block another lifter holds, or whose lease fails, is left out all the same and
// tried again at the next reconcile.
func (l *Lifter) liftNeverBlock(ctx context.Context, sink string, active map[string]time.Time) map[string]time.Time {
	if l.NeverBlock == nil {
		return active
	}
	for target := range active {
		v, never := l.NeverBlock.CheckTarget(target)
		if !never {
			continue
		}
		delete(active, target)
		b, ok, err := l.Ledger.LeaseNow(ctx, ActiveBlock{Sink: sink, Target: target})
		if err != nil || !ok {
			continue
		}
		l.Log.Warn("lifting the block of a never-block address", zap.String("sink", sink), zap.String("target", target), zap.Stringer("why", v))
		why := fmt.Sprintf("%s is never blocked (%s)", target, v)
		if _, undoable := l.Sinks[sink].(sinks.Undoer); !undoable {
			// Reported once: the ledger forgets it, and the sink lets it lapse at its time.
			l.emit(ctx, &Record{Kind: sinks.KindBlock, Playbook: b.Playbook, Step: b.Step, Sink: b.Sink, Target: b.Target, Key: b.Key, Ref: b.Ref,
				Outcome: OutcomeLiftFailed, Error: fmt.Sprintf("%s, but sink %s cannot lift a block before it lapses (at %s): lift it by hand",
					why, sink, b.Until.UTC().Format(time.RFC3339))})
			if err := l.Ledger.Lifted(context.WithoutCancel(ctx), b); err != nil {
				l.Log.Warn("could not remove a block from the ledger", zap.String("sink", sink), zap.String("target", target), zap.Error(err))
			}
			continue
		}
		l.emit(ctx, liftBlock(ctx, l.Ledger, l.Sinks, l.Log, b, "lifted: "+why))
	}
	return active
}

func (l *Lifter) liftDue(ctx context.Context) {
	for ctx.Err() == nil {
		due, err := l.Ledger.PopDue(ctx, 100)
		if err != nil {
			if ctx.Err() == nil {
				l.Log.Warn("reading expired blocks failed; retrying next interval", zap.Error(err))
			}
			return
		}
		for _, b := range due {
			l.lift(ctx, b)
		}
		if len(due) < 100 {
			return
		}
	}
}

func (l *Lifter) lift(ctx context.Context, b ActiveBlock) {
	rec := liftBlock(ctx, l.Ledger, l.Sinks, l.Log, b, "block expired and was lifted")
	l.emit(ctx, rec)
	if rec.Outcome != OutcomeLifted {
		return
	}
	pages, err := l.Ledger.TakeResolves(ctx, b.Target)
	if err != nil {
		l.Log.Warn("could not read the pages to resolve", zap.String("target", b.Target), zap.Error(err))
		return
	}
	for _, p := range pages {
		l.emit(ctx, resolvePage(ctx, l.Sinks, b.Target, p, "resolved: the block was lifted"))
	}
}

// liftBlock lifts b, leased from the ledger (PopDue, LeaseNow), through its sink and forgets it
// in the ledger once lifted; the record says how it went, with detail when it was lifted.
func liftBlock(ctx context.Context, ledger *Ledger, configured map[string]sinks.Sink, log *zap.Logger, b ActiveBlock, detail string) *Record {
	rec := &Record{Kind: sinks.KindBlock, Playbook: b.Playbook, Step: b.Step, Sink: b.Sink, Target: b.Target, Key: b.Key, Ref: b.Ref}
	s, ok := configured[b.Sink]
	a := &sinks.Action{Key: b.Key, Playbook: b.Playbook, Step: b.Step, Kind: sinks.KindBlock, Target: b.Target, Until: b.Until}
	switch u, undoable := s.(sinks.Undoer); {
	case !ok:
		rec.Outcome, rec.Error = OutcomeLiftFailed, "sink "+b.Sink+" is no longer configured; lift it by hand"
	case !undoable:
		rec.Outcome, rec.Detail = OutcomeLifted, "expired (the sink lets blocks lapse by themselves)"
	default:
		if err := u.Undo(ctx, a, b.Ref); err != nil {
			// The ledger keeps the block leased to this lift: it is handed out again (to any
			// replica) once the lease ends, liftRetry from when it was leased.
			rec.Outcome, rec.Error = OutcomeLiftFailed, err.Error()
		} else {
			rec.Outcome, rec.Detail = OutcomeLifted, detail
		}
	}
	if rec.Outcome == OutcomeLifted || !ok {
		// Lifted, or never liftable here (retrying an unconfigured sink forever helps nobody).
		if err := ledger.Lifted(context.WithoutCancel(ctx), b); err != nil {
			log.Warn("could not remove a finished lift from the ledger; the block is handed out again in "+liftRetry.String(),
				zap.String("sink", b.Sink), zap.String("target", b.Target), zap.Error(err))
		}
	}
	return rec
}

// resolvePage resolves page p on target through its sink; detail says why.
func resolvePage(ctx context.Context, configured map[string]sinks.Sink, target string, p Pending, detail string) *Record {
	r := &Record{Kind: sinks.KindAlert, Playbook: p.Playbook, Step: p.Step, Sink: p.Sink, Target: target, Key: p.Key, Ref: p.Ref}
	u, ok := configured[p.Sink].(sinks.Undoer)
	if !ok {
		r.Outcome, r.Error = OutcomeLiftFailed, "sink "+p.Sink+" cannot resolve"
		return r
	}
	if err := u.Undo(ctx, &sinks.Action{Key: p.Key, Playbook: p.Playbook, Step: p.Step, Kind: sinks.KindAlert, Target: target}, p.Ref); err != nil {
		r.Outcome, r.Error = OutcomeLiftFailed, err.Error()
	} else {
		r.Outcome, r.Detail = OutcomeResolved, detail
	}
	return r
}

func (l *Lifter) emit(ctx context.Context, r *Record) {
	l.Metrics.Lifts.WithLabelValues(r.Sink, string(r.Outcome)).Inc()
	r.SchemaVersion, r.At, r.Worker = RecordSchemaVersion, time.Now().UTC(), l.Worker
	l.Metrics.Health.Observe(r, r.At)
	raw, _ := json.Marshal(r)
	if err := l.Publish(ctx, r.Target, raw); err != nil {
		l.Log.Warn("audit record not published", zap.String("outcome", string(r.Outcome)), zap.String("target", r.Target), zap.Error(err))
	}
	if r.Outcome == OutcomeLiftFailed {
		l.Log.Error("lift failed", zap.String("sink", r.Sink), zap.String("target", r.Target), zap.String("error", r.Error))
	}
}
