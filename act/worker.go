package act

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/neverblock"
	"github.com/threatpipe/threatpipe/sinks"
)

// Guardrails bound what automated response may do.
type Guardrails struct {
	// NeverBlock holds the special ranges (private, loopback...) plus own and configured CIDRs;
	// an IPv6 address embedding one of them (64:ff9b::10.0.0.1) is never blocked either. The
	// block sinks enforce the same list again (sinks.Blockable).
	NeverBlock *neverblock.List
	// KillSwitch set in the environment stops every action; the ledger's run-time switch too.
	KillSwitch         bool
	MaxBlocksPerMinute int
	TripDuration       time.Duration
	MaxBlockDuration   time.Duration
	OffenceMemory      time.Duration
}

// WorkerOptions configure one action kind's worker.
type WorkerOptions struct {
	Kind         sinks.Kind
	Name         string // consumer group, written into records and dead letters
	ResultsTopic string
	DLQTopic     string
	ViewURL      string
	Guardrails   Guardrails
	// Alert raises an operator alert (the rate cap tripping); may be nil.
	Alert func(ctx context.Context, title string)
}

// Worker is the pipeline.Handler of one action kind: it decides which steps of its kind a
// scored event triggers and performs them through the ledger, returning the audit records (and
// dead letters for failed actions) for the engine to publish before it commits.
type Worker struct {
	o       WorkerOptions
	set     *Set
	ledger  *Ledger
	metrics *Metrics
	log     *zap.Logger
	now     func() time.Time

	killCache atomic.Pointer[killState]
}

type killState struct {
	on bool
	at time.Time
}

var _ pipeline.Handler = (*Worker)(nil)

// NewWorker returns the worker of o.Kind over set.
func NewWorker(o WorkerOptions, set *Set, ledger *Ledger, m *Metrics, log *zap.Logger) *Worker {
	return &Worker{o: o, set: set, ledger: ledger, metrics: m, log: log, now: time.Now}
}

// Handle implements pipeline.Handler.
func (w *Worker) Handle(ctx context.Context, msg kafka.Message) ([]kafka.Message, error) {
	var ev event.Scored
	if err := json.Unmarshal(msg.Value, &ev); err != nil || ev.Indicator.Value == "" {
		reason := "not a scored event: missing indicator"
		if err != nil {
			reason = "not a scored event: " + err.Error()
		}
		w.metrics.Unreadable.Inc()
		return []kafka.Message{w.deadLetter(msg, "malformed_scored_event", reason, nil)}, nil
	}
	return w.act(ctx, msg, &ev, NewEnv(&ev, w.set.Lists), nil)
}

// act performs the steps of the worker's kind that ev triggers under env; note, when set, is
// the verdict change its records act on.
func (w *Worker) act(ctx context.Context, msg kafka.Message, ev *event.Scored, env *Env, note *ChangeNote) ([]kafka.Message, error) {
	decisions, condErr := w.set.DecideEnv(env, w.o.Kind)
	var outs []kafka.Message
	if condErr != nil {
		// A condition that fails on this event is a playbook bug: audited and logged, and the
		// playbooks that did decide still act.
		w.log.Warn("playbook condition failed", zap.String("indicator", ev.Indicator.Value), zap.Error(condErr))
		outs = append(outs, w.record(&Record{Outcome: OutcomeBadCondition, Target: ev.Indicator.Value, Error: condErr.Error(), Change: note}, ev))
	}
	for _, d := range decisions {
		rec, failed, err := w.perform(ctx, ev, d)
		if err != nil {
			return nil, err // ctx ended: redelivered whole
		}
		rec.Change = note
		outs = append(outs, w.record(rec, ev))
		if failed {
			outs = append(outs, w.deadLetter(msg, "action_failed", rec.Error, rec))
		}
	}
	return outs, nil
}

