package act

import (
	"context"
	"errors"
	"iter"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/neverblock"
	"github.com/threatpipe/threatpipe/sinks"
)

// Playbook preview: a candidate playbook file run in dry-run over past scored events, to see what
// it would have done before it goes live. It decides with the workers' own code (Parse,
// NewEnv, DecideEnv) and replays the ledger's window logic in memory (previewLedger), so no
// Redis and no sink is touched.

// PreviewOptions configure Preview.
type PreviewOptions struct {
	// NeverBlock is the workers' never-block list (Guardrails.NeverBlock); nil: the special
	// ranges only (private, loopback...), without the operator's own and configured CIDRs.
	NeverBlock *neverblock.List
}

// PreviewSampleSize bounds each step's sample.
const PreviewSampleSize = 20

// PreviewResult is what a candidate playbook file would have done over a run of events.
type PreviewResult struct {
	Events int `json:"events"`
	// From and To are the first and last event times seen (zero without events).
	From  time.Time     `json:"from"`
	To    time.Time     `json:"to"`
	Steps []StepPreview `json:"steps"`
	// ConditionErrors counts events on which a condition failed at run time (the workers audit
	// each as condition_error); ConditionErrorSamples are the first few distinct messages.
	ConditionErrors       int      `json:"condition_errors"`
	ConditionErrorSamples []string `json:"condition_error_samples"`
}

// StepPreview is one step's tally, in playbook file order.
type StepPreview struct {
	Playbook string     `json:"playbook"`
	Step     string     `json:"step"`
	Kind     sinks.Kind `json:"kind"`
	Sink     string     `json:"sink"`
	// DryRun is the playbook's own dry_run flag; the preview shows what it would do live.
	DryRun bool   `json:"dry_run"`
	Window string `json:"window"`
	// WouldAct counts sink calls: new actions (done) and repeats that call the sink again
	// (commented tickets, updated intel records).
	WouldAct int `json:"would_act"`
	// Suppressed counts repeats within the window that do nothing (suppressed_window).
	Suppressed int `json:"suppressed"`
	// Outcomes counts every outcome, including refused_never_block and duplicate.
	Outcomes map[Outcome]int `json:"outcomes"`
	// Indicators is how many distinct indicators triggered the step; ActedOn how many of them
	// would have had a sink call.
	Indicators int `json:"indicators"`
	ActedOn    int `json:"acted_on"`
	// Sample is up to PreviewSampleSize decisions, newest first: the latest that would act,
	// then the latest others.
	Sample []PreviewSample `json:"sample"`
}

// PreviewSample is one decision of a step.
type PreviewSample struct {
	Indicator string         `json:"indicator"`
	Score     int            `json:"score"`
	Severity  event.Severity `json:"severity"`
	At        time.Time      `json:"at"`
	EventID   string         `json:"event_id"`
	Outcome   Outcome        `json:"outcome"`
}

// Preview parses a candidate playbook file without configured sinks (parsePreview) and runs it
// over events, which must come in time order for each indicator (their order across indicators
// does not matter: every window is per indicator). Only a file that does not compile is an
// error, the same one Parse reports.
func Preview(raw []byte, events iter.Seq[*event.Scored], o PreviewOptions) (*PreviewResult, error) {
	set, err := parsePreview(raw)
	if err != nil {
		return nil, err
	}
	return runPreview(set, events, o, nil), nil
}

// parsePreview is Parse with every sink the file names taken as configured, of the kind of
// the first step naming it: the sink checks that need the real sink (is it configured, its
// params) are left to `threatpipe act --validate`, everything else applies as in Parse. A
// sink named by steps of two kinds is an error, as it would be against any real sink.
func parsePreview(raw []byte) (*Set, error) {
	var f File
	if yaml.Unmarshal(raw, &f) != nil {
		return Parse(raw, nil) // not a playbook file: Parse says why
	}
	named := map[string]sinks.Sink{}
	for _, pb := range f.Playbooks {
		for _, st := range pb.Steps {
			cur, ok := named[st.Sink]
			// A step whose action is no kind is reported as such; it must not make the sink's
			// valid uses look like a kind mismatch.
			if st.Sink != "" && (!ok || (!validKind(cur.Kind()) && validKind(st.Action))) {
				named[st.Sink] = previewSink{name: st.Sink, kind: st.Action}
			}
		}
	}
	return Parse(raw, named)
}

func validKind(k sinks.Kind) bool {
	return slices.Contains(changeKinds, k)
}

// errPreviewSink is what a preview sink answers if anything ever calls it.
var errPreviewSink = errors.New("act: a preview sink performs nothing")

// previewSink stands for a sink the preview never calls.
type previewSink struct {
	name string
	kind sinks.Kind
}

func (s previewSink) Name() string     { return s.name }
func (s previewSink) Kind() sinks.Kind { return s.kind }
func (s previewSink) Do(context.Context, *sinks.Action) (sinks.Result, error) {
	return sinks.Result{}, errPreviewSink
}

// ValidateParams accepts anything: the real sink judges params at `threatpipe act --validate`.
func (s previewSink) ValidateParams(map[string]string) error { return nil }

