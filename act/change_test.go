package act

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/sinks"
)

const changesTopic = "indicators.changes"

// changes is the rig's consumer of verdict changes.
func (r *rig) changes() *ChangeHandler {
	return NewChangeHandler(ChangeOptions{
		Name: "act-changes", ResultsTopic: resultsTopic, DLQTopic: dlqTopic, ViewURL: "https://view.example/",
		Guardrails: r.guard, Sinks: r.f.byName,
	}, r.set, r.ledger, r.metrics, r.log)
}

// change builds a verdict change of ip from old to new (scores), with the revised event (new
// score, revision 1 of eventID) when withEvent.
func change(eventID, ip string, old, new int, withEvent bool) *event.Change {
	ev := scored(eventID, ip, new)
	ev.Revision = 1
	o, n := event.RatingOf(scored(eventID, ip, old)), event.RatingOf(ev)
	dir, _ := event.ChangeBetween(o, n)
	c := &event.Change{SchemaVersion: event.SchemaVersion, Indicator: ev.Indicator, EventID: eventID, Revision: 1,
		At: time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC), Cause: event.CauseRevision, Direction: dir, Old: o, New: n, Reasons: ev.Reasons}
	if withEvent {
		c.Event = ev
	}
	return c
}

func (r *rig) changeMsg(c *event.Change) kafka.Message {
	raw, err := json.Marshal(c)
	if err != nil {
		r.t.Fatal(err)
	}
	return kafka.Message{Topic: changesTopic, Partition: 0, Offset: r.offset.Add(1), Key: []byte(c.Indicator.Value), Value: raw}
}

func (r *rig) handleChange(h *ChangeHandler, m kafka.Message) handled {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := h.Handle(ctx, m)
	if err != nil {
		r.t.Fatalf("Handle: %v", err)
	}
	return splitOut(r.t, out)
}

// actOn runs the block, alert and ticket workers on ev.
func (r *rig) actOn(ev *event.Scored) []Record {
	var recs []Record
	for _, k := range []sinks.Kind{sinks.KindBlock, sinks.KindAlert, sinks.KindTicket} {
		recs = append(recs, r.handle(r.worker(k), ev).records...)
	}
	return recs
}

func byStep(recs []Record) map[string]Record {
	out := map[string]Record{}
	for _, rec := range recs {
		out[rec.Playbook+"/"+rec.Step] = rec
	}
	return out
}

