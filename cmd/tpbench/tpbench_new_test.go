package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/event"
	formats "github.com/threatpipe/threatpipe/pipeline/format/all"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// TestFormatsLoadFollowsTheFormatsShapes checks each generated line against its format's
// documented shape, and, for each format whose decoder is registered, that it decodes as that
// format into exactly its source and destination addresses (two outputs, as the scenario
// expects).
func TestFormatsLoadFollowsTheFormatsShapes(t *testing.T) {
	const n = 4000
	d := generateFormats(n, 500, 0.4, 3, false)
	if len(d.msgs) != n || d.kinds[kindNative]+d.kinds[kindEVE]+d.kinds[kindZeek]+d.kinds[kindCEF]+d.kinds[kindKV] != n {
		t.Fatalf("%d messages, kinds %v", len(d.msgs), d.kinds)
	}
	for _, k := range []string{kindEVE, kindZeek, kindCEF, kindKV} {
		if share := float64(d.kinds[k]) / n; math.Abs(share-0.15) > 0.03 {
			t.Errorf("%s share %.3f, want about 0.15", k, share)
		}
	}
	if want := d.kinds[kindNative] + 2*(n-d.kinds[kindNative]); d.outputs != want {
		t.Errorf("expected outputs %d, want %d", d.outputs, want)
	}
	registered := formats.Names()
	dec, err := event.NewDecoder(1<<20, 32).WithFormats(event.AutoFormat, formats.Formats()...)
	if err != nil {
		t.Fatal(err)
	}
	cef := regexp.MustCompile(`^CEF:0\|Bench Security\|Bench IDS\|1\.0\|100\|[^|]+\|7\|rt=\d+ src=(\S+) spt=\d+ dst=(\S+) `)
	fgt := regexp.MustCompile(`^date=\d{4}-\d\d-\d\d time=\d\d:\d\d:\d\d devname="FGT" .*logid="0000000013" .*srcip=(\S+) .*dstip=(\S+) .*action="deny"`)
	for _, m := range d.msgs {
		kind, src, dst := shapeOf(t, string(m.Value), cef, fgt)
		if kind == kindNative || !slices.Contains(registered, kind) {
			continue
		}
		in, err := dec.Decode(m.Value, time.Now(), "x")
		if err != nil {
			t.Fatalf("%s line does not decode: %v\n%s", kind, err, m.Value)
		}
		var got []string
		for _, s := range in.Sightings {
			got = append(got, s.Indicator.Value)
		}
		if string(in.Format) != kind || !slices.Equal(got, []string{src, dst}) {
			t.Fatalf("decoded as %s with %v, want %s with [%s %s]\n%s", in.Format, got, kind, src, dst, m.Value)
		}
	}
}

// shapeOf checks one generated line against its format's documented fields and returns its
// kind and addresses.
func shapeOf(t *testing.T, line string, cef, fgt *regexp.Regexp) (kind, src, dst string) {
	t.Helper()
	if m := cef.FindStringSubmatch(line); m != nil {
		return kindCEF, m[1], m[2]
	}
	if m := fgt.FindStringSubmatch(line); m != nil {
		return kindKV, m[1], m[2]
	}
	var v struct {
		EventType string `json:"event_type"`
		SrcIP     string `json:"src_ip"`
		DestIP    string `json:"dest_ip"`
		Alert     *struct {
			Signature string `json:"signature"`
			Severity  int    `json:"severity"`
		} `json:"alert"`
		TS        float64 `json:"ts"`
		UID       string  `json:"uid"`
		OrigH     string  `json:"id.orig_h"`
		RespH     string  `json:"id.resp_h"`
		EventID   string  `json:"event_id"`
		Indicator *struct {
			Value string `json:"value"`
		} `json:"indicator"`
	}
	if err := json.Unmarshal([]byte(line), &v); err != nil {
		t.Fatalf("line of no known shape: %v\n%s", err, line)
	}
	switch {
	case v.EventType == "alert" && v.Alert != nil && v.Alert.Signature != "" && v.Alert.Severity > 0 && v.SrcIP != "" && v.DestIP != "":
		return kindEVE, v.SrcIP, v.DestIP
	case v.TS > 0 && v.UID != "" && v.OrigH != "" && v.RespH != "":
		return kindZeek, v.OrigH, v.RespH
	case v.EventID != "" && v.Indicator != nil:
		return kindNative, v.Indicator.Value, ""
	}
	t.Fatalf("line of no known shape:\n%s", line)
	return "", "", ""
}

