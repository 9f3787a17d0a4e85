package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/docs"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// socFakes stands in for PagerDuty and Jira Cloud with the behaviour that matters here: PagerDuty
// deduplicates triggers by dedup_key into one incident; Jira creates an issue per request and
// finds issues by label. Each answer waits a little, so that actions are in flight when the
// worker is killed. The sink packages' own tests check the request shapes strictly.
type socFakes struct {
	mu        sync.Mutex
	triggers  map[string]int // dedup_key -> trigger requests
	resolves  map[string]int
	creates   map[string]int // IP -> issues created
	labels    map[string]string
	comments  map[string]int // IP -> comments
	issueIP   map[string]string
	nextIssue int
	delay     time.Duration
}

var ipInSummary = regexp.MustCompile(`threatpipe: (\S+) scored`)

// serveSOCFakes serves new SOC fakes (EDL, PagerDuty, Jira) for the test's life.
func serveSOCFakes(t *testing.T, delay time.Duration) (*socFakes, string) {
	t.Helper()
	fakes := newSOCFakes(delay)
	srv := httptest.NewServer(fakes)
	t.Cleanup(srv.Close)
	return fakes, srv.URL
}

// criticalPlaybook writes a playbook file that blocks, pages and tickets every address scoring
// threshold or more, once an hour.
func criticalPlaybook(t *testing.T, threshold int) string {
	t.Helper()
	playbooks := filepath.Join(t.TempDir(), "playbooks.yaml")
	if err := os.WriteFile(playbooks, []byte(fmt.Sprintf(`
playbooks:
  - name: critical
    when: score >= %d
    window: 1h
    steps:
      - {name: block, action: block, sink: edl, duration: 1h}
      - {name: page, action: alert, sink: pagerduty}
      - {name: ticket, action: ticket, sink: jira}
`, threshold)), 0o600); err != nil {
		t.Fatal(err)
	}
	return playbooks
}

func newSOCFakes(delay time.Duration) *socFakes {
	return &socFakes{triggers: map[string]int{}, resolves: map[string]int{}, creates: map[string]int{},
		labels: map[string]string{}, comments: map[string]int{}, issueIP: map[string]string{}, delay: delay}
}

