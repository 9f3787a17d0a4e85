package event

import "time"

// Change is a verdict change of an indicator, published to the changes topic
// (THREATPIPE_KAFKA_CHANGES_TOPIC, keyed by the indicator) when a new answer moves its score
// across a severity boundary (docs/lifecycle.md). The playbook workers lift the blocks of an
// indicator that turned benign and escalate one that turned critical.
type Change struct {
	SchemaVersion string    `json:"schema_version"`
	Indicator     Indicator `json:"indicator"`
	// EventID and Revision name the scored event whose revision carried the change; a change
	// found by refreshing a cached answer names the refresh instead (EventID "refresh:<ip>").
	EventID  string    `json:"event_id"`
	Revision int       `json:"revision"`
	At       time.Time `json:"at"`
	// Cause is what brought the new answer: "revision" (a parked lookup finished), "refresh"
	// (a cached answer was looked up again before it expired) or "analyst" (an analyst marked
	// the indicator a false positive or unblocked it in the view; Action says which).
	Cause string `json:"cause"`
	// Direction is "escalated" (the severity rose) or "deescalated" (it fell).
	Direction string `json:"direction"`
	Old       Rating `json:"old"`
	New       Rating `json:"new"`
	// Reasons explain the new score.
	Reasons []Reason `json:"reasons"`
	// Event is the scored event with the new verdict, when there is one (revisions).
	Event *Scored `json:"event,omitempty"`
	// Action, on an analyst's change only, is what act does: "false_positive" lifts the blocks,
	// resolves the pages and comments the tickets (a de-escalation's every step); "unblock"
	// lifts the blocks only. Empty: what the direction says.
	Action string `json:"action,omitempty"`
	// Actor and ActorRole name the analyst of an analyst's change (the view's user and role);
	// act writes them into the audit records of what the change caused.
	Actor     string `json:"actor,omitempty"`
	ActorRole string `json:"actor_role,omitempty"`
}

// Rating is a verdict at one time.
type Rating struct {
	Score       int      `json:"score"`
	Severity    Severity `json:"severity"`
	Confidence  int      `json:"confidence"`
	ValidatedBy []string `json:"validated_by"`
}

// Change causes and directions.
const (
	CauseRevision = "revision"
	CauseRefresh  = "refresh"
	CauseAnalyst  = "analyst"
	Escalated     = "escalated"
	Deescalated   = "deescalated"
)

// Actions of an analyst's change.
const (
	ActionFalsePositive = "false_positive"
	ActionUnblock       = "unblock"
)

// RatingOf is ev's verdict.
func RatingOf(ev *Scored) Rating {
	v := ev.ValidatedBy
	if v == nil {
		v = []string{}
	}
	return Rating{Score: ev.Score, Severity: ev.Severity, Confidence: ev.Confidence, ValidatedBy: v}
}

// severityRank orders severities.
func severityRank(s Severity) int {
	switch s {
	case SeverityLow:
		return 1
	case SeverityMedium:
		return 2
	case SeverityHigh:
		return 3
	case SeverityCritical:
		return 4
	}
	return 0
}

// ChangeBetween says which way the severity moved from old to new; changed is false when it
// did not.
func ChangeBetween(old, new Rating) (direction string, changed bool) {
	o, n := severityRank(old.Severity), severityRank(new.Severity)
	switch {
	case n > o:
		return Escalated, true
	case n < o:
		return Deescalated, true
	}
	return "", false
}