func TestPreviousProfileIsTheNewestEarlierRun(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"20261101T000000/cpu.prof", "20261102T000000/hits.cpu.prof", "20261102T000000/formats.cpu.prof",
		"20261103T000000/mixed.cpu.prof", "20261105T000000/hits.cpu.prof"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ run, scenario, want string }{
		{"20261104T000000", "hits", "20261102T000000/hits.cpu.prof"}, // 05 is later than this run
		{"20261102T000000", "hits", "20261101T000000/cpu.prof"},      // the old name of the hits profile
		{"20261104T000000", "formats", "20261102T000000/formats.cpu.prof"},
		{"20261104T000000", "franz", ""},
		{"20261101T000000", "mixed", ""},
	} {
		got := previousProfile(dir, tc.run, tc.scenario)
		if want := filepath.Join(dir, tc.want); tc.want == "" && got != "" || tc.want != "" && got != want {
			t.Errorf("previousProfile(%s, %s) = %q, want %q", tc.run, tc.scenario, got, tc.want)
		}
	}
}

func TestScaleCounts(t *testing.T) {
	if got, err := scaleCounts("1, 2,3"); err != nil || !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("scaleCounts = %v, %v", got, err)
	}
	for _, bad := range []string{"", "0", "2,x", "-1"} {
		if _, err := scaleCounts(bad); err == nil {
			t.Errorf("scaleCounts(%q) accepted", bad)
		}
	}
	if scalingName(3) != "hits-x3" {
		t.Errorf("scalingName(3) = %s", scalingName(3))
	}
}