// perform runs one decision to an outcome. It returns an error only when ctx ends first.
// The steps: guardrails that need no ledger, the duplicate check, the kill switch, the claim,
// then what the claim's state calls for (claimed.go).
func (w *Worker) perform(ctx context.Context, ev *event.Scored, d Decision) (*Record, bool, error) {
	pb, st := d.Playbook, d.Step
	target := ev.Indicator.Value
	rec := &Record{Playbook: pb.Name, Step: st.Name, Sink: st.Sink.Name(), DryRun: pb.DryRun}
	start := w.now()
	defer func() {
		w.metrics.Actions.WithLabelValues(string(w.o.Kind), st.Sink.Name(), string(rec.Outcome)).Inc()
		w.metrics.Seconds.WithLabelValues(st.Sink.Name()).Observe(w.now().Sub(start).Seconds())
		w.metrics.Health.Observe(rec, w.now())
	}()

	if st.Kind == sinks.KindBlock {
		if v, never := w.o.Guardrails.NeverBlock.CheckTarget(target); never {
			rec.Outcome, rec.Detail = OutcomeNeverBlock, fmt.Sprintf("%s is in the never-block list (%s)", target, v)
			return rec, false, nil
		}
	}
	if dup, err := w.duplicate(ctx, rec, pb, st, ev); err != nil || dup {
		return rec, false, err
	}
	// After the duplicate check, so that a redelivery while the switch is on is still a duplicate.
	if on, err := w.killSwitch(ctx); err != nil {
		return nil, false, err
	} else if on {
		rec.Outcome, rec.Detail = OutcomeKillSwitch, "kill switch on: nothing done"
		return rec, false, nil
	}
	type claimed struct {
		res   ClaimResult
		claim *Claim
	}
	c, err := retried(ctx, w, func() (claimed, error) {
		res, claim, err := w.ledger.Claim(ctx, pb.DryRun, pb.Name, st.Name, target, pb.Window)
		return claimed{res, claim}, err
	})
	if err != nil {
		return nil, false, err
	}
	rec.Key = c.claim.Key
	s := &step{w: w, rec: rec, pb: pb, st: st, ev: ev, claim: c.claim, a: w.action(ev, pb, st, c.claim.Key)}
	switch c.res {
	case AlreadyDone:
		return s.alreadyDone(ctx)
	case TakenOver:
		return s.takenOver(ctx)
	default:
		return s.claimed(ctx)
	}
}

// duplicate reports whether this event was already handled by the step (a redelivery), and
// records the outcome if so.
func (w *Worker) duplicate(ctx context.Context, rec *Record, pb *Playbook, st *Step, ev *event.Scored) (bool, error) {
	seen, err := retried(ctx, w, func() (bool, error) {
		return w.ledger.Seen(ctx, pb.DryRun, pb.Name, st.Name, ev.Indicator.Value, ev.EventID)
	})
	if err != nil {
		return false, err
	}
	if seen {
		rec.Outcome, rec.Detail = OutcomeDuplicate, "event "+ev.EventID+" already handled"
	}
	return seen, nil
}

