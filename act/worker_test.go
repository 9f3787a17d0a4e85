package act

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/gate"
	"github.com/threatpipe/threatpipe/pipeline/neverblock"
	"github.com/threatpipe/threatpipe/sinks"
)

const attacker = "185.220.101.45"

func TestWorkerActsOnceAuditsAndSuppressesRepeats(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	block, alert, ticket := r.worker(sinks.KindBlock), r.worker(sinks.KindAlert), r.worker(sinks.KindTicket)
	first := r.msg(scored("evt-1", attacker, 92, withISP("Example Telecom")))

	// First sighting: every step of the critical playbook is done once.
	start := time.Now()
	b := r.handleMsg(block, first)
	rec := b.only(t)
	var j map[string]any
	if err := json.Unmarshal(b.raw[0].Value, &j); err != nil {
		t.Fatal(err)
	}
	until, err := time.Parse(time.RFC3339Nano, fmt.Sprint(j["until"]))
	if err != nil {
		t.Fatalf("block record has no until: %s", b.raw[0].Value)
	}
	if j["schema_version"] != "1" || j["outcome"] != "done" || j["kind"] != "block" || j["playbook"] != "critical" ||
		j["step"] != "block" || j["sink"] != "edl" || j["target"] != attacker || j["ref"] != "edl-1" ||
		j["event_id"] != "evt-1" || j["score"] != 92.0 || j["severity"] != "critical" || j["dry_run"] != false ||
		j["offence"] != 1.0 || j["worker"] != "act-block" || !strings.HasPrefix(fmt.Sprint(j["key"]), "tpa-") {
		t.Errorf("block audit record: %s", b.raw[0].Value)
	}
	if !within(until, start.Add(time.Hour), 5*time.Second) {
		t.Errorf("block until %s, want about an hour from now", until)
	}
	calls := r.f.edl.doCalls()
	if len(calls) != 1 {
		t.Fatalf("edl Do called %d times", len(calls))
	}
	a := calls[0]
	if a.Key != rec.Key || a.Target != attacker || a.Playbook != "critical" || a.Step != "block" || a.Kind != sinks.KindBlock ||
		!a.Until.Equal(until) || a.Score != 92 || a.ISP != "Example Telecom" || a.Prior != "" || a.Event == nil ||
		a.Event.EventID != "evt-1" || a.Title != "threatpipe: 185.220.101.45 scored 92 (critical)" ||
		a.ViewURL != "https://view.example/indicators/185.220.101.45" {
		t.Errorf("block action = %+v", a)
	}

	al := r.handleMsg(alert, first)
	arec := al.only(t)
	if arec.Outcome != OutcomeDone || arec.Kind != sinks.KindAlert || arec.Ref != "pagerduty-1" || arec.Key == "" || arec.Key == rec.Key {
		t.Errorf("alert record = %+v", arec)
	}
	if strings.Contains(string(al.raw[0].Value), `"until"`) || arec.Offence != 0 {
		t.Errorf("an alert record carries block fields: %s", al.raw[0].Value)
	}

	tk := r.handleMsg(ticket, first)
	trec := tk.only(t) // bad-isp does not match this ISP
	if trec.Outcome != OutcomeDone || trec.Ref != "jira-1" || trec.Step != "ticket" {
		t.Errorf("ticket record = %+v", trec)
	}
	if got := r.f.jira.doCalls(); len(got) != 1 || got[0].Params["project"] != "SOC" || got[0].Key != trec.Key {
		t.Errorf("jira calls = %+v", got)
	}

	// Redelivery of the same event: duplicate, no sink call.
	for _, w := range []*Worker{block, alert, ticket} {
		if o := r.handleMsg(w, first).only(t); o.Outcome != OutcomeDuplicate || o.Key != "" {
			t.Errorf("%s redelivery: %+v", w.o.Kind, o)
		}
	}

	// Another event for the target within the window: blocks and pages are suppressed and
	// point at the first action; the ticket gets a comment.
	second := r.msg(scored("evt-2", attacker, 95, withISP("Example Telecom")))
	if o := r.handleMsg(block, second).only(t); o.Outcome != OutcomeSuppressed || o.Ref != "edl-1" || o.Key != rec.Key || o.EventID != "evt-2" {
		t.Errorf("block repeat: %+v", o)
	}
	if o := r.handleMsg(alert, second).only(t); o.Outcome != OutcomeSuppressed || o.Ref != "pagerduty-1" {
		t.Errorf("alert repeat: %+v", o)
	}
	c := r.handleMsg(ticket, second).only(t)
	if c.Outcome != OutcomeCommented || c.Ref != "jira-1" || c.Key != trec.Key {
		t.Errorf("ticket repeat: %+v", c)
	}
	jc := r.f.jira.doCalls()
	if len(jc) != 2 || jc[1].Prior != "jira-1" || jc[1].Event.EventID != "evt-2" {
		t.Fatalf("the repeat must comment on the first ticket: %+v", jc)
	}
	// Redelivering either event changes nothing.
	for _, m := range []kafka.Message{first, second} {
		for _, w := range []*Worker{block, alert, ticket} {
			if o := r.handleMsg(w, m).only(t); o.Outcome != OutcomeDuplicate {
				t.Errorf("%s redelivery: %+v", w.o.Kind, o)
			}
		}
	}
	if e, p, k := len(r.f.edl.doCalls()), len(r.f.pd.doCalls()), len(r.f.jira.doCalls()); e != 1 || p != 1 || k != 2 {
		t.Errorf("sink calls: edl %d, pagerduty %d, jira %d; want 1, 1, 2", e, p, k)
	}
	if got := testutil.ToFloat64(r.metrics.Actions.WithLabelValues("block", "edl", string(OutcomeDuplicate))); got != 3 {
		t.Errorf("duplicate block metric = %v, want 3", got)
	}

	// The ledger holds the block for the lifter.
	active, err := r.ledger.Active(context.Background(), "edl")
	if err != nil || len(active) != 1 || !active[attacker].Equal(until) {
		t.Errorf("active blocks = %v, %v", active, err)
	}
}

