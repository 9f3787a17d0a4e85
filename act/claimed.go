package act

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/sinks"
)

// step is one decision past its claim: what the claim's state calls for.
type step struct {
	w     *Worker
	rec   *Record
	pb    *Playbook
	st    *Step
	ev    *event.Scored
	claim *Claim
	a     *sinks.Action
}

func (s *step) target() string { return s.ev.Indicator.Value }

// alreadyDone: the action happened within the window. A ticket gets a comment and a
// threat-intel record an update (a new sighting, a changed score); the rest is suppressed.
func (s *step) alreadyDone(ctx context.Context) (*Record, bool, error) {
	// This very event may have settled the claim while we waited on it (a duplicate handled
	// concurrently with its original): then it is a duplicate, not a repeat sighting.
	if dup, err := s.w.duplicate(ctx, s.rec, s.pb, s.st, s.ev); err != nil || dup {
		return s.rec, false, err
	}
	switch {
	case s.st.Kind == sinks.KindTicket && s.claim.Ref != "":
		s.a.Prior = s.claim.Ref
		return s.w.execute(ctx, s.rec, s.a, s.pb, s.st, s.claim, s.ev, OutcomeCommented)
	case s.st.Kind == sinks.KindIntel:
		s.a.Prior = s.claim.Ref
		return s.w.execute(ctx, s.rec, s.a, s.pb, s.st, s.claim, s.ev, OutcomeUpdated)
	}
	s.rec.Outcome, s.rec.Ref = OutcomeSuppressed, s.claim.Ref
	s.rec.Detail = fmt.Sprintf("already done at %s within the %s window", s.claim.At.Format(time.RFC3339), s.pb.Window)
	err := s.w.retry(ctx, func() error {
		return s.w.ledger.MarkSeen(ctx, s.pb.DryRun, s.pb.Name, s.st.Name, s.target(), s.ev.EventID, s.pb.Window)
	})
	if err != nil {
		return nil, false, err
	}
	return s.rec, false, nil
}

// takenOver: the previous owner crashed mid-action. The system is asked before the action is
// done again.
func (s *step) takenOver(ctx context.Context) (*Record, bool, error) {
	if ref, found, err := s.find(ctx); err != nil {
		return nil, false, err
	} else if found {
		s.rec.Outcome, s.rec.Ref, s.rec.Detail = OutcomeRecovered, ref, "a crashed worker's action had happened: "+ref
		if err := s.w.retry(ctx, func() error {
			return s.w.done(s.pb, s.st, s.target(), s.claim,
				s.w.ledger.Done(ctx, s.pb.DryRun, s.pb.Name, s.st.Name, s.target(), s.claim, ref, s.ev.EventID, s.pb.Window))
		}); err != nil {
			return nil, false, err
		}
		return s.rec, false, nil
	}
	if s.st.Kind == sinks.KindBlock {
		// The crashed owner counted the offence; its escalation is lost, the cap is not.
		s.a.Until = s.w.now().Add(s.w.blockDuration(s.st.Duration, 1))
	}
	return s.w.execute(ctx, s.rec, s.a, s.pb, s.st, s.claim, s.ev, OutcomeDone)
}

// find asks a Finder sink whether the crashed owner's action happened. Its error is returned
// only when ctx ended; a failed search is logged and the action repeated.
func (s *step) find(ctx context.Context) (string, bool, error) {
	f, ok := s.st.Sink.(sinks.Finder)
	if !ok || s.pb.DryRun {
		return "", false, nil
	}
	ref, found, err := f.Find(ctx, s.a)
	if err == nil && !found {
		// Search indexes lag behind creates (Jira's by seconds): an action begun just before the
		// crash may not be findable yet. Ask again once it has had time.
		if wait := s.claim.At.Add(findSettle).Sub(s.w.now()); wait > 0 {
			if !pipeline.Sleep(ctx, wait) {
				return "", false, ctx.Err()
			}
			ref, found, err = f.Find(ctx, s.a)
		}
	}
	if err != nil {
		s.w.log.Warn("could not ask the sink whether a crashed worker's action happened; repeating it",
			zap.String("sink", s.st.Sink.Name()), zap.Error(err))
		return "", false, nil
	}
	return ref, found, nil
}

// claimed: a new action. A block passes the rate cap first and lasts by the target's offences.
func (s *step) claimed(ctx context.Context) (*Record, bool, error) {
	if s.st.Kind == sinks.KindBlock {
		capped, err := s.rateCapped(ctx)
		if err != nil || capped {
			return s.rec, false, err
		}
		offence, err := retried(ctx, s.w, func() (int64, error) {
			return s.w.ledger.Offence(ctx, s.pb.DryRun, s.target(), s.w.o.Guardrails.OffenceMemory)
		})
		if err != nil {
			return nil, false, err
		}
		s.rec.Offence = offence
		s.a.Until = s.w.now().Add(s.w.blockDuration(s.st.Duration, offence))
	}
	return s.w.execute(ctx, s.rec, s.a, s.pb, s.st, s.claim, s.ev, OutcomeDone)
}

// rateCapped counts a new block against the per-minute cap, trips the cap when it is passed,
// and reports whether blocking is alert-only (the claim is then released).
func (s *step) rateCapped(ctx context.Context) (bool, error) {
	// Only a new block is alert-only while the cap is tripped: a repeat sighting of a target
	// already blocked within the window is suppressed_window before this.
	tripped, err := retried(ctx, s.w, func() (bool, error) { return s.w.ledger.Tripped(ctx, s.pb.DryRun) })
	if err != nil {
		return false, err
	}
	if tripped {
		s.w.release(ctx, s.pb, s.st, s.target(), s.claim)
		s.rec.Outcome, s.rec.Detail = OutcomeRateCapped, "block rate cap tripped: alert-only"
		return true, nil
	}
	type counted struct {
		n    int64
		over bool
	}
	c, err := retried(ctx, s.w, func() (counted, error) {
		n, over, err := s.w.ledger.CountBlock(ctx, s.pb.DryRun, s.w.o.Guardrails.MaxBlocksPerMinute)
		return counted{n, over}, err
	})
	if err != nil {
		return false, err
	}
	if c.over {
		s.w.trip(ctx, s.pb.DryRun, c.n)
		s.w.release(ctx, s.pb, s.st, s.target(), s.claim)
		s.rec.Outcome = OutcomeRateCapped
		s.rec.Detail = fmt.Sprintf("block %d this minute exceeds the cap of %d: alert-only", c.n, s.w.o.Guardrails.MaxBlocksPerMinute)
		return true, nil
	}
	return false, nil
}

// retried runs op under the worker's ledger retry (w.retry) and returns its value.
func retried[T any](ctx context.Context, w *Worker, op func() (T, error)) (T, error) {
	var v T
	err := w.retry(ctx, func() (err error) { v, err = op(); return err })
	return v, err
}
