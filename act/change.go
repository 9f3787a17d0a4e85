package act

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/sinks"
)

// ChangeOptions configure the consumer of verdict changes.
type ChangeOptions struct {
	Name         string // consumer group, written into records and dead letters
	ResultsTopic string
	DLQTopic     string
	ViewURL      string
	Guardrails   Guardrails
	// Alert raises an operator alert (the rate cap tripping); may be nil.
	Alert func(ctx context.Context, title string)
	// Sinks are every configured sink: blocks are lifted and pages resolved through the sink
	// that performed them, whichever playbook asked.
	Sinks map[string]sinks.Sink
}

// ChangeHandler is the pipeline.Handler of the changes topic (event.Change records). A change
// that de-escalates an indicator to info or low (or under a known-benign service cap) lifts its
// blocks now, resolves its pages, ends its block and alert windows and comments on its open
// tickets; a change that escalates it to critical runs the playbooks on the revised event with
// escalated set. Everything goes through the ledger and the guardrails, and is audited on the
// results topic, which the engine publishes before it commits.
type ChangeHandler struct {
	o       ChangeOptions
	set     *Set
	ledger  *Ledger
	metrics *Metrics
	log     *zap.Logger
	// workers perform escalations, one per action kind, as the scored-topic workers do; base
	// is the block one, whose retries, kill switch and dead letters the de-escalations share.
	workers map[sinks.Kind]*Worker
	base    *Worker
}

var _ pipeline.Handler = (*ChangeHandler)(nil)

// changeKinds are the action kinds an escalation may trigger, in the order they are performed.
var changeKinds = []sinks.Kind{sinks.KindBlock, sinks.KindAlert, sinks.KindTicket, sinks.KindIntel}

// changeMemory is how long a handled change (and each ticket comment it made) is remembered, so
// that a redelivery does nothing.
const changeMemory = 7 * 24 * time.Hour

// NewChangeHandler returns the changes consumer over set.
func NewChangeHandler(o ChangeOptions, set *Set, ledger *Ledger, m *Metrics, log *zap.Logger) *ChangeHandler {
	h := &ChangeHandler{o: o, set: set, ledger: ledger, metrics: m, log: log, workers: map[sinks.Kind]*Worker{}}
	for _, kind := range changeKinds {
		h.workers[kind] = NewWorker(WorkerOptions{
			Kind: kind, Name: o.Name, ResultsTopic: o.ResultsTopic, DLQTopic: o.DLQTopic,
			ViewURL: o.ViewURL, Guardrails: o.Guardrails, Alert: o.Alert,
		}, set, ledger, m, log)
	}
	h.base = h.workers[sinks.KindBlock]
	return h
}

// Handle implements pipeline.Handler.
func (h *ChangeHandler) Handle(ctx context.Context, msg kafka.Message) ([]kafka.Message, error) {
	c, err := decodeChange(msg.Value)
	if err != nil {
		h.metrics.Unreadable.Inc()
		return []kafka.Message{h.base.deadLetter(msg, "malformed_change", "not a change record: "+err.Error(), nil)}, nil
	}
	note := noteOf(c)
	switch {
	case Deescalates(c):
		return h.deescalate(ctx, msg, c, note)
	case Escalates(c) && c.Event == nil:
		// A refreshed answer carries no event to run the playbooks on; the next sighting does.
		h.log.Info("escalation without an event: nothing to run the playbooks on",
			zap.String("indicator", c.Indicator.Value), zap.String("change", note.ID))
		h.logHandled(c, "no_event")
		return nil, nil
	case Escalates(c):
		return h.escalate(ctx, msg, c, note)
	}
	h.logHandled(c, "none")
	return nil, nil
}

// Deescalates reports whether c lifts: it de-escalates the indicator to info or low, or its new
// verdict is capped as a known-benign service. A fall to medium or high lifts nothing.
func Deescalates(c *event.Change) bool {
	if c.Direction != event.Deescalated {
		return false
	}
	if c.New.Severity == event.SeverityInfo || c.New.Severity == event.SeverityLow {
		return true
	}
	reasons := c.Reasons
	if len(reasons) == 0 && c.Event != nil {
		reasons = c.Event.Reasons
	}
	for _, r := range reasons {
		if r.Source == BenignCapReason {
			return true
		}
	}
	return false
}

