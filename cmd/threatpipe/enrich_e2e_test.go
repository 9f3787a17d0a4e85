package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/enrich/score"
	"github.com/threatpipe/threatpipe/enrich/sim"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// simulator starts the provider simulator in-process.
func simulator(t *testing.T, opts sim.Options) (*sim.Server, string) {
	t.Helper()
	if len(opts.ValidKeys) == 0 {
		opts.ValidKeys = []string{"sim-key"}
	}
	s := sim.New(opts)
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return s, hs.URL
}

// providerEnv configures Criminal IP against the simulator, with a Redis key prefix of the
// test's own so tests sharing the real Redis never see each other's cache or quota.
func providerEnv(t *testing.T, redisAddr, baseURL, key string, extra ...string) []string {
	return append([]string{
		"THREATPIPE_REDIS_ADDR=" + redisAddr,
		"THREATPIPE_REDIS_KEY_PREFIX=" + pipelinetest.Name(t, "tp"),
		"THREATPIPE_CRIMINALIP_API_KEY=" + key,
		"THREATPIPE_CRIMINALIP_BASE_URL=" + baseURL,
		"THREATPIPE_CRIMINALIP_RATE_LIMIT=2000", "THREATPIPE_CRIMINALIP_RATE_BURST=2000",
	}, extra...)
}

// publicIPs returns n distinct addresses outside every gated range.
func publicIPs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%d.%d.%d.%d", 20+i%80, 1+i/80%250, 7, 1+i%250) // 20-99: never gated
	}
	return out
}

// eventsFor names each IP `repeats` times, shuffled, with distinct event ids.
func eventsFor(ips []string, repeats int, idPrefix string, seed uint64) []kafka.Message {
	var msgs []kafka.Message
	for r := range repeats {
		for i, ip := range ips {
			msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("%s-%d-%d", idPrefix, r, i)), Value: []byte(fmt.Sprintf(
				`{"event_id":"%s-%d-%d","observed_at":"2026-11-27T10:00:00Z","source":"e2e","indicator":{"type":"ipv4-addr","value":%q}}`, idPrefix, r, i, ip))})
		}
	}
	rng := rand.New(rand.NewPCG(seed, seed))
	rng.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
	return msgs
}

func scoredEvents(t *testing.T, brokers []string, topic string) []event.Scored {
	t.Helper()
	var out []event.Scored
	for _, m := range pipelinetest.ReadAll(t, brokers, topic) {
		var ev event.Scored
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Fatalf("output is not a scored event: %v", err)
		}
		out = append(out, ev)
	}
	return out
}

func stopAll(t *testing.T, procs ...*proc) {
	t.Helper()
	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		if err := p.wait(t, 30*time.Second); err != nil {
			t.Errorf("enricher exit after SIGTERM: %v", err)
		}
	}
}

func waitGroupMembers(t *testing.T, brokers []string, group string, n int) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	pipelinetest.WaitFor(t, 60*time.Second, fmt.Sprintf("%d stable members in %s", n, group), func() bool {
		res, err := client.DescribeGroups(context.Background(), &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
		return err == nil && len(res.Groups) == 1 && res.Groups[0].GroupState == "Stable" && len(res.Groups[0].Members) == n
	})
}