func TestWorkerActsAgainAfterTheWindow(t *testing.T) {
	t.Parallel()
	r := newRig(t, `
playbooks:
  - name: fast
    when: score >= 80
    window: 300ms
    steps:
      - {name: block, action: block, sink: edl, duration: 1h}
      - {name: ticket, action: ticket, sink: jira, params: {project: SOC}}
`)
	block, ticket := r.worker(sinks.KindBlock), r.worker(sinks.KindTicket)
	b1 := r.handle(block, scored("e1", attacker, 90)).only(t)
	t1 := r.handle(ticket, scored("e1", attacker, 90)).only(t)
	if b1.Outcome != OutcomeDone || t1.Outcome != OutcomeDone {
		t.Fatalf("first: %v %v", b1.Outcome, t1.Outcome)
	}
	if o := r.handle(block, scored("e2", attacker, 90)).only(t); o.Outcome != OutcomeSuppressed {
		t.Errorf("within the window: %v", o.Outcome)
	}
	if o := r.handle(ticket, scored("e2", attacker, 90)).only(t); o.Outcome != OutcomeCommented {
		t.Errorf("within the window: %v", o.Outcome)
	}
	time.Sleep(400 * time.Millisecond)
	b3 := r.handle(block, scored("e3", attacker, 90)).only(t)
	if b3.Outcome != OutcomeDone || b3.Key == b1.Key || b3.Offence != 2 {
		t.Errorf("after the window: %+v (first key %s)", b3, b1.Key)
	}
	t3 := r.handle(ticket, scored("e3", attacker, 90)).only(t)
	if t3.Outcome != OutcomeDone || t3.Key == t1.Key || t3.Ref != "jira-3" {
		t.Errorf("after the window a new ticket: %+v", t3)
	}
	if jc := r.f.jira.doCalls(); len(jc) != 3 || jc[2].Prior != "" {
		t.Errorf("jira calls: %+v", jc)
	}
	if n := len(r.f.edl.doCalls()); n != 2 {
		t.Errorf("edl Do called %d times, want 2", n)
	}
}

func TestWorkerDryRunRecordsAndDoesNotSuppressRealPlaybooks(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	block := r.worker(sinks.KindBlock)

	// Only the shadow playbook matches: recorded, not performed.
	start := time.Now()
	dry := r.handle(block, scored("e1", attacker, 50, withTags("tor"))).only(t)
	if dry.Outcome != OutcomeDryRun || !dry.DryRun || dry.Playbook != "tor-watch" || dry.Step != "block-edl" ||
		dry.Until == nil || !within(*dry.Until, start.Add(6*time.Hour), 5*time.Second) ||
		!strings.HasPrefix(dry.Detail, "would block 185.220.101.45 until ") {
		t.Errorf("dry run record: %+v", dry)
	}
	if n := len(r.f.edl.doCalls()); n != 0 {
		t.Fatalf("a dry run called the sink %d times", n)
	}

	// Now the real playbook matches too: it acts although the shadow one already "blocked".
	h := r.handle(block, scored("e2", attacker, 90, withTags("tor")))
	if got := h.outcomes(); !slices.Equal(got, []Outcome{OutcomeDone, OutcomeSuppressed}) {
		t.Fatalf("outcomes %v, want done (critical) then suppressed (tor-watch, within its window)", got)
	}
	if h.records[0].Playbook != "critical" || h.records[0].DryRun || h.records[0].Offence != 1 ||
		h.records[1].Playbook != "tor-watch" || !h.records[1].DryRun {
		t.Errorf("records: %+v", h.records)
	}
	if n := len(r.f.edl.doCalls()); n != 1 {
		t.Errorf("edl Do called %d times, want 1", n)
	}
	// Shadow blocks are never held for lifting.
	active, err := r.ledger.Active(context.Background(), "edl")
	if err != nil || len(active) != 1 || !active[attacker].Equal(*h.records[0].Until) {
		t.Errorf("active = %v, %v", active, err)
	}
}

func TestWorkerNeverBlocks(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	block, alert := r.worker(sinks.KindBlock), r.worker(sinks.KindAlert)
	for i, tc := range []struct{ target, reason string }{
		{"10.1.2.3", "private 10.0.0.0/8"},
		{"192.168.7.7", "private 192.168.0.0/16"},
		{"127.0.0.1", "loopback"},
		{"203.0.113.9", "documentation"},
		{"fe80::1", "link_local"},
		{"45.155.205.233", "own_range 45.155.205.0/24"},
		{"not-an-ip", "unparseable"},
		// IPv6 forms that embed a never-block IPv4 address.
		{"::ffff:10.1.2.3", "private 10.0.0.0/8"},
		{"::127.0.0.1", "loopback 127.0.0.0/8: embeds 127.0.0.1 (ipv4_compatible)"},
		{"::ffff:0:a00:1", "private 10.0.0.0/8: embeds 10.0.0.1 (ipv4_translated)"},
		{"64:ff9b::a01:203", "private 10.0.0.0/8: embeds 10.1.2.3 (nat64)"},
		{"64:ff9b::2d9b:cde9", "own_range 45.155.205.0/24: embeds 45.155.205.233 (nat64)"},
		{"64:ff9b:1::b9dc:6501", "private 64:ff9b:1::/48"},
		{"2002:c0a8:707::1", "private 192.168.0.0/16: embeds 192.168.7.7 (6to4)"},
		{"2001:0:4136:e378:8000:63bf:d264:3216", "own_range 45.155.205.0/24: embeds 45.155.205.233 (teredo_client)"},
		{"2001:0:a00:1:8000:63bf:4623:9afe", "private 10.0.0.0/8: embeds 10.0.0.1 (teredo_server)"},
		{"2a00:1450:4001::5efe:a00:1", "private 10.0.0.0/8: embeds 10.0.0.1 (isatap)"},
	} {
		// The enricher canonicalises addresses (::ffff:10.1.2.3 is 10.1.2.3): so does scored.
		ev := scored(fmt.Sprint("e", i), tc.target, 95)
		rec := r.handle(block, ev).only(t)
		if rec.Outcome != OutcomeNeverBlock || !strings.Contains(rec.Detail, tc.reason) || rec.Target != ev.Indicator.Value {
			t.Errorf("%s: %+v", tc.target, rec)
		}
	}
	if n := len(r.f.edl.doCalls()); n != 0 {
		t.Errorf("edl Do called %d times", n)
	}
	// The never-block list is about blocking: the SOC is still paged.
	if rec := r.handle(alert, scored("e-page", "45.155.205.233", 95)).only(t); rec.Outcome != OutcomeDone {
		t.Errorf("page for an own address: %+v", rec)
	}
	// And a public address is blocked, plain or through NAT64.
	if rec := r.handle(block, scored("e-pub", attacker, 95)).only(t); rec.Outcome != OutcomeDone {
		t.Errorf("public address: %+v", rec)
	}
	if rec := r.handle(block, scored("e-nat64", "64:ff9b::b9dc:6501", 95)).only(t); rec.Outcome != OutcomeDone {
		t.Errorf("public address through NAT64: %+v", rec)
	}
}