func (f *socFakes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	time.Sleep(f.delay)
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v2/enqueue":
		var ev struct {
			Action   string `json:"event_action"`
			DedupKey string `json:"dedup_key"`
		}
		_ = json.Unmarshal(body, &ev)
		if ev.Action == "resolve" {
			f.resolves[ev.DedupKey]++
		} else {
			f.triggers[ev.DedupKey]++
		}
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"status":"success","message":"Event processed","dedup_key":%q}`, ev.DedupKey)
	case r.Method == http.MethodPost && r.URL.Path == "/rest/api/3/issue":
		var req struct {
			Fields struct {
				Summary string   `json:"summary"`
				Labels  []string `json:"labels"`
			} `json:"fields"`
		}
		_ = json.Unmarshal(body, &req)
		m := ipInSummary.FindStringSubmatch(req.Fields.Summary)
		if m == nil {
			http.Error(w, `{"errorMessages":["no IP in summary"],"errors":{}}`, http.StatusBadRequest)
			return
		}
		f.nextIssue++
		key := fmt.Sprintf("SOC-%d", f.nextIssue)
		f.creates[m[1]]++
		f.issueIP[key] = m[1]
		for _, l := range req.Fields.Labels {
			if strings.HasPrefix(l, "tp-") {
				f.labels[l] = key
			}
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":"%d","key":%q,"self":"https://example.atlassian.net/rest/api/3/issue/%d"}`, 10000+f.nextIssue, key, 10000+f.nextIssue)
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/rest/api/3/issue/") && strings.HasSuffix(r.URL.Path, "/comment"):
		key := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/rest/api/3/issue/"), "/comment")
		ip, ok := f.issueIP[key]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errorMessages":["Issue does not exist or you do not have permission to see it."],"errors":{}}`)
			return
		}
		f.comments[ip]++
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"id":"1","body":{"type":"doc","version":1,"content":[]}}`)
	case r.Method == http.MethodPost && r.URL.Path == "/rest/api/3/search/jql":
		var req struct {
			JQL string `json:"jql"`
		}
		_ = json.Unmarshal(body, &req)
		label := regexp.MustCompile(`tp-[0-9a-f]+`).FindString(req.JQL)
		if key, ok := f.labels[label]; ok && label != "" {
			fmt.Fprintf(w, `{"issues":[{"id":"1","key":%q,"self":"x","fields":{}}],"isLast":true}`, key)
			return
		}
		fmt.Fprint(w, `{"issues":[],"isLast":true}`)
	default:
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
	}
}

func (f *socFakes) snapshot() (triggers, resolves, creates, comments map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	clone := func(m map[string]int) map[string]int {
		out := make(map[string]int, len(m))
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	return clone(f.triggers), clone(f.resolves), clone(f.creates), clone(f.comments)
}

func scoredMsg(t *testing.T, ip, eventID string, score int) kafka.Message {
	t.Helper()
	ev := event.Scored{
		SchemaVersion: event.SchemaVersion, EventID: eventID, ObservedAt: time.Now().UTC(), ProcessedAt: time.Now().UTC(),
		Source: "e2e", InputFormat: event.FormatNative, Indicator: event.Indicator{Type: event.IPv4, Value: ip},
		Score: score, Severity: event.SeverityOf(score), Tags: []string{"scanner"},
		Reasons: []event.Reason{{Source: "criminalip", Detail: "inbound critical", Points: score}},
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Key: []byte(ip), Value: raw}
}

// TestE2EActKill9ActsOncePerWindow runs `threatpipe act` on a stream of scored events with
// repeats and exact duplicates, kills it with SIGKILL while actions are in flight, restarts it,
// and checks that every qualifying IP got exactly one block, one PagerDuty incident and one Jira
// ticket (repeats became comments), that never-block addresses were never blocked, and that the
// blocks were lifted (EDL, and nftables when the test can create a network namespace) and their
// pages resolved once they expired.
func TestE2EActKill9ActsOncePerWindow(t *testing.T) {
	brokers := pipelinetest.Kafka(t)
	redisAddr := pipelinetest.Redis(t)
	scored := pipelinetest.Topic(t, brokers, "scored", 3)
	results := pipelinetest.Topic(t, brokers, "results", 3)
	dlq := pipelinetest.Topic(t, brokers, "actdlq", 1)
	alerts := pipelinetest.Topic(t, brokers, "alerts", 1)

	fakes := newSOCFakes(120 * time.Millisecond)
	srv := httptest.NewServer(fakes)
	t.Cleanup(srv.Close)

	netns, nftOK := nftNamespace(t)
	blockSteps := "      - {name: block, action: block, sink: edl, duration: 6s}\n"
	if nftOK {
		blockSteps += "      - {name: block-host, action: block, sink: nftables, duration: 6s}\n"
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
  - name: shadow
    when: score >= 80
    dry_run: true
    steps:
      - {name: would-page, action: alert, sink: pagerduty}
`), 0o600); err != nil {
		t.Fatal(err)
	}

	// 40 public IPs seen three times each (distinct events), every first event delivered twice;
	// 4 private addresses scoring high (paged and ticketed, never blocked); 30 low scores.
	var msgs []kafka.Message
	var public, private []string
	for i := range 40 {
		public = append(public, fmt.Sprintf("185.220.101.%d", i+1)) // routable: documentation ranges are never-block
	}
	for i := range 4 {
		private = append(private, fmt.Sprintf("10.9.0.%d", i+1))
	}
	for round := range 3 {
		for _, ip := range append(append([]string{}, public...), private...) {
			m := scoredMsg(t, ip, fmt.Sprintf("ev-%s-%d", ip, round), 90)
			msgs = append(msgs, m)
			if round == 0 {
				msgs = append(msgs, m) // redelivered duplicate
			}
		}
		for i := range 10 {
			msgs = append(msgs, scoredMsg(t, fmt.Sprintf("45.133.1.%d", i+1), fmt.Sprintf("low-%d-%d", i, round), 10))
		}
	}
	pipelinetest.Produce(t, brokers, scored, msgs)

	prefix := pipelinetest.Name(t, "act")
	env := actEnv(brokers, redisAddr, prefix, scored, results, dlq, alerts, playbooks, srv.URL,
		"THREATPIPE_ACT_MAX_BLOCKS_PER_MINUTE=1000", "THREATPIPE_KAFKA_CHANGES_TOPIC="+pipelinetest.Topic(t, brokers, "changes", 1))
	if nftOK {
		env = append(env, "THREATPIPE_SINK_NFTABLES_ENABLED=true", "THREATPIPE_SINK_NFTABLES_NETNS="+netns,
			"THREATPIPE_SINK_NFTABLES_TABLE=tpe2e")
	}

	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		hist := map[string]int{}
		for _, r := range readRecords(t, brokers, results) {
			hist[fmt.Sprintf("%s/%s/%s %s", r.Playbook, r.Step, r.Outcome, r.Error)]++
		}
		t.Logf("audit outcomes: %v", hist)
	})

	httpAddr := freeAddr(t)
	first := startCommand(t, "act", append(env, "THREATPIPE_HTTP_ADDR="+httpAddr), httpAddr)
	pipelinetest.WaitFor(t, 60*time.Second, "a third of the tickets to be created", func() bool {
		_, _, creates, _ := fakes.snapshot()
		return len(creates) >= 15
	})
	edl := edlList(t, "http://"+httpAddr)
	if len(edl) == 0 {
		t.Errorf("the EDL served nothing while blocks were active")
	}
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.wait(t, 10*time.Second)
	_, _, createsAtKill, _ := fakes.snapshot()

	httpAddr2 := freeAddr(t)
	second := startCommand(t, "act", append(env, "THREATPIPE_HTTP_ADDR="+httpAddr2), httpAddr2)
	waitActCommitted(t, brokers, scored, 90*time.Second, prefix+"-block", prefix+"-alert", prefix+"-ticket")
	pipelinetest.WaitFor(t, 30*time.Second, "every block to be lifted and its page resolved", func() bool {
		_, resolves, _, _ := fakes.snapshot()
		return len(edlList(t, "http://"+httpAddr2)) == 0 && len(resolves) == len(public)
	})
	if nftOK {
		// Each block sink's block is lifted on its own (the pages resolve with the first).
		pipelinetest.WaitFor(t, 20*time.Second, "the nftables set to be empty", func() bool {
			return len(nftElements(t, netns)) == 0
		})
	}
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.wait(t, 30*time.Second); err != nil {
		t.Errorf("act exited with %v after SIGTERM", err)
	}

	triggers, resolves, creates, comments := fakes.snapshot()
	records := readRecords(t, brokers, results)
	qualifying := append(append([]string{}, public...), private...)
	var extraTriggers, extraComments int
	for _, ip := range qualifying {
		if creates[ip] != 1 {
			t.Errorf("%s: %d Jira tickets, want exactly 1", ip, creates[ip])
		}
		// Two more distinct events within the window: two comments. A comment whose ledger
		// record a crash prevented is repeated once; that can only happen to the few in flight.
		if comments[ip] < 2 || comments[ip] > 3 {
			t.Errorf("%s: %d comments, want 2 (3 at most after the crash)", ip, comments[ip])
		}
		extraComments += comments[ip] - 2
		key := "threatpipe:" + ip
		if triggers[key] < 1 {
			t.Errorf("%s: never paged", ip)
		}
		extraTriggers += triggers[key] - 1
	}
	// At most the actions in flight at the kill (4 workers per kind) may repeat.
	if extraComments > 4 || extraTriggers > 4 {
		t.Errorf("%d repeated comments and %d repeated triggers: more than the 4 actions per kind in flight at the kill", extraComments, extraTriggers)
	}
	if len(triggers) != len(qualifying) {
		t.Errorf("PagerDuty incidents (distinct dedup keys) = %d, want %d", len(triggers), len(qualifying))
	}
	for _, ip := range public {
		if resolves["threatpipe:"+ip] != 1 {
			t.Errorf("%s: page resolved %d times after its block lapsed, want 1", ip, resolves["threatpipe:"+ip])
		}
	}
	blocked, lifted, redelivered := map[string]int{}, map[string]int{}, map[string]int{}
	for _, r := range records {
		if r.Kind == "block" && r.Step == "block" {
			switch r.Outcome {
			case act.OutcomeDone:
				blocked[r.Target]++
			case act.OutcomeLifted:
				lifted[r.Target]++
			case act.OutcomeDuplicate:
				redelivered[r.Target]++
			}
		}
		for _, ip := range private {
			if r.Target == ip && r.Kind == "block" && r.Outcome != act.OutcomeNeverBlock && r.Outcome != act.OutcomeDuplicate {
				t.Errorf("never-block address %s: block outcome %s", ip, r.Outcome)
			}
		}
		if r.Playbook == "shadow" && r.Outcome != act.OutcomeDryRun && r.Outcome != act.OutcomeDuplicate && r.Outcome != act.OutcomeSuppressed {
			t.Errorf("dry-run playbook recorded %s", r.Outcome)
		}
	}
	for _, ip := range public {
		// A kill between the ledger settling a block and its audit record being published loses
		// the record (docs/playbooks.md, Known limits): the redelivered event is then a duplicate,
		// and the block's lifting is what shows it happened.
		lostRecord := blocked[ip] == 0 && lifted[ip] == 1 && redelivered[ip] > 0
		if (blocked[ip] < 1 || blocked[ip] > 2) && !lostRecord {
			t.Errorf("%s: %d block records, want 1 (2 when a crash interrupted it and it was repeated)", ip, blocked[ip])
		}
	}
	if n := countOutcome(records, act.OutcomeDuplicate); n == 0 {
		t.Errorf("no duplicate outcomes recorded for the redelivered events")
	}
	writeReport(t, "act-kill9.txt", fmt.Sprintf(
		"act kill -9 test: %d scored events (%d qualifying IPs x 3 events + duplicates); SIGKILL after %d tickets; "+
			"tickets per IP: exactly 1 for all %d; PagerDuty incidents %d (%d repeated trigger requests after the crash, deduplicated by dedup_key); "+
			"comments beyond the 2 expected per IP: %d; blocks lifted and pages resolved: %d; audit records: %d; nftables checked: %v\n",
		len(msgs), len(qualifying), len(createsAtKill), len(qualifying), len(triggers), extraTriggers, extraComments, len(resolves), len(records), nftOK))
}

