package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// chaosScale sizes the chaos cases: the bounded scale runs in make test, the full one in
// make chaos (THREATPIPE_TEST_CHAOS=full), with the outages docs/reliability.md reports.
type chaosScale struct {
	full bool
	rate int // events per second
	// addrs is the distinct addresses of one case
	addrs int
	// lead and tail are the load before the fault and after it is over.
	lead, tail time.Duration
	// brokerDown and redisDown are how long the broker and Redis stay stopped.
	brokerDown, redisDown time.Duration
	// stormStep is each provider storm's length; stall how long the provider answers nothing
	// (0: no stall).
	stormStep, stall time.Duration
	// churn is how long the rebalance case starts and stops an extra enricher.
	churn time.Duration
	// settle bounds the wait for every event's final verdict once the load stopped.
	settle time.Duration
}

func chaosScaleFromEnv() chaosScale {
	if os.Getenv("THREATPIPE_TEST_CHAOS") == "full" {
		return chaosScale{full: true, rate: 300, addrs: 500, lead: 10 * time.Second, tail: 20 * time.Second,
			brokerDown: 10 * time.Second, redisDown: 60 * time.Second, stormStep: 10 * time.Second, stall: 10 * time.Second,
			churn: 60 * time.Second, settle: 5 * time.Minute}
	}
	return chaosScale{rate: 150, addrs: 200, lead: 4 * time.Second, tail: 6 * time.Second,
		brokerDown: 5 * time.Second, redisDown: 10 * time.Second, stormStep: 2 * time.Second,
		churn: 12 * time.Second, settle: 90 * time.Second}
}

// chaosCase is one fault the pipeline must ride out under load.
type chaosCase struct {
	name string
	// bounded cases run in make test too (at the bounded scale).
	bounded bool
	// outage marks a dependency outage: every process must report not-ready during it and
	// ready again after.
	outage bool
	// fault runs during the load and returns when the fault is over (the dependency back).
	fault func(t *testing.T, r *chaosRig, sc chaosScale) chaosFault
	// span is about how long fault takes, so that the load spreads new addresses over the case.
	span func(sc chaosScale) time.Duration
}

// chaosFault is what a case did.
type chaosFault struct {
	began, back time.Time
	detail      string
}

// chaosCases are the cases in the order they run. The bounded ones (make test) are those whose
// short versions still exercise what breaks: the broker restart (the issue's own finding), a
// Redis outage on a persistent Redis, provider storms without the stall (it opens every breaker
// for 30 s, which alone would take a minute), kill -9 of a worker and rebalances. The full
// 60 s outages, the restart of an empty Redis,
// the outage during a 429 storm and the stall run in make chaos only. The act workers keep their
// ledger on a Redis of their own (docs/operations.md), which goes down with the cache's but is
// never emptied.
func chaosCases() []chaosCase {
	return []chaosCase{
		{name: "broker-restart", bounded: true, outage: true, fault: brokerRestart,
			span: func(sc chaosScale) time.Duration { return sc.brokerDown + 15*time.Second }},
		{name: "redis-restart", bounded: true, outage: true,
			fault: func(t *testing.T, r *chaosRig, sc chaosScale) chaosFault { return redisRestart(t, r, sc, true) },
			span:  func(sc chaosScale) time.Duration { return sc.redisDown }},
		{name: "redis-restart-empty", outage: true,
			fault: func(t *testing.T, r *chaosRig, sc chaosScale) chaosFault { return redisRestart(t, r, sc, false) },
			span:  func(sc chaosScale) time.Duration { return sc.redisDown }},
		{name: "redis-restart-in-429-storm", outage: true, fault: redisOutageIn429Storm,
			span: func(sc chaosScale) time.Duration { return sc.redisDown }},
		{name: "provider-storms", bounded: true, fault: providerStorms,
			span: func(sc chaosScale) time.Duration { return 4*sc.stormStep + sc.stall }},
		{name: "act-kill-9", bounded: true, fault: actKill9, span: func(chaosScale) time.Duration { return 5 * time.Second }},
		{name: "rebalance-churn", bounded: true, fault: rebalanceChurn, span: func(sc chaosScale) time.Duration { return sc.churn }},
	}
}

