package main

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// changeMsg is a verdict change record of ip from old to new (scores), carrying the revised
// scored event, as the enricher publishes it on the changes topic.
func changeMsg(t *testing.T, ip, eventID string, old, new int) kafka.Message {
	t.Helper()
	var ev event.Scored
	if err := json.Unmarshal(scoredMsg(t, ip, eventID, new).Value, &ev); err != nil {
		t.Fatal(err)
	}
	ev.Revision = 1
	if new >= 80 {
		ev.ValidatedBy = []string{"abuseipdb", "criminalip"}
	}
	o := event.Rating{Score: old, Severity: event.SeverityOf(old), ValidatedBy: []string{}}
	n := event.RatingOf(&ev)
	dir, _ := event.ChangeBetween(o, n)
	raw, err := json.Marshal(event.Change{SchemaVersion: event.SchemaVersion, Indicator: ev.Indicator, EventID: eventID,
		Revision: 1, At: time.Now().UTC(), Cause: event.CauseRevision, Direction: dir, Old: o, New: n, Reasons: ev.Reasons, Event: &ev})
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Key: []byte(ip), Value: raw}
}

// TestE2EActChangesLiftAndEscalate runs `threatpipe act` with its changes consumer: five
// critical addresses are blocked (EDL, and nftables when the test can create a network
// namespace), paged and ticketed; then change records, each delivered twice, de-escalate three
// of them to low, which leave the EDL and the nftables set, get their PagerDuty incidents
// resolved and their Jira tickets commented, once each; and escalate two other addresses to
// critical, which triggers the playbook that tests `escalated` exactly once each. A third
// delivery of the de-escalations, after they were committed, changes nothing.
func TestE2EActChangesLiftAndEscalate(t *testing.T) {
	brokers := pipelinetest.Kafka(t)
	redisAddr := pipelinetest.Redis(t)
	scored := pipelinetest.Topic(t, brokers, "scored", 2)
	changes := pipelinetest.Topic(t, brokers, "changes", 2)
	results := pipelinetest.Topic(t, brokers, "results", 2)
	dlq := pipelinetest.Topic(t, brokers, "actdlq", 1)
	alerts := pipelinetest.Topic(t, brokers, "alerts", 1)
	fakes := newSOCFakes(0)
	srv := httptest.NewServer(fakes)
	t.Cleanup(srv.Close)

	netns, nftOK := nftNamespace(t)
	blockSteps := "      - {name: block, action: block, sink: edl, duration: 1h}\n"
	if nftOK {
		blockSteps += "      - {name: block-host, action: block, sink: nftables, duration: 1h}\n"
	}
	playbooks := filepath.Join(t.TempDir(), "playbooks.yaml")
	if err := os.WriteFile(playbooks, []byte(`
playbooks:
  - name: critical
    when: score >= 80
    window: 1h
    steps:
`+blockSteps+`      - {name: page, action: alert, sink: pagerduty}
      - {name: ticket, action: ticket, sink: jira}
  - name: escalated
    when: escalated && severity == "critical" && previous_severity == "medium" && previous_score == 50
    window: 1h
    steps:
      - {name: notify, action: alert, sink: kafka}
`), 0o600); err != nil {
		t.Fatal(err)
	}

	var blocked, benign, kept, escalated []string
	var scoredMsgs []kafka.Message
	for i := range 5 {
		ip := fmt.Sprintf("185.220.106.%d", i+1)
		blocked = append(blocked, ip)
		scoredMsgs = append(scoredMsgs, scoredMsg(t, ip, "ev-"+ip, 92))
	}
	benign, kept = blocked[:3], blocked[3:]
	escalated = []string{"185.220.107.1", "185.220.107.2"}
	pipelinetest.Produce(t, brokers, scored, scoredMsgs)

	prefix := pipelinetest.Name(t, "act")
	env := actEnv(brokers, redisAddr, prefix, scored, results, dlq, alerts, playbooks, srv.URL,
		"THREATPIPE_KAFKA_CHANGES_TOPIC="+changes, "THREATPIPE_ACT_MAX_BLOCKS_PER_MINUTE=1000")
	if nftOK {
		env = append(env, "THREATPIPE_SINK_NFTABLES_ENABLED=true", "THREATPIPE_SINK_NFTABLES_NETNS="+netns,
			"THREATPIPE_SINK_NFTABLES_TABLE=tpe2e")
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, r := range readRecords(t, brokers, results) {
				t.Logf("audit: %s %s/%s %s %s %s %s", r.Target, r.Playbook, r.Step, r.Sink, r.Outcome, r.Detail, r.Error)
			}
		}
	})
	httpAddr := freeAddr(t)
	worker := startCommand(t, "act", append(env, "THREATPIPE_HTTP_ADDR="+httpAddr), httpAddr)
	base := "http://" + httpAddr
	waitActCommitted(t, brokers, scored, 60*time.Second, prefix+"-block", prefix+"-alert", prefix+"-ticket")
	checkBlocked(t, base, netns, nftOK, blocked)

	// Every change record twice in a row, as a redelivery would.
	var changeMsgs []kafka.Message
	for _, ip := range benign {
		m := changeMsg(t, ip, "ev-"+ip, 92, 28)
		changeMsgs = append(changeMsgs, m, m)
	}
	for _, ip := range escalated {
		m := changeMsg(t, ip, "ev-"+ip, 50, 93)
		changeMsgs = append(changeMsgs, m, m)
	}
	pipelinetest.Produce(t, brokers, changes, changeMsgs)
	waitActCommitted(t, brokers, changes, 60*time.Second, prefix+"-changes")
	checkBlocked(t, base, netns, nftOK, append(slices.Clone(kept), escalated...))

	// The de-escalations once more, long after: nothing happens again.
	pipelinetest.Produce(t, brokers, changes, changeMsgs[:2*len(benign)])
	waitActCommitted(t, brokers, changes, 60*time.Second, prefix+"-changes")
	checkBlocked(t, base, netns, nftOK, append(slices.Clone(kept), escalated...))
	if err := worker.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := worker.wait(t, 30*time.Second); err != nil {
		t.Errorf("act exited with %v after SIGTERM", err)
	}

	_, resolves, creates, comments := fakes.snapshot()
	for _, ip := range benign {
		if resolves["threatpipe:"+ip] != 1 || comments[ip] != 1 {
			t.Errorf("%s turned benign: page resolved %d times, ticket commented %d times, want 1 and 1", ip, resolves["threatpipe:"+ip], comments[ip])
		}
	}
	for _, ip := range append(slices.Clone(kept), escalated...) {
		if resolves["threatpipe:"+ip] != 0 || comments[ip] != 0 || creates[ip] != 1 {
			t.Errorf("%s: %d resolves, %d comments, %d tickets; want 0, 0 and 1", ip, resolves["threatpipe:"+ip], comments[ip], creates[ip])
		}
	}
	notified := map[string]int{}
	for _, m := range pipelinetest.ReadAll(t, brokers, alerts) {
		notified[string(m.Key)]++
	}
	records := readRecords(t, brokers, results)
	checkChangeRecords(t, records, benign, escalated, nftOK)
	for _, ip := range escalated {
		if notified[ip] != 1 {
			t.Errorf("%s escalated: %d alerts on the alerts topic, want 1", ip, notified[ip])
		}
	}
	if len(notified) != len(escalated) {
		t.Errorf("alerts on the alerts topic for %v, want only the escalated addresses", notified)
	}
	if n := pipelinetest.Count(t, brokers, dlq); n != 0 {
		t.Errorf("%d dead letters", n)
	}
	writeReport(t, "act-changes.txt", fmt.Sprintf(
		"act changes test: 5 addresses blocked (nftables checked: %v); 3 de-escalated to low (each change delivered 3 times): lifted from the EDL and the nftables set, "+
			"page resolved and ticket commented once each; 2 escalated to critical (each delivered twice): the escalated playbook alerted once each; audit records: %d\n",
		nftOK, len(records)))
}

