package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/enrich/sim"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// chaosRig is the pipeline the chaos cases run against: three enrichers in one group and two
// act workers on the private broker and Redis, Criminal IP simulated in-process, and PagerDuty
// and Jira stand-ins that each act worker reaches at its own URL (so the suite knows which
// worker has actions in flight).
type chaosRig struct {
	svc     *chaosServices
	brokers []string
	tp      e2eTopics
	results string
	sim     *sim.Server
	fakes   *socFakes
	sinks   [2]*countingSink
	// sinkURLs are the stand-ins' addresses: act worker i reaches them at sinkURLs[i].
	sinkURLs [2]string
	// env of every enricher and of both act workers (without the HTTP address)
	enrichEnv, actEnv []string
	actPrefix         string
	// ledger stands between the act workers and their ledger's Redis.
	ledger *pipelinetest.Proxy

	mu        sync.Mutex
	enrichers []*proc
	acts      [2]*proc
	retired   []*proc // stopped or killed by a case on purpose
	logs      map[*proc]string
}

// chaosPlaybooks act on every critical indicator: a block (EDL), a page and a ticket, once per
// hour-long window.
const chaosPlaybooks = `
playbooks:
  - name: critical
    when: score >= 80
    window: 1h
    steps:
      - {name: block, action: block, sink: edl, duration: 1h}
      - {name: page, action: alert, sink: pagerduty}
      - {name: ticket, action: ticket, sink: jira}
`

func newChaosRig(t *testing.T, svc *chaosServices) *chaosRig {
	t.Helper()
	brokers := svc.brokers()
	r := &chaosRig{svc: svc, brokers: brokers, tp: newE2ETopics(t, brokers, 6), logs: map[*proc]string{}}
	r.results = pipelinetest.Topic(t, brokers, "results", 3)
	ops := pipelinetest.Topic(t, brokers, "ops", 1)
	var simURL string
	r.sim, simURL = simulator(t, sim.Options{Latency: 20 * time.Millisecond, Jitter: 10 * time.Millisecond})
	r.fakes = newSOCFakes(50 * time.Millisecond)
	for i := range r.sinks {
		r.sinks[i] = &countingSink{next: r.fakes}
		srv := httptest.NewServer(r.sinks[i])
		t.Cleanup(srv.Close)
		r.sinkURLs[i] = srv.URL
	}
	playbooks := filepath.Join(t.TempDir(), "playbooks.yaml")
	if err := os.WriteFile(playbooks, []byte(chaosPlaybooks), 0o600); err != nil {
		t.Fatal(err)
	}
	r.enrichEnv = append(providerEnv(t, svc.redisAddr(), simURL, "sim-key"), "THREATPIPE_KAFKA_OPS_TOPIC="+ops)
	r.actPrefix = pipelinetest.Name(t, "act")
	// The ledger on a Redis of its own, as docs/operations.md advises: the shared test Redis
	// (persistent as far as the suite goes) behind a proxy, so that a Redis outage takes it away
	// too but a Redis restarted empty does not empty it. The key prefix keeps its keys apart.
	r.ledger = pipelinetest.NewProxy(t, pipelinetest.Redis(t))
	r.actEnv = actEnv(brokers, svc.redisAddr(), r.actPrefix, r.tp.out, r.results,
		pipelinetest.Topic(t, brokers, "actdlq", 1), pipelinetest.Topic(t, brokers, "alerts", 1), playbooks, "",
		"THREATPIPE_ACT_MAX_BLOCKS_PER_MINUTE=100000", "THREATPIPE_KAFKA_CHANGES_TOPIC="+r.tp.changes,
		"THREATPIPE_ACT_REDIS_ADDR="+r.ledger.Addr(), "THREATPIPE_REDIS_KEY_PREFIX="+r.actPrefix)
	for range 3 {
		r.enrichers = append(r.enrichers, r.startEnricher(t))
	}
	for i := range r.acts {
		r.acts[i] = r.startAct(t, i)
	}
	waitGroupMembers(t, brokers, r.tp.group, 3)
	waitReady(t, r.running(), 60*time.Second)
	t.Cleanup(func() { r.saveLogs(t) })
	return r
}

