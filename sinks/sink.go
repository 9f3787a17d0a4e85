// Package sinks defines the action sinks that playbooks drive (firewall blocks, alerts,
// tickets) and the registry that builds them from the environment. Each sink is its own package
// under sinks/; adding one is that package plus one line in sinks/all.
package sinks

import (
	"context"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Kind is what an action does; playbook steps name it, and each kind runs in its own worker
// pool so that a slow ticket API never delays a block.
type Kind string

// Action kinds.
const (
	KindBlock  Kind = "block"
	KindAlert  Kind = "alert"
	KindTicket Kind = "ticket"
	// KindIntel writes the verdict back to a threat-intel platform (ThreatQ, MISP): the
	// indicator's score, severity, sources and tags. Repeats update it, never duplicate it.
	KindIntel Kind = "intel"
)

// Action is one thing a playbook asks one sink to do about one indicator.
type Action struct {
	// Key is the idempotency key of (action, target, window). It is stable across redelivery and
	// replicas; sinks that talk to an API with its own deduplication pass it on.
	Key      string
	Playbook string
	Step     string
	Kind     Kind
	// Target is the indicator's canonical address.
	Target   string
	Score    int
	Severity event.Severity
	Tags     []string
	Reasons  []event.Reason
	ISP      string
	Country  string
	// Title is a one-line summary ("threatpipe: 203.0.113.7 scored 92 (critical)").
	Title string
	// Params are the step's own settings from the playbook (queue, priority, assignee...),
	// already validated by the sink's Validate.
	Params map[string]string
	// Until is when a block lapses (zero: the sink's default). Blocks are lifted by Undo.
	Until time.Time
	// Prior is the reference a previous action on the same target left within the window: a
	// ticket sink adds a comment to it instead of opening a new ticket.
	Prior string
	// Event is the scored event that triggered the action.
	Event *event.Scored
	// ViewURL links to the indicator's page in the prioritised view, when one is configured.
	ViewURL string
}

// Result is what a sink did.
type Result struct {
	// Ref is the vendor's reference for what was created (ticket key, incident sys_id, alert id,
	// PagerDuty dedup key); the ledger keeps it so that a repeat can comment on it or undo it.
	Ref string
	// Detail is a short human summary for the audit topic ("created SOC-123", "commented on SOC-123").
	Detail string
}

// Sink performs actions of one kind against one system.
//
// Implementations must be safe for concurrent use, honour ctx on every request, bound what they
// read, and retry transient failures within their own budget (sinkhttp does this for HTTP
// sinks). A returned error means the action did not happen as far as the sink can tell; the
// worker records it and dead-letters the action. Do must be idempotent for one Action.Key where
// the system allows it (dedup keys, set semantics), because a crash between the call and the
// ledger write repeats it.
type Sink interface {
	// Name is the sink's stable identifier: playbooks, metrics, config prefix.
	Name() string
	Kind() Kind
	Do(ctx context.Context, a *Action) (Result, error)
}

// Undoer is a sink whose actions can be lifted: an expired block is removed, a page is resolved.
// ref is the Result.Ref the action returned.
type Undoer interface {
	Undo(ctx context.Context, a *Action, ref string) error
}

// ParamValidator is a sink that checks a playbook step's params at start-up (playbook
// validation), so that a typo fails `threatpipe act --validate` instead of a page at 3 a.m.
type ParamValidator interface {
	ValidateParams(params map[string]string) error
}

// Reconciler is a sink holding state of its own (an nftables set, an EDL) that is made to match
// the ledger's active blocks after a restart: targets maps each address to its expiry.
type Reconciler interface {
	Reconcile(ctx context.Context, active map[string]time.Time) error
}

// Finder is a sink that can tell whether an action already happened at the far end, by the
// idempotency key it sent with it (a ticket label, a correlation id, an alert's sourceRef). The
// worker asks it before repeating an action whose outcome a crash left unknown, so that a ticket
// is not opened twice. found is false when the system has no trace of a.Key.
type Finder interface {
	Find(ctx context.Context, a *Action) (ref string, found bool, err error)
}

// SeverityLabel is the action's severity as shown to people: "unknown" when it has none.
func (a *Action) SeverityLabel() string {
	if a.Severity == "" {
		return "unknown"
	}
	return string(a.Severity)
}

// StepLabel names the playbook step that asked for the action: "playbook / step", or whichever
// of the two is set.
func (a *Action) StepLabel() string {
	switch {
	case a.Playbook == "":
		return a.Step
	case a.Step == "":
		return a.Playbook
	}
	return a.Playbook + " / " + a.Step
}

// SeenAt is when the indicator was seen: the event's observation time, else its processing
// time, else now (an action without an event, or whose event has neither).
func (a *Action) SeenAt(now time.Time) time.Time {
	if a.Event != nil {
		if !a.Event.ObservedAt.IsZero() {
			return a.Event.ObservedAt
		}
		if !a.Event.ProcessedAt.IsZero() {
			return a.Event.ProcessedAt
		}
	}
	return now
}

// UntilOr is when the block a asks for lapses: a.Until, or def (the sink's default) when a has
// none.
func (a *Action) UntilOr(def time.Time) time.Time {
	if a.Until.IsZero() {
		return def
	}
	return a.Until
}
