package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// readyWatch polls /readyz of the processes a case expects to stay up, twice a second, and
// keeps what each answered. A process that does not answer at all (it is gone, or its HTTP
// server is stuck) leaves no sample.
type readyWatch struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	samples map[*proc][]readySample
}

type readySample struct {
	at    time.Time
	ready bool
}

func watchReadiness(procs func() []*proc) *readyWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &readyWatch{cancel: cancel, samples: map[*proc][]readySample{}}
	client := &http.Client{Timeout: 3 * time.Second}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			var polls sync.WaitGroup
			for _, p := range procs() {
				polls.Add(1)
				go func() { defer polls.Done(); w.poll(ctx, client, p) }()
			}
			polls.Wait()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *readyWatch) poll(ctx context.Context, client *http.Client, p *proc) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.http+"/readyz", nil)
	if err != nil {
		return
	}
	res, err := client.Do(req)
	if err != nil {
		return
	}
	_ = res.Body.Close()
	w.mu.Lock()
	w.samples[p] = append(w.samples[p], readySample{at: time.Now(), ready: res.StatusCode == http.StatusOK})
	w.mu.Unlock()
}

func (w *readyWatch) stop() {
	w.cancel()
	w.wg.Wait()
}

// readiness is what the processes' /readyz said around an outage from began to back.
type readiness struct {
	procs, notReady, readyAgain int
	// slowest is the longest time from back to a process answering ready again.
	slowest time.Duration
}

// around sums the samples of procs: which reported not-ready between began and a little after
// back (the probe caches its answer for a second), and how long after back each was ready again.
func (w *readyWatch) around(procs []*proc, began, back time.Time) readiness {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := readiness{procs: len(procs)}
	for _, p := range procs {
		var sawDown bool
		var lastDown time.Time
		for _, s := range w.samples[p] {
			if !s.ready && !s.at.Before(began) {
				sawDown, lastDown = true, s.at
			}
		}
		if !sawDown {
			continue
		}
		r.notReady++
		for _, s := range w.samples[p] {
			if s.ready && s.at.After(lastDown) && s.at.After(back) {
				r.readyAgain++
				r.slowest = max(r.slowest, s.at.Sub(back))
				break
			}
		}
	}
	return r
}

func (r readiness) String() string {
	if r.notReady == 0 {
		return fmt.Sprintf("0/%d not ready", r.procs)
	}
	return fmt.Sprintf("%d/%d not ready, %d ready again ≤%.1fs after", r.notReady, r.procs, r.readyAgain, r.slowest.Seconds())
}

// waitReady waits until every one of procs answers /readyz with 200.
func waitReady(t *testing.T, procs []*proc, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 3 * time.Second}
	pipelinetest.WaitFor(t, timeout, "every process to be ready", func() bool {
		for _, p := range procs {
			res, err := client.Get("http://" + p.http + "/readyz")
			if err != nil {
				return false
			}
			_ = res.Body.Close()
			if res.StatusCode != http.StatusOK {
				return false
			}
		}
		return true
	})
}