func TestChangeDeescalationLiftsResolvesAndCommentsOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	ctx := context.Background()
	r.actOn(scored("evt-1", attacker, 92))
	h := r.changes()
	c := change("evt-1", attacker, 92, 28, true)
	m := r.changeMsg(c)

	got := r.handleChange(h, m)
	if len(got.records) != 3 || len(got.dead) != 0 {
		t.Fatalf("records %+v, %d dead letters: want lifted, resolved and commented", got.records, len(got.dead))
	}
	recs := byStep(got.records)
	wantNote := ChangeNote{ID: "evt-1#1", Direction: event.Deescalated, Cause: event.CauseRevision, From: "critical 92", To: "low 28"}
	for _, want := range []struct {
		step    string
		kind    sinks.Kind
		outcome Outcome
		detail  string
	}{
		{"critical/block", sinks.KindBlock, OutcomeLifted, "lifted: the verdict changed from critical 92 to low 28"},
		{"critical/page", sinks.KindAlert, OutcomeResolved, "resolved: the verdict changed from critical 92 to low 28"},
		{"critical/ticket", sinks.KindTicket, OutcomeCommented, "commented on jira-1: verdict changed: critical 92 -> low 28 (validated by no source)"},
	} {
		rec := recs[want.step]
		if rec.Outcome != want.outcome || rec.Kind != want.kind || rec.Detail != want.detail || rec.Target != attacker ||
			rec.Worker != "act-changes" || rec.EventID != "evt-1" || rec.Score != 28 || rec.Severity != event.SeverityLow ||
			rec.Change == nil || *rec.Change != wantNote {
			t.Errorf("%s: record %+v (change %+v)", want.step, rec, rec.Change)
		}
	}
	if u := r.f.edl.undoCalls(); len(u) != 1 || u[0].Ref != "edl-1" || u[0].Action.Target != attacker {
		t.Errorf("edl undo calls = %+v", u)
	}
	if u := r.f.pd.undoCalls(); len(u) != 1 || u[0].Ref != "pagerduty-1" {
		t.Errorf("pagerduty undo calls = %+v", u)
	}
	calls := r.f.jira.doCalls()
	if len(calls) != 2 {
		t.Fatalf("jira Do calls = %d, want the ticket and one comment", len(calls))
	}
	cm := calls[1]
	if cm.Prior != "jira-1" || cm.Key != recs["critical/ticket"].Key || cm.Score != 28 || cm.Severity != event.SeverityLow ||
		len(cm.Reasons) == 0 || cm.Reasons[0].Detail != "verdict changed: critical 92 -> low 28 (validated by no source)" ||
		cm.Params["project"] != "SOC" || cm.ViewURL != "https://view.example/indicators/"+attacker {
		t.Errorf("comment action = %+v", cm)
	}
	if blocks, err := r.ledger.TargetBlocks(ctx, attacker); err != nil || len(blocks) != 0 {
		t.Errorf("blocks left in the ledger: %+v, %v", blocks, err)
	}

	// The same record again: nothing lifted, resolved or commented twice.
	if again := r.handleChange(h, m); len(again.records)+len(again.dead) != 0 {
		t.Errorf("redelivery produced %+v", again.records)
	}
	if len(r.f.edl.undoCalls()) != 1 || len(r.f.pd.undoCalls()) != 1 || len(r.f.jira.doCalls()) != 2 {
		t.Errorf("redelivery acted again")
	}

	// The block and alert windows ended with the lift: a new critical sighting acts anew, and the
	// ticket, still open, gets a comment.
	after := byStep(r.actOn(scored("evt-2", attacker, 95)))
	if after["critical/block"].Outcome != OutcomeDone || after["critical/page"].Outcome != OutcomeDone ||
		after["critical/ticket"].Outcome != OutcomeCommented {
		t.Errorf("after the lift: %+v", after)
	}
	// The original event redelivered is still a duplicate.
	if dup := byStep(r.actOn(scored("evt-1", attacker, 92))); dup["critical/block"].Outcome != OutcomeDuplicate {
		t.Errorf("the lifted block's event redelivered: %+v", dup)
	}
}

func TestChangeDeescalationRules(t *testing.T) {
	t.Parallel()
	benign := func(c *event.Change) *event.Change {
		c.Reasons = []event.Reason{{Source: "greynoise", Detail: "RIOT"}, {Source: "benign_service", Detail: "capped at 39", Points: -20}}
		return c
	}
	for _, tc := range []struct {
		name  string
		c     *event.Change
		lifts bool
	}{
		{"to low", change("e", attacker, 92, 28, true), true},
		{"to info", change("e", attacker, 70, 5, false), true},
		{"to medium", change("e", attacker, 92, 50, true), false},
		{"to high", change("e", attacker, 92, 70, true), false},
		{"to medium under a benign-service cap", benign(change("e", attacker, 92, 50, true)), true},
		{"escalated", change("e", attacker, 18, 92, true), false},
	} {
		if got := Deescalates(tc.c); got != tc.lifts {
			t.Errorf("%s: Deescalates = %v", tc.name, got)
		}
	}

	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	r.actOn(scored("evt-1", attacker, 92))
	h := r.changes()
	if got := r.handleChange(h, r.changeMsg(change("evt-1", attacker, 92, 50, true))); len(got.records) != 0 {
		t.Errorf("a fall to medium acted: %+v", got.records)
	}
	if len(r.f.edl.undoCalls()) != 0 {
		t.Errorf("a fall to medium lifted the block")
	}
	got := r.handleChange(h, r.changeMsg(benign(change("evt-1", attacker, 92, 50, true))))
	if recs := byStep(got.records); recs["critical/block"].Outcome != OutcomeLifted {
		t.Errorf("a benign-service cap did not lift: %+v", got.records)
	}
}

