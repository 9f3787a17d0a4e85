// Package pipelinetest gives tests access to the real Kafka broker and Redis server that
// `make test` starts (scripts/services.sh), and small helpers to create throw-away topics and
// read them back.
//
// Tests that need a service call Kafka(t) or Redis(t). Without THREATPIPE_TEST_KAFKA_BROKERS /
// THREATPIPE_TEST_REDIS_ADDR they are skipped, unless THREATPIPE_TEST_REQUIRE_SERVICES=1 (set by
// `make test` and CI), in which case a missing service fails the test instead of hiding it.
package pipelinetest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func need(t testing.TB, envVar, what string) string {
	t.Helper()
	v := os.Getenv(envVar)
	if v == "" {
		if os.Getenv("THREATPIPE_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatalf("%s is not set but THREATPIPE_TEST_REQUIRE_SERVICES=1: start services with `make services-up`", envVar)
		}
		t.Skipf("%s needs a real %s: set %s (make test does)", t.Name(), what, envVar)
	}
	return v
}

// Kafka returns the real broker's bootstrap addresses.
func Kafka(t testing.TB) []string {
	t.Helper()
	brokers := strings.Split(need(t, "THREATPIPE_TEST_KAFKA_BROKERS", "Kafka broker"), ",")
	conn, err := net.DialTimeout("tcp", brokers[0], 3*time.Second)
	if err != nil {
		t.Fatalf("Kafka at %s is not reachable: %v", brokers[0], err)
	}
	_ = conn.Close()
	return brokers
}

// Redis returns the real Redis server's address.
func Redis(t testing.TB) string {
	t.Helper()
	addr := need(t, "THREATPIPE_TEST_REDIS_ADDR", "Redis server")
	conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatalf("Redis at %s is not reachable: %v", addr, err)
	}
	_ = conn.Close()
	return addr
}

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// Name returns a unique, topic-safe name derived from the test name.
func Name(t testing.TB, suffix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	base := unsafeChars.ReplaceAllString(t.Name(), "-")
	if len(base) > 120 {
		base = base[:120]
	}
	return fmt.Sprintf("test.%s.%s.%s", base, hex.EncodeToString(b), suffix)
}

// Topic creates a fresh topic on the plain broker with the given partitions and deletes it when
// the test ends.
func Topic(t testing.TB, brokers []string, suffix string, partitions int) string {
	t.Helper()
	return plain(brokers).Topic(t, suffix, partitions)
}

// Produce writes msgs to topic synchronously with acks=all.
func Produce(t testing.TB, brokers []string, topic string, msgs []kafka.Message) {
	t.Helper()
	plain(brokers).Produce(t, topic, msgs)
}

// Partitions returns the partition ids of topic.
func Partitions(t testing.TB, brokers []string, topic string) []int {
	t.Helper()
	return plain(brokers).Partitions(t, topic)
}

// EndOffsets returns each partition's end offset (the offset the next message will get).
func EndOffsets(t testing.TB, brokers []string, topic string) map[int]int64 {
	t.Helper()
	return plain(brokers).EndOffsets(t, topic)
}

// Count returns how many messages topic holds (sum of end offsets; topics here are never
// compacted or truncated).
func Count(t testing.TB, brokers []string, topic string) int64 {
	t.Helper()
	return plain(brokers).Count(t, topic)
}

// Committed returns group's committed offset per partition of topic (-1 when none).
func Committed(t testing.TB, brokers []string, group, topic string) map[int]int64 {
	t.Helper()
	return plain(brokers).Committed(t, group, topic)
}

// WaitFor polls cond every 100 ms until it is true or timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ReadAll reads every message currently in topic (all partitions, from the start) without a
// consumer group, stopping at the end offsets observed when it was called.
func ReadAll(t testing.TB, brokers []string, topic string) []kafka.Message {
	t.Helper()
	return plain(brokers).ReadAll(t, topic)
}

// Header returns the value of a message header, or "".
func Header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// ArtifactDir returns the directory tests write reports and screenshots to
// (THREATPIPE_TEST_ARTIFACTS, default a temporary directory), creating it.
func ArtifactDir(t testing.TB) string {
	dir := os.Getenv("THREATPIPE_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "threatpipe-test-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifact dir: %v", err)
	}
	return dir
}

// GeneratedSection checks that the part of the file at path between
// "<!-- BEGIN GENERATED: name -->" and "<!-- END GENERATED: name -->" equals want, and rewrites
// it instead when update is set (the tests' -update flag). Documentation generated from code
// cannot drift unnoticed.
func GeneratedSection(t testing.TB, path, name, want string, update bool) {
	t.Helper()
	begin, end := "<!-- BEGIN GENERATED: "+name+" -->\n", "<!-- END GENERATED: "+name+" -->"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the markers of the generated section %q", path, name)
	}
	if doc[i+len(begin):j] == want {
		return
	}
	if update {
		if err := os.WriteFile(path, []byte(doc[:i+len(begin)]+want+doc[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("%s: the generated section %q is out of date; rerun this test with -update", path, name)
}
