package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// binary is the threatpipe executable the end-to-end tests run as a subprocess.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "threatpipe-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "threatpipe")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build threatpipe: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running threatpipe subprocess.
type proc struct {
	cmd  *exec.Cmd
	log  *syncBuffer
	http string
	done chan error
}

type e2eTopics struct{ in, out, dlq, changes, group string }

func enricherEnv(brokers []string, tp e2eTopics, httpAddr string, extra ...string) []string {
	return append([]string{
		"PATH=" + os.Getenv("PATH"),
		"THREATPIPE_KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"THREATPIPE_KAFKA_INPUT_TOPIC=" + tp.in, "THREATPIPE_KAFKA_OUTPUT_TOPIC=" + tp.out,
		"THREATPIPE_KAFKA_DLQ_TOPIC=" + tp.dlq, "THREATPIPE_KAFKA_GROUP_ID=" + tp.group,
		"THREATPIPE_KAFKA_CHANGES_TOPIC=" + tp.changes,
		"THREATPIPE_KAFKA_COMMIT_INTERVAL=500ms",
		"THREATPIPE_KAFKA_SESSION_TIMEOUT=6s", "THREATPIPE_KAFKA_HEARTBEAT_INTERVAL=1s",
		"THREATPIPE_HTTP_ADDR=" + httpAddr,
		"THREATPIPE_LOG_LEVEL=info",
	}, extra...)
}

func startProc(t *testing.T, env []string, httpAddr string) *proc {
	t.Helper()
	return startCommand(t, "enrich", env, httpAddr)
}

// startCommand runs `threatpipe <sub>` with env until the test ends.
func startCommand(t *testing.T, sub string, env []string, httpAddr string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, sub), log: &syncBuffer{}, http: httpAddr, done: make(chan error, 1)}
	p.cmd.Env = env
	p.cmd.Stdout = p.log
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", sub, p.log.String())
		}
	})
	return p
}

// wait returns the process's exit error, failing the test after timeout.
func (p *proc) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		return err
	case <-time.After(timeout):
		t.Fatalf("enricher did not exit within %s", timeout)
		return nil
	}
}

// syncBuffer collects a subprocess's stdout and stderr, which exec copies from two goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func newE2ETopics(t *testing.T, brokers []string, partitions int) e2eTopics {
	return e2eTopics{
		in:      pipelinetest.Topic(t, brokers, "in", partitions),
		out:     pipelinetest.Topic(t, brokers, "out", partitions),
		dlq:     pipelinetest.Topic(t, brokers, "dlq", 1),
		changes: pipelinetest.Topic(t, brokers, "changes", partitions),
		group:   pipelinetest.Name(t, "group"),
	}
}

func nativeEvents(from, to int) []kafka.Message {
	msgs := make([]kafka.Message, 0, to-from)
	for i := from; i < to; i++ {
		ip := fmt.Sprintf("%d.%d.%d.%d", 11+i%180, i/65536%256, i/256%256, i%256)
		if i%10 == 0 {
			ip = fmt.Sprintf("10.0.%d.%d", i/256%256, i%256) // gated, still published
		}
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf(
			`{"event_id":"ev-%06d","observed_at":"2026-11-27T10:00:00Z","source":"e2e","indicator":{"type":"ipv4-addr","value":%q}}`, i, ip))})
	}
	return msgs
}

// outputs reads the output topic and returns how often each event_id appears.
func outputs(t *testing.T, brokers []string, topic string) (counts map[string]int, byOrigin map[int]map[int64]int) {
	counts, byOrigin = map[string]int{}, map[int]map[int64]int{}
	for _, m := range pipelinetest.ReadAll(t, brokers, topic) {
		var ev event.Scored
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Fatalf("output is not a scored event: %v", err)
		}
		counts[ev.EventID]++
		if byOrigin[ev.Origin.Partition] == nil {
			byOrigin[ev.Origin.Partition] = map[int64]int{}
		}
		byOrigin[ev.Origin.Partition][ev.Origin.Offset]++
	}
	return counts, byOrigin
}

func writeReport(t *testing.T, name, text string) {
	path := filepath.Join(pipelinetest.ArtifactDir(t), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Errorf("write report: %v", err)
	}
	t.Log(text)
}