func actEnv(brokers []string, redisAddr, prefix, scored, results, dlq, alerts, playbooks, fakeURL string, extra ...string) []string {
	return append([]string{
		"PATH=" + os.Getenv("PATH"),
		"THREATPIPE_KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"THREATPIPE_KAFKA_OUTPUT_TOPIC=" + scored,
		"THREATPIPE_KAFKA_COMMIT_INTERVAL=200ms",
		"THREATPIPE_KAFKA_SESSION_TIMEOUT=6s", "THREATPIPE_KAFKA_HEARTBEAT_INTERVAL=1s",
		"THREATPIPE_REDIS_ADDR=" + redisAddr, "THREATPIPE_REDIS_KEY_PREFIX=" + prefix,
		"THREATPIPE_ACT_PLAYBOOKS=" + playbooks, "THREATPIPE_ACT_GROUP_PREFIX=" + prefix,
		"THREATPIPE_ACT_RESULTS_TOPIC=" + results, "THREATPIPE_ACT_DLQ_TOPIC=" + dlq,
		"THREATPIPE_ACT_WORKERS=4", "THREATPIPE_ACT_LIFT_INTERVAL=500ms", "THREATPIPE_ACT_RECONCILE_INTERVAL=1s",
		"THREATPIPE_SINK_EDL_ENABLED=true", "THREATPIPE_SINK_KAFKA_TOPIC=" + alerts,
		"THREATPIPE_SINK_PAGERDUTY_ROUTING_KEY=R0123456789abcdef0123456789abcde",
		"THREATPIPE_SINK_PAGERDUTY_URL=" + fakeURL + "/v2/enqueue",
		"THREATPIPE_SINK_JIRA_BASE_URL=" + fakeURL, "THREATPIPE_SINK_JIRA_EMAIL=soc@example.com",
		"THREATPIPE_SINK_JIRA_API_TOKEN=e2e-token", "THREATPIPE_SINK_JIRA_PROJECT_KEY=SOC",
		"THREATPIPE_LOG_LEVEL=info",
	}, extra...)
}

