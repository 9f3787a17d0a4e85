package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/enrich/sim"
	"github.com/threatpipe/threatpipe/pipeline/allowlist"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/gate"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
	"github.com/threatpipe/threatpipe/view/steer"
)

// TestE2EFalsePositiveLiftsAndGates is the console's false positive end to end on the real
// broker and Redis: an address scored critical is blocked on the EDL, paged and ticketed by
// `threatpipe act`; steer.Service.FalsePositive, called as the view calls it, makes act lift the
// block, resolve the page and comment the ticket, and the enricher gate the address's next
// events with reason allowlist without asking the provider again. It reports how long the
// call took to reach the EDL and the gate.
func TestE2EFalsePositiveLiftsAndGates(t *testing.T) {
	brokers := pipelinetest.Kafka(t)
	redisAddr := pipelinetest.Redis(t)
	tp := newE2ETopics(t, brokers, 1)
	results := pipelinetest.Topic(t, brokers, "results", 1)
	dlq := pipelinetest.Topic(t, brokers, "actdlq", 1)
	alerts := pipelinetest.Topic(t, brokers, "alerts", 1)
	prefix := pipelinetest.Name(t, "tp")
	fakes, fakeURL := serveSOCFakes(t, 0)
	s, simURL := simulator(t, sim.Options{})
	const ip = "45.33.32.201"

	// The enricher and act share the key prefix: the allowlist and the kill switch live there.
	enrAddr := freeAddr(t)
	enricher := startProc(t, enricherEnv(brokers, tp, enrAddr, "THREATPIPE_REDIS_ADDR="+redisAddr, "THREATPIPE_REDIS_KEY_PREFIX="+prefix,
		"THREATPIPE_CRIMINALIP_API_KEY=sim-key", "THREATPIPE_CRIMINALIP_BASE_URL="+simURL), enrAddr) // the shared allowlist refreshed every 2s, the default
	actAddr := freeAddr(t)
	worker := startCommand(t, "act", append(actEnv(brokers, redisAddr, prefix, tp.out, results, dlq, alerts, criticalPlaybook(t, 80), fakeURL,
		"THREATPIPE_KAFKA_CHANGES_TOPIC="+tp.changes), "THREATPIPE_HTTP_ADDR="+actAddr), actAddr)
	waitReady(t, []*proc{enricher, worker}, 60*time.Second)

	// One sighting through the enricher (its answer cached), then the critical verdict act acts on.
	probe := 0
	sighting := func() string {
		probe++
		id := fmt.Sprintf("sighting-%d", probe)
		pipelinetest.Produce(t, brokers, tp.in, []kafka.Message{{Key: []byte(ip), Value: []byte(fmt.Sprintf(
			`{"event_id":%q,"observed_at":%q,"source":"e2e","indicator":{"type":"ipv4-addr","value":%q}}`,
			id, time.Now().UTC().Format(time.RFC3339Nano), ip))}})
		return id
	}
	first := sighting()
	pipelinetest.WaitFor(t, 30*time.Second, "the first sighting scored", func() bool { return scoredByID(t, brokers, tp.out)[first] != nil })
	pipelinetest.Produce(t, brokers, tp.out, []kafka.Message{scoredMsg(t, ip, "ev-critical", 92)})
	base := "http://" + actAddr
	pipelinetest.WaitFor(t, 30*time.Second, "the block, the page and the ticket", func() bool {
		triggers, _, creates, _ := fakes.snapshot()
		return slices.Contains(edlList(t, base), ip) && len(triggers) == 1 && creates[ip] == 1
	})
	callsBefore := s.Calls(ip)

	svc := newSteer(t, brokers, redisAddr, prefix, tp, results)
	ana := steer.Actor{Name: "ana", Role: "analyst", Via: "e2e"}
	start := time.Now()
	rec, err := svc.FalsePositive(context.Background(), ana, ip, "our own scanner", time.Hour)
	if err != nil {
		t.Fatalf("FalsePositive: %v (record %+v)", err, rec)
	}
	returned := time.Since(start)
	var toLift time.Duration
	pipelinetest.WaitFor(t, 30*time.Second, "the EDL to stop listing the address", func() bool {
		if slices.Contains(edlList(t, base), ip) {
			return false
		}
		toLift = time.Since(start)
		return true
	})
	// Sightings until one is gated: the time to the gate is bounded by the shared allowlist's
	// refresh; the sightings before it are served from the cache.
	var toGate time.Duration
	var gated *event.Scored
	pipelinetest.WaitFor(t, 30*time.Second, "a sighting gated with reason allowlist", func() bool {
		id := sighting()
		var ev *event.Scored
		pipelinetest.WaitFor(t, 10*time.Second, "sighting "+id+" scored", func() bool { ev = scoredByID(t, brokers, tp.out)[id]; return ev != nil })
		if ev.Gate == nil || ev.Gate.Reason != gate.ReasonAllowlist {
			return false
		}
		toGate, gated = time.Since(start), ev
		return true
	})
	next := sighting()
	pipelinetest.WaitFor(t, 10*time.Second, "the next sighting scored", func() bool { gated = scoredByID(t, brokers, tp.out)[next]; return gated != nil })
	if gated.Gate == nil || gated.Gate.Reason != gate.ReasonAllowlist || len(gated.Providers) != 0 {
		t.Errorf("the next sighting after the false positive: gate %+v, providers %v", gated.Gate, gated.Providers)
	}
	if got := s.Calls(ip); got != callsBefore {
		t.Errorf("the provider was asked %d more times about the false positive", got-callsBefore)
	}

	pipelinetest.WaitFor(t, 30*time.Second, "the page resolved and the ticket commented", func() bool {
		_, resolves, _, comments := fakes.snapshot()
		return len(resolves) == 1 && comments[ip] >= 1
	})
	checkAnalystRecords(t, readRecords(t, brokers, results), ip)
	writeReport(t, "steer-false-positive.txt", fmt.Sprintf(
		"false positive from the console (steer.Service.FalsePositive, act and enricher as processes, real broker and Redis): "+
			"call returned after %s; call to EDL lift %s; call to gate (first sighting gated with reason allowlist, "+
			"THREATPIPE_GATE_SHARED_ALLOWLIST_REFRESH at its default 2s, a sighting every round trip) %s; provider calls after the false positive: %d\n",
		returned.Round(time.Millisecond), toLift.Round(time.Millisecond), toGate.Round(time.Millisecond), s.Calls(ip)-callsBefore))
}