// TestE2EKill9LosesNothing runs the enricher as a subprocess on a backlog, SIGKILLs it while it
// is working through it, produces more while it is down, restarts it, and checks that every
// input event reached the output topic, counting duplicates.
func TestE2EKill9LosesNothing(t *testing.T) {
	brokers := pipelinetest.Kafka(t)
	pipelinetest.Redis(t)
	tp := newE2ETopics(t, brokers, 4)
	const backlog, later = 40000, 10000
	const total = backlog + later
	pipelinetest.Produce(t, brokers, tp.in, nativeEvents(0, backlog))

	httpAddr := freeAddr(t)
	// Frequent commits, so the first one lands while most of the backlog is still ahead.
	env := enricherEnv(brokers, tp, httpAddr, "THREATPIPE_KAFKA_COMMIT_INTERVAL=100ms")
	first := startProc(t, env, httpAddr)
	// Kill once it has committed some progress and published more beyond it: the state a crash
	// must not lose anything from.
	pipelinetest.WaitFor(t, 60*time.Second, "the first enricher to commit and publish 5000 events", func() bool {
		return sum(pipelinetest.Committed(t, brokers, tp.group, tp.in)) > 0 && pipelinetest.Count(t, brokers, tp.out) >= 5000
	})
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.wait(t, 10*time.Second)
	// Produce requests already sent when the process died still complete at the broker; let
	// them land before counting what the first enricher published.
	time.Sleep(time.Second)
	killedAt := pipelinetest.Count(t, brokers, tp.out)
	committedAtKill := sum(pipelinetest.Committed(t, brokers, tp.group, tp.in))
	if killedAt >= backlog {
		t.Fatalf("the kill landed after the backlog was done (%d outputs): no mid-stream crash was exercised", killedAt)
	}
	pipelinetest.Produce(t, brokers, tp.in, nativeEvents(backlog, total)) // arrives while the enricher is down

	restart := time.Now()
	second := startProc(t, env, freeAddr(t))
	pipelinetest.WaitFor(t, 120*time.Second, "every event to be scored after the restart", func() bool {
		return pipelinetest.Count(t, brokers, tp.out) >= total
	})
	counts, _ := outputs(t, brokers, tp.out)
	for len(counts) < total && time.Since(restart) < 120*time.Second {
		time.Sleep(500 * time.Millisecond)
		counts, _ = outputs(t, brokers, tp.out)
	}
	recovered := time.Since(restart)
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.wait(t, 30*time.Second); err != nil {
		t.Errorf("restarted enricher exited with %v after SIGTERM", err)
	}

	var lost []string
	for i := 0; i < total; i++ {
		if id := fmt.Sprintf("ev-%06d", i); counts[id] == 0 {
			lost = append(lost, id)
		}
	}
	outTotal := pipelinetest.Count(t, brokers, tp.out)
	duplicates := outTotal - int64(len(counts))
	writeReport(t, "at-least-once.txt", fmt.Sprintf(
		"kill -9 test: %d events (%d backlog + %d while down); SIGKILL after %d outputs with %d input offsets committed; "+
			"restart to all-out took %s: %d outputs, %d distinct, %d lost, %d duplicates (%.2f%% of events)\n",
		total, backlog, later, killedAt, committedAtKill, recovered.Round(100*time.Millisecond), outTotal, len(counts),
		len(lost), duplicates, 100*float64(duplicates)/total))
	if len(lost) > 0 {
		t.Fatalf("%d events lost after kill -9, e.g. %v", len(lost), lost[:min(5, len(lost))])
	}
	// Redelivery starts at the committed offsets, so duplicates are at most what had been
	// published beyond them when the process died.
	if bound := killedAt - committedAtKill; duplicates > bound {
		t.Errorf("%d duplicates exceed the uncommitted-at-kill bound %d", duplicates, bound)
	}
}

func sum(m map[int]int64) int64 {
	var n int64
	for _, v := range m {
		n += max(v, 0)
	}
	return n
}