// TestE2EThreeReplicasPayOncePerIP is the paid-lookup guarantee: three enricher processes in one
// group, 2,000 events naming 500 distinct IPs, exactly 500 calls to the (simulated) provider;
// after the cache TTL, one more call per IP.
func TestE2EThreeReplicasPayOncePerIP(t *testing.T) {
	brokers := pipelinetest.Kafka(t)
	redisAddr := pipelinetest.Redis(t)
	tp := newE2ETopics(t, brokers, 6)
	s, url := simulator(t, sim.Options{Latency: 20 * time.Millisecond})
	const ttl = 6 * time.Second
	pEnv := providerEnv(t, redisAddr, url, "sim-key",
		"THREATPIPE_CRIMINALIP_TTL_MALICIOUS="+ttl.String(), "THREATPIPE_CRIMINALIP_TTL_BENIGN="+ttl.String(),
		"THREATPIPE_CRIMINALIP_TTL_NOT_FOUND="+ttl.String(),
		// Full answers, so that each can be checked against the simulator's levels.
		"THREATPIPE_PIPELINE_SCORED_DETAIL=full")
	var procs []*proc
	for range 3 {
		addr := freeAddr(t)
		procs = append(procs, startProc(t, enricherEnv(brokers, tp, addr, pEnv...), addr))
	}
	waitGroupMembers(t, brokers, tp.group, 3)

	ips := publicIPs(500)
	start := time.Now()
	pipelinetest.Produce(t, brokers, tp.in, eventsFor(ips, 4, "a", 1))
	pipelinetest.WaitFor(t, 90*time.Second, "2000 scored events", func() bool { return pipelinetest.Count(t, brokers, tp.out) >= 2000 })
	took := time.Since(start)
	st := s.Stats()
	if st.Lookups != 500 || st.DistinctIPs != 500 || st.MaxCallsPerIP != 1 {
		t.Fatalf("2000 events / 500 IPs on 3 replicas: %d provider calls, %d distinct IPs, max %d per IP; want exactly 500, 500, 1",
			st.Lookups, st.DistinctIPs, st.MaxCallsPerIP)
	}
	var hits, joined, looked int
	for _, ev := range scoredEvents(t, brokers, tp.out) {
		out := ev.Providers["criminalip"]
		if out == nil || (out.Status != event.StatusOK && out.Status != event.StatusNotFound) {
			t.Fatalf("event %s: criminalip outcome %+v", ev.EventID, out)
		}
		switch {
		case out.Cache == nil:
			looked++
		case out.Cache.Hit:
			hits++
		case out.Cache.Joined:
			joined++
		}
		inbound, outbound, tags := sim.CriminalIPVerdict(ev.Indicator.Value)
		if out.Status == event.StatusOK {
			if out.Result.InboundLevel != inbound || out.Result.OutboundLevel != outbound || strings.Join(out.Result.Tags, ",") != strings.Join(tags, ",") {
				t.Fatalf("%s: result %+v does not match the simulator's %s/%s %v", ev.Indicator.Value, out.Result, inbound, outbound, tags)
			}
			// One source: its score, plus the points of risky tags it reported (docs/scoring.md).
			want := score.Default().Fuse(map[string]*event.ProviderOutcome{"criminalip": out}, []string{"criminalip"}, time.Now())
			if ev.Score != want.Score || ev.Score < out.Result.Score || ev.Reasons[0].Source != "criminalip" || pointsOf(ev) != ev.Score {
				t.Fatalf("%s: score %d (want %d) reasons %+v", ev.Indicator.Value, ev.Score, want.Score, ev.Reasons)
			}
		}
	}
	if looked != 500 || hits+joined != 1500 {
		t.Errorf("outcomes: %d looked up, %d cache hits, %d single-flight joins; want 500 and 1500 saved", looked, hits, joined)
	}

	// Let every answer expire (all were stored before the last event was published), then name
	// each IP once more: one more call per IP.
	time.Sleep(ttl + time.Second)
	pipelinetest.Produce(t, brokers, tp.in, eventsFor(ips, 1, "b", 2))
	pipelinetest.WaitFor(t, 90*time.Second, "2500 scored events", func() bool { return pipelinetest.Count(t, brokers, tp.out) >= 2500 })
	st2 := s.Stats()
	if st2.Lookups != 1000 || st2.MaxCallsPerIP != 2 {
		t.Fatalf("after TTL expiry: %d calls (max %d per IP), want 1000 (exactly one more per IP)", st2.Lookups, st2.MaxCallsPerIP)
	}
	stopAll(t, procs...)
	writeReport(t, "paid-lookups.txt", fmt.Sprintf(
		"three replicas: 2000 events / 500 IPs -> %d provider calls (%.2f per IP), %d cache hits + %d single-flight joins saved (%.0f%% hit ratio), %s to score all; "+
			"after TTL expiry 500 more events -> %d more calls\n",
		st.Lookups, float64(st.Lookups)/500, hits, joined, 100*float64(hits+joined)/2000, took.Round(100*time.Millisecond), st2.Lookups-st.Lookups))
}

