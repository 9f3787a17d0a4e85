// Package steer is the backend of the console's analyst actions (the view's HTTP handlers call
// it): mark a false positive, unblock now, re-enrich now, note, kill switch, and the shared
// allowlist. It changes nothing itself that other roles own: it writes the shared allowlist the
// enrichers' gates reload (pipeline/allowlist), publishes verdict changes that act lifts on
// (event.Change, cause analyst), native events the enricher looks up again (re-enrich), and sets
// act's kill switch through act's ledger. Every action writes one audit record (act.Record, kind
// analyst) to the results topic, which the view shows on the indicator page.
package steer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline/allowlist"
	"github.com/threatpipe/threatpipe/pipeline/sign"
)

// Actor is who acts: the view's user, their role, and how they came (browser session, API
// token), as the HTTP layer authenticated them.
type Actor struct{ Name, Role, Via string }

// Producer writes messages to the topics each message names. The view's writer must wait for
// every in-sync replica (acks=all): an action the analyst was told happened must not be lost.
type Producer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// KillSwitch is act's run-time kill switch (act.Ledger).
type KillSwitch interface {
	SetKillSwitch(ctx context.Context, on bool, reason string) error
	KillSwitch(ctx context.Context) (bool, error)
}

var _ KillSwitch = (*act.Ledger)(nil)

// Topics are the topics the service writes: the enricher's input (re-enrich), the verdict
// changes (false positive, unblock) and act's results (the audit records).
type Topics struct{ Input, Changes, Results string }

// Options wire a Service.
type Options struct {
	Producer  Producer
	Allowlist *allowlist.Store
	Ledger    KillSwitch
	// Redis holds the notes, under Prefix (THREATPIPE_REDIS_KEY_PREFIX) + ":view:notes:".
	Redis  redis.UniversalClient
	Prefix string
	Topics Topics
	// Signer, when THREATPIPE_SIGNING_KEY is set, signs the changes (as the enricher does: act
	// verifies them) and the re-enrich requests (the enricher forces only signed ones).
	Signer *sign.Signer
	Now    func() time.Time
}

// Service performs the analyst actions. It is safe for concurrent use.
type Service struct {
	o Options
}

// New checks o and returns the service.
func New(o Options) (*Service, error) {
	var missing []error
	for name, ok := range map[string]bool{"Producer": o.Producer != nil, "Allowlist": o.Allowlist != nil,
		"Ledger": o.Ledger != nil, "Redis": o.Redis != nil, "Prefix": o.Prefix != "", "Topics.Input": o.Topics.Input != "",
		"Topics.Changes": o.Topics.Changes != "", "Topics.Results": o.Topics.Results != ""} {
		if !ok {
			missing = append(missing, fmt.Errorf("steer: %s is required", name))
		}
	}
	if err := errors.Join(missing...); err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{o: o}, nil
}

// KillSwitch reports whether act's kill switch is on.
func (s *Service) KillSwitch(ctx context.Context) (bool, error) {
	on, err := s.o.Ledger.KillSwitch(ctx)
	if err != nil {
		return false, fmt.Errorf("steer: kill switch: %w", err)
	}
	return on, nil
}