func TestChangeDeescalationOfBlocksThatCannotBeLiftedHere(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	for _, b := range []ActiveBlock{
		{Sink: "palo", Target: attacker, Key: "k-palo", Playbook: "old", Step: "block", Until: until},     // not configured here
		{Sink: "lapse", Target: attacker, Key: "k-lapse", Playbook: "other", Step: "block", Until: until}, // cannot undo
		{Sink: "edl", Target: attacker, Key: "k-edl", Ref: "edl-9", Playbook: "other", Step: "edl", Until: until},
		{Sink: "edl", Target: "185.220.101.4", Key: "k-near", Playbook: "other", Step: "edl", Until: until}, // a prefix of attacker
	} {
		if err := r.ledger.AddBlock(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	r.f.edl.setFailUndo(1)
	got := r.handleChange(r.changes(), r.changeMsg(change("evt-1", attacker, 92, 18, true)))
	byKey := map[string]Record{}
	for _, rec := range got.records {
		byKey[rec.Key] = rec
	}
	if len(got.records) != 3 {
		t.Fatalf("records %+v: want one per block of %s", got.records, attacker)
	}
	if rec := byKey["k-palo"]; rec.Outcome != OutcomeLiftFailed || !strings.Contains(rec.Error, "no longer configured") {
		t.Errorf("unconfigured sink: %+v", rec)
	}
	if rec := byKey["k-lapse"]; rec.Outcome != OutcomeLiftFailed || !strings.Contains(rec.Error, "cannot lift a block before it lapses") {
		t.Errorf("sink without undo: %+v", rec)
	}
	if rec := byKey["k-edl"]; rec.Outcome != OutcomeLiftFailed || rec.Error != errSinkDown.Error() {
		t.Errorf("failing undo: %+v", rec)
	}
	left, err := r.ledger.TargetBlocks(ctx, attacker)
	if err != nil {
		t.Fatal(err)
	}
	var sinksLeft []string
	for _, b := range left {
		sinksLeft = append(sinksLeft, b.Sink)
	}
	// The unconfigured sink's block is forgotten (as the lifter does); the lapsing one lapses;
	// the failed lift stays leased and goes to the lifters once the lease ends.
	if len(left) != 2 || !strings.Contains(strings.Join(sinksLeft, ","), "lapse") || !strings.Contains(strings.Join(sinksLeft, ","), "edl") {
		t.Errorf("blocks left: %+v", left)
	}
	if near, _ := r.ledger.TargetBlocks(ctx, "185.220.101.4"); len(near) != 1 {
		t.Errorf("another address's block was touched: %+v", near)
	}
	if active, err := r.ledger.Active(ctx, "edl"); err != nil || active[attacker].IsZero() {
		t.Errorf("the failed lift's block is no longer active on the EDL: %v, %v", active, err)
	}
}

func TestChangeDeescalationUnderTheKillSwitch(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	ctx := context.Background()
	r.actOn(scored("evt-1", attacker, 92))
	if err := r.ledger.SetKillSwitch(ctx, true, "test"); err != nil {
		t.Fatal(err)
	}
	got := r.handleChange(r.changes(), r.changeMsg(change("evt-1", attacker, 92, 18, true)))
	recs := byStep(got.records)
	if len(got.records) != 2 || recs["critical/block"].Outcome != OutcomeKillSwitch || recs["critical/ticket"].Outcome != OutcomeKillSwitch {
		t.Errorf("records %+v", got.records)
	}
	if len(r.f.edl.undoCalls())+len(r.f.pd.undoCalls()) != 0 || len(r.f.jira.doCalls()) != 1 {
		t.Errorf("acted under the kill switch")
	}
	if blocks, _ := r.ledger.TargetBlocks(ctx, attacker); len(blocks) != 1 {
		t.Errorf("blocks %+v: the block must stay until it lapses", blocks)
	}
}

const escalationPlaybooks = `
playbooks:
  - name: critical
    when: score >= 80 && len(validated_by) >= 2
    steps:
      - {name: block, action: block, sink: edl, duration: 1h}
  - name: escalated
    when: escalated && severity == "critical" && previous_severity in ["medium", "low"] && previous_score < 60
    steps:
      - {name: page, action: alert, sink: pagerduty}
      - {name: ticket, action: ticket, sink: jira, params: {project: SOC}}
  - name: escalated-shadow
    when: escalated
    dry_run: true
    steps:
      - {name: block, action: block, sink: edl}
`

func TestChangeEscalationRunsThePlaybooksOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, escalationPlaybooks)
	h := r.changes()
	m := r.changeMsg(change("evt-7", attacker, 50, 92, true))

	got := r.handleChange(h, m)
	recs := byStep(got.records)
	if len(got.records) != 4 || len(got.dead) != 0 {
		t.Fatalf("records %+v", got.records)
	}
	for step, want := range map[string]Outcome{"critical/block": OutcomeDone, "escalated/page": OutcomeDone,
		"escalated/ticket": OutcomeDone, "escalated-shadow/block": OutcomeDryRun} {
		rec := recs[step]
		if rec.Outcome != want || rec.Worker != "act-changes" || rec.EventID != "evt-7" || rec.Severity != event.SeverityCritical ||
			rec.Change == nil || rec.Change.Direction != event.Escalated || rec.Change.From != "medium 50" || rec.Change.To != "critical 92" {
			t.Errorf("%s: %+v (change %+v)", step, rec, rec.Change)
		}
	}
	if len(r.f.edl.doCalls()) != 1 || len(r.f.pd.doCalls()) != 1 || len(r.f.jira.doCalls()) != 1 {
		t.Errorf("sink calls: edl %d, pagerduty %d, jira %d", len(r.f.edl.doCalls()), len(r.f.pd.doCalls()), len(r.f.jira.doCalls()))
	}

	// Redelivered: every step is a duplicate.
	for _, rec := range r.handleChange(h, m).records {
		if rec.Outcome != OutcomeDuplicate {
			t.Errorf("redelivery: %+v", rec)
		}
	}
	// The revision on the scored topic (same event) is a duplicate for the block, and an
	// ordinary scored event never sees escalated.
	ev := change("evt-7", attacker, 50, 92, true).Event
	if rec := r.handle(r.worker(sinks.KindBlock), ev).only(t); rec.Outcome != OutcomeDuplicate {
		t.Errorf("the revision on the scored topic: %+v", rec)
	}
	if recs := r.handle(r.worker(sinks.KindAlert), scored("evt-8", attacker, 95)).records; len(recs) != 0 {
		t.Errorf("an ordinary scored event triggered the escalated playbook: %+v", recs)
	}
	if len(r.f.edl.doCalls()) != 1 || len(r.f.pd.doCalls()) != 1 || len(r.f.jira.doCalls()) != 1 {
		t.Errorf("acted twice")
	}
}

