package main

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
	"github.com/threatpipe/threatpipe/pipeline/sign"
)

// TestE2EActActsOnlyOnSignedRecords runs the enricher and act with THREATPIPE_SIGNING_KEY on
// the real broker: the events the enricher scored (signed) are blocked; records forged on the
// scored topic (unsigned, signed with another key, a signed record with its address changed, a
// record signed as a change) are refused, dead-lettered with their reason and counted, and
// never reach the EDL.
func TestE2EActActsOnlyOnSignedRecords(t *testing.T) {
	const key = "e2e-signing-key-0123456789abcdef0123456789"
	brokers := pipelinetest.Kafka(t)
	redisAddr := pipelinetest.Redis(t)
	tp := newE2ETopics(t, brokers, 2)
	results := pipelinetest.Topic(t, brokers, "results", 1)
	actDLQ := pipelinetest.Topic(t, brokers, "actdlq", 1)
	alerts := pipelinetest.Topic(t, brokers, "alerts", 1)
	prefix := pipelinetest.Name(t, "sign")

	// The enricher has no provider configured: every event is published unscored (score 0),
	// and the playbook blocks whatever it is given.
	genuine := []string{"185.220.101.11", "185.220.101.12", "185.220.101.13"}
	var in []kafka.Message
	for i, ip := range genuine {
		in = append(in, kafka.Message{Key: []byte(ip), Value: fmt.Appendf(nil,
			`{"event_id":"genuine-%d","observed_at":"2026-11-27T10:00:00Z","source":"e2e","indicator":{"type":"ipv4-addr","value":%q}}`, i, ip)})
	}
	pipelinetest.Produce(t, brokers, tp.in, in)
	enrichAddr := freeAddr(t)
	enricher := startProc(t, enricherEnv(brokers, tp, enrichAddr, "THREATPIPE_REDIS_ADDR="+redisAddr,
		"THREATPIPE_REDIS_KEY_PREFIX="+prefix, "THREATPIPE_SIGNING_KEY="+key), enrichAddr)
	pipelinetest.WaitFor(t, 60*time.Second, "the enricher to publish the genuine events", func() bool {
		return pipelinetest.Count(t, brokers, tp.out) >= int64(len(genuine))
	})
	if err := enricher.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = enricher.wait(t, 30*time.Second)

	// What the enricher published verifies; then the forgeries go onto the same topic.
	k, _ := sign.NewKey(key)
	published := pipelinetest.ReadAll(t, brokers, tp.out)
	for _, m := range published {
		if err := sign.NewVerifier(k).Verify(sign.Scored, m); err != nil {
			t.Fatalf("the enricher published %s with %v", m.Key, err)
		}
	}
	other, _ := sign.NewKey("an-attackers-own-key-0123456789abcdef")
	forge := func(ip string) kafka.Message { return scoredMsg(t, ip, "forged-"+ip, 99) }
	unsigned := forge("185.220.102.1")
	otherKey := forge("185.220.102.2")
	sign.NewSigner(other).Sign(sign.Scored, &otherKey)
	asChange := forge("185.220.102.3")
	sign.NewSigner(k).Sign(sign.Change, &asChange)
	tampered := published[0] // a genuine record, its address swapped for another one
	orig := string(tampered.Key)
	tampered = kafka.Message{Key: []byte("185.220.102.4"), Headers: tampered.Headers,
		Value: []byte(strings.ReplaceAll(string(tampered.Value), orig, "185.220.102.4"))}
	pipelinetest.Produce(t, brokers, tp.out, []kafka.Message{unsigned, otherKey, asChange, tampered})

	playbooks := filepath.Join(t.TempDir(), "playbooks.yaml")
	if err := os.WriteFile(playbooks, []byte(`
playbooks:
  - name: everything
    when: score >= 0
    window: 1h
    steps:
      - {name: block, action: block, sink: edl, duration: 1h}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := actEnv(brokers, redisAddr, prefix, tp.out, results, actDLQ, alerts, playbooks, "http://127.0.0.1:1",
		"THREATPIPE_KAFKA_CHANGES_TOPIC="+tp.changes, "THREATPIPE_ACT_KINDS=block,changes", "THREATPIPE_SIGNING_KEY="+key)
	actAddr := freeAddr(t)
	worker := startCommand(t, "act", append(env, "THREATPIPE_HTTP_ADDR="+actAddr), actAddr)
	waitActCommitted(t, brokers, tp.out, 60*time.Second, prefix+"-block")

	listed := edlList(t, "http://"+actAddr)
	slices.Sort(listed)
	if !slices.Equal(listed, genuine) {
		t.Errorf("the EDL lists %v, want exactly the enricher's %v", listed, genuine)
	}
	classes := map[string]string{}
	for _, m := range pipelinetest.ReadAll(t, brokers, actDLQ) {
		classes[string(m.Key)] = pipelinetest.Header(m, pipeline.HeaderErrorClass)
	}
	want := map[string]string{"185.220.102.1": "unsigned", "185.220.102.2": "unknown_key", "185.220.102.3": "bad_signature", "185.220.102.4": "bad_signature"}
	if !maps.Equal(classes, want) {
		t.Errorf("dead letters by key %v, want %v", classes, want)
	}
	for _, r := range readRecords(t, brokers, results) {
		if strings.HasPrefix(r.Target, "185.220.102.") || (r.Outcome != act.OutcomeDone && r.Outcome != act.OutcomeDuplicate) {
			t.Errorf("audit record %+v: a forged record was acted on, or a genuine one was not", r)
		}
	}
	metrics := scrapeMatches(t, "http://"+actAddr+"/metrics", `threatpipe_act_signatures_total\{purpose="scored",result="([a-z_]+)"\} (\d+)`)
	if metrics["verified"] != "3" || metrics["refused_unsigned"] != "1" || metrics["refused_unknown_key"] != "1" || metrics["refused_bad_signature"] != "2" {
		t.Errorf("threatpipe_act_signatures_total: %v", metrics)
	}
	if err := worker.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := worker.wait(t, 30*time.Second); err != nil {
		t.Errorf("act exited with %v after SIGTERM", err)
	}
	writeReport(t, "act-signatures.txt", fmt.Sprintf(
		"signed scored events: %d published by the enricher, all verified and blocked; forged records on the scored topic: 4 "+
			"(unsigned, another key, signed as a change, a signed record with its address changed), 0 acted on, dead-lettered as %v\n",
		len(genuine), classes))
}

// scrapeMatches reads a Prometheus text endpoint and returns the first two groups of every line
// matching re.
func scrapeMatches(t *testing.T, url, re string) map[string]string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	out := map[string]string{}
	for _, m := range regexp.MustCompile(re).FindAllStringSubmatch(string(body), -1) {
		out[m[1]] = m[2]
	}
	return out
}
