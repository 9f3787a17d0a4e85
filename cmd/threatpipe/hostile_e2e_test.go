package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/enrich/sim"
	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/event/hostile"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// hostileRSSLimit is the enricher's memory limit in the Helm chart (deployments/helm/threatpipe, enricher.resources) and the kustomize base generated from it.
const hostileRSSLimit = 512 << 20

// TestE2EHostileCorpus runs the hostile input corpus (pipeline/event/hostile) through one real
// enricher process on the real broker, with the provider simulator refusing every call for the
// first seconds and failing the first call of some addresses later, so that revisions and change
// records are published too. Every record published on
// the scored, dead-letter and changes topics must parse with Go's encoding/json and Python's json;
// every input must end as its expected scored events and dead letter (none lost, every ordinary
// event scored); the enricher's peak RSS must stay under the Kubernetes manifest's 512 MiB.
// THREATPIPE_TEST_HOSTILE_ITEMS (a regular expression of item names) runs part of the corpus.
func TestE2EHostileCorpus(t *testing.T) {
	brokers := pipelinetest.Kafka(t)
	redisAddr := pipelinetest.Redis(t)
	items := hostileItems(t)
	tp := e2eTopics{
		// The input topic takes the item over the default size limit; the dead-letter topic keeps
		// the broker's default, so that item's dead letter is refused and published truncated.
		in:  hostileTopic(t, brokers, "in", 3, "4194304"),
		out: pipelinetest.Topic(t, brokers, "out", 3), dlq: pipelinetest.Topic(t, brokers, "dlq", 1),
		changes: pipelinetest.Topic(t, brokers, "changes", 3), group: pipelinetest.Name(t, "group"),
	}
	s, url := simulator(t, sim.Options{Latency: 10 * time.Millisecond, FailFirst: 0.05, Seed: 12})
	addr := freeAddr(t)
	p := startProc(t, enricherEnv(brokers, tp, addr, providerEnv(t, redisAddr, url, "sim-key", "THREATPIPE_CRIMINALIP_RETRY_BUDGET=1s")...), addr)
	waitGroupMembers(t, brokers, tp.group, 1)

	// The provider refuses everything for longer than an event waits on it: lookups of the first
	// inputs are parked and finished later, as revisions and change records that carry the
	// contexts too.
	window := sim.Duration(4 * time.Second)
	if err := s.Configure(sim.Patch{Force429For: &window}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	inputBytes := produceItems(t, brokers, tp.in, items)
	byOffset := inputOffsets(t, brokers, tp.in, items)
	// An input's offset is committed once all its outputs are acknowledged: every input is done
	// when the group's committed offsets reach the ends. Then parked lookups finish as revisions.
	ends := pipelinetest.EndOffsets(t, brokers, tp.in)
	pipelinetest.WaitFor(t, 5*time.Minute, "every input committed", func() bool {
		committed := pipelinetest.Committed(t, brokers, tp.group, tp.in)
		for part, end := range ends {
			if end > 0 && committed[part] < end {
				return false
			}
		}
		return true
	})
	var res hostileResult
	for until := time.Now().Add(3 * time.Minute); ; time.Sleep(time.Second) {
		res = collect(t, brokers, tp, byOffset)
		if res.settled() {
			break
		}
		if time.Now().After(until) {
			t.Errorf("parked lookups not revised after 3 minutes: %s", strings.Join(res.pending(items, 10), "; "))
			break
		}
	}
	took := time.Since(start)
	peak := peakRSS(t, p.cmd.Process.Pid)
	stopAll(t, p)

	parseFailures := checkParses(t, res)
	wrong := res.check(t, items)
	writeReport(t, "hostile-input.txt", res.report(items, inputBytes, peak, took, parseFailures, wrong))
	if peak >= hostileRSSLimit {
		t.Errorf("peak RSS %d MiB, want under %d MiB", peak>>20, hostileRSSLimit>>20)
	}
}

// hostileItems returns the corpus, or the part THREATPIPE_TEST_HOSTILE_ITEMS names.
func hostileItems(t *testing.T) []hostile.Item {
	t.Helper()
	items, err := hostile.Corpus()
	if err != nil {
		t.Fatal(err)
	}
	if expr := os.Getenv("THREATPIPE_TEST_HOSTILE_ITEMS"); expr != "" {
		re := regexp.MustCompile(expr)
		items = slices.DeleteFunc(items, func(it hostile.Item) bool { return !re.MatchString(it.Name) })
	}
	return items
}

// hostileTopic creates a topic whose max.message.bytes is maxBytes.
func hostileTopic(t *testing.T, brokers []string, suffix string, partitions int, maxBytes string) string {
	t.Helper()
	name := pipelinetest.Name(t, suffix)
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 15 * time.Second}
	res, err := client.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: name, NumPartitions: partitions, ReplicationFactor: 1,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: maxBytes}},
	}}})
	if err == nil {
		err = res.Errors[name]
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{name}})
	})
	pipelinetest.WaitFor(t, 20*time.Second, "topic "+name, func() bool { return len(pipelinetest.Partitions(t, brokers, name)) == partitions })
	return name
}

