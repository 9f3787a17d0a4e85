package steer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline/allowlist"
)

// ErrNotListed is returned by AllowlistRemove when the target has no entry.
var ErrNotListed = errors.New("steer: not in the allowlist")

// AllowlistAdd allowlists an address or CIDR for expiresIn (1m to 90d): every enricher gates it
// within a refresh. Unlike FalsePositive it lifts nothing; a full allowlist is an InputError.
func (s *Service) AllowlistAdd(ctx context.Context, who Actor, target, reason string, expiresIn time.Duration) (act.Record, error) {
	t, reason, err := s.checkAllowlist(who, target, reason)
	if err != nil {
		return act.Record{}, err
	}
	if err := expiry(expiresIn); err != nil {
		return act.Record{}, err
	}
	now := s.o.Now()
	_, err = s.o.Allowlist.Add(ctx, allowlist.Entry{Target: t, Reason: reason, Author: who.Name, Created: now, Expires: now.Add(expiresIn)})
	if errors.Is(err, allowlist.ErrFull) {
		return act.Record{}, bad("ip", "%v", err)
	}
	return s.finish(ctx, who, StepAllowlistAdd, t, fmt.Sprintf("%s (for %s)", reason, expiresIn), now, err)
}

// AllowlistRemove removes the entry of an address or CIDR: the enrichers look it up again
// within a refresh. ErrNotListed (not audited) when there is none.
func (s *Service) AllowlistRemove(ctx context.Context, who Actor, target, reason string) (act.Record, error) {
	t, reason, err := s.checkAllowlist(who, target, reason)
	if err != nil {
		return act.Record{}, err
	}
	now := s.o.Now()
	removed, err := s.o.Allowlist.Remove(ctx, t)
	if err == nil && !removed {
		return act.Record{}, fmt.Errorf("%w: %s", ErrNotListed, t)
	}
	return s.finish(ctx, who, StepAllowlistRemove, t, reason, now, err)
}

// Allowlist returns the live entries, soonest expiry first.
func (s *Service) Allowlist(ctx context.Context) ([]allowlist.Entry, error) {
	entries, err := s.o.Allowlist.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("steer: %w", err)
	}
	return entries, nil
}

func (s *Service) checkAllowlist(who Actor, spec, reason string) (string, string, error) {
	if err := who.check(); err != nil {
		return "", "", err
	}
	t, err := target(spec)
	if err != nil {
		return "", "", err
	}
	reason, err = text("reason", reason, MaxReason)
	if err != nil {
		return "", "", err
	}
	return t, reason, nil
}
