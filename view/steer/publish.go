package steer

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/sign"
)

// Steps of the analyst's records (act.Record.Step).
const (
	StepFalsePositive   = "false_positive"
	StepUnblock         = "unblock"
	StepRefresh         = "refresh"
	StepNote            = "note"
	StepKillSwitchOn    = "kill_switch_on"
	StepKillSwitchOff   = "kill_switch_off"
	StepAllowlistAdd    = "allowlist_add"
	StepAllowlistRemove = "allowlist_remove"
)

// Worker and Sink name the view in its records.
const (
	Worker = "view"
	Sink   = "view"
)

// SourceAnalyst is the source of the re-enrich events: the enricher's per-source quota share
// bounds what analysts can spend.
const SourceAnalyst = "analyst"

// auditTimeout bounds the audit of an action whose caller has gone (the browser closed): the
// record is still written, but not waited for forever.
const auditTimeout = 15 * time.Second

// killSwitchKey keys the kill switch's records, which have no target.
const killSwitchKey = "kill-switch"

// change is the verdict change of an analyst's false positive or unblock: de-escalated to info 0
// (the view does not claim to know the verdict before), the analyst and reason in its reasons.
func (s *Service) change(who Actor, ip, action, why string, at time.Time) (kafka.Message, error) {
	ind, _ := event.ParseIP(ip) // canonical already
	c := &event.Change{
		SchemaVersion: event.SchemaVersion, Indicator: ind,
		EventID: "analyst:" + action + ":" + ip + ":" + strconv.FormatInt(at.UnixMilli(), 10),
		At:      at, Cause: event.CauseAnalyst, Direction: event.Deescalated,
		Old:     event.Rating{ValidatedBy: []string{}},
		New:     event.Rating{Severity: event.SeverityInfo, ValidatedBy: []string{}},
		Reasons: []event.Reason{{Source: event.CauseAnalyst, Detail: why}},
		Action:  action, Actor: who.Name, ActorRole: who.Role,
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("steer: encode change: %w", err)
	}
	m := kafka.Message{Topic: s.o.Topics.Changes, Key: []byte(ip), Value: raw}
	if s.o.Signer != nil {
		s.o.Signer.Sign(sign.Change, &m)
	}
	return m, nil
}

// nativeEvent is the input contract's native event (docs/events.md), as much as a re-enrich needs.
type nativeEvent struct {
	SchemaVersion string          `json:"schema_version"`
	EventID       string          `json:"event_id"`
	ObservedAt    time.Time       `json:"observed_at"`
	Source        string          `json:"source"`
	Indicator     event.Indicator `json:"indicator"`
}

// refreshRequest is the input event that makes the enricher look ip up again now.
func (s *Service) refreshRequest(ip string, at time.Time) (kafka.Message, error) {
	ind, _ := event.ParseIP(ip)
	raw, err := json.Marshal(nativeEvent{SchemaVersion: event.SchemaVersion, ObservedAt: at, Source: SourceAnalyst,
		EventID: "refresh:" + ip + ":" + strconv.FormatInt(at.UnixMilli(), 10), Indicator: ind})
	if err != nil {
		return kafka.Message{}, fmt.Errorf("steer: encode refresh: %w", err)
	}
	m := kafka.Message{Topic: s.o.Topics.Input, Key: []byte(ip), Value: raw,
		Headers: []kafka.Header{{Key: pipeline.RefreshHeader, Value: []byte("1")}}}
	if s.o.Signer != nil {
		s.o.Signer.Sign(sign.Refresh, &m)
	}
	return m, nil
}

// record is the audit record of who's step on target; err makes it failed.
func (s *Service) record(who Actor, step, target, why string, at time.Time, err error) act.Record {
	rec := act.Record{
		SchemaVersion: act.RecordSchemaVersion, At: at.UTC(), Outcome: act.OutcomeDone, Kind: act.KindAnalyst,
		Step: step, Sink: Sink, Target: target, Detail: who.by() + ": " + why, Worker: Worker,
		Actor: who.Name, ActorRole: who.Role, Severity: event.SeverityInfo,
	}
	if err != nil {
		rec.Outcome, rec.Error = act.OutcomeFailed, err.Error()
	}
	return rec
}

// audit publishes rec. A failed action's record is published too; its own failure then is
// joined to the action's error by the caller.
func (s *Service) audit(ctx context.Context, rec act.Record) error {
	raw, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("steer: encode record: %w", err)
	}
	key := rec.Target
	if key == "" {
		key = killSwitchKey
	}
	if err := s.o.Producer.WriteMessages(ctx, kafka.Message{Topic: s.o.Topics.Results, Key: []byte(key), Value: raw}); err != nil {
		return fmt.Errorf("steer: audit record of %s: %w", rec.Step, err)
	}
	return nil
}

// finish audits the outcome of an action that err ended (nil: done) and returns its record and
// the error to report: the action's, or the audit's when the action was done but not recorded.
func (s *Service) finish(ctx context.Context, who Actor, step, target, why string, at time.Time, err error) (act.Record, error) {
	rec := s.record(who, step, target, why, at, err)
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	if aerr := s.audit(actx, rec); aerr != nil {
		if err == nil {
			return rec, aerr
		}
		return rec, fmt.Errorf("%w (and %w)", err, aerr)
	}
	return rec, err
}