// BenignCapReason is the reason source of a score capped for a known-benign service
// (docs/scoring.md).
const BenignCapReason = "benign_service"

// Escalates reports whether c runs the playbooks: it escalates the indicator to critical.
func Escalates(c *event.Change) bool {
	return c.Direction == event.Escalated && c.New.Severity == event.SeverityCritical
}

func decodeChange(raw []byte) (*event.Change, error) {
	var c event.Change
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, err
	}
	switch {
	case c.Indicator.Value == "":
		return nil, errors.New("missing indicator")
	case c.Direction != event.Escalated && c.Direction != event.Deescalated:
		return nil, fmt.Errorf("direction %q is not escalated or deescalated", c.Direction)
	case c.Event != nil && c.Event.Indicator.Value != c.Indicator.Value:
		return nil, fmt.Errorf("its event is about %q, not %q", c.Event.Indicator.Value, c.Indicator.Value)
	case c.Event != nil && c.Event.EventID == "":
		return nil, errors.New("its event has no event_id")
	}
	if err := checkAction(&c); err != nil {
		return nil, err
	}
	return &c, nil
}

// ChangeID is the ledger's key of a change: its event and revision, plus its time for a
// refresh (whose event_id names the refresh, not one event).
func ChangeID(c *event.Change) string {
	id := fmt.Sprintf("%s#%d", c.EventID, c.Revision)
	if c.EventID == "" || c.Cause == event.CauseRefresh || strings.HasPrefix(c.EventID, "refresh:") {
		id += "@" + c.At.UTC().Format(time.RFC3339Nano)
	}
	return id
}

func noteOf(c *event.Change) *ChangeNote {
	return &ChangeNote{ID: ChangeID(c), Direction: c.Direction, Cause: c.Cause, From: rating(c.Old), To: rating(c.New)}
}

func rating(r event.Rating) string {
	if r.Severity == "" { // an analyst's change: the view does not claim to know the verdict before
		return "unknown"
	}
	return fmt.Sprintf("%s %d", r.Severity, r.Score)
}

// escalate runs every action kind's playbooks on the escalated event, with escalated,
// previous_severity and previous_score set, through the workers' ledger and guardrails. The
// event's id is the scored event's: a step its scored-topic worker already performed for it is a
// duplicate here, and the other way round.
func (h *ChangeHandler) escalate(ctx context.Context, msg kafka.Message, c *event.Change, note *ChangeNote) ([]kafka.Message, error) {
	env := h.set.EscalationEnv(c.Event, c.Old)
	var outs []kafka.Message
	for _, kind := range changeKinds {
		out, err := h.workers[kind].act(ctx, msg, c.Event, env, note)
		if err != nil {
			return nil, err // ctx ended: redelivered whole
		}
		outs = append(outs, out...)
	}
	h.logHandled(c, "escalate")
	return outs, nil
}

// logHandled logs what became of change c: lift, escalate, duplicate, kill_switch, no_event or
// none. The records, and the pipeline's metrics of the changes group, count them.
func (h *ChangeHandler) logHandled(c *event.Change, handling string) {
	h.log.Debug("verdict change handled", zap.String("indicator", c.Indicator.Value), zap.String("direction", c.Direction),
		zap.String("from", rating(c.Old)), zap.String("to", rating(c.New)), zap.String("handling", handling))
}

// message is the audit record r of change c, ready for the results topic.
func (h *ChangeHandler) message(r *Record, c *event.Change, note *ChangeNote) kafka.Message {
	r.SchemaVersion, r.At, r.Worker, r.Change = RecordSchemaVersion, h.base.now().UTC(), h.o.Name, note
	r.EventID, r.Score, r.Severity = c.EventID, c.New.Score, c.New.Severity
	r.Actor, r.ActorRole = c.Actor, c.ActorRole
	raw, _ := json.Marshal(r)
	return kafka.Message{Topic: h.o.ResultsTopic, Key: []byte(r.Target), Value: raw}
}
