package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// TestTopWithRedisUnreachable: one clear line naming the variable, quickly, and none of
// go-redis's own log lines.
func TestTopWithRedisUnreachable(t *testing.T) {
	cmd := exec.Command(binary, "top")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "THREATPIPE_REDIS_ADDR=" + freeAddr(t)}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err == nil {
		t.Fatal("top succeeded without Redis")
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "threatpipe top: THREATPIPE_REDIS_ADDR: cannot reach Redis") {
		t.Errorf("stderr %q: want one line naming THREATPIPE_REDIS_ADDR", stderr.String())
	}
	if stdout.Len() > 0 {
		t.Errorf("stdout %q, want nothing", stdout.String())
	}
	if took > 10*time.Second {
		t.Errorf("top took %s to give up, want a fast failure", took.Round(time.Millisecond))
	}
}

// TestListenersDefaultToLoopback: every listener threatpipe opens binds loopback unless an
// address is given (the EDL and the view are served on THREATPIPE_HTTP_ADDR).
func TestListenersDefaultToLoopback(t *testing.T) {
	c, err := config.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	checkLoopback(t, "THREATPIPE_HTTP_ADDR", c.HTTPAddr)
	flagDefault := regexp.MustCompile(`(?s)-(addr|http) string\s+[^\n]*\(default "([^"]+)"\)`)
	for _, sub := range []string{"sim", "demo"} {
		var out bytes.Buffer
		run(context.Background(), &environment{stdout: &out, stderr: &out}, []string{sub, "--help"})
		m := flagDefault.FindStringSubmatch(out.String())
		if m == nil {
			t.Errorf("%s --help shows no listen address flag:\n%s", sub, out.String())
			continue
		}
		checkLoopback(t, sub+" --"+m[1], m[2])
	}
}

func checkLoopback(t *testing.T, what, addr string) {
	t.Helper()
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		t.Errorf("%s defaults to %q, want a loopback address", what, addr)
	}
}

// TestEnricherWithRedisDown: /readyz names the dependency in generic words, and every line the
// process writes is a JSON log line (go-redis's own lines routed through zap).
func TestEnricherWithRedisDown(t *testing.T) {
	brokers := pipelinetest.Kafka(t)
	tp := newE2ETopics(t, brokers, 1)
	httpAddr, redisAddr := freeAddr(t), freeAddr(t)
	p := startProc(t, enricherEnv(brokers, tp, httpAddr, "THREATPIPE_REDIS_ADDR="+redisAddr), httpAddr)
	var body string
	for range 5 { // a few probes, each past the readiness cache, so go-redis dials and fails again
		var status int
		status, body = waitHTTP(t, "http://"+httpAddr+"/readyz")
		if status != http.StatusServiceUnavailable {
			t.Fatalf("readyz with Redis down: %d %s", status, body)
		}
		time.Sleep(1100 * time.Millisecond)
	}
	var res struct {
		Ready  bool
		Checks map[string]string
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil || res.Checks["redis"] != "unreachable" || res.Checks["kafka"] != "ok" {
		t.Errorf("readyz %s (%v): want redis unreachable, kafka ok", body, err)
	}
	if strings.Contains(body, redisAddr) {
		t.Errorf("readyz names the Redis address: %s", body)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(t, 30*time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
	var routed, downLogged int
	for _, line := range strings.Split(strings.TrimSpace(p.log.String()), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Errorf("a line that is not JSON: %q", line)
			continue
		}
		if entry["component"] == "go-redis" {
			routed++
		}
		if entry["msg"] == "readiness: dependency is down" && entry["check"] == "redis" {
			downLogged++
		}
	}
	if routed == 0 {
		t.Error("no go-redis line came through zap (component go-redis)")
	}
	if downLogged != 1 {
		t.Errorf("Redis being down logged %d times by the readiness checks, want once", downLogged)
	}
}

// TestViewRequiresItsTopics: a missing input topic fails the start naming the variable, instead
// of being created by the consumer group with the broker's default partitions or waited on.
func TestViewRequiresItsTopics(t *testing.T) {
	brokers := pipelinetest.Kafka(t)
	scored := pipelinetest.Topic(t, brokers, "scored", 1)
	missing := pipelinetest.Name(t, "results-missing")
	var out syncBuffer
	env := &environment{environ: []string{
		"THREATPIPE_KAFKA_BROKERS=" + strings.Join(brokers, ","), "THREATPIPE_REDIS_ADDR=" + pipelinetest.Redis(t),
		"THREATPIPE_KAFKA_OUTPUT_TOPIC=" + scored, "THREATPIPE_ACT_RESULTS_TOPIC=" + missing,
		"THREATPIPE_HTTP_ADDR=127.0.0.1:0", "THREATPIPE_LOG_LEVEL=error",
	}, stdout: &out, stderr: &out}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if code := run(ctx, env, []string{"view"}); code != 1 {
		t.Fatalf("view exit %d with %s missing, want 1: %s", code, missing, out.String())
	}
	want := `THREATPIPE_ACT_RESULTS_TOPIC: topic "` + missing + `" does not exist`
	if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "THREATPIPE_KAFKA_CREATE_TOPICS=true") {
		t.Errorf("output %q, want %q and the variable that creates it", out.String(), want)
	}
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	meta, err := client.Metadata(context.Background(), &kafka.MetadataRequest{Topics: []string{missing}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range meta.Topics {
		if !errors.Is(tp.Error, kafka.UnknownTopicOrPartition) {
			t.Errorf("topic %s exists after the failed start (%v)", missing, tp.Error)
		}
	}
}

// TestActRequiresItsTopics: act fails its start naming the variable of a missing topic it writes
// (its dead-letter topic here) instead of retrying "unknown topic" for ever.
func TestActRequiresItsTopics(t *testing.T) {
	brokers := pipelinetest.Kafka(t)
	prefix := pipelinetest.Name(t, "act")
	missing := pipelinetest.Name(t, "actdlq-missing")
	playbooks := filepath.Join(t.TempDir(), "playbooks.yaml")
	if err := os.WriteFile(playbooks, []byte("playbooks:\n  - name: p\n    when: score >= 80\n    steps:\n      - {name: block, action: block, sink: edl, duration: 1h}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	env := &environment{environ: append(actEnv(brokers, pipelinetest.Redis(t), prefix, pipelinetest.Topic(t, brokers, "scored", 1),
		pipelinetest.Topic(t, brokers, "results", 1), missing, pipelinetest.Topic(t, brokers, "alerts", 1), playbooks, "http://127.0.0.1:1"),
		"THREATPIPE_KAFKA_CHANGES_TOPIC="+pipelinetest.Topic(t, brokers, "changes", 1),
		"THREATPIPE_HTTP_ADDR=127.0.0.1:0", "THREATPIPE_LOG_LEVEL=error"), stdout: &out, stderr: &out}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if code := run(ctx, env, []string{"act"}); code != 1 {
		t.Fatalf("act exit %d with %s missing, want 1: %s", code, missing, out.String())
	}
	if want := `THREATPIPE_ACT_DLQ_TOPIC: topic "` + missing + `" does not exist`; !strings.Contains(out.String(), want) {
		t.Errorf("output %q, want %q", out.String(), want)
	}
}