// A block sink that refuses a never-block address the worker's list let through (the lists
// differ) is audited as refused_never_block, not failed: no dead letter, and the claim is
// released, so the target is not held as blocked.
func TestWorkerRecordsASinkNeverBlockRefusal(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	const target = "185.220.101.77"
	r.f.edl.do = func(a *sinks.Action) (sinks.Result, error) {
		if a.Target == target {
			return sinks.Result{}, &sinks.NeverBlockError{Sink: "edl", Verb: "list", Target: netip.MustParseAddr(target),
				Verdict: neverblock.Verdict{Verdict: gate.Verdict{Reason: neverblock.ReasonNeverBlockCIDRs, Prefix: netip.MustParsePrefix(target + "/32")}}}
		}
		return sinks.Result{Ref: a.Target}, nil
	}
	block := r.worker(sinks.KindBlock)
	for i := range 2 {
		rec := r.handle(block, scored(fmt.Sprint("refused-", i), target, 95)).only(t)
		if rec.Outcome != OutcomeNeverBlock || !strings.Contains(rec.Detail, "edl: refusing to list 185.220.101.77: it is never blocked (never_block_cidrs") {
			t.Errorf("event %d: %+v", i, rec)
		}
	}
	// Released each time: the second event reached the sink again instead of being suppressed.
	if n := len(r.f.edl.doCalls()); n != 2 {
		t.Errorf("edl Do called %d times, want 2", n)
	}
	if active, err := r.ledger.Active(context.Background(), "edl"); err != nil || len(active) != 0 {
		t.Errorf("refused blocks held for lifting: %v, %v", active, err)
	}
}

func TestWorkerRateCapTripsToAlertOnly(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	r.guard.MaxBlocksPerMinute = 2
	r.guard.TripDuration = time.Minute
	// The cap counts the last 60 s: pin the ledger's clock so that none of the blocks ages out.
	var clock atomic.Int64
	clock.Store(time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC).UnixNano())
	r.ledger.now = func() time.Time { return time.Unix(0, clock.Load()) }
	block, alert := r.worker(sinks.KindBlock), r.worker(sinks.KindAlert)

	target := func(i int) string { return fmt.Sprintf("185.220.101.%d", i) }
	for i := 1; i <= 2; i++ {
		if rec := r.handle(block, scored("e", target(i), 90)).only(t); rec.Outcome != OutcomeDone {
			t.Fatalf("block %d: %+v", i, rec)
		}
	}
	third := r.handle(block, scored("e", target(3), 90)).only(t)
	if third.Outcome != OutcomeRateCapped || !strings.Contains(third.Detail, "block 3 this minute exceeds the cap of 2") {
		t.Errorf("third block: %+v", third)
	}
	titles := r.alertTitles()
	if len(titles) != 1 || !strings.Contains(titles[0], "block rate cap tripped") {
		t.Fatalf("operator alerts: %q", titles)
	}
	// While tripped, new blocks are alert-only; alerts themselves still go out.
	fourth := r.handle(block, scored("e", target(4), 90)).only(t)
	if fourth.Outcome != OutcomeRateCapped || !strings.Contains(fourth.Detail, "tripped") {
		t.Errorf("fourth block: %+v", fourth)
	}
	if rec := r.handle(alert, scored("e", target(4), 90)).only(t); rec.Outcome != OutcomeDone {
		t.Errorf("alert while tripped: %+v", rec)
	}
	// A redelivery of an event already handled is a duplicate, tripped or not.
	if rec := r.handle(block, scored("e", target(1), 90)).only(t); rec.Outcome != OutcomeDuplicate {
		t.Errorf("redelivered block while tripped: %+v, want duplicate", rec)
	}
	// A new sighting of a target already blocked within the window is suppressed by the window,
	// tripped or not: the cap holds back new blocks only.
	if rec := r.handle(block, scored("e-repeat", target(1), 90)).only(t); rec.Outcome != OutcomeSuppressed || rec.Ref != "edl-1" {
		t.Errorf("repeat sighting of a blocked target while tripped: %+v, want suppressed_window", rec)
	}
	if n := len(r.f.edl.doCalls()); n != 2 {
		t.Errorf("edl Do called %d times, want 2", n)
	}
	ctx := context.Background()
	if ttl := r.rdb.PTTL(ctx, r.ledger.tripKey(false)).Val(); ttl <= 50*time.Second || ttl > time.Minute {
		t.Errorf("tripped for %s, want THREATPIPE_ACT_TRIP_DURATION (1m)", ttl)
	}
	// Replicas racing past the cap together trip it once: only the first alerts.
	block.trip(ctx, false, 3)
	if len(r.alertTitles()) != 1 || testutil.ToFloat64(r.metrics.Trips) != 1 {
		t.Errorf("the trip must alert once: %q, trips metric %v", r.alertTitles(), testutil.ToFloat64(r.metrics.Trips))
	}
	// A shadow playbook's cap trips its own namespace and raises no operator alert.
	block.trip(ctx, true, 3)
	if dry, _ := r.ledger.Tripped(ctx, true); !dry || len(r.alertTitles()) != 1 || testutil.ToFloat64(r.metrics.Trips) != 2 {
		t.Errorf("dry-run trip: tripped %v, alerts %q, trips metric %v", dry, r.alertTitles(), testutil.ToFloat64(r.metrics.Trips))
	}

	// Once the trip lapses (ended here by hand) and a new minute starts, the capped target's
	// claim was released: a new event for it blocks.
	if err := r.rdb.Del(ctx, r.ledger.tripKey(false)).Err(); err != nil {
		t.Fatal(err)
	}
	clock.Add(int64(time.Minute))
	if rec := r.handle(block, scored("e-again", target(3), 90)).only(t); rec.Outcome != OutcomeDone {
		t.Errorf("after the trip: %+v", rec)
	}
	// So was the claim of the target held back while tripped.
	if rec := r.handle(block, scored("e-again", target(4), 90)).only(t); rec.Outcome != OutcomeDone {
		t.Errorf("after the trip, the target held back while tripped: %+v", rec)
	}
	if len(r.alertTitles()) != 1 {
		t.Errorf("operator alerts: %q", r.alertTitles())
	}
}