// previewTrace sees every decision (tests compare them with the workers').
type previewTrace func(pb *Playbook, st *Step, ev *event.Scored, outcome Outcome)

// previewRun is one run's state.
type previewRun struct {
	set     *Set
	never   *neverblock.List
	kinds   []sinks.Kind
	ledger  *previewLedger
	steps   map[*Step]*stepTally
	res     *PreviewResult
	errSeen map[string]bool
	trace   previewTrace
}

// stepTally accumulates one step's StepPreview.
type stepTally struct {
	out         *StepPreview
	triggered   map[string]bool
	acted       map[string]bool
	actSample   []PreviewSample
	otherSample []PreviewSample
}

func runPreview(set *Set, events iter.Seq[*event.Scored], o PreviewOptions, trace previewTrace) *PreviewResult {
	r := &previewRun{
		set: set, never: o.NeverBlock, ledger: newPreviewLedger(), steps: map[*Step]*stepTally{},
		res: &PreviewResult{Steps: []StepPreview{}, ConditionErrorSamples: []string{}}, errSeen: map[string]bool{}, trace: trace,
	}
	if r.never == nil {
		r.never = neverblock.New(nil, nil)
	}
	for _, kind := range changeKinds {
		if set.Uses(kind) {
			r.kinds = append(r.kinds, kind)
		}
	}
	for _, pb := range set.Playbooks {
		for _, st := range pb.Steps {
			r.steps[st] = newStepTally(pb, st)
		}
	}
	for ev := range events {
		r.observe(ev)
	}
	for _, pb := range set.Playbooks {
		for _, st := range pb.Steps {
			r.res.Steps = append(r.res.Steps, r.steps[st].finish())
		}
	}
	return r.res
}

func newStepTally(pb *Playbook, st *Step) *stepTally {
	return &stepTally{triggered: map[string]bool{}, acted: map[string]bool{}, out: &StepPreview{
		Playbook: pb.Name, Step: st.Name, Kind: st.Kind, Sink: st.Sink.Name(), DryRun: pb.DryRun,
		Window: pb.Window.String(), Outcomes: map[Outcome]int{},
	}}
}

// observe decides ev as each kind's worker would: one environment, the steps of every kind.
func (r *previewRun) observe(ev *event.Scored) {
	at := eventTime(ev)
	r.res.Events++
	if r.res.From.IsZero() || at.Before(r.res.From) {
		r.res.From = at
	}
	if at.After(r.res.To) {
		r.res.To = at
	}
	env := NewEnv(ev, r.set.Lists)
	failed := false
	for _, kind := range r.kinds {
		decisions, err := r.set.DecideEnv(env, kind)
		if err != nil {
			failed = true
			r.conditionError(err)
		}
		for _, d := range decisions {
			r.record(d, ev, at, r.decide(d, ev, at))
		}
	}
	if failed {
		r.res.ConditionErrors++
	}
}

// conditionErrorSamples bounds the distinct messages kept.
const conditionErrorSamples = 5

func (r *previewRun) conditionError(err error) {
	msg := err.Error()
	if !r.errSeen[msg] && len(r.res.ConditionErrorSamples) < conditionErrorSamples {
		r.errSeen[msg] = true
		r.res.ConditionErrorSamples = append(r.res.ConditionErrorSamples, msg)
	}
}

// decide is Worker.perform without the live guardrails (kill switch, block rate cap: they
// depend on the moment, not on the playbook), in the same order: never-block, the duplicate
// check, the claim, then what the claim's state calls for (step.alreadyDone, step.claimed).
func (r *previewRun) decide(d Decision, ev *event.Scored, at time.Time) Outcome {
	pb, st, target := d.Playbook, d.Step, ev.Indicator.Value
	if st.Kind == sinks.KindBlock {
		if _, never := r.never.CheckTarget(target); never {
			return OutcomeNeverBlock
		}
	}
	a := r.ledger.action(pb.Name, st.Name, target)
	if a.seen(at, ev.EventID) {
		return OutcomeDuplicate
	}
	outcome := OutcomeDone
	if a.claim(at, pb.Window) == AlreadyDone {
		switch {
		case st.Kind == sinks.KindTicket && a.ref != "":
			outcome = OutcomeCommented
		case st.Kind == sinks.KindIntel:
			outcome = OutcomeUpdated
		default:
			outcome = OutcomeSuppressed
		}
	} else {
		// A live sink answers a new action with its reference (a ticket key), which later
		// repeats comment on.
		a.ref = "preview"
	}
	a.markSeen(at, ev.EventID, pb.Window)
	return outcome
}

func (r *previewRun) record(d Decision, ev *event.Scored, at time.Time, outcome Outcome) {
	if r.trace != nil {
		r.trace(d.Playbook, d.Step, ev, outcome)
	}
	r.steps[d.Step].add(PreviewSample{Indicator: ev.Indicator.Value, Score: ev.Score, Severity: ev.Severity, At: at, EventID: ev.EventID, Outcome: outcome})
}

