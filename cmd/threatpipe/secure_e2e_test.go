package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/enrich/sim"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// secureTopics creates the enricher's topics on the secured broker, which creates none by
// itself (auto-creation is off there, as on most managed clusters).
func secureTopics(t *testing.T, b *pipelinetest.Broker) (e2eTopics, []string) {
	tp := e2eTopics{
		in: b.Topic(t, "in", 3), out: b.Topic(t, "out", 3), dlq: b.Topic(t, "dlq", 1),
		changes: b.Topic(t, "changes", 1), group: pipelinetest.Name(t, "group"),
	}
	return tp, []string{"THREATPIPE_KAFKA_OPS_TOPIC=" + b.Topic(t, "ops", 1)}
}

// TestE2ESecuredEnrichAndAct runs the enricher and the playbook worker as processes whose only
// way to Kafka is SASL_SSL with SCRAM-SHA-512 and whose only way to Redis is TLS with a client
// certificate and an ACL user (scripts/services.sh up-secure): events in, scored events out,
// one paid lookup per address through the Redis lease, and one page, one ticket and one block per
// qualifying address through the Redis ledger, then a clean SIGTERM of both.
func TestE2ESecuredEnrichAndAct(t *testing.T) {
	s := pipelinetest.SecureServices(t)
	b := s.Kafka
	tp, opsEnv := secureTopics(t, b)
	simSrv, simURL := simulator(t, sim.Options{})
	ips := publicIPs(60)
	msgs := eventsFor(ips, 2, "sec", 11)
	b.Produce(t, tp.in, msgs)

	enrichHTTP := freeAddr(t)
	pEnv := providerEnv(t, s.RedisAddr, simURL, "sim-key")
	enricher := startProc(t, enricherEnv(b.Addrs, tp, enrichHTTP, append(append(s.Env(), opsEnv...), pEnv...)...), enrichHTTP)
	pipelinetest.WaitFor(t, 90*time.Second, "every event scored on the secured broker", func() bool {
		return b.Count(t, tp.out) >= int64(len(msgs))
	})
	if code := readyz(t, enrichHTTP); code != http.StatusOK {
		t.Errorf("enricher /readyz = %d, want 200 (Kafka and Redis both reached over TLS)", code)
	}

	scored := map[string]int{} // IP -> score
	for _, m := range b.ReadAll(t, tp.out) {
		var ev event.Scored
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Fatalf("output is not a scored event: %v", err)
		}
		scored[ev.Indicator.Value] = ev.Score
	}
	if len(scored) != len(ips) {
		t.Fatalf("%d distinct addresses scored, want %d", len(scored), len(ips))
	}
	st := simSrv.Stats()
	if st.Answered != int64(len(ips)) || st.MaxCallsPerIP != 1 {
		t.Errorf("provider answered %d lookups (at most %d per address), want exactly 1 per address (%d)", st.Answered, st.MaxCallsPerIP, len(ips))
	}
	const threshold = 50
	var qualifying []string
	for ip, score := range scored {
		if score >= threshold {
			qualifying = append(qualifying, ip)
		}
	}
	if len(qualifying) == 0 || len(qualifying) == len(ips) {
		t.Fatalf("%d of %d addresses score %d or more: the playbook would not tell acting from not acting", len(qualifying), len(ips), threshold)
	}

	fakes, sinksURL := serveSOCFakes(t, 0)
	playbooks := criticalPlaybook(t, threshold)
	prefix := pipelinetest.Name(t, "act")
	results, actDLQ, alerts := b.Topic(t, "results", 1), b.Topic(t, "actdlq", 1), b.Topic(t, "alerts", 1)
	actHTTP := freeAddr(t)
	env := actEnv(b.Addrs, s.RedisAddr, prefix, tp.out, results, actDLQ, alerts, playbooks, sinksURL,
		append(s.Env("THREATPIPE_REDIS_KEY_PREFIX="+prefix, "THREATPIPE_KAFKA_CHANGES_TOPIC="+tp.changes,
			"THREATPIPE_HTTP_ADDR="+actHTTP, "THREATPIPE_ACT_MAX_BLOCKS_PER_MINUTE=1000"), opsEnv...)...)
	worker := startCommand(t, "act", env, actHTTP)
	end := b.EndOffsets(t, tp.out)
	pipelinetest.WaitFor(t, 90*time.Second, "the act groups to commit every scored event", func() bool {
		for _, kind := range []string{"block", "alert", "ticket"} {
			c := b.Committed(t, prefix+"-"+kind, tp.out)
			for p, off := range end {
				if c[p] < off {
					return false
				}
			}
		}
		return true
	})
	if code := readyz(t, actHTTP); code != http.StatusOK {
		t.Errorf("act /readyz = %d, want 200", code)
	}

	triggers, _, creates, _ := fakes.snapshot()
	blocked := edlList(t, "http://"+actHTTP)
	for _, ip := range ips {
		want := 0
		if slices.Contains(qualifying, ip) {
			want = 1
		}
		if triggers["threatpipe:"+ip] != want || creates[ip] != want {
			t.Errorf("%s (score %d): %d pages and %d tickets, want %d of each", ip, scored[ip], triggers["threatpipe:"+ip], creates[ip], want)
		}
		if slices.Contains(blocked, ip) != (want == 1) {
			t.Errorf("%s (score %d): on the EDL = %v", ip, scored[ip], !slices.Contains(blocked, ip))
		}
	}
	done := 0
	for _, m := range b.ReadAll(t, results) {
		var r act.Record
		if err := json.Unmarshal(m.Value, &r); err != nil {
			t.Fatalf("audit record %s: %v", m.Value, err)
		}
		if r.Outcome == act.OutcomeDone {
			done++
		}
	}
	if done != 3*len(qualifying) {
		t.Errorf("%d actions done in the audit topic, want %d (3 steps x %d addresses)", done, 3*len(qualifying), len(qualifying))
	}
	cacheKeys := countKeys(t, s, providerPrefix(t, pEnv))
	ledgerKeys := countKeys(t, s, prefix)
	if cacheKeys == 0 || ledgerKeys == 0 {
		t.Errorf("secured Redis holds %d cache keys and %d ledger keys: both must be there", cacheKeys, ledgerKeys)
	}

	for _, p := range []*proc{enricher, worker} {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range []*proc{enricher, worker} {
		if err := p.wait(t, 30*time.Second); err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	}
	writeReport(t, "secured-e2e.txt", fmt.Sprintf(
		"secured end to end (Kafka SASL_SSL SCRAM-SHA-512 %s, Redis TLS + client certificate + ACL user %s): "+
			"%d events -> %d scored, %d paid lookups for %d addresses; act: %d addresses over %d, %d actions done, "+
			"%d pages, %d tickets, %d on the EDL; secured Redis: %d cache keys, %d ledger keys\n",
		strings.Join(b.Addrs, ","), s.RedisAddr, len(msgs), b.Count(t, tp.out), st.Answered, len(ips),
		len(qualifying), threshold, done, len(triggers), len(creates), len(blocked), cacheKeys, ledgerKeys))
}