// execute performs a (or records it, for dry-run playbooks) and settles the claim.
func (w *Worker) execute(ctx context.Context, rec *Record, a *sinks.Action, pb *Playbook, st *Step, claim *Claim,
	ev *event.Scored, success Outcome) (*Record, bool, error) {
	if !a.Until.IsZero() {
		until := a.Until.UTC()
		rec.Until = &until
	}
	var res sinks.Result
	if pb.DryRun {
		rec.Outcome = OutcomeDryRun
		rec.Detail = "would " + describe(a, st, success)
		res.Ref = a.Prior
	} else {
		var err error
		res, err = st.Sink.Do(ctx, a)
		if err != nil {
			if ctx.Err() != nil {
				return nil, false, ctx.Err() // shutdown mid-call: the claim is taken over after restart
			}
			if errors.Is(err, sinks.ErrNeverBlock) {
				// The sink's own check caught what the worker's let through: the two lists
				// differ (a sink built without the operator's list?) or the worker's was bypassed.
				w.log.Error("a block sink refused a never-block address", zap.String("sink", st.Sink.Name()),
					zap.String("target", a.Target), zap.Error(err))
				w.release(ctx, pb, st, a.Target, claim)
				rec.Outcome, rec.Detail = OutcomeNeverBlock, err.Error()
				return rec, false, nil
			}
			rec.Outcome, rec.Error = OutcomeFailed, err.Error()
			if success != OutcomeCommented && success != OutcomeUpdated {
				w.release(ctx, pb, st, a.Target, claim)
			}
			return rec, true, nil
		}
		rec.Outcome, rec.Ref, rec.Detail = success, res.Ref, res.Detail
	}
	ref := res.Ref
	if (success == OutcomeCommented || success == OutcomeUpdated) && ref == "" {
		// The claim keeps pointing at the ticket; a sink that had to open a new one (the prior
		// was deleted) returns its reference, and later repeats comment on that instead.
		ref = claim.Ref
	}
	// The block (or page) is recorded for lifting before the claim is settled: a crash between
	// the two leaves a pending claim, whose takeover repeats both (each is idempotent), rather
	// than a settled claim with a block nobody will ever lift.
	if !pb.DryRun {
		switch {
		case st.Kind == sinks.KindBlock && success == OutcomeDone:
			if err := w.retry(ctx, func() error {
				return w.ledger.AddBlock(ctx, ActiveBlock{Sink: st.Sink.Name(), Target: a.Target, Key: a.Key, Ref: res.Ref,
					Playbook: pb.Name, Step: st.Name, Until: a.Until})
			}); err != nil {
				return nil, false, err
			}
		case st.Kind == sinks.KindAlert && success == OutcomeDone:
			if _, ok := st.Sink.(sinks.Undoer); ok {
				// A page is resolved when the target's block is lifted.
				if err := w.retry(ctx, func() error {
					return w.ledger.AddResolve(ctx, a.Target, Pending{Sink: st.Sink.Name(), Key: a.Key, Ref: res.Ref, Playbook: pb.Name, Step: st.Name},
						w.o.Guardrails.MaxBlockDuration+pb.Window)
				}); err != nil {
					return nil, false, err
				}
			}
		}
	}
	if err := w.retry(ctx, func() error {
		return w.done(pb, st, a.Target, claim, w.ledger.Done(ctx, pb.DryRun, pb.Name, st.Name, a.Target, claim, ref, ev.EventID, pb.Window))
	}); err != nil {
		return nil, false, err
	}
	return rec, false, nil
}

// done passes on the error of a Done call, except a lost claim: the action happened and the
// event is recorded as handled, but another replica took the claim over meanwhile (this one
// lost the ledger for longer than the liveness TTL) and settles it itself.
func (w *Worker) done(pb *Playbook, st *Step, target string, claim *Claim, err error) error {
	if errors.Is(err, ErrClaimLost) {
		w.log.Warn("another replica took this action's claim over while it was performed; it may be repeated",
			zap.String("playbook", pb.Name), zap.String("step", st.Name), zap.String("target", target), zap.String("key", claim.Key))
		return nil
	}
	return err
}

// releaseTimeout bounds how long a failed or capped action's claim release is retried.
const releaseTimeout = 10 * time.Second

// release drops this worker's claim so that a later event for the target tries again. It is
// retried (even once ctx ended, for releaseTimeout): a claim left pending under this live owner
// makes every later event for the target wait until the window ends.
func (w *Worker) release(ctx context.Context, pb *Playbook, st *Step, target string, claim *Claim) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	if err := w.retry(rctx, func() error {
		return w.ledger.Release(rctx, pb.DryRun, pb.Name, st.Name, target, claim)
	}); err != nil {
		w.log.Warn("could not release an action's claim; it lapses with the window",
			zap.String("playbook", pb.Name), zap.String("step", st.Name), zap.String("target", target), zap.Error(err))
	}
}

func describe(a *sinks.Action, st *Step, outcome Outcome) string {
	switch {
	case outcome == OutcomeCommented:
		return fmt.Sprintf("comment on %s for %s via %s", a.Prior, a.Target, st.Sink.Name())
	case outcome == OutcomeUpdated:
		return fmt.Sprintf("update the record of %s via %s", a.Target, st.Sink.Name())
	case st.Kind == sinks.KindBlock:
		return fmt.Sprintf("block %s until %s via %s", a.Target, a.Until.UTC().Format(time.RFC3339), st.Sink.Name())
	default:
		return fmt.Sprintf("%s %s via %s", st.Kind, a.Target, st.Sink.Name())
	}
}