// checkBlocked waits until the EDL (and the nftables set) list exactly want.
func checkBlocked(t *testing.T, base, netns string, nftOK bool, want []string) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	pipelinetest.WaitFor(t, 20*time.Second, fmt.Sprintf("the EDL to list %v", want), func() bool {
		return slices.Equal(slices.Sorted(slices.Values(edlList(t, base))), want)
	})
	if nftOK {
		pipelinetest.WaitFor(t, 20*time.Second, fmt.Sprintf("the nftables set to hold %v", want), func() bool {
			return slices.Equal(slices.Sorted(slices.Values(nftElements(t, netns))), want)
		})
	}
}

// checkChangeRecords: each de-escalated address has one lifted record per block sink, one
// resolved and one commented, naming the change; each escalated address one escalated/notify
// done and one duplicate.
func checkChangeRecords(t *testing.T, records []act.Record, benign, escalated []string, nftOK bool) {
	t.Helper()
	count := map[string]int{}
	for _, r := range records {
		if r.Change == nil {
			continue
		}
		count[fmt.Sprintf("%s %s/%s %s", r.Target, r.Playbook, r.Step, r.Outcome)]++
		if r.Change.Direction == event.Deescalated && r.Outcome != act.OutcomeCommented &&
			!strings.HasSuffix(r.Detail, "the verdict changed from critical 92 to low 28") {
			t.Errorf("%s: %s record detail %q does not name the change", r.Target, r.Outcome, r.Detail)
		}
		if r.Outcome == act.OutcomeCommented && r.Detail != "commented on "+r.Ref+": verdict changed: critical 92 -> low 28 (validated by no source)" {
			t.Errorf("%s: commented record detail %q", r.Target, r.Detail)
		}
	}
	for _, ip := range benign {
		want := map[string]int{"critical/block lifted": 1, "critical/page resolved": 1, "critical/ticket commented": 1}
		if nftOK {
			want["critical/block-host lifted"] = 1
		}
		for what, n := range want {
			if got := count[ip+" "+what]; got != n {
				t.Errorf("%s: %d %q records, want %d", ip, got, what, n)
			}
		}
	}
	for _, ip := range escalated {
		for what, n := range map[string]int{"escalated/notify done": 1, "escalated/notify duplicate": 1, "critical/block done": 1} {
			if got := count[ip+" "+what]; got != n {
				t.Errorf("%s: %d %q records, want %d", ip, got, what, n)
			}
		}
	}
}
