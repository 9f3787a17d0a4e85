package act

import (
	"context"
	"fmt"
	"strings"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/sinks"
)

// changePlaybook and changeStep name the ledger claim on a de-escalating change, keyed by the
// change's id. No playbook can be named so: playbook names start with a letter or a digit.
const (
	changePlaybook = "_changes"
	changeStep     = "deescalate"
)

var (
	changeClaimPlaybook = &Playbook{Name: changePlaybook, Window: changeMemory}
	changeClaimStep     = &Step{Name: changeStep}
)

// openTicket is a ticket a playbook step opened on a target within its window.
type openTicket struct {
	pb    *Playbook
	st    *Step
	claim *Claim
}

// deescalate lifts every block of the indicator now, resolves its pages, ends its block and
// alert windows and comments on its open tickets, once per change record: a redelivered one
// is recognised by the ledger and does nothing.
func (h *ChangeHandler) deescalate(ctx context.Context, msg kafka.Message, c *event.Change, note *ChangeNote) ([]kafka.Message, error) {
	var (
		res   ClaimResult
		claim *Claim
	)
	// A claim on the change itself, like an action's: a redelivery handled at the same time
	// waits for this one and then finds it done.
	if err := h.base.retry(ctx, func() (err error) {
		res, claim, err = h.ledger.Claim(ctx, false, changePlaybook, changeStep, note.ID, changeMemory)
		return err
	}); err != nil {
		return nil, err
	}
	if res == AlreadyDone {
		h.logHandled(c, "duplicate")
		return nil, nil
	}
	// An error means ctx ended: the pending claim is taken over once this owner is gone.
	return h.deescalateClaimed(ctx, msg, c, note, claim)
}

// deescalateClaimed does the de-escalation of the claimed change and settles the claim.
func (h *ChangeHandler) deescalateClaimed(ctx context.Context, msg kafka.Message, c *event.Change, note *ChangeNote, claim *Claim) ([]kafka.Message, error) {
	target := c.Indicator.Value
	var blocks []ActiveBlock
	if err := h.base.retry(ctx, func() (err error) { blocks, err = h.ledger.TargetBlocks(ctx, target); return err }); err != nil {
		return nil, err
	}
	var tickets []openTicket
	if !blocksOnly(c) {
		var err error
		if tickets, err = h.openTickets(ctx, target); err != nil {
			return nil, err
		}
	}
	// After the duplicate check, as for scored events. Nothing is lifted: the blocks lapse.
	if on, err := h.base.killSwitch(ctx); err != nil {
		return nil, err
	} else if on {
		h.base.release(ctx, changeClaimPlaybook, changeClaimStep, note.ID, claim)
		h.logHandled(c, "kill_switch")
		return h.killed(c, note, blocks, tickets), nil
	}
	outs, err := h.liftAll(ctx, c, note, blocks)
	if err != nil {
		return nil, err
	}
	for _, t := range tickets {
		out, err := h.comment(ctx, msg, c, note, t)
		if err != nil {
			return nil, err
		}
		outs = append(outs, out...)
	}
	if err := h.base.retry(ctx, func() error {
		return h.base.done(changeClaimPlaybook, changeClaimStep, note.ID, claim,
			h.ledger.Done(ctx, false, changePlaybook, changeStep, note.ID, claim, "", note.ID, changeMemory))
	}); err != nil {
		return nil, err
	}
	h.logHandled(c, "lift")
	return outs, nil
}

// liftAll lifts blocks, resolves the target's pages and ends its block and alert windows; an
// analyst's unblock lifts the blocks only.
func (h *ChangeHandler) liftAll(ctx context.Context, c *event.Change, note *ChangeNote, blocks []ActiveBlock) ([]kafka.Message, error) {
	why := changeWhy(c, note)
	var outs []kafka.Message
	for _, b := range blocks {
		rec, err := h.liftNow(ctx, b, why)
		if err != nil {
			return nil, err
		}
		if rec != nil {
			outs = append(outs, h.lifted(rec, c, note))
		}
	}
	if blocksOnly(c) {
		return outs, nil
	}
	target := c.Indicator.Value
	var pages []Pending
	if err := h.base.retry(ctx, func() (err error) { pages, err = h.ledger.TakeResolves(ctx, target); return err }); err != nil {
		return nil, err
	}
	for _, p := range pages {
		outs = append(outs, h.lifted(resolvePage(ctx, h.o.Sinks, target, p, "resolved: "+why), c, note))
	}
	return outs, h.endWindows(ctx, target)
}

