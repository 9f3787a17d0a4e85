package act

import (
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/sinks"
)

// Outcome says what became of one step for one scored event. The values are part of the audit
// topic's contract (docs/playbooks.md).
type Outcome string

// Outcomes.
const (
	OutcomeDone         Outcome = "done"              // the sink performed the action
	OutcomeCommented    Outcome = "commented"         // a repeat within the window: a comment on the open ticket
	OutcomeUpdated      Outcome = "updated"           // a repeat within the window: the threat-intel record updated
	OutcomeRecovered    Outcome = "recovered"         // a crashed worker's action had happened; recorded, not repeated
	OutcomeDuplicate    Outcome = "duplicate"         // this event was already handled (redelivery)
	OutcomeSuppressed   Outcome = "suppressed_window" // the action already happened within the window
	OutcomeNeverBlock   Outcome = "refused_never_block"
	OutcomeRateCapped   Outcome = "suppressed_rate_cap" // blocking is alert-only after the rate cap tripped
	OutcomeKillSwitch   Outcome = "kill_switch"
	OutcomeDryRun       Outcome = "dry_run" // a shadow playbook: what would have happened
	OutcomeFailed       Outcome = "failed"  // the sink failed after retries; dead-lettered
	OutcomeLifted       Outcome = "lifted"  // an expired block was removed
	OutcomeLiftFailed   Outcome = "lift_failed"
	OutcomeResolved     Outcome = "resolved" // a page resolved when its block was lifted
	OutcomeBadCondition Outcome = "condition_error"
)

// RecordSchemaVersion is written into every audit record.
const RecordSchemaVersion = "1"

// Record is one audit record on the results topic, keyed by target.
type Record struct {
	SchemaVersion string     `json:"schema_version"`
	At            time.Time  `json:"at"`
	Outcome       Outcome    `json:"outcome"`
	Kind          sinks.Kind `json:"kind"`
	Playbook      string     `json:"playbook,omitempty"`
	Step          string     `json:"step,omitempty"`
	Sink          string     `json:"sink,omitempty"`
	Target        string     `json:"target,omitempty"`
	// Key is the action's idempotency key; Ref the sink's reference (ticket key, page dedup key).
	Key    string `json:"key,omitempty"`
	Ref    string `json:"ref,omitempty"`
	Detail string `json:"detail,omitempty"`
	Error  string `json:"error,omitempty"`
	DryRun bool   `json:"dry_run"`
	// Until and Offence describe blocks: when it lapses, and which block of this target within
	// the offence memory it is (durations double per offence).
	Until    *time.Time     `json:"until,omitempty"`
	Offence  int64          `json:"offence,omitempty"`
	EventID  string         `json:"event_id,omitempty"`
	Score    int            `json:"score"`
	Severity event.Severity `json:"severity,omitempty"`
	// Worker is the consumer group (or process role) that wrote the record.
	Worker string `json:"worker"`
	// Change is the verdict change the record acted on (the changes consumer's records only).
	Change *ChangeNote `json:"change,omitempty"`
	// Actor and ActorRole name the analyst whose action the record is of (or caused it, through
	// an analyst's verdict change): the view's user and role.
	Actor     string `json:"actor,omitempty"`
	ActorRole string `json:"actor_role,omitempty"`
}

// KindAnalyst is the kind of the records of an analyst's own actions in the view (false
// positive, unblock, refresh, note, kill switch, allowlist): no playbook step has it.
const KindAnalyst sinks.Kind = "analyst"

// ChangeNote names a verdict change (event.Change) in the records of what it caused.
type ChangeNote struct {
	// ID is the change's ledger key: event_id#revision (plus @at for refreshes).
	ID        string `json:"id"`
	Direction string `json:"direction"`
	Cause     string `json:"cause,omitempty"`
	// From and To are the verdicts before and after, as "<severity> <score>" ("critical 92").
	From string `json:"from"`
	To   string `json:"to"`
}