// produceItems writes every item, keyed by its name, and returns the bytes written.
func produceItems(t *testing.T, brokers []string, topic string, items []hostile.Item) int64 {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: 2 * time.Millisecond, BatchSize: 100, BatchBytes: 4 << 20}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var n int64
	for _, it := range items {
		n += int64(len(it.Value))
		if err := w.WriteMessages(ctx, kafka.Message{Key: []byte(it.Name), Value: it.Value}); err != nil {
			t.Fatalf("produce %s: %v", it.Name, err)
		}
	}
	return n
}

type position struct {
	partition int
	offset    int64
}

// inputOffsets maps every input message's position to its item's index.
func inputOffsets(t *testing.T, brokers []string, topic string, items []hostile.Item) map[position]int {
	t.Helper()
	index := make(map[string]int, len(items))
	for i, it := range items {
		index[it.Name] = i
	}
	out := make(map[position]int, len(items))
	for _, m := range pipelinetest.ReadAll(t, brokers, topic) {
		out[position{m.Partition, m.Offset}] = index[string(m.Key)]
	}
	if len(out) != len(items) {
		t.Fatalf("%d input messages for %d items", len(out), len(items))
	}
	return out
}

// hostileResult is what the enricher published, by input item.
type latestKey struct {
	item               int
	eventID, indicator string
}

type hostileResult struct {
	scored, deadLetters, changes []kafka.Message
	// By item index: the indicator values scored (in the order first seen) and the dead letters.
	indicators map[int][]string
	latest     map[latestKey]*event.Scored // the highest revision of each scored event
	dl         map[int][]kafka.Message
	unknown    []string // outputs that name no input
}

func collect(t *testing.T, brokers []string, tp e2eTopics, byOffset map[position]int) hostileResult {
	t.Helper()
	r := hostileResult{indicators: map[int][]string{}, latest: map[latestKey]*event.Scored{}, dl: map[int][]kafka.Message{}}
	if pipelinetest.Count(t, brokers, tp.out)+pipelinetest.Count(t, brokers, tp.dlq) == 0 {
		return r
	}
	r.scored = pipelinetest.ReadAll(t, brokers, tp.out)
	r.deadLetters = pipelinetest.ReadAll(t, brokers, tp.dlq)
	r.changes = pipelinetest.ReadAll(t, brokers, tp.changes)
	for _, m := range r.scored {
		var ev event.Scored
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			r.unknown = append(r.unknown, fmt.Sprintf("scored record at %d/%d: %v", m.Partition, m.Offset, err))
			continue
		}
		i, ok := byOffset[position{ev.Origin.Partition, ev.Origin.Offset}]
		if !ok {
			r.unknown = append(r.unknown, fmt.Sprintf("scored event %s names no input (%+v)", ev.EventID, ev.Origin))
			continue
		}
		key := latestKey{i, ev.EventID, ev.Indicator.Value}
		if cur, seen := r.latest[key]; !seen {
			r.indicators[i] = append(r.indicators[i], ev.Indicator.Value)
			r.latest[key] = &ev
		} else if ev.Revision > cur.Revision {
			r.latest[key] = &ev
		}
	}
	for _, m := range r.deadLetters {
		part, _ := strconv.Atoi(pipelinetest.Header(m, pipeline.HeaderOriginalPartition))
		off, _ := strconv.ParseInt(pipelinetest.Header(m, pipeline.HeaderOriginalOffset), 10, 64)
		i, ok := byOffset[position{part, off}]
		if !ok {
			r.unknown = append(r.unknown, fmt.Sprintf("dead letter at %d/%d names no input", m.Partition, m.Offset))
			continue
		}
		r.dl[i] = append(r.dl[i], m)
	}
	return r
}

