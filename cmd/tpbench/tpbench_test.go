package main

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/gate"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

func TestGeneratedLoadMatchesItsExpectations(t *testing.T) {
	m := mix{ECS: 0.2, Gated: 0.1, Malformed: 0.05, Miss: 0.1}
	d := generate(20000, 500, m, 3, 0, 7, false)
	dec := event.NewDecoder(1<<20, 32)
	g := gate.New(nil, nil)
	var outputs, dead, fresh int
	seenFresh := map[string]bool{}
	for _, msg := range d.msgs {
		in, err := dec.Decode(msg.Value, time.Now(), "x")
		if err != nil {
			dead++
			continue
		}
		for _, s := range in.Sightings {
			outputs++
			if _, gated := g.Check(s.Indicator.Addr); gated {
				continue
			}
			if isFresh(s.Indicator.Addr) {
				fresh++
				if seenFresh[s.Indicator.Value] {
					t.Fatalf("fresh address %s used twice", s.Indicator.Value)
				}
				seenFresh[s.Indicator.Value] = true
			}
		}
	}
	if outputs != d.outputs || dead != d.deadLetter || fresh != d.freshIPs {
		t.Fatalf("decoded %d outputs, %d dead letters, %d fresh IPs; the generator promised %d, %d, %d",
			outputs, dead, fresh, d.outputs, d.deadLetter, d.freshIPs)
	}
	if share := float64(d.freshIPs) / 20000; share < 0.06 || share > 0.1 {
		t.Errorf("fresh share %.3f: about miss x public share expected", share)
	}
	for i := range 50000 {
		if w, f := netip.MustParseAddr(warmIP(i)), netip.MustParseAddr(freshIP(1, i)); w == f || isFresh(w) || !isFresh(f) {
			t.Fatalf("warm %s and fresh %s sets overlap", w, f)
		}
	}
}

func isFresh(a netip.Addr) bool { b := a.As4(); return b[0] >= 60 && b[0] < 100 }

func TestStatistics(t *testing.T) {
	xs := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if percentile(xs, 0.5) != 5 || percentile(xs, 0.99) != 9 || percentile(nil, 0.5) != 0 {
		t.Errorf("percentiles %v %v", percentile(xs, 0.5), percentile(xs, 0.99))
	}
	flat := []int64{100, 100, 101, 99, 100, 100, 100, 101}
	leak := []int64{100, 110, 120, 130, 140, 150, 160, 170}
	if g := growth(flat); g < 0.98 || g > 1.02 {
		t.Errorf("flat growth %v", g)
	}
	if g := growth(leak); g < 1.2 {
		t.Errorf("growing memory must show: %v", g)
	}
}

func TestReportRendersTableTargetsAndSVG(t *testing.T) {
	rep := &Report{Settings: map[string]string{}, Results: []Result{
		{Scenario: "baseline", EventsPerSec: 1000, LatencyP99ms: 5},
		{Scenario: "hits", EventsPerSec: 900, HitEventsPerSec: 900, LatencyP99ms: 7},
		{Scenario: "mixed", EventsPerSec: 700, HitEventsPerSec: 665, LatencyP99ms: 120, FreshIPs: 10, PaidCalls: 10, PaidPerFreshIP: 1},
	}}
	finish(rep)
	md := markdown(rep)
	for _, want := range []string{"| hits | 0 | 900 | 0 | 0.90 | 0.00 |", "| hits throughput / engine copy (baseline) | 0.90 | >= 0.50 | yes |", "| mixed hit throughput / hits throughput | 0.74 | >= 0.70 | yes |", "1.00 (10 calls / 10 IPs)"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if err := xml.Unmarshal([]byte(chart(rep)), new(struct{ XMLName xml.Name })); err != nil {
		t.Errorf("chart is not well-formed SVG: %v", err)
	}
}

// TestCopyBaselineCopiesAndCommits runs the baseline copier on the real broker.
func TestCopyBaselineCopiesAndCommits(t *testing.T) {
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
		done <- runCopy(ctx, []string{"THREATPIPE_KAFKA_BROKERS=" + strings.Join(brokers, ","), "THREATPIPE_KAFKA_GROUP_ID=" + group,
			"THREATPIPE_KAFKA_COMMIT_INTERVAL=100ms", "THREATPIPE_LOG_LEVEL=error"}, in, out)
	}()
	pipelinetest.WaitFor(t, 60*time.Second, "3000 copies", func() bool { return pipelinetest.Count(t, brokers, out) >= 3000 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	committed := pipelinetest.Committed(t, brokers, group, in)
	for p, end := range pipelinetest.EndOffsets(t, brokers, in) {
		if committed[p] != end {
			t.Errorf("partition %d committed %d of %d", p, committed[p], end)
		}
	}
	if n := pipelinetest.Count(t, brokers, out); n != 3000 {
		t.Errorf("%d copies, want 3000", n)
	}
}
