package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/pipeline/kafkax/readback"
)

type topics struct{ in, out, dlq, changes, group string }

func (b *bench) topics(ctx context.Context, name string) (topics, error) {
	t := topics{
		in:      fmt.Sprintf("bench.%s.%s.in", b.runID, name),
		out:     fmt.Sprintf("bench.%s.%s.out", b.runID, name),
		dlq:     fmt.Sprintf("bench.%s.%s.dlq", b.runID, name),
		changes: fmt.Sprintf("bench.%s.%s.changes", b.runID, name),
		group:   fmt.Sprintf("bench.%s.%s", b.runID, name),
	}
	var cfgs []kafka.TopicConfig
	for _, n := range []string{t.in, t.out, t.dlq, t.changes} {
		cfgs = append(cfgs, kafka.TopicConfig{Topic: n, NumPartitions: b.o.partitions, ReplicationFactor: 1})
	}
	res, err := b.kclient.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: cfgs})
	if err != nil {
		return t, err
	}
	for n, err := range res.Errors {
		if err != nil {
			return t, fmt.Errorf("create %s: %w", n, err)
		}
	}
	return t, b.waitPartitions(ctx, t.in, t.out, t.dlq)
}

func (b *bench) waitPartitions(ctx context.Context, names ...string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		md, err := b.kclient.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
		ok := err == nil && len(md.Topics) == len(names)
		for _, t := range md.Topics {
			ok = ok && t.Error == nil && len(t.Partitions) == b.o.partitions
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topics %v not ready: %v", names, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (b *bench) deleteTopics(t topics) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, _ = b.kclient.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{t.in, t.out, t.dlq, t.changes}})
}

func (b *bench) produce(ctx context.Context, topic string, msgs []kafka.Message) error {
	w := &kafka.Writer{Addr: kafka.TCP(b.o.brokers), Topic: topic, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: 2 * time.Millisecond, BatchSize: 1000, BatchBytes: 16 << 20}
	defer w.Close()
	for i := 0; i < len(msgs); i += 5000 {
		if err := w.WriteMessages(ctx, msgs[i:min(i+5000, len(msgs))]...); err != nil {
			return err
		}
	}
	return nil
}

// endOffsets returns each partition's end offset.
func (b *bench) endOffsets(ctx context.Context, topic string) (map[int]int64, error) {
	return readback.EndOffsets(ctx, b.kclient, topic)
}

func sum(m map[int]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func (b *bench) count(ctx context.Context, topics ...string) (int64, error) {
	var n int64
	for _, t := range topics {
		ends, err := b.endOffsets(ctx, t)
		if err != nil {
			return 0, err
		}
		n += sum(ends)
	}
	return n, nil
}

func (b *bench) waitCount(ctx context.Context, want int64, topics ...string) error {
	deadline := time.Now().Add(b.o.completionTimeout)
	for {
		n, err := b.count(ctx, topics...)
		if err == nil && n >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out with %d of %d outputs", n, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitGroup waits until the group is stable with n members, each assigned partitions of the
// input topic.
func (b *bench) waitGroup(ctx context.Context, t topics, n int) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		res, err := b.kclient.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{t.group}})
		if err == nil && len(res.Groups) == 1 && groupReady(res.Groups[0], t.in, n) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("group %s did not settle with %d members: %v", t.group, n, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// groupReady reports whether g is stable with n members that each own partitions of topic.
func groupReady(g kafka.DescribeGroupsResponseGroup, topic string, n int) bool {
	if g.Error != nil || g.GroupState != "Stable" || len(g.Members) != n {
		return false
	}
	for _, m := range g.Members {
		owns := false
		for _, a := range m.MemberAssignments.Topics {
			owns = owns || a.Topic == topic && len(a.Partitions) > 0
		}
		if !owns {
			return false
		}
	}
	return true
}

// waitCommitted waits until the group has committed every input offset.
func (b *bench) waitCommitted(ctx context.Context, t topics, want int64) error {
	parts := make([]int, b.o.partitions)
	for i := range parts {
		parts[i] = i
	}
	deadline := time.Now().Add(b.o.completionTimeout)
	for {
		res, err := b.kclient.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: t.group, Topics: map[string][]int{t.in: parts}})
		if err == nil {
			var n int64
			for _, p := range res.Topics[t.in] {
				n += max(p.CommittedOffset, 0)
			}
			if n >= want {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for the group to commit %d offsets: %v", want, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// readRange reads topic's messages from the given start offsets up to its end offsets.
func (b *bench) readRange(ctx context.Context, topic string, from map[int]int64) ([]kafka.Message, error) {
	ends, err := b.endOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return readback.ReadRange(rctx, []string{b.o.brokers}, topic, from, ends)
}

// span returns the first and last record timestamps of topic's messages in [from, end): it
// reads each partition's first and last record, all partitions at once (a reader per record
// with kafka-go's default fetch wait had cost about 55 s per scenario).
func (b *bench) span(ctx context.Context, topic string, from map[int]int64) (first, last time.Time, err error) {
	ends, err := b.endOffsets(ctx, topic)
	if err != nil {
		return first, last, err
	}
	heads, tails := map[int]int64{}, map[int]int64{}
	for p, end := range ends {
		if end > from[p] {
			heads[p], tails[p] = from[p]+1, end-1
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var msgs []kafka.Message
	for _, r := range []struct{ from, to map[int]int64 }{{from, heads}, {tails, ends}} {
		got, err := readback.ReadRange(rctx, []string{b.o.brokers}, topic, r.from, r.to)
		if err != nil {
			return first, last, err
		}
		msgs = append(msgs, got...)
	}
	for _, m := range msgs {
		if first.IsZero() || m.Time.Before(first) {
			first = m.Time
		}
		if m.Time.After(last) {
			last = m.Time
		}
	}
	return first, last, nil
}

func (b *bench) enricherEnv(t topics) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"THREATPIPE_KAFKA_BROKERS=" + b.o.brokers,
		"THREATPIPE_KAFKA_INPUT_TOPIC=" + t.in, "THREATPIPE_KAFKA_OUTPUT_TOPIC=" + t.out,
		"THREATPIPE_KAFKA_DLQ_TOPIC=" + t.dlq, "THREATPIPE_KAFKA_GROUP_ID=" + t.group,
		"THREATPIPE_KAFKA_CHANGES_TOPIC=" + t.changes,
		"THREATPIPE_KAFKA_OPS_TOPIC=bench." + b.runID + ".ops",
		"THREATPIPE_KAFKA_SESSION_TIMEOUT=10s", "THREATPIPE_KAFKA_HEARTBEAT_INTERVAL=1s",
		"THREATPIPE_REDIS_ADDR=" + b.o.redis,
		"THREATPIPE_REDIS_KEY_PREFIX=bench-" + b.runID,
		"THREATPIPE_HTTP_ADDR=127.0.0.1:0",
		"THREATPIPE_LOG_LEVEL=warn",
		"THREATPIPE_CRIMINALIP_API_KEY=bench-key",
		"THREATPIPE_CRIMINALIP_BASE_URL=" + b.simURL,
		"THREATPIPE_CRIMINALIP_RATE_LIMIT=4000", "THREATPIPE_CRIMINALIP_RATE_BURST=200",
		"THREATPIPE_CRIMINALIP_MAX_CONCURRENT=512",
	}
	if b.o.enricherExtraEnv != "" {
		env = append(env, strings.Split(b.o.enricherExtraEnv, ",")...)
	}
	return env
}

// warmUp runs the enricher once over every warm address, so the hits scenario finds them all
// in the cache.
func (b *bench) warmUp(ctx context.Context) error {
	t, err := b.topics(ctx, "warmup")
	if err != nil {
		return err
	}
	defer b.deleteTopics(t)
	msgs := make([]kafka.Message, b.o.warm)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf(
			`{"event_id":"warm-%d","observed_at":"2026-11-27T10:00:00Z","source":"bench","indicator":{"type":"ipv4-addr","value":%q}}`, i, warmIP(i)))}
	}
	if err := b.produce(ctx, t.in, msgs); err != nil {
		return err
	}
	p, err := startProc(b.o.bin, []string{"enrich"}, b.enricherEnv(t), filepath.Join(b.dir, "warmup.log"))
	if err != nil {
		return err
	}
	defer p.terminate(b.o.drainTimeout)
	start := time.Now()
	if err := b.waitCount(ctx, int64(len(msgs)), t.out); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	fmt.Fprintf(os.Stderr, "tpbench: warm-up: %d addresses looked up in %s (%d simulator calls)\n", b.o.warm, time.Since(start).Round(time.Millisecond), b.sim.Stats().Lookups)
	return nil
}

// plan is one measured scenario.
type plan struct {
	name  string
	argv  []string // the process to run: the enricher, or a copy (which gets IN OUT [CPUPROFILE])
	nproc int
	data  *dataset
	// paced builds n events stamped now for the latency phase (run and freshBase as generate's).
	paced func(n, run, freshBase int, seed uint64) *dataset
	// copy: one output per input, no dead-letter topic (the baselines).
	copy bool
	// settle: the outputs are not known in advance (formats whose decoders may not be
	// registered), so the backlog is done when every input offset is committed.
	settle bool
	// allocs: also take an allocation profile of the first process.
	allocs bool
	// joinFirst: the processes join the group on an empty topic and the backlog is produced
	// once every one has its partitions. Several processes joining one after another would
	// rebalance the group in the middle of the backlog (redelivering part of it), and the
	// rebalances, not the processing, would set the figure.
	joinFirst bool
}

// scenario runs one measured scenario: the load is produced first (a backlog), the processes
// start, throughput is the input events over the span between the first and the last output
// record; then a paced phase at a fixed rate measures end-to-end latency. The first process's
// CPU is profiled to <scenario>.cpu.prof.
func (b *bench) scenario(ctx context.Context, pl plan) (*Result, error) {
	name, d := pl.name, pl.data
	t, err := b.topics(ctx, name)
	if err != nil {
		return nil, err
	}
	defer b.deleteTopics(t)
	joinFirst := pl.joinFirst
	if !joinFirst {
		if err := b.produce(ctx, t.in, d.msgs); err != nil {
			return nil, err
		}
	}
	expected := int64(d.outputs + d.deadLetter)
	outTopics := []string{t.out, t.dlq}
	if pl.copy {
		expected, outTopics = int64(len(d.msgs)), []string{t.out}
	}
	simBefore := b.sim.Stats().Lookups

	var procs []*proc
	for i := range pl.nproc {
		args := slices.Clone(pl.argv[1:])
		cpuProf := ""
		if b.o.profile && i == 0 {
			cpuProf = filepath.Join(b.dir, cpuProfileName(name))
		}
		switch {
		case pl.copy:
			args = append(args, t.in, t.out, cpuProf)
		case cpuProf != "":
			args = append(args, "--cpuprofile", cpuProf)
			if pl.allocs {
				args = append(args, "--memprofile", filepath.Join(b.dir, "allocs.prof"))
			}
		}
		p, err := startProc(pl.argv[0], args, b.enricherEnv(t), filepath.Join(b.dir, fmt.Sprintf("%s-%d.log", name, i)))
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
	}
	stopped := false
	stopAll := func() (peakKB int64) {
		if stopped {
			return 0
		}
		stopped = true
		for _, p := range procs {
			kb, _ := p.terminate(b.o.drainTimeout)
			peakKB = max(peakKB, kb)
		}
		return peakKB
	}
	defer stopAll()

	if joinFirst {
		if err := b.waitGroup(ctx, t, pl.nproc); err != nil {
			return nil, err
		}
	}
	cpuStart := cpuOf(procs)
	markStart := procs[0].mark()
	if joinFirst {
		if err := b.produce(ctx, t.in, d.msgs); err != nil {
			return nil, err
		}
	}
	if !pl.settle {
		if err := b.waitCount(ctx, expected, outTopics...); err != nil {
			return nil, err
		}
	}
	// Outputs can include redeliveries (replicas joining one after another rebalance the group),
	// so the backlog is done when every input offset is committed, not when enough outputs exist.
	if err := b.waitCommitted(ctx, t, int64(len(d.msgs))); err != nil {
		return nil, err
	}
	cpuBacklog := cpuOf(procs) - cpuStart
	markEnd := procs[0].mark()
	if pl.settle {
		if expected, err = b.count(ctx, outTopics...); err != nil {
			return nil, err
		}
	}
	first, last, err := b.span(ctx, outTopics[0], map[int]int64{})
	if err != nil {
		return nil, err
	}
	secs := last.Sub(first).Seconds()
	res := &Result{Scenario: name, Processes: pl.nproc, Events: len(d.msgs), Outputs: int(expected), Seconds: secs,
		FreshIPs: d.freshIPs, Kinds: d.kinds}
	if secs > 0 {
		res.EventsPerSec = float64(len(d.msgs)) / secs
		res.PerProcessEventsPerSec = res.EventsPerSec / float64(pl.nproc)
		misses := 0.0
		if !pl.copy {
			misses = float64(d.freshIPs)
		}
		res.HitEventsPerSec = (float64(len(d.msgs)) - misses) / secs
	}
	res.CPUSecPerMillion = cpuBacklog.Seconds() / float64(len(d.msgs)) * 1e6
	res.RSSGrowth = growth(procs[0].samplesBetween(markStart, markEnd))
	if !pl.copy {
		res.PaidCalls = b.sim.Stats().Lookups - simBefore
		if d.freshIPs > 0 {
			res.PaidPerFreshIP = float64(res.PaidCalls) / float64(d.freshIPs)
		}
	}

	if !pl.copy {
		all, err := b.readRange(ctx, t.out, map[int]int64{})
		if err != nil {
			return nil, err
		}
		res.Statuses, res.ScoredBytes = outcomes(all)
		dead, err := b.readRange(ctx, t.dlq, map[int]int64{})
		if err != nil {
			return nil, err
		}
		res.DeadLetters, res.DeadLetterClasses = len(dead), deadLetterClasses(dead)
	}

	// Latency below saturation: a steady trickle of fresh-stamped events of the same mix.
	from, err := b.endOffsets(ctx, t.out)
	if err != nil {
		return nil, err
	}
	pacedMsgs, pacedOutputs, err := b.paced(ctx, t.in, pl.paced, b.o.latencyRate, b.o.latencySeconds, len(name))
	if err != nil {
		return nil, err
	}
	if pl.copy {
		pacedOutputs = pacedMsgs // the copy is one to one
	}
	if pl.settle {
		err = b.waitCommitted(ctx, t, int64(len(d.msgs))+pacedMsgs)
	} else {
		err = b.waitCount(ctx, expected+pacedOutputs, outTopics...)
	}
	if err != nil {
		return nil, err
	}
	msgs, err := b.readRange(ctx, t.out, from)
	if err != nil {
		return nil, err
	}
	// Only native events' own timestamps are sure to be read as set: a format decoder that
	// does not parse its timestamp falls back to the record time, which would flatter latency.
	ms := latencies(msgs, pl.settle)
	slices.Sort(ms)
	res.LatencyRate = b.o.latencyRate
	res.LatencyP50ms, res.LatencyP99ms = percentile(ms, 0.5), percentile(ms, 0.99)
	if len(ms) > 0 {
		res.LatencyMaxms = ms[len(ms)-1]
	}
	res.PeakRSSMB = float64(stopAll()) / 1024
	return res, nil
}

// paced produces rate events/s for secs seconds, each stamped when produced, and returns how
// many messages it produced and how many outputs they must give.
func (b *bench) paced(ctx context.Context, topic string, gen func(n, run, freshBase int, seed uint64) *dataset, rate, secs, run int) (msgs, outputs int64, err error) {
	w := &kafka.Writer{Addr: kafka.TCP(b.o.brokers), Topic: topic, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, BatchSize: 1000}
	defer w.Close()
	const tick = 20 * time.Millisecond
	perTick := max(rate*int(tick)/int(time.Second), 1)
	fresh := 0
	next := time.Now()
	for i := 0; i < rate*secs; i += perTick {
		d := gen(perTick, 100+run, fresh, b.o.seed+uint64(i))
		fresh += d.freshIPs
		msgs += int64(len(d.msgs))
		outputs += int64(d.outputs + d.deadLetter)
		if err := w.WriteMessages(ctx, d.msgs...); err != nil {
			return 0, 0, err
		}
		next = next.Add(tick)
		time.Sleep(time.Until(next))
	}
	return msgs, outputs, nil
}