func TestWorkerKillSwitch(t *testing.T) {
	t.Parallel()
	kinds := []sinks.Kind{sinks.KindBlock, sinks.KindAlert, sinks.KindTicket}
	assertKilled := func(t *testing.T, r *rig, ws map[sinks.Kind]*Worker, id string) {
		t.Helper()
		for _, k := range kinds {
			rec := r.handle(ws[k], scored(id, attacker, 92)).only(t)
			if rec.Outcome != OutcomeKillSwitch {
				t.Errorf("%s: %+v", k, rec)
			}
		}
		if n := len(r.f.edl.doCalls()) + len(r.f.pd.doCalls()) + len(r.f.jira.doCalls()); n != 0 {
			t.Errorf("%d sink calls with the kill switch on", n)
		}
	}

	t.Run("environment", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, readTestdata(t, "playbooks.yaml"))
		r.guard.KillSwitch = true
		ws := map[sinks.Kind]*Worker{}
		for _, k := range kinds {
			ws[k] = r.worker(k)
		}
		assertKilled(t, r, ws, "e1")
	})

	t.Run("ledger", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, readTestdata(t, "playbooks.yaml"))
		ctx := context.Background()
		if err := r.ledger.SetKillSwitch(ctx, true, "incident 42"); err != nil {
			t.Fatal(err)
		}
		if on, err := r.ledger.KillSwitch(ctx); !on || err != nil {
			t.Fatalf("KillSwitch() = %v, %v", on, err)
		}
		var clock atomic.Int64
		clock.Store(time.Now().UnixNano())
		ws := map[sinks.Kind]*Worker{}
		for _, k := range kinds {
			ws[k] = r.worker(k)
			ws[k].now = func() time.Time { return time.Unix(0, clock.Load()) }
		}
		assertKilled(t, r, ws, "e1")
		if g := testutil.ToFloat64(r.metrics.KillSwitch); g != 1 {
			t.Errorf("kill switch gauge = %v", g)
		}

		// Off again: the workers notice within their one-second cache.
		if err := r.ledger.SetKillSwitch(ctx, false, ""); err != nil {
			t.Fatal(err)
		}
		clock.Add(int64(1100 * time.Millisecond))
		for _, k := range kinds {
			if rec := r.handle(ws[k], scored("e2", attacker, 92)).only(t); rec.Outcome != OutcomeDone {
				t.Errorf("%s after the switch went off: %+v", k, rec)
			}
		}
		if g := testutil.ToFloat64(r.metrics.KillSwitch); g != 0 {
			t.Errorf("kill switch gauge = %v", g)
		}
	})
}

// Redeliveries while the kill switch is on are audited as what they are: duplicates.
func TestWorkerKillSwitchRedeliveryIsADuplicate(t *testing.T) {
	t.Parallel()
	kinds := []sinks.Kind{sinks.KindBlock, sinks.KindAlert, sinks.KindTicket}
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	ws := map[sinks.Kind]*Worker{}
	for _, k := range kinds {
		ws[k] = r.worker(k)
		ws[k].now = func() time.Time { return time.Unix(0, clock.Load()) }
	}
	first := r.msg(scored("e1", attacker, 92))
	for _, k := range kinds {
		if rec := r.handleMsg(ws[k], first).only(t); rec.Outcome != OutcomeDone {
			t.Fatalf("%s before the switch: %+v", k, rec)
		}
	}
	calls := len(r.f.edl.doCalls()) + len(r.f.pd.doCalls()) + len(r.f.jira.doCalls())
	if err := r.ledger.SetKillSwitch(context.Background(), true, "incident 42"); err != nil {
		t.Fatal(err)
	}
	clock.Add(int64(1100 * time.Millisecond))
	for _, k := range kinds {
		if rec := r.handleMsg(ws[k], first).only(t); rec.Outcome != OutcomeDuplicate {
			t.Errorf("%s: redelivery with the kill switch on: %+v, want duplicate", k, rec)
		}
		if rec := r.handle(ws[k], scored("e2", attacker, 92)).only(t); rec.Outcome != OutcomeKillSwitch {
			t.Errorf("%s: new event with the kill switch on: %+v, want kill_switch", k, rec)
		}
	}
	if n := len(r.f.edl.doCalls()) + len(r.f.pd.doCalls()) + len(r.f.jira.doCalls()); n != calls {
		t.Errorf("%d sink calls with the kill switch on", n-calls)
	}
}

// A failed (or capped) action's claim is released through a ledger that fails at first: a
// claim left pending under this live owner would make every later event for the target wait
// until the window ends.
func TestWorkerReleasesTheClaimThroughLedgerErrors(t *testing.T) {
	t.Parallel()
	// handle fails the test if the next event for the target waits on a claim left behind.
	handle := func(t *testing.T, r *rig, w *Worker, ev *event.Scored) handled {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, err := w.Handle(ctx, r.msg(ev))
		if err != nil {
			t.Fatalf("Handle: %v (waiting on a claim that was not released?)", err)
		}
		return splitOut(t, out)
	}

	t.Run("sink failure", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, readTestdata(t, "playbooks.yaml"))
		fault := addFault(r.rdb, runsScript(releaseScript))
		fault.left.Store(2)
		block := r.worker(sinks.KindBlock)
		r.f.edl.setFailDo(1)
		h := handle(t, r, block, scored("e1", attacker, 90))
		if len(h.records) != 1 || h.records[0].Outcome != OutcomeFailed || len(h.dead) != 1 {
			t.Fatalf("failed action: %+v, %d dead letters", h.records, len(h.dead))
		}
		if n := fault.hits.Load(); n != 2 {
			t.Fatalf("%d release attempts failed, want 2", n)
		}
		if rec := handle(t, r, block, scored("e2", attacker, 90)).only(t); rec.Outcome != OutcomeDone {
			t.Errorf("next event: %+v", rec)
		}
	})

	t.Run("rate cap", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, readTestdata(t, "playbooks.yaml"))
		r.guard.MaxBlocksPerMinute = 1
		var clock atomic.Int64
		clock.Store(time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC).UnixNano())
		r.ledger.now = func() time.Time { return time.Unix(0, clock.Load()) }
		block := r.worker(sinks.KindBlock)
		fault := addFault(r.rdb, runsScript(releaseScript))
		ctx := context.Background()

		if rec := handle(t, r, block, scored("e1", "185.220.101.1", 90)).only(t); rec.Outcome != OutcomeDone {
			t.Fatalf("first block: %+v", rec)
		}
		fault.left.Store(2)
		if rec := handle(t, r, block, scored("e2", "185.220.101.2", 90)).only(t); rec.Outcome != OutcomeRateCapped || !strings.Contains(rec.Detail, "exceeds the cap") {
			t.Fatalf("over the cap: %+v", rec)
		}
		fault.left.Store(2)
		if rec := handle(t, r, block, scored("e3", "185.220.101.3", 90)).only(t); rec.Outcome != OutcomeRateCapped || !strings.Contains(rec.Detail, "tripped") {
			t.Fatalf("while tripped: %+v", rec)
		}
		if n := fault.hits.Load(); n != 4 {
			t.Fatalf("%d release attempts failed, want 4", n)
		}
		for _, target := range []string{"185.220.101.2", "185.220.101.3"} {
			// The trip lapses (ended here by hand) and a new minute starts: one block allowed.
			if err := r.rdb.Del(ctx, r.ledger.tripKey(false)).Err(); err != nil {
				t.Fatal(err)
			}
			clock.Add(int64(time.Minute))
			if rec := handle(t, r, block, scored("e4", target, 90)).only(t); rec.Outcome != OutcomeDone {
				t.Errorf("%s after the trip: %+v", target, rec)
			}
		}
	})
}