func (r *chaosRig) startEnricher(t *testing.T) *proc {
	t.Helper()
	addr := freeAddr(t)
	return r.track(startProc(t, enricherEnv(r.brokers, r.tp, addr, r.enrichEnv...), addr), "enricher")
}

// startAct starts act worker i, whose sinks are the stand-ins at sinkURLs[i].
func (r *chaosRig) startAct(t *testing.T, i int) *proc {
	t.Helper()
	addr, url := freeAddr(t), r.sinkURLs[i]
	env := make([]string, 0, len(r.actEnv)+5)
	for _, kv := range r.actEnv { // actEnv's sink URLs point at the stand-ins of worker i
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "THREATPIPE_SINK_PAGERDUTY_URL":
			v = url + "/v2/enqueue"
		case "THREATPIPE_SINK_JIRA_BASE_URL":
			v = url
		}
		env = append(env, k+"="+v)
	}
	return r.track(startCommand(t, "act", append(env, "THREATPIPE_HTTP_ADDR="+addr), addr), fmt.Sprintf("act-%d", i))
}

func (r *chaosRig) track(p *proc, name string) *proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs[p] = fmt.Sprintf("%s-%d", name, len(r.logs))
	return p
}

// running lists the processes the cases expect to stay up.
func (r *chaosRig) running() []*proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]*proc(nil), r.enrichers...)
	return append(out, r.acts[:]...)
}

// retire records p as stopped on purpose.
func (r *chaosRig) retire(p *proc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.retired = append(r.retired, p)
}

// exits describes the processes that exited without a case stopping them.
func (r *chaosRig) exits() []string {
	var out []string
	for _, p := range r.running() {
		if err, gone := exitedProc(p); gone {
			r.mu.Lock()
			name := r.logs[p]
			r.mu.Unlock()
			out = append(out, fmt.Sprintf("%s exited (%v)", name, err))
		}
	}
	return out
}

// exitedProc reports whether p has exited, leaving its exit for p.wait.
func exitedProc(p *proc) (error, bool) {
	select {
	case err := <-p.done:
		p.done <- err
		return err, true
	default:
		return nil, false
	}
}

// killAct SIGKILLs act worker i and starts a new one in its place on the same stand-ins.
func (r *chaosRig) killAct(t *testing.T, i int) {
	t.Helper()
	r.mu.Lock()
	p := r.acts[i]
	r.mu.Unlock()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.wait(t, 10*time.Second)
	r.retire(p)
	np := r.startAct(t, i)
	r.mu.Lock()
	r.acts[i] = np
	r.mu.Unlock()
}

// stop ends p with SIGTERM and reports its exit error (nil for a clean exit).
func (r *chaosRig) stop(t *testing.T, p *proc) error {
	t.Helper()
	r.retire(p)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	return p.wait(t, 40*time.Second)
}

// saveLogs writes every process's log to the artifacts directory, for the report's reader.
func (r *chaosRig) saveLogs(t *testing.T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	dir := filepath.Join(pipelinetest.ArtifactDir(t), "chaos-logs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("chaos logs: %v", err)
		return
	}
	for p, name := range r.logs {
		if err := os.WriteFile(filepath.Join(dir, name+".log"), []byte(p.log.String()), 0o644); err != nil {
			t.Errorf("chaos logs: %v", err)
		}
	}
}

// countingSink passes requests to the SOC stand-ins and counts those in flight, so that a case
// can kill a worker while it is acting.
type countingSink struct {
	next     http.Handler
	inFlight atomic.Int64
}

func (c *countingSink) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	c.next.ServeHTTP(w, req)
}