// TestE2EGracefulShutdownCommitsWhatItPublished stops the enricher with SIGTERM mid-stream and
// checks that exactly the published events are committed, so a restart produces no duplicate.
func TestE2EGracefulShutdownCommitsWhatItPublished(t *testing.T) {
	brokers := pipelinetest.Kafka(t)
	pipelinetest.Redis(t)
	tp := newE2ETopics(t, brokers, 3)
	const total = 60000
	pipelinetest.Produce(t, brokers, tp.in, nativeEvents(0, total))

	httpAddr := freeAddr(t)
	env := enricherEnv(brokers, tp, httpAddr)
	p := startProc(t, env, httpAddr)
	pipelinetest.WaitFor(t, 60*time.Second, "some output", func() bool { return pipelinetest.Count(t, brokers, tp.out) >= 500 })
	stopAt := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t, 30*time.Second); err != nil {
		t.Fatalf("enricher exited with %v after SIGTERM, want status 0", err)
	}
	stopTook := time.Since(stopAt)

	published := pipelinetest.Count(t, brokers, tp.out)
	if published >= total {
		t.Fatalf("the whole input was processed before SIGTERM (%d outputs): the drain was not exercised", published)
	}
	committed := pipelinetest.Committed(t, brokers, tp.group, tp.in)
	_, byOrigin := outputs(t, brokers, tp.out)
	for part, c := range committed {
		offsets := byOrigin[part]
		for off := int64(0); off < c; off++ {
			if offsets[off] != 1 {
				t.Fatalf("partition %d offset %d is committed but was published %d times", part, off, offsets[off])
			}
		}
		for off := range offsets {
			if off >= c {
				t.Fatalf("partition %d offset %d was published but not committed (committed %d)", part, off, c)
			}
		}
	}

	q := startProc(t, env, freeAddr(t))
	// Observed throughput (not a benchmark): from the restarted enricher's first output to its last.
	var firstOut time.Time
	pipelinetest.WaitFor(t, 90*time.Second, "the rest to be scored", func() bool {
		n := pipelinetest.Count(t, brokers, tp.out)
		if firstOut.IsZero() && n > published {
			firstOut = time.Now()
		}
		return n >= total
	})
	rate := float64(total-published) / time.Since(firstOut).Seconds()
	time.Sleep(time.Second) // anything extra would be a duplicate
	if err := q.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := q.wait(t, 30*time.Second); err != nil {
		t.Errorf("second enricher: %v", err)
	}
	counts, _ := outputs(t, brokers, tp.out)
	if n := pipelinetest.Count(t, brokers, tp.out); n != total || len(counts) != total {
		t.Fatalf("after a graceful stop and restart: %d outputs, %d distinct, want exactly %d (no duplicates)", n, len(counts), total)
	}
	writeReport(t, "graceful-shutdown.txt", fmt.Sprintf(
		"graceful shutdown test: SIGTERM after %d of %d events; exit 0 in %s; committed == published on every partition; "+
			"restart finished with %d outputs and 0 duplicates; observed throughput after restart ~%.0f events/s (100 ms polling; not a benchmark)\n",
		published, total, stopTook.Round(10*time.Millisecond), total, rate))
}