func TestWorkerSinkFailureDeadLettersAndReleasesTheClaim(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	block := r.worker(sinks.KindBlock)
	r.f.edl.setFailDo(1)

	m := r.msg(scored("e1", attacker, 90))
	m.Headers = []kafka.Header{{Key: "traceparent", Value: []byte("00-abc-def-01")}}
	h := r.handleMsg(block, m)
	if len(h.records) != 1 || len(h.dead) != 1 {
		t.Fatalf("want one record and one dead letter, got %+v and %d", h.records, len(h.dead))
	}
	rec := h.records[0]
	if rec.Outcome != OutcomeFailed || rec.Error != errSinkDown.Error() || rec.Ref != "" {
		t.Errorf("record: %+v", rec)
	}
	dl := h.dead[0]
	for k, want := range map[string]string{
		pipeline.HeaderErrorClass:        "action_failed",
		pipeline.HeaderErrorMessage:      errSinkDown.Error(),
		pipeline.HeaderOriginalTopic:     scoredTopic,
		pipeline.HeaderOriginalPartition: "3",
		pipeline.HeaderOriginalOffset:    fmt.Sprint(m.Offset),
		HeaderWorker:                     "act-block",
		HeaderPlaybook:                   "critical",
		HeaderStep:                       "block",
		HeaderSink:                       "edl",
		"traceparent":                    "00-abc-def-01",
	} {
		if got := header(dl, k); got != want {
			t.Errorf("dead letter header %s = %q, want %q", k, got, want)
		}
	}
	if string(dl.Value) != string(m.Value) || string(dl.Key) != attacker {
		t.Errorf("the dead letter must carry the scored event as read")
	}

	// The failure released the claim: the next event acts, with a fresh key.
	next := r.handle(block, scored("e2", attacker, 90)).only(t)
	if next.Outcome != OutcomeDone {
		t.Fatalf("next event: %+v", next)
	}
	calls := r.f.edl.doCalls()
	if len(calls) != 2 || calls[1].Key == calls[0].Key {
		t.Errorf("edl calls: %+v", calls)
	}
}

func TestWorkerFailedCommentKeepsTheTicket(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	ticket := r.worker(sinks.KindTicket)
	first := r.handle(ticket, scored("e1", attacker, 90)).only(t)
	r.f.jira.setFailDo(1)
	h := r.handle(ticket, scored("e2", attacker, 90))
	if got := h.outcomes(); !slices.Equal(got, []Outcome{OutcomeFailed}) || len(h.dead) != 1 {
		t.Fatalf("failed comment: %v, %d dead letters", got, len(h.dead))
	}
	// The ticket's claim survives a failed comment: the next repeat comments on it again.
	if rec := r.handle(ticket, scored("e3", attacker, 90)).only(t); rec.Outcome != OutcomeCommented || rec.Ref != first.Ref {
		t.Errorf("after a failed comment: %+v", rec)
	}
}

func TestWorkerCommentFollowsARecreatedTicket(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	// Like Jira: a comment on an issue that no longer exists opens a new issue instead.
	r.f.jira.do = func(a *sinks.Action) (sinks.Result, error) {
		switch a.Prior {
		case "":
			return sinks.Result{Ref: "SOC-1", Detail: "created SOC-1"}, nil
		case "SOC-1":
			return sinks.Result{Ref: "SOC-2", Detail: "created SOC-2 (SOC-1 no longer exists)"}, nil
		default:
			return sinks.Result{Ref: a.Prior, Detail: "commented on " + a.Prior}, nil
		}
	}
	ticket := r.worker(sinks.KindTicket)
	r.handle(ticket, scored("e1", attacker, 90)).only(t)
	if rec := r.handle(ticket, scored("e2", attacker, 90)).only(t); rec.Outcome != OutcomeCommented || rec.Ref != "SOC-2" {
		t.Errorf("second: %+v", rec)
	}
	if rec := r.handle(ticket, scored("e3", attacker, 90)).only(t); rec.Ref != "SOC-2" {
		t.Errorf("third: %+v", rec)
	}
	calls := r.f.jira.doCalls()
	if len(calls) != 3 || calls[2].Prior != "SOC-2" {
		t.Errorf("the third sighting must comment on the new ticket: %+v", calls)
	}
}

func TestWorkerDeadLettersMalformedInput(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	block := r.worker(sinks.KindBlock)
	for i, value := range []string{`not json`, ``, `null`, `[]`, `{}`, `{"event_id":"x","indicator":{"type":"ipv4-addr","value":""}}`,
		`{"event_id":"x","score":"high","indicator":{"value":"1.2.3.4"}}`} {
		m := kafka.Message{Topic: scoredTopic, Partition: 0, Offset: int64(i), Value: []byte(value)}
		h := r.handleMsg(block, m)
		if len(h.records) != 0 || len(h.dead) != 1 {
			t.Errorf("%q: %d records, %d dead letters", value, len(h.records), len(h.dead))
			continue
		}
		dl := h.dead[0]
		if header(dl, pipeline.HeaderErrorClass) != "malformed_scored_event" ||
			!strings.HasPrefix(header(dl, pipeline.HeaderErrorMessage), "not a scored event") ||
			header(dl, HeaderWorker) != "act-block" || header(dl, HeaderPlaybook) != "" || string(dl.Value) != value {
			t.Errorf("%q: dead letter %+v", value, dl.Headers)
		}
	}
	if n := testutil.ToFloat64(r.metrics.Unreadable); n != 7 {
		t.Errorf("unreadable metric = %v", n)
	}
	if n := len(r.f.edl.doCalls()); n != 0 {
		t.Errorf("edl Do called %d times", n)
	}
}