// settled says no scored event's latest revision still waits for a provider.
func (r hostileResult) settled() bool {
	for _, ev := range r.latest {
		for _, o := range ev.Providers {
			if o != nil && o.Status == event.StatusPending {
				return false
			}
		}
	}
	return true
}

// pending names up to n scored events whose latest revision still waits for a provider.
func (r hostileResult) pending(items []hostile.Item, n int) []string {
	var out []string
	for key, ev := range r.latest {
		for name, o := range ev.Providers {
			if o != nil && o.Status == event.StatusPending && len(out) < n {
				out = append(out, fmt.Sprintf("%s %s %s revision %d (%s)", items[key.item].Name, ev.Indicator.Value, name, ev.Revision, o.Error))
			}
		}
	}
	return out
}

// check compares every item's outcome with what it wants and returns the differences.
func (r hostileResult) check(t *testing.T, items []hostile.Item) []string {
	t.Helper()
	wrong := slices.Clone(r.unknown)
	for i, it := range items {
		got := r.indicators[i]
		var classes []string
		for _, m := range r.dl[i] {
			classes = append(classes, pipelinetest.Header(m, pipeline.HeaderErrorClass))
		}
		want := []string{}
		if it.Want.DeadLetter != "" {
			want = []string{it.Want.DeadLetter}
		}
		if !sameSet(got, it.Want.Scored) {
			wrong = append(wrong, fmt.Sprintf("%s: scored %s, want %s", it.Name, short(got), short(it.Want.Scored)))
		}
		if !slices.Equal(dedup(classes), want) {
			wrong = append(wrong, fmt.Sprintf("%s: dead letters %q, want %q", it.Name, classes, want))
		}
		for _, m := range r.dl[i] {
			if err := checkDeadLetter(m, it.Value); err != nil {
				wrong = append(wrong, fmt.Sprintf("%s: dead letter: %v", it.Name, err))
			}
		}
	}
	for key, ev := range r.latest {
		it := items[key.item]
		if truncated := ev.ContextTruncated != nil; truncated != it.Want.ContextTruncated {
			wrong = append(wrong, fmt.Sprintf("%s: context_truncated %+v, want it %v", it.Name, ev.ContextTruncated, it.Want.ContextTruncated))
		}
		if len(ev.Context) > event.DefaultMaxContextBytes {
			wrong = append(wrong, fmt.Sprintf("%s: carries %d bytes of context, over the default bound", it.Name, len(ev.Context)))
		}
	}
	slices.Sort(wrong)
	for _, w := range wrong {
		t.Error(w)
	}
	return wrong
}

func checkDeadLetter(m kafka.Message, original []byte) error {
	for _, h := range m.Headers {
		if !utf8.ValidString(h.Key) || !utf8.Valid(h.Value) {
			return fmt.Errorf("header %q is not UTF-8", h.Key)
		}
	}
	for _, h := range []string{pipeline.HeaderErrorClass, pipeline.HeaderErrorMessage, pipeline.HeaderOriginalTopic, pipeline.HeaderFailedAt} {
		if pipelinetest.Header(m, h) == "" {
			return fmt.Errorf("no %s header", h)
		}
	}
	if n := pipelinetest.Header(m, pipeline.HeaderTruncated); n != "" {
		if n != strconv.Itoa(len(original)) || !bytes.HasPrefix(original, m.Value) {
			return fmt.Errorf("truncated to %d bytes with header %s: not a prefix of the %d-byte original", len(m.Value), n, len(original))
		}
		return nil
	}
	if !bytes.Equal(m.Value, original) {
		return fmt.Errorf("value (%d bytes) is not the original (%d bytes)", len(m.Value), len(original))
	}
	return nil
}