// waitActCommitted waits until every worker group has committed the whole scored topic.
func waitActCommitted(t *testing.T, brokers []string, scored string, timeout time.Duration, groups ...string) {
	t.Helper()
	end := pipelinetest.EndOffsets(t, brokers, scored)
	pipelinetest.WaitFor(t, timeout, "the worker groups to commit the whole stream", func() bool {
		for _, g := range groups {
			c := pipelinetest.Committed(t, brokers, g, scored)
			for p, off := range end {
				if c[p] < off {
					return false
				}
			}
		}
		return true
	})
}

func countOutcome(records []act.Record, o act.Outcome) int {
	n := 0
	for _, r := range records {
		if r.Outcome == o {
			n++
		}
	}
	return n
}

// readRecords reads the audit topic, checking every record against its JSON Schema.
func readRecords(t *testing.T, brokers []string, topic string) []act.Record {
	t.Helper()
	v, err := docs.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	var out []act.Record
	for _, m := range pipelinetest.ReadAll(t, brokers, topic) {
		if err := v.Validate(docs.ActionRecordSchema, m.Value); err != nil {
			t.Errorf("audit record %s does not match its schema: %v", m.Value, err)
		}
		var r act.Record
		if err := json.Unmarshal(m.Value, &r); err != nil {
			t.Fatalf("audit record %s: %v", m.Value, err)
		}
		out = append(out, r)
	}
	return out
}