// newSteer is the service as the view builds it, on the test's topics and key prefix.
func newSteer(t *testing.T, brokers []string, redisAddr, prefix string, tp e2eTopics, results string) *steer.Service {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	t.Cleanup(func() { _ = rdb.Close() })
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), RequiredAcks: kafka.RequireAll, Balancer: &kafka.Hash{}, BatchTimeout: 5 * time.Millisecond}
	t.Cleanup(func() { _ = w.Close() })
	svc, err := steer.New(steer.Options{Producer: w, Allowlist: allowlist.New(rdb, prefix, nil), Ledger: act.NewLedger(rdb, prefix, "view"),
		Redis: rdb, Prefix: prefix, Topics: steer.Topics{Input: tp.in, Changes: tp.changes, Results: results}})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// scoredByID reads the scored topic, by event id (the highest revision).
func scoredByID(t *testing.T, brokers []string, topic string) map[string]*event.Scored {
	out := map[string]*event.Scored{}
	for _, ev := range scoredEvents(t, brokers, topic) {
		if cur := out[ev.EventID]; cur == nil || ev.Revision >= cur.Revision {
			out[ev.EventID] = &ev
		}
	}
	return out
}

// checkAnalystRecords checks the audit topic: the analyst's own record, and act's lift, resolve
// and comment naming her.
func checkAnalystRecords(t *testing.T, records []act.Record, ip string) {
	t.Helper()
	got := map[string]act.Record{}
	for _, r := range records {
		if r.Target == ip && r.Actor == "ana" {
			got[string(r.Kind)+"/"+string(r.Outcome)] = r
		}
	}
	own := got["analyst/done"]
	if own.Step != steer.StepFalsePositive || own.Sink != "view" || !strings.HasPrefix(own.Detail, "by ana (analyst) via e2e: our own scanner") {
		t.Errorf("the analyst's record: %+v", own)
	}
	for _, k := range []string{"block/lifted", "alert/resolved", "ticket/commented"} {
		if r, ok := got[k]; !ok || !strings.Contains(r.Detail, "false positive by ana (analyst)") {
			t.Errorf("act's %s record naming ana: %+v (all of ana's: %v)", k, r, keysOf(got))
		}
	}
}

func keysOf(m map[string]act.Record) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