// liftNow lifts block b through the lifter's path; nil when another lifter is lifting it.
func (h *ChangeHandler) liftNow(ctx context.Context, b ActiveBlock, why string) (*Record, error) {
	s, configured := h.o.Sinks[b.Sink]
	if _, undoable := s.(sinks.Undoer); configured && !undoable {
		return &Record{Kind: sinks.KindBlock, Playbook: b.Playbook, Step: b.Step, Sink: b.Sink, Target: b.Target, Key: b.Key, Ref: b.Ref,
			Outcome: OutcomeLiftFailed, Error: fmt.Sprintf("sink %s cannot lift a block before it lapses (at %s): lift it by hand",
				b.Sink, b.Until.UTC().Format("2006-01-02T15:04:05Z"))}, nil
	}
	var (
		leased ActiveBlock
		ok     bool
	)
	if err := h.base.retry(ctx, func() (err error) { leased, ok, err = h.ledger.LeaseNow(ctx, b); return err }); err != nil {
		return nil, err
	}
	if !ok {
		return nil, nil
	}
	rec := liftBlock(ctx, h.ledger, h.o.Sinks, h.log, leased, "lifted: "+why)
	if rec.Outcome == OutcomeLiftFailed && ctx.Err() != nil {
		return nil, ctx.Err() // shutdown mid-lift: the lease hands the block to the lifters
	}
	return rec, nil
}

// lifted counts a lift or resolve record of the change and makes it a message.
func (h *ChangeHandler) lifted(rec *Record, c *event.Change, note *ChangeNote) kafka.Message {
	h.metrics.Lifts.WithLabelValues(rec.Sink, string(rec.Outcome)).Inc()
	h.metrics.Health.Observe(rec, h.base.now())
	if rec.Outcome == OutcomeLiftFailed {
		h.log.Error("lift failed", zap.String("sink", rec.Sink), zap.String("target", rec.Target), zap.String("error", rec.Error))
	}
	return h.message(rec, c, note)
}