func TestChangeEscalationGuardrailsAndWhatIsIgnored(t *testing.T) {
	t.Parallel()
	r := newRig(t, escalationPlaybooks)
	h := r.changes()
	// Never-block holds for escalations.
	got := byStep(r.handleChange(h, r.changeMsg(change("evt-n", "45.155.205.9", 50, 92, true))).records)
	if got["critical/block"].Outcome != OutcomeNeverBlock {
		t.Errorf("never-block: %+v", got)
	}
	// Escalations to high, and escalations without an event (refreshes), run nothing.
	if out := r.handleChange(h, r.changeMsg(change("evt-h", attacker, 50, 70, true))); len(out.records) != 0 {
		t.Errorf("an escalation to high acted: %+v", out.records)
	}
	if out := r.handleChange(h, r.changeMsg(change("evt-r", attacker, 50, 92, false))); len(out.records) != 0 {
		t.Errorf("an escalation without an event acted: %+v", out.records)
	}
	// The kill switch stops escalations as it stops scored events.
	if err := r.ledger.SetKillSwitch(context.Background(), true, "test"); err != nil {
		t.Fatal(err)
	}
	h = r.changes() // the switch is read at most once a second
	for _, rec := range r.handleChange(h, r.changeMsg(change("evt-k", "185.220.101.77", 50, 92, true))).records {
		if rec.Outcome != OutcomeKillSwitch && rec.Outcome != OutcomeDryRun {
			t.Errorf("kill switch: %+v", rec)
		}
	}
}

