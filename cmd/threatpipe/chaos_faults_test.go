package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// brokerRestart stops the broker (SIGTERM: a controlled shutdown, as a rolling restart does),
// keeps it down for brokerDown and starts it again on the same data.
func brokerRestart(t *testing.T, r *chaosRig, sc chaosScale) chaosFault {
	cluster := r.svc.clusterID(t)
	began := time.Now()
	r.svc.stopKafka(t)
	stopped := time.Since(began)
	time.Sleep(sc.brokerDown)
	start := r.svc.up(t)
	back := time.Now()
	if id := r.svc.clusterID(t); id != cluster {
		t.Fatalf("the broker came back as cluster %s, not %s: its data was wiped, not restarted", id, cluster)
	}
	return chaosFault{began: began, back: back, detail: fmt.Sprintf(
		"broker stopped (SIGTERM, %.1f s), down %s, restarted (%.1f s): unreachable %.1f s",
		stopped.Seconds(), sc.brokerDown, start.Seconds(), back.Sub(began).Seconds())}
}

// redisRestart shuts Redis down for redisDown and starts it again, with its data (keep) or
// empty.
func redisRestart(t *testing.T, r *chaosRig, sc chaosScale, keep bool) chaosFault {
	began := time.Now()
	r.svc.stopRedis(t, keep)
	r.ledger.Down()
	time.Sleep(sc.redisDown)
	r.svc.up(t)
	r.ledger.Up()
	back := time.Now()
	how := "with its data"
	if !keep {
		how = "EMPTY (the ledger's Redis with its data)"
	}
	return chaosFault{began: began, back: back, detail: fmt.Sprintf("Redis down %.1f s, restarted %s", back.Sub(began).Seconds(), how)}
}

// stormRate is the share of lookups a 5xx, garbage or reset storm hits: enough that every
// replica sees it, too little to open the breaker (five failures in a row) more than rarely, so
// that each storm reaches the provider rather than an open breaker.
const stormRate = 0.3

// redisOutageIn429Storm stops Redis (keeping its data) while Criminal IP answers 429 for the
// first half of the outage: lookups that cannot finish within their budget then wait as pending
// lookups, which are parked in Redis.
func redisOutageIn429Storm(t *testing.T, r *chaosRig, sc chaosScale) chaosFault {
	began := time.Now()
	r.svc.stopRedis(t, true)
	r.ledger.Down()
	if err := r.sim.API.Force429For(sc.redisDown / 2); err != nil {
		t.Fatal(err)
	}
	time.Sleep(sc.redisDown)
	r.svc.up(t)
	r.ledger.Up()
	back := time.Now()
	return chaosFault{began: began, back: back, detail: fmt.Sprintf(
		"Redis down %.1f s (restarted with its data), Criminal IP answering 429 for the first %s of it", back.Sub(began).Seconds(), sc.redisDown/2)}
}

// providerStorms runs Criminal IP's bad minutes one after the other: a wave of 429s, then a
// share of the lookups failing with 500, answered with garbage, reset without an answer, and
// last (full scale only: it opens every replica's breaker for 30 s) a stall in which it answers
// nothing.
func providerStorms(t *testing.T, r *chaosRig, sc chaosScale) chaosFault {
	api := r.sim.API
	type storm struct {
		name     string
		on, off  func() error
		duration time.Duration
	}
	steps := []storm{
		{"429 wave", func() error { return api.Force429For(sc.stormStep) }, func() error { return api.Force429For(0) }, sc.stormStep},
		{"5xx", func() error { return api.SetErrorRate(stormRate) }, func() error { return api.SetErrorRate(0) }, sc.stormStep},
		{"garbage bodies", func() error { return api.SetGarbageRate(stormRate) }, func() error { return api.SetGarbageRate(0) }, sc.stormStep},
		{"connection resets", func() error { return api.SetResetRate(stormRate) }, func() error { return api.SetResetRate(0) }, sc.stormStep},
	}
	if sc.stall > 0 {
		steps = append(steps, storm{"stall", func() error { return api.StallFor(sc.stall) }, func() error { return api.StallFor(0) }, sc.stall})
	}
	began := time.Now()
	var names []string
	for _, s := range steps {
		if err := s.on(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(s.duration)
		if err := s.off(); err != nil {
			t.Fatal(err)
		}
		if s.name == "429 wave" || s.name == "stall" {
			names = append(names, fmt.Sprintf("%s %s", s.name, s.duration))
		} else {
			names = append(names, fmt.Sprintf("%s (%.0f%%) %s", s.name, 100*stormRate, s.duration))
		}
	}
	return chaosFault{began: began, back: time.Now(), detail: strings.Join(names, ", ")}
}

// actKill9 SIGKILLs act worker 0 while its sinks have requests in flight, and starts a new one
// in its place.
func actKill9(t *testing.T, r *chaosRig, sc chaosScale) chaosFault {
	began := time.Now()
	var inFlight int64
	for deadline := time.Now().Add(30 * time.Second); inFlight == 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		inFlight = r.sinks[0].inFlight.Load()
	}
	if inFlight == 0 {
		t.Fatal("act worker 0 never had an action in flight to kill it in")
	}
	r.killAct(t, 0)
	return chaosFault{began: began, back: time.Now(), detail: fmt.Sprintf("kill -9 of an act worker with %d sink call(s) in flight, restarted", inFlight)}
}

// rebalanceChurn starts a fourth enricher and stops it (SIGTERM) again and again, so that the
// group rebalances every few seconds.
func rebalanceChurn(t *testing.T, r *chaosRig, sc chaosScale) chaosFault {
	began := time.Now()
	n := 0
	for time.Since(began) < sc.churn {
		p := r.startEnricher(t)
		time.Sleep(4 * time.Second)
		if err := r.stop(t, p); err != nil {
			t.Errorf("the extra enricher exited with %v after SIGTERM", err)
		}
		n++
		time.Sleep(2 * time.Second)
	}
	return chaosFault{began: began, back: time.Now(), detail: fmt.Sprintf("an extra enricher started and stopped %d times (a rebalance every ~3 s)", n)}
}