func TestRatiosTargetsAndMissCost(t *testing.T) {
	rep := &Report{Settings: map[string]string{}, Results: []Result{
		{Scenario: "baseline", EventsPerSec: 1000, Processes: 1},
		{Scenario: "franz", EventsPerSec: 800, Processes: 1},
		{Scenario: "hits", EventsPerSec: 600, Processes: 1, CPUSecPerMillion: 10, LatencyP99ms: 12, PeakRSSMB: 100, ScoredBytes: 640},
		// 1,000,000 events, 10,000 misses: 30 s of CPU against 9.9 s for as many hits.
		{Scenario: "mixed", Events: 1_000_000, FreshIPs: 10_000, EventsPerSec: 300, HitEventsPerSec: 297, Processes: 1, CPUSecPerMillion: 30, PaidPerFreshIP: 1},
		{Scenario: "hits-x2", EventsPerSec: 900, PerProcessEventsPerSec: 450, Processes: 2, DeadLetters: 3, DeadLetterClasses: map[string]int{"malformed_json": 3}},
	}}
	finish(rep)
	if r := rep.Results[2]; math.Abs(r.RatioToBaseline-0.6) > 1e-9 || math.Abs(r.RatioToFranz-0.75) > 1e-9 {
		t.Errorf("hits ratios %v / %v, want 0.6 / 0.75", r.RatioToBaseline, r.RatioToFranz)
	}
	met := map[string]bool{}
	value := map[string]float64{}
	for _, tg := range rep.Targets {
		met[tg.Name], value[tg.Name] = tg.Met, tg.Value
	}
	for name, want := range map[string]bool{
		"hits: CPU s per million events": false, "hits throughput / engine copy (baseline)": true, "hits throughput / franz-go copy": true,
		"mixed hit throughput / hits throughput": false, "mixed: enricher CPU ms per miss (beyond the hit cost)": false,
		"hits p99 latency (ms, below saturation)": true, "hits: peak RSS MB": true, "mixed: paid calls per new IP": true,
		"hits: bytes per scored event (enriched native input)": false,
	} {
		if got, ok := met[name]; !ok || got != want {
			t.Errorf("target %q met=%v (present %v), want %v", name, got, ok, want)
		}
	}
	if ms := value["mixed: enricher CPU ms per miss (beyond the hit cost)"]; math.Abs(ms-2.01) > 1e-9 {
		t.Errorf("miss cost %v ms, want (30 - 9.9) s / 10,000 = 2.01 ms", ms)
	}
	md := markdown(rep)
	for _, want := range []string{"| hits-x2 | 2 | 900 | 450 | 0.90 | 1.12 |", "- hits-x2: malformed_json 3", "| 10.0 | 640 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestOutcomesCountStatusesAndSizeEnrichedNativeEvents(t *testing.T) {
	msgs := []kafka.Message{
		{Value: []byte(`{"input_format":"native","providers":{"criminalip":{"status":"ok"}}}`)},
		{Value: []byte(`{"input_format":"native","providers":{"criminalip":{"status":"ok"}},"context":{"a":"padding"}}`)},
		{Value: []byte(`{"input_format":"native","gate":{"reason":"private"}}`)},
		{Value: []byte(`{"input_format":"ecs","providers":{"criminalip":{"status":"ok"}}}`)},
		{Value: []byte(`not json`)},
	}
	want := float64(len(msgs[0].Value)+len(msgs[1].Value)) / 2
	counts, got := outcomes(msgs)
	if got != want {
		t.Errorf("bytes per scored event = %v, want %v", got, want)
	}
	if counts["ok (looked up)"] != 3 || counts["gated"] != 1 || len(counts) != 2 {
		t.Errorf("criminalip outcomes %v, want 3 looked up and 1 gated", counts)
	}
	if _, got := outcomes(nil); got != 0 {
		t.Errorf("bytes per scored event of nothing = %v", got)
	}
}

func TestDeadLetterClassesAndNativeLatencies(t *testing.T) {
	dead := []kafka.Message{
		{Headers: []kafka.Header{{Key: pipeline.HeaderErrorClass, Value: []byte("unknown_format")}}},
		{Headers: []kafka.Header{{Key: "other", Value: []byte("x")}, {Key: pipeline.HeaderErrorClass, Value: []byte("unknown_format")}}},
		{},
	}
	if got := deadLetterClasses(dead); got["unknown_format"] != 2 || got["unclassified"] != 1 {
		t.Errorf("classes %v", got)
	}
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	outs := []kafka.Message{
		{Time: at, Value: []byte(`{"input_format":"native","observed_at":"2026-12-06T09:59:59.990Z"}`)},
		{Time: at, Value: []byte(`{"input_format":"eve","observed_at":"2026-12-06T10:00:00Z"}`)},
	}
	if got := latencies(outs, true); len(got) != 1 || got[0] != 10 {
		t.Errorf("native-only latencies %v, want [10]", got)
	}
	if got := latencies(outs, false); len(got) != 2 {
		t.Errorf("latencies %v, want two", got)
	}
}

// TestFranzCopyCopiesAndCommits runs the franz-go copy on the real broker.
func TestFranzCopyCopiesAndCommits(t *testing.T) {
	brokers := pipelinetest.Kafka(t)
	in, out := pipelinetest.Topic(t, brokers, "in", 3), pipelinetest.Topic(t, brokers, "out", 3)
	group := pipelinetest.Name(t, "group")
	var msgs []kafka.Message
	for i := range 3000 {
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf(`{"n":%d}`, i))})
	}
	pipelinetest.Produce(t, brokers, in, msgs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- franzCopyMain(ctx, []string{"THREATPIPE_KAFKA_BROKERS=" + strings.Join(brokers, ","), "THREATPIPE_KAFKA_GROUP_ID=" + group}, in, out)
	}()
	pipelinetest.WaitFor(t, 60*time.Second, "3000 copies", func() bool { return pipelinetest.Count(t, brokers, out) >= 3000 })
	pipelinetest.WaitFor(t, 30*time.Second, "every offset committed", func() bool {
		committed := pipelinetest.Committed(t, brokers, group, in)
		for p, end := range pipelinetest.EndOffsets(t, brokers, in) {
			if committed[p] != end {
				return false
			}
		}
		return true
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := pipelinetest.ReadAll(t, brokers, out)
	if len(got) != 3000 {
		t.Fatalf("%d copies, want 3000", len(got))
	}
	seen := map[string]bool{}
	for _, m := range got {
		if want := fmt.Sprintf(`{"n":%s}`, m.Key); string(m.Value) != want {
			t.Fatalf("copy %q = %q, want %q", m.Key, m.Value, want)
		}
		seen[string(m.Key)] = true
	}
	if len(seen) != 3000 {
		t.Errorf("%d distinct copies, want 3000", len(seen))
	}
	if err := franzCopyMain(ctx, nil, in, out); err == nil {
		t.Error("franz-copy without brokers and group accepted")
	}
}

func TestGroupReady(t *testing.T) {
	member := func(parts ...int) kafka.DescribeGroupsResponseMember {
		return kafka.DescribeGroupsResponseMember{MemberAssignments: kafka.DescribeGroupsResponseAssignments{
			Topics: []kafka.GroupMemberTopic{{Topic: "in", Partitions: parts}}}}
	}
	for _, tc := range []struct {
		name string
		g    kafka.DescribeGroupsResponseGroup
		want bool
	}{
		{"stable, all assigned", kafka.DescribeGroupsResponseGroup{GroupState: "Stable", Members: []kafka.DescribeGroupsResponseMember{member(0, 1, 2), member(3, 4, 5)}}, true},
		{"rebalancing", kafka.DescribeGroupsResponseGroup{GroupState: "PreparingRebalance", Members: []kafka.DescribeGroupsResponseMember{member(0, 1, 2), member(3, 4, 5)}}, false},
		{"one member missing", kafka.DescribeGroupsResponseGroup{GroupState: "Stable", Members: []kafka.DescribeGroupsResponseMember{member(0, 1, 2, 3, 4, 5)}}, false},
		{"a member without partitions", kafka.DescribeGroupsResponseGroup{GroupState: "Stable", Members: []kafka.DescribeGroupsResponseMember{member(0, 1, 2, 3, 4, 5), member()}}, false},
	} {
		if got := groupReady(tc.g, "in", 2); got != tc.want {
			t.Errorf("%s: groupReady = %v, want %v", tc.name, got, tc.want)
		}
	}
}