// failureRun starts one enricher (at most 4 requests in flight to the provider) against a
// simulator set up by the caller, produces two waves of events (each IP named twice), waits
// until every event is published, stops the enricher and returns the outputs, the simulator's
// counters after the first wave, the enricher's log and the ops topic.
func failureRun(t *testing.T, s *sim.Server, url, key string, wave1, wave2 []string, extra ...string) ([]event.Scored, sim.Stats, string, string) {
	t.Helper()
	brokers := pipelinetest.Kafka(t)
	redisAddr := pipelinetest.Redis(t)
	tp := newE2ETopics(t, brokers, 3)
	opsTopic := pipelinetest.Topic(t, brokers, "ops", 1)
	addr := freeAddr(t)
	env := append(providerEnv(t, redisAddr, url, key, extra...), "THREATPIPE_KAFKA_OPS_TOPIC="+opsTopic, "THREATPIPE_CRIMINALIP_MAX_CONCURRENT=4")
	p := startProc(t, enricherEnv(brokers, tp, addr, env...), addr)
	var total int
	var afterFirst sim.Stats
	for i, ips := range [][]string{wave1, wave2} {
		msgs := eventsFor(ips, 2, fmt.Sprintf("w%d", i), uint64(3+i))
		total += len(msgs)
		pipelinetest.Produce(t, brokers, tp.in, msgs)
		pipelinetest.WaitFor(t, 90*time.Second, "every event published", func() bool {
			return pipelinetest.Count(t, brokers, tp.out) >= int64(total)
		})
		if i == 0 {
			afterFirst = s.Stats()
		}
	}
	stopAll(t, p)
	evs := scoredEvents(t, brokers, tp.out)
	seen := map[string]bool{}
	for _, ev := range evs {
		seen[ev.EventID] = true
	}
	if len(seen) != total {
		t.Fatalf("%d distinct events published, want %d: none may be lost", len(seen), total)
	}
	return evs, afterFirst, p.log.String(), opsTopic
}

// pointsOf adds up the points of an event's reasons: they always make its score.
func pointsOf(ev event.Scored) int {
	n := 0
	for _, r := range ev.Reasons {
		n += r.Points
	}
	return n
}

func statuses(evs []event.Scored) map[event.ProviderStatus]int {
	out := map[event.ProviderStatus]int{}
	for _, ev := range evs {
		if o := ev.Providers["criminalip"]; o != nil {
			out[o.Status]++
		}
	}
	return out
}

func opsTypes(t *testing.T, brokers []string, topic string) []string {
	var types []string
	for _, m := range pipelinetest.ReadAll(t, brokers, topic) {
		var e struct{ Type, Provider string }
		if err := json.Unmarshal(m.Value, &e); err != nil || e.Provider != "criminalip" {
			t.Fatalf("ops event %s: %v", m.Value, err)
		}
		types = append(types, e.Type)
	}
	return types
}

func TestE2ERateLimitedProviderLosesNothing(t *testing.T) {
	s, url := simulator(t, sim.Options{Force429For: 3 * time.Second})
	ips := publicIPs(100)
	evs, _, _, _ := failureRun(t, s, url, "sim-key", ips[:50], ips[50:])
	st := s.Stats()
	if st.RateLimited == 0 {
		t.Fatal("the simulator never answered 429: the test did not exercise rate limiting")
	}
	if got := statuses(evs); got[event.StatusOK]+got[event.StatusNotFound] != len(evs) {
		t.Fatalf("statuses %v: after Retry-After every lookup must succeed", got)
	}
	if st.Answered != 100 {
		t.Errorf("%d answered lookups after the 429 window, want 100 (one per IP)", st.Answered)
	}
	writeReport(t, "rate-limit.txt", fmt.Sprintf("429 window of 3s: %d rate-limited answers, then %d lookups answered; %d events published, 0 lost\n",
		st.RateLimited, st.Answered, len(evs)))
}