// TestE2ESecuredBadSettingsFailStart starts the enricher and the playbook worker with one
// setting the secured services reject, and checks that each exits at once with an error that
// names the variable to fix (instead of retrying behind a not-ready probe).
func TestE2ESecuredBadSettingsFailStart(t *testing.T) {
	s := pipelinetest.SecureServices(t)
	untrusted := pipelinetest.UntrustedCA(t)
	playbooks := filepath.Join(t.TempDir(), "playbooks.yaml")
	if err := os.WriteFile(playbooks, []byte("playbooks:\n  - name: p\n    when: score >= 80\n    steps:\n      - {name: page, action: alert, sink: pagerduty}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cmd, setting, want string
	}{
		{"enrich", "THREATPIPE_KAFKA_SASL_PASSWORD=wrong", "THREATPIPE_KAFKA_SASL_PASSWORD"},
		{"enrich", "THREATPIPE_KAFKA_TLS_CA_FILE=" + untrusted, "THREATPIPE_KAFKA_TLS_CA_FILE"},
		{"enrich", "THREATPIPE_REDIS_PASSWORD=wrong", "THREATPIPE_REDIS_PASSWORD"},
		{"enrich", "THREATPIPE_REDIS_TLS_CA_FILE=" + untrusted, "THREATPIPE_REDIS_TLS_CA_FILE"},
		{"act", "THREATPIPE_KAFKA_SASL_PASSWORD=wrong", "THREATPIPE_KAFKA_SASL_PASSWORD"},
		{"act", "THREATPIPE_KAFKA_TLS_SERVER_NAME=kafka.example.org", "THREATPIPE_KAFKA_TLS_SERVER_NAME"},
		{"act", "THREATPIPE_REDIS_USERNAME=nobody", "THREATPIPE_REDIS_PASSWORD"},
		{"act", "THREATPIPE_REDIS_TLS_CERT_FILE=", "THREATPIPE_REDIS_TLS_CERT_FILE"},
	} {
		t.Run(tc.cmd+" "+tc.want, func(t *testing.T) {
			env := append([]string{"PATH=" + os.Getenv("PATH"), "THREATPIPE_HTTP_ADDR=127.0.0.1:0",
				"THREATPIPE_ACT_PLAYBOOKS=" + playbooks, "THREATPIPE_SINK_PAGERDUTY_ROUTING_KEY=R0123456789abcdef0123456789abcde"},
				s.Env(tc.setting)...)
			if strings.HasPrefix(tc.setting, "THREATPIPE_REDIS_TLS_CERT_FILE=") {
				env = append(env, "THREATPIPE_REDIS_TLS_KEY_FILE=")
			}
			start := time.Now()
			p := startCommand(t, tc.cmd, env, "")
			err := p.wait(t, 30*time.Second)
			took := time.Since(start)
			if err == nil {
				t.Fatalf("%s started with %s", tc.cmd, tc.setting)
			}
			out := p.log.String()
			if !strings.Contains(out, "threatpipe "+tc.cmd+": "+tc.want+":") {
				t.Errorf("the error does not start with %s:\n%s", tc.want, out)
			}
			if strings.Contains(out, s.Var("KAFKA_SASL_PASSWORD")) || strings.Contains(out, s.Var("REDIS_PASSWORD")) {
				t.Errorf("the output shows a password:\n%s", out)
			}
			if took > 20*time.Second {
				t.Errorf("took %s to fail", took)
			}
			t.Logf("%s with %s: exited after %s: %s", tc.cmd, tc.setting, took.Round(10*time.Millisecond), lastLine(out))
		})
	}
}

func readyz(t *testing.T, addr string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("readyz: %v", err)
	}
	_ = res.Body.Close()
	return res.StatusCode
}

// countKeys counts the secured Redis's keys under prefix (SCAN: KEYS is not granted to the ACL
// user, as it should not be to threatpipe's).
func countKeys(t *testing.T, s *pipelinetest.Secure, prefix string) int {
	t.Helper()
	n := 0
	it := s.Redis(t).Scan(context.Background(), 0, prefix+"*", 1000).Iterator()
	for it.Next(context.Background()) {
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatalf("scan %s*: %v", prefix, err)
	}
	return n
}

func providerPrefix(t *testing.T, env []string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "THREATPIPE_REDIS_KEY_PREFIX="); ok {
			return v
		}
	}
	t.Fatal("no key prefix in the provider settings")
	return ""
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