// endWindows ends the target's block and alert windows of every live playbook, so that if it
// turns malicious again the next event blocks and alerts anew. Ticket windows stay: the open
// ticket gets the next comment.
func (h *ChangeHandler) endWindows(ctx context.Context, target string) error {
	for _, pb := range h.set.Playbooks {
		if pb.DryRun {
			continue
		}
		for _, st := range pb.Steps {
			if st.Kind == sinks.KindTicket {
				continue
			}
			if err := h.base.retry(ctx, func() error {
				_, err := h.ledger.EndWindow(ctx, false, pb.Name, st.Name, target)
				return err
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

// openTickets are the tickets the live playbooks' ticket steps opened on target within their
// windows.
func (h *ChangeHandler) openTickets(ctx context.Context, target string) ([]openTicket, error) {
	var out []openTicket
	for _, pb := range h.set.Playbooks {
		if pb.DryRun {
			continue
		}
		for _, st := range pb.Steps {
			if st.Kind != sinks.KindTicket {
				continue
			}
			var claim *Claim
			if err := h.base.retry(ctx, func() (err error) { claim, err = h.ledger.GetClaim(ctx, false, pb.Name, st.Name, target); return err }); err != nil {
				return nil, err
			}
			if claim != nil && claim.State == StateDone && claim.Ref != "" {
				out = append(out, openTicket{pb: pb, st: st, claim: claim})
			}
		}
	}
	return out, nil
}

// comment adds the verdict change to an open ticket through the ticket sink's comment path,
// once per change (a comment made before a crash is not made again on redelivery).
func (h *ChangeHandler) comment(ctx context.Context, msg kafka.Message, c *event.Change, note *ChangeNote, t openTicket) ([]kafka.Message, error) {
	target, seenID := c.Indicator.Value, "change:"+note.ID
	rec := &Record{Kind: sinks.KindTicket, Playbook: t.pb.Name, Step: t.st.Name, Sink: t.st.Sink.Name(), Target: target, Key: t.claim.Key, Ref: t.claim.Ref}
	defer func() {
		h.metrics.Actions.WithLabelValues(string(sinks.KindTicket), rec.Sink, string(rec.Outcome)).Inc()
		h.metrics.Health.Observe(rec, h.base.now())
	}()
	var seen bool
	if err := h.base.retry(ctx, func() (err error) {
		seen, err = h.ledger.Seen(ctx, false, t.pb.Name, t.st.Name, target, seenID)
		return err
	}); err != nil {
		return nil, err
	}
	if seen {
		rec.Outcome, rec.Detail = OutcomeDuplicate, "change "+note.ID+" already commented on "+t.claim.Ref
		return []kafka.Message{h.message(rec, c, note)}, nil
	}
	summary := VerdictSummary(c)
	if c.Cause == event.CauseAnalyst {
		summary = changeWhy(c, note) + "; " + summary
	}
	res, err := t.st.Sink.Do(ctx, h.commentAction(c, t, summary))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err() // shutdown mid-call: redelivered whole
		}
		rec.Outcome, rec.Error = OutcomeFailed, err.Error()
		return []kafka.Message{h.message(rec, c, note), h.base.deadLetter(msg, "action_failed", rec.Error, rec)}, nil
	}
	rec.Outcome, rec.Ref, rec.Detail = OutcomeCommented, res.Ref, res.Detail+": "+summary
	if err := h.base.retry(ctx, func() error {
		return h.ledger.MarkSeen(ctx, false, t.pb.Name, t.st.Name, target, seenID, changeMemory)
	}); err != nil {
		return nil, err
	}
	return []kafka.Message{h.message(rec, c, note)}, nil
}

// VerdictSummary is the line a ticket comment leads with:
// "verdict changed: critical 92 -> low 18 (validated by no source)".
func VerdictSummary(c *event.Change) string {
	by := "no source"
	if len(c.New.ValidatedBy) > 0 {
		by = strings.Join(c.New.ValidatedBy, ", ")
	}
	return fmt.Sprintf("verdict changed: %s -> %s (validated by %s)", rating(c.Old), rating(c.New), by)
}

// commentAction is the ticket sink's comment on t's ticket: the new verdict, with the summary
// as the first reason (ticket sinks list the reasons in comments).
func (h *ChangeHandler) commentAction(c *event.Change, t openTicket, summary string) *sinks.Action {
	reasons := append([]event.Reason{{Source: "verdict_change", Detail: summary}}, c.Reasons...)
	a := &sinks.Action{
		Key: t.claim.Key, Playbook: t.pb.Name, Step: t.st.Name, Kind: sinks.KindTicket, Target: c.Indicator.Value,
		Score: c.New.Score, Severity: c.New.Severity, Reasons: reasons, Params: t.st.Params, Prior: t.claim.Ref,
		Event: c.Event, Title: "threatpipe: " + c.Indicator.Value + " " + summary,
	}
	if c.Event != nil {
		a.Tags, a.ISP = c.Event.Tags, c.Event.ISP
		if c.Event.Geo != nil {
			a.Country = c.Event.Geo.CountryISOCode
		}
	}
	if h.o.ViewURL != "" {
		a.ViewURL = strings.TrimRight(h.o.ViewURL, "/") + "/indicators/" + c.Indicator.Value
	}
	return a
}

// killed records, while the kill switch is on, the lifts and comments a de-escalation would
// have made.
func (h *ChangeHandler) killed(c *event.Change, note *ChangeNote, blocks []ActiveBlock, tickets []openTicket) []kafka.Message {
	var outs []kafka.Message
	for _, b := range blocks {
		outs = append(outs, h.killedRecord(&Record{Kind: sinks.KindBlock, Playbook: b.Playbook, Step: b.Step, Sink: b.Sink, Target: b.Target,
			Key: b.Key, Ref: b.Ref, Detail: "kill switch on: not lifted (the block lapses when it expires)"}, c, note))
	}
	for _, t := range tickets {
		outs = append(outs, h.killedRecord(&Record{Kind: sinks.KindTicket, Playbook: t.pb.Name, Step: t.st.Name, Sink: t.st.Sink.Name(),
			Target: c.Indicator.Value, Key: t.claim.Key, Ref: t.claim.Ref, Detail: "kill switch on: no comment"}, c, note))
	}
	return outs
}

func (h *ChangeHandler) killedRecord(rec *Record, c *event.Change, note *ChangeNote) kafka.Message {
	rec.Outcome = OutcomeKillSwitch
	h.metrics.Actions.WithLabelValues(string(rec.Kind), rec.Sink, string(rec.Outcome)).Inc()
	return h.message(rec, c, note)
}