func TestE2EReadinessReflectsRedisAndKafka(t *testing.T) {
	brokers := pipelinetest.Kafka(t)
	redisAddr := pipelinetest.Redis(t)
	tp := newE2ETopics(t, brokers, 1)

	badAddr := freeAddr(t)
	bad := startProc(t, enricherEnv(brokers, tp, badAddr, "THREATPIPE_REDIS_ADDR="+freeAddr(t)), badAddr)
	status, body := waitHTTP(t, "http://"+badAddr+"/readyz")
	if status != http.StatusServiceUnavailable || !strings.Contains(body, `"redis"`) || !strings.Contains(body, `"kafka":"ok"`) {
		t.Errorf("readyz with Redis down: %d %s", status, body)
	}
	if status, _ := waitHTTP(t, "http://"+badAddr+"/healthz"); status != http.StatusOK {
		t.Errorf("healthz: %d, want 200 (liveness does not depend on Redis)", status)
	}
	_ = bad.cmd.Process.Signal(syscall.SIGTERM)
	_ = bad.wait(t, 30*time.Second)

	goodAddr := freeAddr(t)
	good := startProc(t, enricherEnv(brokers, tp, goodAddr, "THREATPIPE_REDIS_ADDR="+redisAddr), goodAddr)
	status, body = waitHTTP(t, "http://"+goodAddr+"/readyz")
	if status != http.StatusOK || !strings.Contains(body, `"ready":true`) {
		t.Errorf("readyz with everything up: %d %s", status, body)
	}
	pipelinetest.Produce(t, brokers, tp.in, nativeEvents(0, 10))
	pipelinetest.WaitFor(t, 30*time.Second, "10 outputs", func() bool { return pipelinetest.Count(t, brokers, tp.out) >= 10 })
	_, metrics := waitHTTP(t, "http://"+goodAddr+"/metrics")
	for _, want := range []string{
		`threatpipe_events_consumed_total{topic="` + tp.in + `"} 10`,
		`threatpipe_indicators_gated_total{reason="private"} 1`,
		`threatpipe_stage_duration_seconds_bucket{stage="end_to_end"`,
		"go_goroutines",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	_ = good.cmd.Process.Signal(syscall.SIGTERM)
	if err := good.wait(t, 30*time.Second); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}

// waitHTTP GETs url until the server answers, returning status and body.
func waitHTTP(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
			res.Body.Close()
			return res.StatusCode, string(body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestE2EProduceReportsBadLines(t *testing.T) {
	brokers := pipelinetest.Kafka(t)
	topic := pipelinetest.Topic(t, brokers, "produce", 2)
	input := strings.Join([]string{
		`{"event_id":"a","indicator":{"type":"ipv4-addr","value":"8.8.8.8"}}`,
		``,
		`{"event_id":"b", oops}`,
		`[1,2,3]`,
		`{"event_id":"c","indicator":{"type":"ipv4-addr","value":"1.1.1.1"}}`,
	}, "\n")
	cmd := exec.Command(binary, "produce", "--topic", topic, "--key-field", "indicator.value")
	cmd.Env = []string{"THREATPIPE_KAFKA_BROKERS=" + strings.Join(brokers, ",")}
	cmd.Stdin = strings.NewReader(input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("exit code %d (%v), want 1 for rejected lines; stderr:\n%s", code, err, stderr.String())
	}
	for _, want := range []string{"line 3: invalid JSON", "line 4: not a JSON object", "2 produced", "2 rejected"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	msgs := pipelinetest.ReadAll(t, brokers, topic)
	if len(msgs) != 2 {
		t.Fatalf("%d messages in the topic, want 2", len(msgs))
	}
	for _, m := range msgs {
		if k := string(m.Key); k != "8.8.8.8" && k != "1.1.1.1" {
			t.Errorf("key %q, want the indicator value", k)
		}
	}
}

func TestBadConfigFailsStartupNamingTheVariable(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte("version: 1\nstages:\n  - sources:\n      - {name: criminalip, when: scroe > 1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ env, want string }{
		{"THREATPIPE_ENRICH_RULES_FILE=" + rules, "THREATPIPE_ENRICH_RULES_FILE: " + rules + ":4: stages[0].sources[0]: when: unknown name scroe"},
		{"THREATPIPE_CRIMINALIP_DAILY_QUOTA=100", "THREATPIPE_CRIMINALIP_DAILY_QUOTA was renamed: set THREATPIPE_CRIMINALIP_QUOTA"},
		{"THREATPIPE_KAFKA_BROKERS=kafka-without-port", "THREATPIPE_KAFKA_BROKERS"},
		{"THREATPIPE_PIPELINE_WORKERS=-1", "THREATPIPE_PIPELINE_WORKERS"},
		{"THREATPIPE_KAFKA_SASL_PASSWORD_FILE=/does/not/exist", "THREATPIPE_KAFKA_SASL_PASSWORD_FILE"},
	} {
		cmd := exec.Command(binary, "enrich")
		cmd.Env = []string{tc.env}
		out, err := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), tc.want) {
			t.Errorf("%s: exit %v, output %q; want exit 1 naming %s", tc.env, err, out, tc.want)
		}
	}
}

func TestHelpOnEveryCommand(t *testing.T) {
	for name := range commands() {
		out, err := exec.Command(binary, name, "--help").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Usage: threatpipe "+name) {
			t.Errorf("%s --help: %v\n%s", name, err, out)
		}
	}
	out, err := exec.Command(binary, "no-such-command").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "unknown command") {
		t.Errorf("unknown command: %v %s", err, out)
	}
}