// blockDuration doubles the base per earlier offence, up to the maximum.
func (w *Worker) blockDuration(base time.Duration, offence int64) time.Duration {
	maxD := w.o.Guardrails.MaxBlockDuration
	if offence <= 1 {
		return min(base, maxD)
	}
	f := math.Pow(2, float64(min(offence-1, 30)))
	if float64(base)*f >= float64(maxD) {
		return maxD
	}
	return time.Duration(float64(base) * f)
}

func (w *Worker) action(ev *event.Scored, pb *Playbook, st *Step, key string) *sinks.Action {
	a := &sinks.Action{
		Key: key, Playbook: pb.Name, Step: st.Name, Kind: st.Kind, Target: ev.Indicator.Value,
		Score: ev.Score, Severity: ev.Severity, Tags: ev.Tags, Reasons: ev.Reasons, ISP: ev.ISP,
		Params: st.Params, Event: ev,
		Title: fmt.Sprintf("threatpipe: %s scored %d (%s)", ev.Indicator.Value, ev.Score, ev.Severity),
	}
	if ev.Geo != nil {
		a.Country = ev.Geo.CountryISOCode
	}
	if w.o.ViewURL != "" {
		a.ViewURL = strings.TrimRight(w.o.ViewURL, "/") + "/indicators/" + ev.Indicator.Value
	}
	return a
}

// killSwitch reads the run-time switch at most once a second.
func (w *Worker) killSwitch(ctx context.Context) (bool, error) {
	if w.o.Guardrails.KillSwitch {
		return true, nil
	}
	if k := w.killCache.Load(); k != nil && w.now().Sub(k.at) < time.Second {
		return k.on, nil
	}
	var on bool
	if err := w.retry(ctx, func() (err error) { on, err = w.ledger.KillSwitch(ctx); return err }); err != nil {
		return false, err
	}
	w.killCache.Store(&killState{on: on, at: w.now()})
	w.metrics.KillSwitch.Set(boolGauge(on))
	return on, nil
}

func (w *Worker) trip(ctx context.Context, dry bool, count int64) {
	reason := fmt.Sprintf("%d new blocks within a minute exceed THREATPIPE_ACT_MAX_BLOCKS_PER_MINUTE=%d; blocking is alert-only for %s",
		count, w.o.Guardrails.MaxBlocksPerMinute, w.o.Guardrails.TripDuration)
	first, err := w.ledger.Trip(ctx, dry, w.o.Guardrails.TripDuration, reason)
	if err != nil || !first {
		return
	}
	w.metrics.Trips.Inc()
	w.log.Error("BLOCK RATE CAP TRIPPED: "+reason, zap.Bool("dry_run", dry))
	if w.o.Alert != nil && !dry {
		w.o.Alert(ctx, "threatpipe: block rate cap tripped: "+reason)
	}
}

// retry runs a ledger operation until it succeeds or ctx ends: without the ledger no action is
// safe, so the event waits (and is not committed) rather than act twice or not at all.
func (w *Worker) retry(ctx context.Context, op func() error) error {
	wait := pipeline.DependencyBackOff()
	for {
		err := op()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		delay := busyPoll // another live worker is acting: poll until it is done
		if !errors.Is(err, ErrBusy) {
			delay = wait.NextBackOff()
			w.log.Warn("ledger unavailable; waiting", zap.Error(err), zap.Duration("retry_in", delay))
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// busyPoll is how often a worker looks again at an indicator another worker is acting on.
const busyPoll = 200 * time.Millisecond

func (w *Worker) record(r *Record, ev *event.Scored) kafka.Message {
	r.SchemaVersion, r.At, r.Kind, r.Worker = RecordSchemaVersion, w.now().UTC(), w.o.Kind, w.o.Name
	if r.Target == "" {
		r.Target = ev.Indicator.Value
	}
	r.EventID, r.Score, r.Severity = ev.EventID, ev.Score, ev.Severity
	raw, _ := json.Marshal(r)
	return kafka.Message{Topic: w.o.ResultsTopic, Key: []byte(r.Target), Value: raw}
}

// findSettle is how long after an action began a sink's search is trusted to show it.
const findSettle = 15 * time.Second

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