// TestE2EChaos runs the chaos cases one after the other on one pipeline (three enrichers, two
// act workers) on a private broker and Redis, each case with its own events and addresses, and
// writes the reliability table (docs/reliability.md) to the artifacts directory.
func TestE2EChaos(t *testing.T) {
	pipelinetest.Kafka(t) // make test's services: java, the Kafka jars and redis-server are installed
	sc := chaosScaleFromEnv()
	if testing.Short() {
		t.Skip("the chaos suite starts its own broker: not in -short")
	}
	svc := startChaosServices(t)
	rig := newChaosRig(t, svc)
	var rows []string
	for i, c := range chaosCases() {
		if !sc.full && !c.bounded {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			row := runChaosCase(t, rig, sc, i, c)
			rows = append(rows, row.markdown())
			report := chaosHeader + row.markdown() + "\n" + strings.Join(row.notes, "\n") + "\n"
			writeReport(t, fmt.Sprintf("chaos-%d-%s.txt", i, c.name), report)
			for _, f := range row.failures {
				t.Error(f)
			}
		})
	}
	scale := "bounded (make test)"
	if sc.full {
		scale = "full (make chaos)"
	}
	table := fmt.Sprintf("chaos suite, %s scale: %d events/s over %d addresses per case, three enrichers and two act workers\n\n%s%s",
		scale, sc.rate, sc.addrs, chaosHeader, strings.Join(rows, ""))
	if err := os.WriteFile(filepath.Join(pipelinetest.ArtifactDir(t), "chaos.md"), []byte(table), 0o644); err != nil {
		t.Error(err)
	}
}

// chaosIPs are case i's addresses: distinct from every other case's, outside the gated ranges.
func chaosIPs(i, n int) []string {
	out := make([]string, n)
	for j := range out {
		out[j] = fmt.Sprintf("%d.%d.%d.%d", 20+j%80, 1+j/80%250, 100+i, 1+j%250)
	}
	return out
}

