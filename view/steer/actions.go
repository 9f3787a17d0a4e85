package steer

import (
	"context"
	"fmt"
	"time"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline/allowlist"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// FalsePositive marks ip a false positive for expiresIn (1m to 90d): it allowlists ip, so that
// every enricher gates its next events (reason allowlist) within a refresh and never pays for
// them, then publishes the analyst's change that makes act lift its blocks, resolve its pages
// and comment its tickets. The allowlist comes first: an event in between is not blocked again.
func (s *Service) FalsePositive(ctx context.Context, who Actor, ip, reason string, expiresIn time.Duration) (act.Record, error) {
	ip, reason, err := s.checkAction(who, ip, reason)
	if err != nil {
		return act.Record{}, err
	}
	if err := expiry(expiresIn); err != nil {
		return act.Record{}, err
	}
	now := s.o.Now()
	why := reason + fmt.Sprintf(" (allowlisted for %s)", expiresIn)
	_, err = s.o.Allowlist.Add(ctx, allowlist.Entry{Target: ip, Reason: reason, Author: who.Name, Created: now, Expires: now.Add(expiresIn)})
	if err == nil {
		err = s.publishChange(ctx, who, ip, event.ActionFalsePositive, "false positive "+who.by()+": "+reason, now)
	}
	return s.finish(ctx, who, StepFalsePositive, ip, why, now, err)
}

// Unblock makes act lift ip's blocks now, and nothing else: its pages and tickets stay, and so
// do its block windows, so that its next critical sighting within a window does not block it
// again at once.
func (s *Service) Unblock(ctx context.Context, who Actor, ip, reason string) (act.Record, error) {
	ip, reason, err := s.checkAction(who, ip, reason)
	if err != nil {
		return act.Record{}, err
	}
	now := s.o.Now()
	err = s.publishChange(ctx, who, ip, event.ActionUnblock, "unblocked "+who.by()+": "+reason, now)
	return s.finish(ctx, who, StepUnblock, ip, reason, now, err)
}

// Refresh makes the enricher look ip up again now at its paid sources, through the usual
// budgets (the analyst source's share among them), and store the new answer; its scored event
// and any verdict change follow as for any event.
func (s *Service) Refresh(ctx context.Context, who Actor, ip string) (act.Record, error) {
	if err := who.check(); err != nil {
		return act.Record{}, err
	}
	ip, err := address(ip)
	if err != nil {
		return act.Record{}, err
	}
	now := s.o.Now()
	m, err := s.refreshRequest(ip, now)
	if err == nil {
		err = s.o.Producer.WriteMessages(ctx, m)
	}
	if err != nil {
		err = fmt.Errorf("steer: publish re-enrich of %s: %w", ip, err)
	}
	return s.finish(ctx, who, StepRefresh, ip, "re-enrich requested", now, err)
}

// SetKillSwitch turns act's kill switch on or off for every replica (as `threatpipe act
// --kill-switch on|off`): while on, act performs no action and lifts nothing.
func (s *Service) SetKillSwitch(ctx context.Context, who Actor, on bool, reason string) (act.Record, error) {
	if err := who.check(); err != nil {
		return act.Record{}, err
	}
	reason, err := text("reason", reason, MaxReason)
	if err != nil {
		return act.Record{}, err
	}
	now := s.o.Now()
	step := StepKillSwitchOff
	if on {
		step = StepKillSwitchOn
	}
	if err = s.o.Ledger.SetKillSwitch(ctx, on, who.by()+": "+reason); err != nil {
		err = fmt.Errorf("steer: kill switch: %w", err)
	}
	return s.finish(ctx, who, step, "", reason, now, err)
}

// checkAction checks the actor, address and reason of an action on one address.
func (s *Service) checkAction(who Actor, ip, reason string) (string, string, error) {
	if err := who.check(); err != nil {
		return "", "", err
	}
	ip, err := address(ip)
	if err != nil {
		return "", "", err
	}
	reason, err = text("reason", reason, MaxReason)
	if err != nil {
		return "", "", err
	}
	return ip, reason, nil
}

// publishChange publishes the analyst's change of ip.
func (s *Service) publishChange(ctx context.Context, who Actor, ip, action, why string, at time.Time) error {
	m, err := s.change(who, ip, action, why, at)
	if err == nil {
		err = s.o.Producer.WriteMessages(ctx, m)
	}
	if err != nil {
		return fmt.Errorf("steer: publish %s of %s: %w", action, ip, err)
	}
	return nil
}