func TestChangeDeadLettersMalformedRecords(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	h := r.changes()
	other := change("e", attacker, 50, 92, true)
	other.Event.Indicator.Value = "185.220.101.1"
	for _, raw := range []string{`{`, `{"direction":"escalated"}`, `{"indicator":{"type":"ipv4-addr","value":"185.220.101.45"},"direction":"sideways"}`} {
		got := r.handleChange(h, kafka.Message{Topic: changesTopic, Value: []byte(raw)})
		if len(got.dead) != 1 || header(got.dead[0], pipeline.HeaderErrorClass) != "malformed_change" {
			t.Errorf("%s: %d dead letters", raw, len(got.dead))
		}
	}
	if got := r.handleChange(h, r.changeMsg(other)); len(got.dead) != 1 || !strings.Contains(header(got.dead[0], pipeline.HeaderErrorMessage), "not") {
		t.Errorf("a change whose event names another address: %+v", got)
	}
}

func TestChangeID(t *testing.T) {
	t.Parallel()
	c := change("evt-1", attacker, 92, 18, false)
	if got := ChangeID(c); got != "evt-1#1" {
		t.Errorf("revision: %q", got)
	}
	c.EventID, c.Cause, c.Revision = "refresh:"+attacker, event.CauseRefresh, 0
	if got := ChangeID(c); got != "refresh:185.220.101.45#0@2026-03-14T09:30:00Z" {
		t.Errorf("refresh: %q", got)
	}
	if got := VerdictSummary(change("e", attacker, 20, 92, true)); got != "verdict changed: low 20 -> critical 92 (validated by abuseipdb, criminalip)" {
		t.Errorf("summary: %q", got)
	}
}

func TestChangeDeescalationDeliveredTwiceAtOnceActsOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	r.actOn(scored("evt-1", attacker, 92))
	r.f.jira.delay = 200 * time.Millisecond // the first delivery is mid-comment when the second arrives
	m := r.changeMsg(change("evt-1", attacker, 92, 28, true))
	results := make(chan handled, 2)
	for _, h := range []*ChangeHandler{r.changes(), r.changes()} {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			out, err := h.Handle(ctx, m)
			if err != nil {
				t.Errorf("Handle: %v", err)
			}
			results <- splitOut(t, out)
		}()
	}
	var recs []Record
	for range 2 {
		recs = append(recs, (<-results).records...)
	}
	if len(recs) != 3 {
		t.Errorf("records %+v: want one lift, one resolve and one comment in all", recs)
	}
	if len(r.f.edl.undoCalls()) != 1 || len(r.f.pd.undoCalls()) != 1 || len(r.f.jira.doCalls()) != 2 {
		t.Errorf("edl undos %d, pagerduty undos %d, jira calls %d", len(r.f.edl.undoCalls()), len(r.f.pd.undoCalls()), len(r.f.jira.doCalls()))
	}
}