// wouldAct: the outcomes for which the live worker calls the sink.
func wouldAct(o Outcome) bool {
	return o == OutcomeDone || o == OutcomeCommented || o == OutcomeUpdated
}

func (t *stepTally) add(s PreviewSample) {
	t.out.Outcomes[s.Outcome]++
	t.triggered[s.Indicator] = true
	switch {
	case wouldAct(s.Outcome):
		t.out.WouldAct++
		t.acted[s.Indicator] = true
		t.actSample = keepLatest(t.actSample, s)
	case s.Outcome == OutcomeSuppressed:
		t.out.Suppressed++
		t.otherSample = keepLatest(t.otherSample, s)
	default:
		t.otherSample = keepLatest(t.otherSample, s)
	}
}

// keepLatest adds s to a sample holding the latest PreviewSampleSize, newest first.
func keepLatest(sample []PreviewSample, s PreviewSample) []PreviewSample {
	i, _ := slices.BinarySearchFunc(sample, s, func(a, b PreviewSample) int { return b.At.Compare(a.At) })
	if i >= PreviewSampleSize {
		return sample
	}
	sample = slices.Insert(sample, i, s)
	return sample[:min(len(sample), PreviewSampleSize)]
}

func (t *stepTally) finish() StepPreview {
	out := *t.out
	out.Indicators, out.ActedOn = len(t.triggered), len(t.acted)
	// Actions first: a hot indicator's suppressed repeats must not crowd out what was done.
	out.Sample = append(slices.Clone(t.actSample), t.otherSample...)
	out.Sample = out.Sample[:min(len(out.Sample), PreviewSampleSize)]
	return out
}

// eventTime is when ev happened: its observation time, else its processing time (as
// sinks.Action.SeenAt and the view's history). The preview treats it as the time the worker
// handled the event.
func eventTime(ev *event.Scored) time.Time {
	if !ev.ObservedAt.IsZero() {
		return ev.ObservedAt.UTC()
	}
	return ev.ProcessedAt.UTC()
}

// previewLedger is the in-memory equivalent of the Redis Ledger's window logic for one run:
// per (playbook, step, target) a claim and a seen set, with the same lifetimes. Its methods
// name the Ledger operations they mirror; TestPreviewAgreesWithTheLedger holds the two equal.
type previewLedger struct {
	actions map[[3]string]*previewAction
}

type previewAction struct {
	// claimed is set by a claim, which lives for the window from when it was made (Ledger.Claim
	// SETs it with PX window; Done keeps that TTL).
	claimed bool
	claimAt time.Time
	ref     string
	// seenIDs is the seen set: event id -> when marked. It expires a window after its latest
	// mark (PEXPIRE in markSeenLua).
	seenIDs   map[string]time.Time
	seenUntil time.Time
}

func newPreviewLedger() *previewLedger {
	return &previewLedger{actions: map[[3]string]*previewAction{}}
}

func (l *previewLedger) action(playbook, step, target string) *previewAction {
	k := [3]string{playbook, step, target}
	a := l.actions[k]
	if a == nil {
		a = &previewAction{seenIDs: map[string]time.Time{}}
		l.actions[k] = a
	}
	return a
}

// claim mirrors Ledger.Claim: AlreadyDone while the claim made at claimAt lives, else a new
// claim at now (Claimed). The preview's actions finish at once, so no claim is ever pending.
func (a *previewAction) claim(now time.Time, window time.Duration) ClaimResult {
	if a.claimed && now.Sub(a.claimAt) < window {
		return AlreadyDone
	}
	a.claimed, a.claimAt, a.ref = true, now, ""
	return Claimed
}

// seen mirrors Ledger.Seen: the id is in a seen set that has not expired.
func (a *previewAction) seen(now time.Time, id string) bool {
	if !now.Before(a.seenUntil) {
		clear(a.seenIDs)
		return false
	}
	_, ok := a.seenIDs[id]
	return ok
}

// markSeen mirrors markSeenLua: add the id at now, drop the entries a window old or older and
// all but the newest SeenPerAction, and live a window from now.
func (a *previewAction) markSeen(now time.Time, id string, window time.Duration) {
	if !now.Before(a.seenUntil) {
		clear(a.seenIDs)
	}
	a.seenIDs[id] = now
	for k, at := range a.seenIDs {
		if !at.After(now.Add(-window)) {
			delete(a.seenIDs, k)
		}
	}
	a.capSeen()
	a.seenUntil = now.Add(max(window, time.Millisecond))
}

// capSeen drops the oldest ids past SeenPerAction (ZREMRANGEBYRANK: lowest score first, ties
// by member).
func (a *previewAction) capSeen() {
	if len(a.seenIDs) <= SeenPerAction {
		return
	}
	ids := make([]string, 0, len(a.seenIDs))
	for id := range a.seenIDs {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(x, y string) int {
		if c := a.seenIDs[x].Compare(a.seenIDs[y]); c != 0 {
			return c
		}
		return strings.Compare(x, y)
	})
	for _, id := range ids[:len(ids)-SeenPerAction] {
		delete(a.seenIDs, id)
	}
}