func TestWorkerAuditsAConditionErrorAndStillActs(t *testing.T) {
	t.Parallel()
	r := newRig(t, `
playbooks:
  - name: first-tag
    when: tags[0] == "scanner"
    steps:
      - {name: block, action: block, sink: nft}
  - name: critical
    when: score >= 80
    steps:
      - {name: block, action: block, sink: edl}
`)
	h := r.handle(r.worker(sinks.KindBlock), scored("e1", attacker, 90))
	if got := h.outcomes(); !slices.Equal(got, []Outcome{OutcomeBadCondition, OutcomeDone}) || len(h.dead) != 0 {
		t.Fatalf("outcomes %v", got)
	}
	if bad := h.records[0]; !strings.Contains(bad.Error, `playbook "first-tag": when:`) || bad.Target != attacker || bad.Kind != sinks.KindBlock {
		t.Errorf("condition error record: %+v", bad)
	}
	if len(r.f.edl.doCalls()) != 1 || len(r.f.nft.doCalls()) != 0 {
		t.Error("the healthy playbook must act, the broken one not")
	}
}

func TestWorkerEscalatesRepeatOffenders(t *testing.T) {
	t.Parallel()
	r := newRig(t, `
playbooks:
  - name: repeat
    when: score >= 80
    window: 150ms
    steps:
      - {name: block, action: block, sink: edl, duration: 1h}
`)
	r.guard.MaxBlockDuration = 3 * time.Hour
	block := r.worker(sinks.KindBlock)
	var last time.Time
	for i, want := range []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour, 3 * time.Hour} {
		if i > 0 {
			time.Sleep(200 * time.Millisecond) // let the window lapse
		}
		start := time.Now()
		rec := r.handle(block, scored(fmt.Sprint("e", i), attacker, 90)).only(t)
		if rec.Outcome != OutcomeDone || rec.Offence != int64(i+1) || rec.Until == nil || !within(*rec.Until, start.Add(want), 5*time.Second) {
			t.Fatalf("offence %d: %+v, want a block of %s", i+1, rec, want)
		}
		last = *rec.Until
	}
	active, err := r.ledger.Active(context.Background(), "edl")
	if err != nil || !active[attacker].Equal(last) {
		t.Errorf("active = %v, %v; want the latest block until %s", active, err, last)
	}
	// Another target starts at its first offence.
	if rec := r.handle(block, scored("other", "185.220.101.46", 90)).only(t); rec.Offence != 1 {
		t.Errorf("another target: %+v", rec)
	}
}

func TestBlockDuration(t *testing.T) {
	w := &Worker{o: WorkerOptions{Guardrails: Guardrails{MaxBlockDuration: 24 * time.Hour}}}
	for _, tc := range []struct {
		base    time.Duration
		offence int64
		want    time.Duration
	}{
		{time.Hour, 0, time.Hour},
		{time.Hour, 1, time.Hour},
		{time.Hour, 2, 2 * time.Hour},
		{time.Hour, 3, 4 * time.Hour},
		{time.Hour, 5, 16 * time.Hour},
		{time.Hour, 6, 24 * time.Hour},
		{time.Hour, 1 << 40, 24 * time.Hour},
		{48 * time.Hour, 1, 24 * time.Hour},
		{90 * time.Minute, 2, 3 * time.Hour},
	} {
		if got := w.blockDuration(tc.base, tc.offence); got != tc.want {
			t.Errorf("blockDuration(%s, %d) = %s, want %s", tc.base, tc.offence, got, tc.want)
		}
	}
}

// longAgo is the age of a crashed claim whose action a sink's search must show by now.
const longAgo = findSettle + time.Minute

// crashedClaim leaves a pending claim as a worker that died mid-action age ago would: its owner
// has no liveness key.
func crashedClaim(t *testing.T, r *rig, playbook, step, target string, age time.Duration) *Claim {
	t.Helper()
	dead := NewLedger(r.rdb, r.prefix, "crashed-replica")
	dead.now = func() time.Time { return time.Now().Add(-age) }
	res, claim, err := dead.Claim(context.Background(), false, playbook, step, target, 24*time.Hour)
	if err != nil || res != Claimed {
		t.Fatalf("claim: %v, %v", res, err)
	}
	return claim
}