func TestChangeFailedCommentIsDeadLettered(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	r.actOn(scored("evt-1", attacker, 92))
	r.f.jira.setFailDo(1)
	got := r.handleChange(r.changes(), r.changeMsg(change("evt-1", attacker, 92, 28, true)))
	rec := byStep(got.records)["critical/ticket"]
	if rec.Outcome != OutcomeFailed || rec.Error != errSinkDown.Error() || len(got.dead) != 1 ||
		header(got.dead[0], pipeline.HeaderErrorClass) != "action_failed" || header(got.dead[0], HeaderStep) != "ticket" {
		t.Errorf("record %+v, %d dead letters", rec, len(got.dead))
	}
	if byStep(got.records)["critical/block"].Outcome != OutcomeLifted {
		t.Errorf("the failed comment held back the lift: %+v", got.records)
	}
}

func TestLedgerLeaseNowAndEndWindow(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	ctx := context.Background()
	b := ActiveBlock{Sink: "edl", Target: attacker, Key: "k1", Playbook: "critical", Step: "block", Until: time.Now().Add(-time.Second)}
	if err := r.ledger.AddBlock(ctx, b); err != nil {
		t.Fatal(err)
	}
	// A lifter leased it: LeaseNow leaves it to that lifter.
	if due, err := r.ledger.PopDue(ctx, 10); err != nil || len(due) != 1 {
		t.Fatalf("PopDue = %v, %v", due, err)
	}
	if _, ok, err := r.ledger.LeaseNow(ctx, b); err != nil || ok {
		t.Errorf("LeaseNow of a block being lifted = %v, %v", ok, err)
	}
	// A block nobody lifts is leased, handed to no lifter while leased, and forgotten by Lifted.
	b2 := ActiveBlock{Sink: "edl", Target: "185.220.101.46", Key: "k2", Until: time.Now().Add(time.Hour)}
	if err := r.ledger.AddBlock(ctx, b2); err != nil {
		t.Fatal(err)
	}
	leased, ok, err := r.ledger.LeaseNow(ctx, b2)
	if err != nil || !ok || leased.Key != "k2" {
		t.Fatalf("LeaseNow = %+v, %v, %v", leased, ok, err)
	}
	if _, ok, _ := r.ledger.LeaseNow(ctx, b2); ok {
		t.Errorf("leased twice")
	}
	if err := r.ledger.Lifted(ctx, leased); err != nil {
		t.Fatal(err)
	}
	if left, _ := r.ledger.TargetBlocks(ctx, b2.Target); len(left) != 0 {
		t.Errorf("lifted block still held: %+v", left)
	}
	if _, ok, err := r.ledger.LeaseNow(ctx, b2); err != nil || ok {
		t.Errorf("LeaseNow of no block = %v, %v", ok, err)
	}

	// EndWindow deletes a settled claim, never a pending one.
	_, c, err := r.ledger.Claim(ctx, false, "critical", "page", attacker, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if ended, err := r.ledger.EndWindow(ctx, false, "critical", "page", attacker); err != nil || ended {
		t.Errorf("EndWindow of a pending claim = %v, %v", ended, err)
	}
	if err := r.ledger.Done(ctx, false, "critical", "page", attacker, c, "pd-1", "evt-1", time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, err := r.ledger.GetClaim(ctx, false, "critical", "page", attacker); err != nil || got == nil || got.State != StateDone || got.Ref != "pd-1" {
		t.Errorf("GetClaim = %+v, %v", got, err)
	}
	if ended, err := r.ledger.EndWindow(ctx, false, "critical", "page", attacker); err != nil || !ended {
		t.Errorf("EndWindow of a settled claim = %v, %v", ended, err)
	}
	if got, err := r.ledger.GetClaim(ctx, false, "critical", "page", attacker); err != nil || got != nil {
		t.Errorf("GetClaim after EndWindow = %+v, %v", got, err)
	}
}