// runChaosCase runs the load, the fault in its middle, waits for the pipeline to settle and
// measures the case.
func runChaosCase(t *testing.T, r *chaosRig, sc chaosScale, i int, c chaosCase) chaosRow {
	prefix := fmt.Sprintf("chaos%d", i)
	topics := []string{r.tp.in, r.tp.out, r.tp.dlq, r.results}
	from := map[string]map[int]int64{}
	for _, topic := range topics {
		from[topic] = pipelinetest.EndOffsets(t, r.brokers, topic)
	}
	r.sim.Reset()
	procs := r.running()
	ready := watchReadiness(func() []*proc { return procs })
	defer ready.stop()

	load := newChaosLoad(r.brokers, r.tp.in, prefix, chaosIPs(i, sc.addrs), sc.rate, sc.lead+c.span(sc)+sc.tail)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); load.run(ctx) }()
	time.Sleep(sc.lead)
	f := c.fault(t, r, sc)
	time.Sleep(sc.tail)
	cancel()
	wg.Wait()
	loadStopped := time.Now()
	sent, retries := load.stats()

	row := chaosRow{name: c.name, fault: f.detail}
	in := readInputs(t, readRange(t, r.brokers, r.tp.in, from[r.tp.in]))
	var out chaosOutputs
	settleStart := time.Now()
	deadline := settleStart.Add(sc.settle)
	for ; ; time.Sleep(2 * time.Second) {
		out = readOutputs(t, readRange(t, r.brokers, r.tp.out, from[r.tp.out]), readRange(t, r.brokers, r.tp.dlq, from[r.tp.dlq]), f.back)
		if out.settled(in) || time.Now().After(deadline) {
			break
		}
	}
	settled := time.Since(settleStart)
	row.actsCaughtUp = -1
	if at, behind := waitActs(t, r, max(time.Until(deadline), 30*time.Second)); behind == "" {
		row.actsCaughtUp = at.Sub(loadStopped)
	} else {
		row.failures = append(row.failures, fmt.Sprintf("the act workers did not catch up with the scored topic within %s: %s", sc.settle, behind))
		row.notes = append(row.notes, actEngineState(r)...)
	}
	time.Sleep(time.Second) // a late duplicate would land now
	out = readOutputs(t, readRange(t, r.brokers, r.tp.out, from[r.tp.out]), readRange(t, r.brokers, r.tp.dlq, from[r.tp.dlq]), f.back)
	row.count(in, out, f.back)
	st := r.sim.Stats()
	row.paid, row.maxCalls = st.Answered, st.MaxCallsPerIP
	_, _, tickets, _ := r.fakes.snapshot()
	row.countActions(readRecords(t, r.brokers, r.results), tickets, in.addresses)
	if c.outage {
		rd := ready.around(procs, f.began, f.back)
		row.ready = &rd
		if rd.notReady != rd.procs || rd.readyAgain != rd.procs {
			row.failures = append(row.failures, "/readyz: "+rd.String()+": every process must report not-ready during the outage and ready after")
		}
	}
	row.exits = r.exits()
	for _, e := range row.exits {
		row.failures = append(row.failures, e)
	}
	row.notes = append(row.notes,
		fmt.Sprintf("load: %d events sent at %d/s, %d produce attempts retried; settled %.1f s after the load stopped", sent, sc.rate, retries, settled.Seconds()),
		fmt.Sprintf("provider: %d lookups, %d answered, %d rate-limited, %d 5xx, %d garbage, %d resets, %d stalled, %d addresses named",
			st.Lookups, st.Answered, st.RateLimited, st.Errors, st.Garbage, st.Resets, st.Stalled, row.addresses))
	return row
}

// waitActs waits until every act group has committed the scored topic to its end, and returns
// when that was, or the groups and partitions still behind at the timeout.
func waitActs(t *testing.T, r *chaosRig, timeout time.Duration) (time.Time, string) {
	t.Helper()
	end := pipelinetest.EndOffsets(t, r.brokers, r.tp.out)
	var behind []string
	for deadline := time.Now().Add(timeout); ; time.Sleep(500 * time.Millisecond) {
		behind = behind[:0]
		for _, kind := range []string{"block", "alert", "ticket"} {
			c := pipelinetest.Committed(t, r.brokers, r.actPrefix+"-"+kind, r.tp.out)
			for p, off := range end {
				if c[p] < off && off > 0 { // an empty partition has nothing to commit
					behind = append(behind, fmt.Sprintf("%s partition %d at %d of %d", kind, p, c[p], off))
				}
			}
		}
		if len(behind) == 0 {
			return time.Now(), ""
		}
		if time.Now().After(deadline) {
			slices.Sort(behind)
			return time.Time{}, strings.Join(behind, ", ")
		}
	}
}

// actEngineState is what the act workers' engines report (in flight, commit lag, commits),
// for the reader of a case whose act workers did not catch up.
func actEngineState(r *chaosRig) []string {
	var out []string
	client := &http.Client{Timeout: 5 * time.Second}
	for i, p := range r.acts {
		if p == nil {
			continue
		}
		res, err := client.Get("http://" + p.http + "/metrics")
		if err != nil {
			out = append(out, fmt.Sprintf("act %d: /metrics: %v", i, err))
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(res.Body, 8<<20))
		res.Body.Close()
		for _, line := range strings.Split(string(body), "\n") {
			for _, m := range []string{"threatpipe_in_flight", "threatpipe_commit_lag", "threatpipe_commits_total", "threatpipe_commit_errors_total", "threatpipe_events_consumed_total"} {
				if strings.HasPrefix(line, m) {
					out = append(out, fmt.Sprintf("act %d: %s", i, line))
				}
			}
		}
	}
	return out
}
