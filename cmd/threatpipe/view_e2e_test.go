package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
	"github.com/threatpipe/threatpipe/view"
)

// viewScored is a scored event as the enricher publishes it.
func viewScored(id, ip string, score int, at time.Time, isp string, tags ...string) kafka.Message {
	ind, err := event.ParseIP(ip)
	if err != nil {
		panic(err)
	}
	if tags == nil {
		tags = []string{}
	}
	ev := &event.Scored{
		SchemaVersion: event.SchemaVersion, EventID: id, ObservedAt: at, ProcessedAt: at, Source: "e2e", InputFormat: event.FormatNative,
		Indicator: ind, Score: score, Severity: event.SeverityOf(score), Tags: tags, ISP: isp,
		Reasons: []event.Reason{{Source: "criminalip", Detail: "e2e verdict", Points: score}},
		Providers: map[string]*event.ProviderOutcome{"criminalip": {Status: event.StatusOK, Cache: &event.CacheInfo{Hit: true, AgeSeconds: 5},
			Result: &event.Intel{Verdict: event.VerdictMalicious, Score: score, Detail: "e2e verdict", Tags: tags}}},
		Origin: event.Origin{Topic: "indicators", Partition: 0, Offset: 1},
	}
	return kafka.Message{Key: []byte(ind.Value), Value: ev.AppendJSON(nil)}
}

type viewE2E struct {
	brokers                    []string
	redisAddr, scored, results string
	prefix, group              string
}

func (v viewE2E) env(httpAddr, group string) []string {
	return []string{
		"PATH=" + "/usr/bin:/bin",
		"THREATPIPE_KAFKA_BROKERS=" + strings.Join(v.brokers, ","),
		"THREATPIPE_KAFKA_OUTPUT_TOPIC=" + v.scored, "THREATPIPE_ACT_RESULTS_TOPIC=" + v.results,
		"THREATPIPE_KAFKA_COMMIT_INTERVAL=200ms", "THREATPIPE_KAFKA_SESSION_TIMEOUT=6s", "THREATPIPE_KAFKA_HEARTBEAT_INTERVAL=1s",
		"THREATPIPE_REDIS_ADDR=" + v.redisAddr, "THREATPIPE_REDIS_KEY_PREFIX=" + v.prefix,
		"THREATPIPE_VIEW_GROUP_ID=" + group, "THREATPIPE_VIEW_SWEEP_INTERVAL=1s", "THREATPIPE_VIEW_REFRESH=2s",
		"THREATPIPE_HTTP_ADDR=" + httpAddr, "THREATPIPE_LOG_LEVEL=info",
	}
}