func TestWorkerTakesOverACrashedOwnersClaim(t *testing.T) {
	t.Parallel()

	t.Run("the sink finds the action: recovered, not repeated", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, readTestdata(t, "playbooks.yaml"))
		claim := crashedClaim(t, r, "critical", "ticket", attacker, longAgo)
		r.f.jira.setFound("SOC-77", nil)
		ticket := r.worker(sinks.KindTicket)
		rec := r.handle(ticket, scored("e1", attacker, 90)).only(t)
		if rec.Outcome != OutcomeRecovered || rec.Ref != "SOC-77" || rec.Key != claim.Key {
			t.Errorf("record: %+v", rec)
		}
		if f := r.f.jira.findCalls(); len(f) != 1 || f[0].Key != claim.Key || f[0].Target != attacker {
			t.Errorf("find calls: %+v", f)
		}
		if n := len(r.f.jira.doCalls()); n != 0 {
			t.Fatalf("a found action was repeated (%d calls)", n)
		}
		// The recovered ticket is the claim's now: a repeat comments on it, the redelivery is a duplicate.
		if rec := r.handle(ticket, scored("e2", attacker, 90)).only(t); rec.Outcome != OutcomeCommented || rec.Ref != "SOC-77" {
			t.Errorf("repeat: %+v", rec)
		}
		if rec := r.handle(ticket, scored("e1", attacker, 90)).only(t); rec.Outcome != OutcomeDuplicate {
			t.Errorf("redelivery: %+v", rec)
		}
	})

	for name, findErr := range map[string]error{"not found": nil, "find fails": errSinkDown} {
		t.Run("the sink has no trace ("+name+"): repeated under the same key", func(t *testing.T) {
			t.Parallel()
			r := newRig(t, readTestdata(t, "playbooks.yaml"))
			claim := crashedClaim(t, r, "critical", "ticket", attacker, longAgo)
			r.f.jira.setFound("", findErr)
			rec := r.handle(r.worker(sinks.KindTicket), scored("e1", attacker, 90)).only(t)
			if rec.Outcome != OutcomeDone || rec.Key != claim.Key || rec.Ref != "jira-1" {
				t.Errorf("record: %+v", rec)
			}
			if n := len(r.f.jira.findCalls()); n != 1 {
				t.Errorf("Find called %d times", n)
			}
			if c := r.f.jira.doCalls(); len(c) != 1 || c[0].Key != claim.Key {
				t.Errorf("do calls: %+v", c)
			}
		})
	}

	// A search index lags behind creates: for an action begun less than findSettle ago, "not
	// found" is asked again once the index has caught up.
	for name, second := range map[string]string{"found on the second ask": "SOC-78", "still not found": ""} {
		t.Run("a fresh claim: "+name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, readTestdata(t, "playbooks.yaml"))
			claim := crashedClaim(t, r, "critical", "ticket", attacker, findSettle-300*time.Millisecond)
			jira := r.f.jira
			jira.foundNth = map[int]string{1: "", 2: second} // not indexed yet at the first ask
			start := time.Now()
			rec := r.handle(r.worker(sinks.KindTicket), scored("e1", attacker, 90)).only(t)
			waited := time.Since(start)
			if finds := len(jira.findCalls()); finds != 2 || waited < 200*time.Millisecond || waited > 5*time.Second {
				t.Errorf("Find called %d times over %s; want twice, the second once the claim is %s old", finds, waited, findSettle)
			}
			for _, f := range jira.findCalls() {
				if f.Key != claim.Key {
					t.Errorf("Find asked for key %q, want %q", f.Key, claim.Key)
				}
			}
			calls := jira.doCalls()
			if second != "" {
				if rec.Outcome != OutcomeRecovered || rec.Ref != second || len(calls) != 0 {
					t.Errorf("record %+v, %d Do calls", rec, len(calls))
				}
				return
			}
			if rec.Outcome != OutcomeDone || len(calls) != 1 || calls[0].Key != claim.Key {
				t.Errorf("record %+v, Do calls %+v", rec, calls)
			}
		})
	}

	t.Run("a fresh claim: the wait ends with the context", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, readTestdata(t, "playbooks.yaml"))
		crashedClaim(t, r, "critical", "ticket", attacker, 0)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		out, err := r.worker(sinks.KindTicket).Handle(ctx, r.msg(scored("e1", attacker, 90)))
		if err == nil || out != nil || len(r.f.jira.doCalls()) != 0 {
			t.Errorf("Handle = %v, %v with %d Do calls; want the context's error and nothing done", out, err, len(r.f.jira.doCalls()))
		}
	})

	t.Run("no Finder: a block is repeated under the same key and held for lifting", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, readTestdata(t, "playbooks.yaml"))
		claim := crashedClaim(t, r, "critical", "block", attacker, time.Second)
		start := time.Now()
		rec := r.handle(r.worker(sinks.KindBlock), scored("e1", attacker, 90)).only(t)
		if rec.Outcome != OutcomeDone || rec.Key != claim.Key || rec.Until == nil || !within(*rec.Until, start.Add(time.Hour), 5*time.Second) {
			t.Errorf("record: %+v", rec)
		}
		if c := r.f.edl.doCalls(); len(c) != 1 || c[0].Key != claim.Key {
			t.Errorf("do calls: %+v", c)
		}
		if active, err := r.ledger.Active(context.Background(), "edl"); err != nil || !active[attacker].Equal(*rec.Until) {
			t.Errorf("active: %v, %v", active, err)
		}
	})

	t.Run("a takeover respects the maximum block duration", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, readTestdata(t, "playbooks.yaml"))
		r.guard.MaxBlockDuration = 10 * time.Minute // shorter than the step's hour
		crashedClaim(t, r, "critical", "block", attacker, time.Second)
		start := time.Now()
		rec := r.handle(r.worker(sinks.KindBlock), scored("e1", attacker, 90)).only(t)
		if rec.Until == nil || !within(*rec.Until, start.Add(10*time.Minute), 5*time.Second) {
			t.Errorf("record: %+v", rec)
		}
	})

	t.Run("an owner that stopped cleanly frees its claims at once", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, readTestdata(t, "playbooks.yaml"))
		other := NewLedger(r.rdb, r.prefix, "replica-a")
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- other.Heartbeat(ctx) }()
		waitAlive(t, r, "replica-a", true)
		_, claim, err := other.Claim(context.Background(), false, "critical", "block", attacker, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		waitAlive(t, r, "replica-a", false)
		rec := r.handle(r.worker(sinks.KindBlock), scored("e1", attacker, 90)).only(t)
		if rec.Outcome != OutcomeDone || rec.Key != claim.Key {
			t.Errorf("record: %+v", rec)
		}
	})
}

func waitAlive(t *testing.T, r *rig, owner string, want bool) {
	t.Helper()
	waitFor(t, 5*time.Second, fmt.Sprintf("%s alive=%v", owner, want), func() bool {
		n, err := r.rdb.Exists(context.Background(), r.ledger.aliveKey(owner)).Result()
		return err == nil && (n == 1) == want
	})
}

