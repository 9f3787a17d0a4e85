package act

import (
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/docs"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/sinks"
)

// analystChange is the change the view publishes when ana marks attacker a false positive (or
// unblocks it): no old verdict, info 0, her reason in the reasons.
func analystChange(action string) *event.Change {
	ind, _ := event.ParseIP(attacker)
	why := "false positive by ana (analyst): our own scanner"
	if action == event.ActionUnblock {
		why = "unblocked by ana (analyst): customer outage"
	}
	return &event.Change{SchemaVersion: event.SchemaVersion, Indicator: ind, EventID: "analyst:" + action + ":" + attacker + ":1773480600000",
		At: time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC), Cause: event.CauseAnalyst, Direction: event.Deescalated,
		New: event.Rating{Severity: event.SeverityInfo, ValidatedBy: []string{}}, Reasons: []event.Reason{{Source: event.CauseAnalyst, Detail: why}},
		Action: action, Actor: "ana", ActorRole: "analyst"}
}

func TestAnalystFalsePositiveLiftsResolvesAndComments(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	r.actOn(scored("evt-1", attacker, 92))
	got := r.handleChange(r.changes(), r.changeMsg(analystChange(event.ActionFalsePositive)))
	if len(got.records) != 3 || len(got.dead) != 0 {
		t.Fatalf("records %+v, %d dead letters: want lifted, resolved and commented", got.records, len(got.dead))
	}
	recs := byStep(got.records)
	for step, want := range map[string]Outcome{"critical/block": OutcomeLifted, "critical/page": OutcomeResolved, "critical/ticket": OutcomeCommented} {
		rec := recs[step]
		if rec.Outcome != want || rec.Actor != "ana" || rec.ActorRole != "analyst" ||
			!strings.Contains(rec.Detail, "false positive by ana (analyst): our own scanner") ||
			rec.Change == nil || rec.Change.Cause != event.CauseAnalyst || rec.Change.From != "unknown" || rec.Change.To != "info 0" {
			t.Errorf("%s: %+v (change %+v)", step, rec, rec.Change)
		}
	}
	if len(r.f.edl.undoCalls()) != 1 || len(r.f.pd.undoCalls()) != 1 || len(r.f.jira.doCalls()) != 2 {
		t.Errorf("edl undo %d, pagerduty undo %d, jira calls %d: want 1, 1, 2",
			len(r.f.edl.undoCalls()), len(r.f.pd.undoCalls()), len(r.f.jira.doCalls()))
	}
	v, err := docs.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range got.raw {
		if err := v.Validate(docs.ActionRecordSchema, m.Value); err != nil {
			t.Errorf("record %s: %v", m.Value, err)
		}
	}
}

func TestAnalystUnblockLiftsBlocksOnly(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	r.actOn(scored("evt-1", attacker, 92))
	got := r.handleChange(r.changes(), r.changeMsg(analystChange(event.ActionUnblock)))
	if len(got.records) != 1 || len(got.dead) != 0 {
		t.Fatalf("records %+v, %d dead letters: want one lift", got.records, len(got.dead))
	}
	rec := got.records[0]
	if rec.Kind != sinks.KindBlock || rec.Outcome != OutcomeLifted || rec.Actor != "ana" ||
		rec.Detail != "lifted: unblocked by ana (analyst): customer outage" {
		t.Errorf("record %+v", rec)
	}
	if len(r.f.edl.undoCalls()) != 1 || len(r.f.pd.undoCalls()) != 0 || len(r.f.jira.doCalls()) != 1 {
		t.Errorf("edl undo %d, pagerduty undo %d, jira calls %d: want 1, 0, 1 (the ticket only)",
			len(r.f.edl.undoCalls()), len(r.f.pd.undoCalls()), len(r.f.jira.doCalls()))
	}
	// The block window stays: the next critical sighting within it does not block again at once.
	if after := byStep(r.actOn(scored("evt-2", attacker, 95))); after["critical/block"].Outcome != OutcomeSuppressed {
		t.Errorf("after the unblock: %+v", after["critical/block"])
	}
}

func TestAnalystChangeWithAnUnknownActionIsDeadLettered(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	r.actOn(scored("evt-1", attacker, 92))
	c := analystChange("erase_everything")
	got := r.handleChange(r.changes(), r.changeMsg(c))
	if len(got.records) != 0 || len(got.dead) != 1 || len(r.f.edl.undoCalls()) != 0 {
		t.Errorf("records %+v, %d dead letters, %d lifts: want one dead letter and nothing lifted", got.records, len(got.dead), len(r.f.edl.undoCalls()))
	}
	c = analystChange(event.ActionUnblock)
	c.Direction = event.Escalated
	if got := r.handleChange(r.changes(), r.changeMsg(c)); len(got.dead) != 1 {
		t.Errorf("an escalating unblock: %d dead letters", len(got.dead))
	}
}
