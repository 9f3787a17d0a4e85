package webhook

import (
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/sinks"
)

// SchemaVersion is the payload's schema_version. Bump it on any change a receiver could
// notice.
const SchemaVersion = "1"

// Payload actions.
const (
	ActionAlert   = "alert"
	ActionBlock   = "block"
	ActionUnblock = "unblock"
)

// Payload is the JSON body of every request. Receivers decode it after Verify.
type Payload struct {
	SchemaVersion string `json:"schema_version"`
	// Action is alert, block or unblock.
	Action string `json:"action"`
	// Key identifies the action (its target and window); an unblock carries its block's key.
	Key      string `json:"key"`
	Playbook string `json:"playbook"`
	Step     string `json:"step"`
	// Target is the indicator's canonical IP address.
	Target   string         `json:"target"`
	Score    int            `json:"score"`
	Severity event.Severity `json:"severity"`
	Tags     []string       `json:"tags"`
	Reasons  []event.Reason `json:"reasons"`
	ISP      string         `json:"isp"`
	Country  string         `json:"country"`
	// Until is when a block lapses (RFC 3339, UTC); absent for alerts, unblocks and blocks
	// without an expiry, which last until their unblock.
	Until   string `json:"until,omitempty"`
	Title   string `json:"title"`
	ViewURL string `json:"view_url,omitempty"`
	// Event is the scored event behind the action (docs/events.md), when there is one.
	Event *event.Scored `json:"event,omitempty"`
}

// BuildPayload renders a as the documented payload for action (alert, block or unblock); the
// Kafka alert sink publishes the same shape.
func BuildPayload(action string, a *sinks.Action) Payload {
	p := Payload{
		SchemaVersion: SchemaVersion,
		Action:        action,
		Key:           a.Key,
		Playbook:      a.Playbook,
		Step:          a.Step,
		Target:        a.Target,
		Score:         a.Score,
		Severity:      a.Severity,
		Tags:          a.Tags,
		Reasons:       a.Reasons,
		ISP:           a.ISP,
		Country:       a.Country,
		Title:         a.Title,
		ViewURL:       a.ViewURL,
		Event:         a.Event,
	}
	// Arrays, never null: receivers iterate without checking.
	if p.Tags == nil {
		p.Tags = []string{}
	}
	if p.Reasons == nil {
		p.Reasons = []event.Reason{}
	}
	if action == ActionBlock && !a.Until.IsZero() {
		p.Until = a.Until.UTC().Format(time.RFC3339)
	}
	return p
}
