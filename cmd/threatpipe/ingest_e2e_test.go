package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/threatpipe/threatpipe/ingest/taxii/taxiitest"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// TestE2EIngestTAXII runs `threatpipe ingest` against the strict TAXII 2.1 test server: every
// address of the collection lands once on the real broker's input topic as a native event, later
// additions follow within the interval, SIGTERM exits cleanly, and a restart resumes from the
// stored cursor without publishing anything again.
func TestE2EIngestTAXII(t *testing.T) {
	brokers := pipelinetest.Kafka(t)
	redisAddr := pipelinetest.Redis(t)
	in := pipelinetest.Topic(t, brokers, "in", 3)
	prefix := pipelinetest.Name(t, "tp")
	srv := taxiitest.New(t, taxiitest.Options{Username: "tp-ingest", Password: "s3cret-pass", MaxLimit: 7})
	base := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	addIndicators := func(first, n int) {
		for i := first; i < first+n; i++ {
			srv.Add(base.Add(time.Duration(i)*time.Second), taxiitest.Indicator(
				fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i),
				fmt.Sprintf("[ipv4-addr:value = '203.0.113.%d']", i+1), base.Add(time.Duration(i)*time.Minute), "c2"))
		}
	}
	addIndicators(0, 30)
	srv.Add(base, taxiitest.Indicator("indicator--domain", "[domain-name:value = 'evil.example']", base))
	passwordFile := filepath.Join(t.TempDir(), "taxii-password")
	if err := os.WriteFile(passwordFile, []byte("s3cret-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	httpAddr := freeAddr(t)
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"THREATPIPE_KAFKA_BROKERS=" + strings.Join(brokers, ","), "THREATPIPE_KAFKA_INPUT_TOPIC=" + in,
		"THREATPIPE_REDIS_ADDR=" + redisAddr, "THREATPIPE_REDIS_KEY_PREFIX=" + prefix,
		"THREATPIPE_HTTP_ADDR=" + httpAddr, "THREATPIPE_LOG_LEVEL=debug",
		"THREATPIPE_INGEST_SOURCES=taxii", "THREATPIPE_INGEST_INTERVAL=1s", "THREATPIPE_INGEST_PAGE_SIZE=10",
		"THREATPIPE_INGEST_TAXII_URL=" + srv.CollectionURL(), "THREATPIPE_INGEST_TAXII_USERNAME=tp-ingest",
		"THREATPIPE_INGEST_TAXII_PASSWORD_FILE=" + passwordFile,
	}
	p := startCommand(t, "ingest", env, httpAddr)
	waitReady(t, []*proc{p}, 30*time.Second)
	pipelinetest.WaitFor(t, 30*time.Second, "30 events", func() bool { return pipelinetest.Count(t, brokers, in) >= 30 })
	addIndicators(30, 5)
	pipelinetest.WaitFor(t, 30*time.Second, "35 events", func() bool { return pipelinetest.Count(t, brokers, in) >= 35 })

	checkIngested(t, brokers, in, 35)
	_, metrics := waitHTTP(t, "http://"+httpAddr+"/metrics")
	for _, want := range []string{`threatpipe_ingest_events_published_total{source="taxii"} 35`,
		`threatpipe_ingest_indicators_skipped_total{reason="not_ip",source="taxii"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t, 30*time.Second); err != nil {
		t.Fatalf("ingest exited with %v after SIGTERM", err)
	}

	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	cursor, err := rdb.Get(context.Background(), prefix+":ingest:{taxii}:cursor").Result()
	if err != nil || !strings.Contains(cursor, "added_after=2026-03-14T09%3A00%3A34") {
		t.Fatalf("stored cursor %q (%v): want the last date added", cursor, err)
	}
	served := len(srv.Requests())
	p = startCommand(t, "ingest", env, httpAddr)
	pipelinetest.WaitFor(t, 30*time.Second, "two polls after the restart", func() bool { return len(srv.Requests()) >= served+2 })
	if n := pipelinetest.Count(t, brokers, in); n != 35 {
		t.Errorf("%d events after the restart, want the 35 published before", n)
	}
	if first := srv.Requests()[served]; first.Get("added_after") != "2026-03-14T09:00:34.000000Z" {
		t.Errorf("the restart's first request %v: want it to resume from the stored cursor", first)
	}
}

// checkIngested checks that the topic holds want native events of TAXII addresses, once each.
func checkIngested(t *testing.T, brokers []string, topic string, want int) {
	t.Helper()
	ids, values := map[string]bool{}, map[string]bool{}
	for _, m := range pipelinetest.ReadAll(t, brokers, topic) {
		var ev struct {
			EventID   string `json:"event_id"`
			Source    string `json:"source"`
			Indicator struct{ Type, Value string }
			Context   struct {
				Tip struct {
					Name, Ref string
					Tags      []string
				}
			}
		}
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Fatalf("not a native event: %s", m.Value)
		}
		if ev.Source != "tip:taxii" || ev.Indicator.Type != "ipv4-addr" || string(m.Key) != ev.Indicator.Value ||
			ev.Context.Tip.Name != "taxii" || !strings.HasPrefix(ev.Context.Tip.Ref, "indicator--") || !strings.Contains(strings.Join(ev.Context.Tip.Tags, ","), "c2") {
			t.Errorf("event %s", m.Value)
		}
		if ids[ev.EventID] || values[ev.Indicator.Value] {
			t.Errorf("%s published twice", ev.Indicator.Value)
		}
		ids[ev.EventID], values[ev.Indicator.Value] = true, true
	}
	if len(values) != want {
		t.Errorf("%d distinct addresses on the topic, want %d", len(values), want)
	}
}