func TestE2EInvalidKeyDisablesProviderLoudly(t *testing.T) {
	s, url := simulator(t, sim.Options{})
	ips := publicIPs(80)
	evs, first, log, ops := failureRun(t, s, url, "wrong-key", ips[:40], ips[40:])
	if got := statuses(evs); got[event.StatusDisabled] != len(evs) {
		t.Fatalf("statuses %v, want every event published with criminalip disabled", got)
	}
	if first.Rejected == 0 || first.Rejected > 4 {
		t.Errorf("%d rejected requests: at most the 4 in flight when the first rejection came back", first.Rejected)
	}
	if st := s.Stats(); st.Rejected != first.Rejected {
		t.Errorf("the disabled provider was still called: %d rejections after the first wave, %d in all", first.Rejected, st.Rejected)
	}
	if !strings.Contains(log, "PROVIDER DISABLED") {
		t.Error("no loud log line about the disabled provider")
	}
	if got := opsTypes(t, pipelinetest.Kafka(t), ops); strings.Join(got, ",") != "provider_disabled" {
		t.Errorf("ops events %v, want one provider_disabled", got)
	}
}

func TestE2EQuotaExhaustionDegradesToCacheOnly(t *testing.T) {
	s, url := simulator(t, sim.Options{})
	ips := publicIPs(60)
	// One input source may spend the whole quota here: the test is about exhaustion, not budgets.
	evs, first, log, ops := failureRun(t, s, url, "sim-key", ips[:30], ips[30:], "THREATPIPE_CRIMINALIP_QUOTA=20", "THREATPIPE_CRIMINALIP_SOURCE_SHARE=1")
	got := statuses(evs)
	if st := s.Stats(); st.Lookups != 20 || first.Lookups != 20 {
		t.Fatalf("%d provider calls (%d after the first wave) with a daily quota of 20", st.Lookups, first.Lookups)
	}
	// Past the quota, lookups wait for the reset: pending, parked, revised then (docs/lifecycle.md).
	if got[event.StatusPending] < 80 || got[event.StatusOK]+got[event.StatusNotFound] < 20 {
		t.Fatalf("statuses %v: want answers for the 20 budgeted IPs (cached for repeats) and pending for the other 40 IPs", got)
	}
	for _, ev := range evs {
		if o := ev.Providers["criminalip"]; o.Status == event.StatusPending && (!strings.Contains(o.Error, "quota") || o.RetryAt == nil) {
			t.Fatalf("pending without the quota's reset: %+v", o)
		}
	}
	if !strings.Contains(log, "quota nearly spent") || !strings.Contains(log, "quota exhausted") {
		t.Error("the 80% warning and the exhaustion must be logged")
	}
	types := opsTypes(t, pipelinetest.Kafka(t), ops)
	slices.Sort(types)
	if strings.Join(types, ",") != "quota_exhausted,quota_warning" {
		t.Errorf("ops events %v, want one warning and one exhaustion", types)
	}
}

func TestE2EProviderSideQuotaIsHonoured(t *testing.T) {
	s, url := simulator(t, sim.Options{DailyQuota: 10})
	ips := publicIPs(80)
	evs, first, _, _ := failureRun(t, s, url, "sim-key", ips[:40], ips[40:])
	st := s.Stats()
	if st.Answered != 10 || first.QuotaExceeded == 0 || first.QuotaExceeded > 4 || st.QuotaExceeded != first.QuotaExceeded {
		t.Fatalf("simulator: %d answered, %d quota answers (%d after the first wave); want 10, then at most the 4 in flight, then none",
			st.Answered, st.QuotaExceeded, first.QuotaExceeded)
	}
	if got := statuses(evs); got[event.StatusPending] == 0 {
		t.Fatalf("statuses %v: past the provider's quota, lookups wait for the reset (pending)", got)
	}
}

func TestE2EProvidersCheck(t *testing.T) {
	_, url := simulator(t, sim.Options{DailyQuota: 500})
	for _, tc := range []struct {
		key      string
		wantCode int
		want     string
	}{{"sim-key", 0, "max_search (remaining credits) 500"}, {"bad", 1, "FAILED"}} {
		cmd := exec.Command(binary, "providers", "check")
		cmd.Env = []string{"THREATPIPE_CRIMINALIP_API_KEY=" + tc.key, "THREATPIPE_CRIMINALIP_BASE_URL=" + url}
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != tc.wantCode || !strings.Contains(string(out), tc.want) || strings.Contains(string(out), tc.key+"\"") {
			t.Errorf("key %s: exit %d output %q", tc.key, cmd.ProcessState.ExitCode(), out)
		}
	}
}
