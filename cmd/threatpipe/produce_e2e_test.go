package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// runProduceBinary runs `threatpipe produce` on the real broker with input on stdin and returns
// its exit code and stderr.
func runProduceBinary(t *testing.T, brokers []string, input string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"produce", "--quiet"}, args...)...)
	cmd.Env = []string{"THREATPIPE_KAFKA_BROKERS=" + strings.Join(brokers, ",")}
	cmd.Stdin = strings.NewReader(input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	_ = cmd.Run()
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// TestE2EProduceSplitsLargeDocumentsByBytes sends 60 documents of 300 KB (18 MB, which failed as
// one oversized request before batches were cut by bytes) and one line over the request limit,
// which is reported as a bad line and not sent.
func TestE2EProduceSplitsLargeDocumentsByBytes(t *testing.T) {
	brokers := pipelinetest.Kafka(t)
	topic := pipelinetest.Topic(t, brokers, "produce-big", 2)
	var lines []string
	for i := range 60 {
		lines = append(lines, fmt.Sprintf(`{"event_id":"big-%d","indicator":{"type":"ipv4-addr","value":"8.8.8.8"},"context":{"blob":%q}}`, i, strings.Repeat("x", 300_000)))
	}
	lines = append(lines, fmt.Sprintf(`{"event_id":"huge","context":{"blob":%q}}`, strings.Repeat("y", 1_200_000)))
	code, stderr := runProduceBinary(t, brokers, strings.Join(lines, "\n"), "--topic", topic, "--key-field", "event_id")
	if code != 1 {
		t.Fatalf("exit code %d, want 1 for the oversized line; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{"line 61: longer than 895904 bytes; skipped", "60 produced", "1 rejected"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	msgs := pipelinetest.ReadAll(t, brokers, topic)
	if len(msgs) != 60 {
		t.Fatalf("%d messages in the topic, want 60", len(msgs))
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		if len(m.Value) < 300_000 || !strings.HasPrefix(string(m.Key), "big-") {
			t.Errorf("message %q of %d bytes: want a whole 300 KB document keyed by its event id", m.Key, len(m.Value))
		}
		seen[string(m.Key)] = true
	}
	if len(seen) != 60 {
		t.Errorf("%d distinct documents, want 60", len(seen))
	}
}

// TestE2EProduceRawSendsLinesAsTheyAre sends CEF, key=value and JSON lines with --raw: every
// non-blank line arrives byte for byte.
func TestE2EProduceRawSendsLinesAsTheyAre(t *testing.T) {
	brokers := pipelinetest.Kafka(t)
	topic := pipelinetest.Topic(t, brokers, "produce-raw", 1)
	lines := []string{
		`CEF:0|Vendor|Product|1.0|100|port scan|7|src=203.0.113.5 dst=10.0.0.1 msg=a \= b`,
		`date=2026-11-27 time=10:00:00 devname="FGT" logid="0000000013" srcip=203.0.113.6 dstip=10.0.0.2 action="deny"`,
		`{"event_id":"j","indicator":{"type":"ipv4-addr","value":"8.8.8.8"}}`,
		`not json at all, {`,
	}
	code, stderr := runProduceBinary(t, brokers, strings.Join(lines, "\n")+"\n\n", "--topic", topic, "--raw")
	if code != 0 || !strings.Contains(stderr, "4 produced") {
		t.Fatalf("exit code %d, want 0 and 4 produced; stderr:\n%s", code, stderr)
	}
	msgs := pipelinetest.ReadAll(t, brokers, topic)
	if len(msgs) != len(lines) {
		t.Fatalf("%d messages, want %d", len(msgs), len(lines))
	}
	for i, m := range msgs {
		if string(m.Value) != lines[i] {
			t.Errorf("message %d = %q, want %q", i, m.Value, lines[i])
		}
	}
	if code, stderr := runProduceBinary(t, brokers, lines[0], "--topic", topic, "--raw", "--key-field", "src"); code == 0 || !strings.Contains(stderr, "--raw") {
		t.Errorf("--raw with --key-field: exit %d, stderr %q; want a refusal naming --raw", code, stderr)
	}
}

func TestProduceLineLimit(t *testing.T) {
	for _, tc := range []struct {
		batch, batchBytes, maxLine, want int
		wantErr                          bool
	}{
		{500, defaultBatchBytes, 0, defaultBatchBytes - messageOverhead, false},
		{500, defaultBatchBytes, 1000, 1000, false},
		{500, defaultBatchBytes, defaultBatchBytes, 0, true}, // a line that fits no request
		{500, 4 << 20, 3 << 20, 3 << 20, false},              // a broker with a larger message.max.bytes
		{0, defaultBatchBytes, 0, 0, true},
		{500, messageOverhead, 0, 0, true},
		{500, defaultBatchBytes, -1, 0, true},
	} {
		got, err := lineLimit(tc.batch, tc.batchBytes, tc.maxLine)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("lineLimit(%d, %d, %d) = %d, %v; want %d, error %v", tc.batch, tc.batchBytes, tc.maxLine, got, err, tc.want, tc.wantErr)
		}
	}
}