func edlList(t *testing.T, base string) []string {
	t.Helper()
	res, err := http.Get(base + "/edl/blocklist.txt")
	if err != nil {
		t.Fatalf("EDL: %v", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("EDL: HTTP %d: %s", res.StatusCode, body)
	}
	return strings.Fields(string(body))
}

// nftNamespace creates a network namespace for the nftables sink when the test runs as root with
// nft and ip installed; otherwise the nftables part is skipped (the EDL part still runs).
func nftNamespace(t *testing.T) (string, bool) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Log("nftables part skipped: not root")
		return "", false
	}
	for _, tool := range []string{"nft", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Logf("nftables part skipped: %s not installed (scripts/install-nft.sh)", tool)
			return "", false
		}
	}
	ns := fmt.Sprintf("tpe2e%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Logf("nftables part skipped: ip netns add: %v: %s", err, out)
		return "", false
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	return ns, true
}

func nftElements(t *testing.T, ns string) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "set", "inet", "tpe2e", "blocklist_v4").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list set: %v: %s", err, out)
	}
	return regexp.MustCompile(`\d+\.\d+\.\d+\.\d+`).FindAllString(string(out), -1)
}

// TestE2EActGuardrails: a flood of critical indicators trips the block rate cap to alert-only
// (with an alert on the alerts topic), a dry-run playbook records every decision and performs
// none, and the run-time kill switch set by `threatpipe act --kill-switch on` stops every action
// of a running worker until it is switched off.
func TestE2EActGuardrails(t *testing.T) {
	brokers := pipelinetest.Kafka(t)
	redisAddr := pipelinetest.Redis(t)
	scored := pipelinetest.Topic(t, brokers, "scored", 2)
	results := pipelinetest.Topic(t, brokers, "results", 2)
	dlq := pipelinetest.Topic(t, brokers, "actdlq", 1)
	alerts := pipelinetest.Topic(t, brokers, "alerts", 1)
	fakes := newSOCFakes(0)
	srv := httptest.NewServer(fakes)
	t.Cleanup(srv.Close)

	playbooks := filepath.Join(t.TempDir(), "playbooks.yaml")
	if err := os.WriteFile(playbooks, []byte(`
playbooks:
  - name: flood
    when: score >= 80
    steps:
      - {name: block, action: block, sink: edl, duration: 1h}
      - {name: alert, action: alert, sink: kafka}
  - name: shadow
    when: score >= 80
    dry_run: true
    steps:
      - {name: ticket, action: ticket, sink: jira}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	const flood, capPerMinute = 30, 10
	var msgs []kafka.Message
	for i := range flood {
		msgs = append(msgs, scoredMsg(t, fmt.Sprintf("185.220.102.%d", i+1), fmt.Sprintf("flood-%d", i), 95))
	}
	pipelinetest.Produce(t, brokers, scored, msgs)

	prefix := pipelinetest.Name(t, "act")
	env := actEnv(brokers, redisAddr, prefix, scored, results, dlq, alerts, playbooks, srv.URL,
		fmt.Sprintf("THREATPIPE_ACT_MAX_BLOCKS_PER_MINUTE=%d", capPerMinute), "THREATPIPE_KAFKA_CHANGES_TOPIC="+pipelinetest.Topic(t, brokers, "changes", 1))
	httpAddr := freeAddr(t)
	worker := startCommand(t, "act", append(env, "THREATPIPE_HTTP_ADDR="+httpAddr), httpAddr)
	groups := []string{prefix + "-block", prefix + "-alert", prefix + "-ticket"}
	waitActCommitted(t, brokers, scored, 60*time.Second, groups...)

	records := readRecords(t, brokers, results)
	count := func(playbook, step string, o act.Outcome) int {
		n := 0
		for _, r := range records {
			if r.Playbook == playbook && r.Step == step && r.Outcome == o {
				n++
			}
		}
		return n
	}
	if got := count("flood", "block", act.OutcomeDone); got != capPerMinute {
		t.Errorf("%d blocks done in the flood, want the cap of %d", got, capPerMinute)
	}
	if got := count("flood", "block", act.OutcomeRateCapped); got != flood-capPerMinute {
		t.Errorf("%d blocks suppressed by the rate cap, want %d", got, flood-capPerMinute)
	}
	if got := len(edlList(t, "http://"+httpAddr)); got != capPerMinute {
		t.Errorf("the EDL lists %d addresses, want %d", got, capPerMinute)
	}
	if got := count("flood", "alert", act.OutcomeDone); got != flood {
		t.Errorf("%d alerts, want one per indicator (%d): alert-only means alerts still go out", got, flood)
	}
	var tripAlerts int
	for _, m := range pipelinetest.ReadAll(t, brokers, alerts) {
		if strings.Contains(string(m.Value), "block rate cap tripped") {
			tripAlerts++
		}
	}
	if tripAlerts != 1 {
		t.Errorf("%d rate-cap alerts on the alerts topic, want 1", tripAlerts)
	}
	if got := count("shadow", "ticket", act.OutcomeDryRun); got != flood {
		t.Errorf("%d dry-run records, want %d", got, flood)
	}
	if _, _, creates, comments := fakes.snapshot(); len(creates)+len(comments) != 0 {
		t.Errorf("the dry-run playbook reached Jira: %d creates, %d comments", len(creates), len(comments))
	}

	// The kill switch stops the running worker within its one-second cache.
	kill := exec.Command(binary, "act", "--kill-switch", "on")
	kill.Env = env
	if out, err := kill.CombinedOutput(); err != nil {
		t.Fatalf("act --kill-switch on: %v: %s", err, out)
	}
	time.Sleep(1500 * time.Millisecond)
	pipelinetest.Produce(t, brokers, scored, []kafka.Message{
		scoredMsg(t, "185.220.103.1", "after-kill-1", 99), scoredMsg(t, "185.220.103.2", "after-kill-2", 99)})
	waitActCommitted(t, brokers, scored, 30*time.Second, groups...)
	var killed, acted int
	for _, r := range readRecords(t, brokers, results) {
		if !strings.HasPrefix(r.EventID, "after-kill") {
			continue
		}
		if r.Outcome == act.OutcomeKillSwitch {
			killed++
		} else {
			acted++
		}
	}
	if killed != 6 || acted != 0 {
		t.Errorf("with the kill switch on: %d kill_switch records and %d others, want 6 and 0 (3 steps x 2 events)", killed, acted)
	}
	unkill := exec.Command(binary, "act", "--kill-switch", "off")
	unkill.Env = env
	if out, err := unkill.CombinedOutput(); err != nil {
		t.Fatalf("act --kill-switch off: %v: %s", err, out)
	}
	if err := worker.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := worker.wait(t, 30*time.Second); err != nil {
		t.Errorf("act exited with %v after SIGTERM", err)
	}
	writeReport(t, "act-guardrails.txt", fmt.Sprintf(
		"act guardrails test: flood of %d critical indicators with a cap of %d blocks/minute: %d blocked, %d alert-only, %d rate-cap alert; "+
			"dry-run playbook: %d decisions recorded, 0 performed; kill switch: %d actions stopped, 0 performed\n",
		flood, capPerMinute, count("flood", "block", act.OutcomeDone), count("flood", "block", act.OutcomeRateCapped), tripAlerts,
		count("shadow", "ticket", act.OutcomeDryRun), killed))
}

// TestActValidate: --validate compiles the playbooks against the configured sinks and exits,
// reporting every problem at once with the playbook, the step and the variable named.
func TestActValidate(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", `
playbooks:
  - name: critical
    when: score >= 80 && "tor" in tags
    steps:
      - {action: block, sink: edl, duration: 2h}
      - {action: alert, sink: kafka}
`)
	bad := write("bad.yaml", `
playbooks:
  - name: critical
    when: score >= "80"
    steps:
      - {action: ticket, sink: jira}
      - {action: alert, sink: edl}
`)
	run := func(file string) (string, error) {
		cmd := exec.Command(binary, "act", "--validate")
		cmd.Env = []string{"THREATPIPE_ACT_PLAYBOOKS=" + file, "THREATPIPE_SINK_EDL_ENABLED=true", "THREATPIPE_HTTP_ADDR=127.0.0.1:0"}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(good)
	if err != nil || !strings.Contains(out, "playbooks OK") || !strings.Contains(out, "block via edl for 2h0m0s") {
		t.Errorf("valid playbooks: err %v, output:\n%s", err, out)
	}
	out, err = run(bad)
	if err == nil {
		t.Fatalf("invalid playbooks accepted:\n%s", out)
	}
	for _, want := range []string{"THREATPIPE_ACT_PLAYBOOKS", `playbook "critical": when`, `sink "jira" is not configured`,
		`sink "edl" performs block actions, not alert`} {
		if !strings.Contains(out, want) {
			t.Errorf("error output lacks %q:\n%s", want, out)
		}
	}
}