func TestWorkerWaitsForALiveOwner(t *testing.T) {
	t.Parallel()
	for _, finish := range []string{"done", "done with this event", "released"} {
		t.Run(finish, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, readTestdata(t, "playbooks.yaml"))
			other := NewLedger(r.rdb, r.prefix, "replica-a")
			ctx, stop := context.WithCancel(context.Background())
			beat := make(chan error, 1)
			go func() { beat <- other.Heartbeat(ctx) }()
			defer func() { stop(); <-beat }()
			waitAlive(t, r, "replica-a", true)
			_, claim, err := other.Claim(context.Background(), false, "critical", "block", attacker, time.Hour)
			if err != nil {
				t.Fatal(err)
			}

			type result struct {
				out []kafka.Message
				err error
			}
			got := make(chan result, 1)
			block := r.worker(sinks.KindBlock)
			go func() {
				out, err := block.Handle(context.Background(), r.msg(scored("e-b", attacker, 90)))
				got <- result{out, err}
			}()
			select {
			case res := <-got:
				t.Fatalf("Handle did not wait for the live owner: %v, %v", res.out, res.err)
			case <-time.After(500 * time.Millisecond):
			}
			if n := len(r.f.edl.doCalls()); n != 0 {
				t.Fatalf("acted while another live owner held the claim (%d calls)", n)
			}

			switch finish {
			case "done":
				err = other.Done(context.Background(), false, "critical", "block", attacker, claim, "edl-A", "e-a", time.Hour)
			case "done with this event": // a redelivery handled while its original was in flight
				err = other.Done(context.Background(), false, "critical", "block", attacker, claim, "edl-A", "e-b", time.Hour)
			default:
				err = other.Release(context.Background(), false, "critical", "block", attacker, claim)
			}
			if err != nil {
				t.Fatal(err)
			}
			var res result
			select {
			case res = <-got:
			case <-time.After(5 * time.Second):
				t.Fatal("Handle still waiting after the owner finished")
			}
			if res.err != nil {
				t.Fatal(res.err)
			}
			rec := splitOut(t, res.out).only(t)
			calls := r.f.edl.doCalls()
			switch finish {
			case "done":
				if rec.Outcome != OutcomeSuppressed || rec.Ref != "edl-A" || rec.Key != claim.Key || len(calls) != 0 {
					t.Errorf("after the owner's done: %+v, %d calls", rec, len(calls))
				}
			case "done with this event":
				if rec.Outcome != OutcomeDuplicate || len(calls) != 0 {
					t.Errorf("after the owner handled this very event: %+v, %d calls", rec, len(calls))
				}
			default:
				if rec.Outcome != OutcomeDone || rec.Key == claim.Key || len(calls) != 1 {
					t.Errorf("after the owner released: %+v, %d calls", rec, len(calls))
				}
			}
		})
	}
}

func TestWorkerHandleStopsWithItsContext(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	// A pending claim of this very process: Handle waits for it, until ctx ends.
	if _, _, err := r.ledger.Claim(context.Background(), false, "critical", "block", attacker, time.Hour); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	out, err := r.worker(sinks.KindBlock).Handle(ctx, r.msg(scored("e1", attacker, 90)))
	if err == nil || out != nil {
		t.Fatalf("Handle = %v, %v; want the context's error and nothing to publish", out, err)
	}
	if n := len(r.f.edl.doCalls()); n != 0 {
		t.Errorf("edl Do called %d times", n)
	}
}

func TestWorkerConcurrentEventsForOneTargetActOnce(t *testing.T) {
	t.Parallel()
	for _, kind := range []sinks.Kind{sinks.KindBlock, sinks.KindAlert} {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			r := newRig(t, readTestdata(t, "playbooks.yaml"))
			r.f.edl.delay, r.f.pd.delay = 50*time.Millisecond, 50*time.Millisecond
			// Two replicas, each alive, each with its own ledger; ten goroutines apiece.
			var workers []*Worker
			ctx, stop := context.WithCancel(context.Background())
			var beats sync.WaitGroup
			defer func() { stop(); beats.Wait() }()
			for _, owner := range []string{"replica-a", "replica-b"} {
				l := NewLedger(r.rdb, r.prefix, owner)
				beats.Go(func() { _ = l.Heartbeat(ctx) })
				waitAlive(t, r, owner, true)
				w := r.worker(kind)
				w.ledger = l
				workers = append(workers, w)
			}

			const n = 20
			var wg sync.WaitGroup
			results := make([][]kafka.Message, n)
			errs := make([]error, n)
			startGun := make(chan struct{})
			for i := range n {
				m := r.msg(scored(fmt.Sprint("evt-", i), attacker, 92))
				wg.Go(func() {
					<-startGun
					hctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					out, err := workers[i%2].Handle(hctx, m)
					results[i], errs[i] = out, err
				})
			}
			close(startGun)
			wg.Wait()

			counts := map[Outcome]int{}
			keys := map[string]bool{}
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("event %d: %v", i, errs[i])
				}
				rec := splitOut(t, results[i]).only(t)
				counts[rec.Outcome]++
				keys[rec.Key] = true
			}
			calls := len(r.f.edl.doCalls()) + len(r.f.pd.doCalls())
			if calls != 1 || counts[OutcomeDone] != 1 || counts[OutcomeSuppressed] != n-1 || len(keys) != 1 {
				t.Errorf("%d sink calls, outcomes %v, %d distinct keys; want 1 call, 1 done, %d suppressed, one key", calls, counts, len(keys), n-1)
			}
		})
	}
}

// TestWorkerRecordFields pins what every audit record carries regardless of outcome.
func TestWorkerRecordFields(t *testing.T) {
	t.Parallel()
	r := newRig(t, readTestdata(t, "playbooks.yaml"))
	w := r.worker(sinks.KindBlock)
	ev := scored("e1", "10.9.9.9", 81)
	rec := r.handle(w, ev).only(t)
	if rec.SchemaVersion != RecordSchemaVersion || rec.At.IsZero() || time.Since(rec.At) > time.Minute || rec.Kind != sinks.KindBlock ||
		rec.Worker != "act-block" || rec.EventID != "e1" || rec.Score != 81 || rec.Severity != event.SeverityCritical ||
		rec.Playbook != "critical" || rec.Step != "block" || rec.Sink != "edl" {
		t.Errorf("record: %+v", rec)
	}
}

// TestIntelStepUpdatesOnEverySightingWithinTheWindow: a threat-intel record is written back on
// the first sighting and updated on each later one within the window (a new score, a sighting),
// where a block would be suppressed; a redelivered event is still a duplicate.
func TestIntelStepUpdatesOnEverySightingWithinTheWindow(t *testing.T) {
	t.Parallel()
	r := newRig(t, `
playbooks:
  - name: writeback
    when: score >= 50
    window: 1h
    steps:
      - {name: tip, action: intel, sink: tip}
`)
	intel := r.worker(sinks.KindIntel)
	first := r.handle(intel, scored("e1", attacker, 70)).only(t)
	second := r.handle(intel, scored("e2", attacker, 90)).only(t)
	again := r.handle(intel, scored("e2", attacker, 90)).only(t)
	if first.Outcome != OutcomeDone || second.Outcome != OutcomeUpdated || again.Outcome != OutcomeDuplicate {
		t.Fatalf("outcomes %v, %v, %v: want done, updated, duplicate", first.Outcome, second.Outcome, again.Outcome)
	}
	calls := r.f.tip.doCalls()
	if len(calls) != 2 || calls[0].Score != 70 || calls[1].Score != 90 || calls[1].Key != calls[0].Key {
		t.Errorf("sink calls %+v: want the two sightings' scores under one key", calls)
	}
}