// checkParses parses every scored event and change record with encoding/json (generic and
// typed) and with python3's json, and every dead letter's headers written as a JSON object, as
// docs/events.md shows them; it returns the failures.
func checkParses(t *testing.T, r hostileResult) []string {
	t.Helper()
	var failures []string
	var recs [][]byte
	var names []string
	add := func(what string, m kafka.Message, typed any) {
		name := fmt.Sprintf("%s record %d/%d", what, m.Partition, m.Offset)
		if err := hostile.CheckGo(m.Value); err != nil {
			failures = append(failures, fmt.Sprintf("%s (%d bytes): %v", name, len(m.Value), err))
		} else if err := json.Unmarshal(m.Value, typed); err != nil {
			failures = append(failures, fmt.Sprintf("%s: typed: %v", name, err))
		}
		recs, names = append(recs, m.Value), append(names, name)
	}
	for _, m := range r.scored {
		add("scored", m, &event.Scored{})
	}
	for _, m := range r.changes {
		add("change", m, &event.Change{})
	}
	for _, m := range r.deadLetters {
		hs := map[string]string{}
		for _, h := range m.Headers {
			hs[h.Key] = string(h.Value)
		}
		raw, err := json.Marshal(hs)
		if err != nil {
			t.Fatal(err)
		}
		add("dead-letter headers of", kafka.Message{Partition: m.Partition, Offset: m.Offset, Value: raw}, &map[string]string{})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bad, err := hostile.CheckPython(ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	for i, msg := range bad {
		failures = append(failures, fmt.Sprintf("%s (%d bytes): python3 json: %s", names[i], len(recs[i]), msg))
	}
	slices.Sort(failures)
	for _, f := range failures[:min(len(failures), 20)] {
		t.Error(f)
	}
	if len(failures) > 20 {
		t.Errorf("and %d more parse failures", len(failures)-20)
	}
	return failures
}

func (r hostileResult) report(items []hostile.Item, inputBytes int64, peak int64, took time.Duration, parseFailures, wrong []string) string {
	var ordinary, largest, lost int
	for i := range items {
		if len(r.indicators[i]) == 0 && len(r.dl[i]) == 0 {
			lost++
		}
	}
	var scoredBytes int64
	revisions := 0
	for _, ev := range r.latest {
		revisions += min(ev.Revision, 1)
	}
	for _, it := range items {
		if it.Ordinary {
			ordinary++
		}
	}
	for _, m := range r.scored {
		scoredBytes += int64(len(m.Value))
		largest = max(largest, len(m.Value))
	}
	classes := map[string]int{}
	for _, m := range r.deadLetters {
		classes[pipelinetest.Header(m, pipeline.HeaderErrorClass)]++
	}
	keys := make([]string, 0, len(classes))
	for k := range classes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var cls []string
	for _, k := range keys {
		cls = append(cls, fmt.Sprintf("%s %d", k, classes[k]))
	}
	return fmt.Sprintf("hostile corpus: %d inputs (%d ordinary, %d hostile), %.1f MB, through one enricher in %s: peak RSS %d MiB (limit %d MiB); "+
		"published %d scored events (%.1f MB, largest %d bytes; %d events revised), %d change records, %d dead letters (%s); "+
		"%d inputs lost; %d records the standard parsers (Go encoding/json, python3 json) refuse; %d unexpected outcomes\n",
		len(items), ordinary, len(items)-ordinary, float64(inputBytes)/1e6, took.Round(100*time.Millisecond), peak>>20, hostileRSSLimit>>20,
		len(r.scored), float64(scoredBytes)/1e6, largest, revisions, len(r.changes), len(r.deadLetters), strings.Join(cls, ", "),
		lost, len(parseFailures), len(wrong))
}

// peakRSS reads a process's peak resident set size (VmHWM) from /proc.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("peak RSS: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

func sameSet(a, b []string) bool {
	return slices.Equal(dedup(a), dedup(b))
}

func dedup(list []string) []string {
	out := slices.Clone(list)
	slices.Sort(out)
	return slices.Compact(out)
}

func short(list []string) string {
	if len(list) <= 4 {
		return fmt.Sprintf("%q", list)
	}
	return fmt.Sprintf("%q and %d more", list[:4], len(list)-4)
}