func newViewE2E(t *testing.T) viewE2E {
	brokers := pipelinetest.Kafka(t)
	v := viewE2E{
		brokers: brokers, redisAddr: pipelinetest.Redis(t),
		scored: pipelinetest.Topic(t, brokers, "scored", 3), results: pipelinetest.Topic(t, brokers, "results", 2),
		prefix: pipelinetest.Name(t, "tp"), group: pipelinetest.Name(t, "view"),
	}
	t.Cleanup(func() {
		rdb := redis.NewClient(&redis.Options{Addr: v.redisAddr})
		defer rdb.Close()
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, v.prefix+":*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	return v
}

type apiPage struct {
	Indicators []struct {
		IP        string   `json:"ip"`
		Score     int      `json:"score"`
		Severity  string   `json:"severity"`
		Tags      []string `json:"tags"`
		ISP       string   `json:"isp"`
		Sightings int64    `json:"sightings"`
	} `json:"indicators"`
	Total int64 `json:"total"`
}

func fetchRanking(t *testing.T, base string) (apiPage, string) {
	t.Helper()
	var page apiPage
	code, body := waitHTTP(t, base+"/api/v1/indicators?limit=100")
	if code != 200 || json.Unmarshal([]byte(body), &page) != nil {
		return apiPage{}, body
	}
	var parts []string
	for _, r := range page.Indicators {
		parts = append(parts, fmt.Sprintf("%s:%d:%d", r.IP, r.Score, r.Sightings))
	}
	return page, strings.Join(parts, " ")
}

// TestE2EViewRanksScoredEventsAndActions runs `threatpipe view` against real Kafka and Redis:
// scored events and audit records on fresh topics become a ranking, an indicator page with its
// actions, and `threatpipe top` output; redelivery (a second consumer group re-reading both
// topics from the start) counts nothing twice; SIGTERM exits cleanly with everything committed.
func TestE2EViewRanksScoredEventsAndActions(t *testing.T) {
	v := newViewE2E(t)
	now := time.Now().UTC().Truncate(time.Second)
	pipelinetest.Produce(t, v.brokers, v.scored, []kafka.Message{
		viewScored("e-1", "185.220.101.45", 60, now.Add(-5*time.Minute), "Example Hosting GmbH", "tor"),
		viewScored("e-2", "185.220.101.45", 92, now.Add(-time.Minute), "Example Hosting GmbH", "tor", "scanner"),
		viewScored("e-2", "185.220.101.45", 92, now.Add(-time.Minute), "Example Hosting GmbH", "tor", "scanner"), // published twice
		viewScored("e-3", "45.155.205.233", 65, now.Add(-2*time.Minute), "<script>alert(1)</script>", "scanner"),
		viewScored("e-4", "2001:db8::7", 65, now.Add(-30*time.Second), "V6 Net"),
		viewScored("e-5", "203.0.113.10", 10, now, "Quiet ISP"),
		{Key: []byte("junk"), Value: []byte(`{"not":"a scored event"}`)},
	})
	until := now.Add(time.Hour)
	rec, _ := json.Marshal(act.Record{SchemaVersion: act.RecordSchemaVersion, At: now, Outcome: act.OutcomeDone, Kind: "block",
		Playbook: "block-critical", Step: "edl", Sink: "edl", Target: "185.220.101.45", Ref: "edl:185.220.101.45", Until: &until,
		EventID: "e-2", Score: 92, Severity: event.SeverityCritical, Worker: "threatpipe-act-block"})
	pipelinetest.Produce(t, v.brokers, v.results, []kafka.Message{{Key: []byte("185.220.101.45"), Value: rec}, {Key: []byte("185.220.101.45"), Value: rec}})

	httpAddr := freeAddr(t)
	p := startCommand(t, "view", v.env(httpAddr, v.group), httpAddr)
	base := "http://" + httpAddr
	want := "185.220.101.45:92:2 2001:db8::7:65:1 45.155.205.233:65:1 203.0.113.10:10:1"
	var got string
	pipelinetest.WaitFor(t, 60*time.Second, "the ranking "+want, func() bool {
		_, got = fetchRanking(t, base)
		return got == want
	})
	if code, body := waitHTTP(t, base+"/readyz"); code != 200 {
		t.Errorf("readyz %d %s", code, body)
	}
	var ind view.Indicator
	pipelinetest.WaitFor(t, 30*time.Second, "the audit record on the indicator", func() bool {
		_, body := waitHTTP(t, base+"/api/v1/indicators/185.220.101.45")
		return json.Unmarshal([]byte(body), &ind) == nil && len(ind.Actions) > 0
	})
	if len(ind.Actions) != 1 || ind.Actions[0].Ref != "edl:185.220.101.45" || len(ind.History) != 2 || ind.Latest == nil ||
		ind.Latest.Providers["criminalip"].Result.Verdict != event.VerdictMalicious || !ind.FirstSeen.Equal(now.Add(-5*time.Minute)) {
		t.Errorf("indicator: %+v", ind)
	}
	code, page := waitHTTP(t, base+"/indicators/45.155.205.233")
	if code != 200 || strings.Contains(page, "<script>alert(1)") || !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("indicator page %d: the ISP is not escaped", code)
	}
	code, page = waitHTTP(t, base+"/")
	if code != 200 || strings.Index(page, "/indicators/185.220.101.45") > strings.Index(page, "/indicators/203.0.113.10") {
		t.Errorf("ranked page %d out of order", code)
	}
	_, metrics := waitHTTP(t, base+"/metrics")
	for _, m := range []string{
		`threatpipe_view_messages_total{input="scored",outcome="applied"} 5`,
		`threatpipe_view_messages_total{input="scored",outcome="duplicate"} 1`,
		`threatpipe_view_messages_total{input="scored",outcome="unreadable"} 1`,
		`threatpipe_view_messages_total{input="results",outcome="applied"} 1`,
		`threatpipe_view_messages_total{input="results",outcome="duplicate"} 1`,
	} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}

	// threatpipe top reads the same state straight from Redis.
	var out bytes.Buffer
	topEnv := &environment{environ: []string{"THREATPIPE_REDIS_ADDR=" + v.redisAddr, "THREATPIPE_REDIS_KEY_PREFIX=" + v.prefix},
		stdout: &out, stderr: &out}
	if code := run(context.Background(), topEnv, []string{"top", "--limit", "3"}); code != 0 {
		t.Fatalf("top exit %d: %s", code, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 5 || !regexp.MustCompile(`^RANK\s+IP\s+SCORE\s+SEVERITY\s+TAGS\s+COUNTRY\s+ISP\s+LAST SEEN$`).MatchString(lines[0]) ||
		!regexp.MustCompile(`^1\s+185\.220\.101\.45\s+92\s+critical\s+scanner,tor\s+-\s+Example Hosting GmbH\s+1m ago$`).MatchString(lines[1]) ||
		!strings.HasPrefix(lines[2], "2 ") || !strings.Contains(lines[3], "45.155.205.233") || lines[4] != "3 of 4" {
		t.Errorf("top output:\n%s", out.String())
	}
	// Columns line up.
	if col := strings.Index(lines[0], "SCORE"); lines[1][col:col+2] != "92" || lines[3][col:col+2] != "65" {
		t.Errorf("columns are not aligned:\n%s", out.String())
	}

	// Everything read is committed, and SIGTERM stops the view cleanly.
	pipelinetest.WaitFor(t, 30*time.Second, "the scored topic to be committed", func() bool {
		return sum(pipelinetest.Committed(t, v.brokers, v.group+"-scored", v.scored)) == pipelinetest.Count(t, v.brokers, v.scored) &&
			sum(pipelinetest.Committed(t, v.brokers, v.group+"-results", v.results)) == 2
	})
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t, 30*time.Second); err != nil {
		t.Errorf("view exited with %v after SIGTERM", err)
	}
	if !strings.Contains(p.log.String(), "threatpipe view: http://"+httpAddr+"/") {
		t.Errorf("the view's URL is not printed:\n%s", p.log.String())
	}

	// A second consumer group re-reads both topics from the start: a full redelivery. Nothing
	// is counted twice.
	httpAddr2 := freeAddr(t)
	group2 := v.group + "-again"
	q := startCommand(t, "view", v.env(httpAddr2, group2), httpAddr2)
	pipelinetest.WaitFor(t, 60*time.Second, "the second group to read both topics", func() bool {
		return sum(pipelinetest.Committed(t, v.brokers, group2+"-scored", v.scored)) == pipelinetest.Count(t, v.brokers, v.scored) &&
			sum(pipelinetest.Committed(t, v.brokers, group2+"-results", v.results)) == 2
	})
	if _, again := fetchRanking(t, "http://"+httpAddr2); again != want {
		t.Errorf("after redelivery: %s, want %s", again, want)
	}
	_, body := waitHTTP(t, "http://"+httpAddr2+"/api/v1/indicators/185.220.101.45")
	if json.Unmarshal([]byte(body), &ind) != nil || len(ind.Actions) != 1 || len(ind.History) != 2 {
		t.Errorf("after redelivery: %d actions, %d history entries", len(ind.Actions), len(ind.History))
	}
	_ = q.cmd.Process.Signal(syscall.SIGTERM)
	if err := q.wait(t, 30*time.Second); err != nil {
		t.Errorf("second view: %v", err)
	}
}

func TestTopWatchRedrawsUntilInterrupted(t *testing.T) {
	redisAddr := pipelinetest.Redis(t)
	prefix := pipelinetest.Name(t, "tp")
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), prefix+":*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	})
	store := view.NewStore(rdb, prefix, view.StoreOptions{})
	ev, _ := view.DecodeScored(viewScored("w-1", "198.51.100.23", 77, time.Now(), "Evil\x1b[2J\x1b]0;pwned\x07 ISP\u202e", "tor"))
	if _, err := store.ApplyScored(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	env := &environment{environ: []string{"THREATPIPE_REDIS_ADDR=" + redisAddr, "THREATPIPE_REDIS_KEY_PREFIX=" + prefix}, stdout: &out, stderr: &out}
	ctx, cancel := context.WithTimeout(context.Background(), 1100*time.Millisecond)
	defer cancel()
	if code := run(ctx, env, []string{"top", "--watch", "--interval", "300ms", "--severity", "high"}); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	s := out.String()
	if n := strings.Count(s, "\x1b[H\x1b[2J"); n < 3 {
		t.Errorf("%d redraws in 1.1 s at 300 ms", n)
	}
	frames := strings.Split(s, "\x1b[H\x1b[2J")
	last := frames[len(frames)-1]
	if !strings.Contains(last, "198.51.100.23") || !strings.Contains(last, "Evil?[2J?]0;pwned? ISP?") {
		t.Errorf("frame:\n%q", last)
	}
	if strings.Count(s, "\x1b") != strings.Count(s, "\x1b[H\x1b[2J")*2 {
		t.Error("indicator data wrote escape sequences to the terminal")
	}

	out = syncBuffer{}
	if code := run(context.Background(), env, []string{"top", "--severity", "urgent"}); code != 1 || !strings.Contains(out.String(), "--severity") {
		t.Errorf("bad severity: exit %d %q", code, out.String())
	}
	out = syncBuffer{}
	if code := run(context.Background(), env, []string{"top", "--limit", "501"}); code != 1 || !strings.Contains(out.String(), "--limit") {
		t.Errorf("bad limit: exit %d %q", code, out.String())
	}
}

func TestViewBadConfigNamesTheVariable(t *testing.T) {
	for _, tc := range []struct{ env, want string }{
		{"THREATPIPE_VIEW_RETENTION=forever", "THREATPIPE_VIEW_RETENTION"},
		{"THREATPIPE_VIEW_HISTORY=0", "THREATPIPE_VIEW_HISTORY"},
		{"THREATPIPE_KAFKA_BROKERS=nohost", "THREATPIPE_KAFKA_BROKERS"},
	} {
		var out bytes.Buffer
		env := &environment{environ: []string{tc.env}, stdout: &out, stderr: &out}
		if code := run(context.Background(), env, []string{"view"}); code != 1 || !strings.Contains(out.String(), tc.want) {
			t.Errorf("%s: exit %d %q, want exit 1 naming %s", tc.env, code, out.String(), tc.want)
		}
	}
}
