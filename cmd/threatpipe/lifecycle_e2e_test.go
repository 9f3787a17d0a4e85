package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/enrich/sim"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// lifecycleRate is Criminal IP's shared rate in the verdict-lifecycle scenario: the product's
// default of 5/s when THREATPIPE_TEST_LIFECYCLE_RATE says so (the closing note's figures), a
// faster one in make test so the scenario stays quick.
func lifecycleRate() string {
	if r := os.Getenv("THREATPIPE_TEST_LIFECYCLE_RATE"); r != "" {
		return r
	}
	return "25"
}

// lifecycleOutcome is what the scenario measures: for each event its final (highest) revision.
type lifecycleOutcome struct {
	events, withoutVerdict, addressesWithout int
	reasons                                  map[string]int
	lastFinal                                time.Duration
	revisions                                int
}

// finalVerdicts keeps each event's highest revision and counts those whose Criminal IP part is
// not an answer.
func finalVerdicts(t *testing.T, evs []event.Scored, start time.Time) lifecycleOutcome {
	t.Helper()
	final := map[string]event.Scored{}
	var lastFinal time.Time
	revs := 0
	for _, ev := range evs {
		if ev.Revision > 0 {
			revs++
		}
		if cur, ok := final[ev.EventID]; !ok || ev.Revision > cur.Revision {
			final[ev.EventID] = ev
		}
	}
	out := lifecycleOutcome{events: len(final), reasons: map[string]int{}, revisions: revs}
	without := map[string]bool{}
	answered := map[string]bool{}
	for _, ev := range final {
		o := ev.Providers["criminalip"]
		ok := o != nil && (o.Status == event.StatusOK || o.Status == event.StatusNotFound)
		if ok {
			answered[ev.Indicator.Value] = true
			if ev.ProcessedAt.After(lastFinal) {
				lastFinal = ev.ProcessedAt
			}
			continue
		}
		out.withoutVerdict++
		without[ev.Indicator.Value] = true
		reason := "missing"
		if o != nil {
			reason = string(o.Status) + ": " + o.Error
			if i := strings.Index(reason, " ("); i > 0 {
				reason = reason[:i]
			}
		}
		out.reasons[reason]++
	}
	for ip := range without {
		if !answered[ip] {
			out.addressesWithout++
		}
	}
	if !lastFinal.IsZero() {
		out.lastFinal = lastFinal.Sub(start)
	}
	return out
}

func (o lifecycleOutcome) String() string {
	keys := make([]string, 0, len(o.reasons))
	for k := range o.reasons {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return o.reasons[keys[i]] > o.reasons[keys[j]] })
	var rs []string
	for _, k := range keys {
		rs = append(rs, fmt.Sprintf("%q x%d", k, o.reasons[k]))
	}
	return fmt.Sprintf("%d of %d events without a final verdict (%s); %d addresses never answered; %d revisions; last final verdict %s after the start",
		o.withoutVerdict, o.events, strings.Join(rs, ", "), o.addressesWithout, o.revisions, o.lastFinal.Round(100*time.Millisecond))
}

// TestE2EEveryEventEndsWithAVerdict is the verdict lifecycle's scenario: three enrichers, 2,000
// events naming 500 new addresses, Criminal IP at its shared rate answering a third of the
// addresses' first calls with a 500 or a 429 (Retry-After: 1). Every event ends with a final
// revision carrying Criminal IP's answer, every address costs exactly one answered call; and
// the same after a kill -9 of every enricher mid-way and a restart.
func TestE2EEveryEventEndsWithAVerdict(t *testing.T) {
	for _, kill := range []bool{false, true} {
		t.Run(fmt.Sprintf("kill=%v", kill), func(t *testing.T) { lifecycleScenario(t, kill) })
	}
}

func lifecycleScenario(t *testing.T, kill bool) {
	brokers := pipelinetest.Kafka(t)
	redisAddr := pipelinetest.Redis(t)
	tp := newE2ETopics(t, brokers, 6)
	s, url := simulator(t, sim.Options{Latency: 20 * time.Millisecond, FailFirst: 1.0 / 3})
	rate := lifecycleRate()
	env := []string{
		"THREATPIPE_REDIS_ADDR=" + redisAddr, "THREATPIPE_REDIS_KEY_PREFIX=" + pipelinetest.Name(t, "tp"),
		"THREATPIPE_CRIMINALIP_API_KEY=sim-key", "THREATPIPE_CRIMINALIP_BASE_URL=" + url,
		"THREATPIPE_CRIMINALIP_RATE_LIMIT=" + rate, "THREATPIPE_CRIMINALIP_RATE_BURST=" + rate,
	}
	start3 := func() []*proc {
		var ps []*proc
		for range 3 {
			addr := freeAddr(t)
			ps = append(ps, startProc(t, enricherEnv(brokers, tp, addr, env...), addr))
		}
		waitGroupMembers(t, brokers, tp.group, 3)
		return ps
	}
	procs := start3()
	ips := publicIPs(500)
	for i := range ips { // new addresses: none of the other tests' cache
		ips[i] = strings.Replace(ips[i], ".7.", ".11.", 1)
	}
	start := time.Now()
	pipelinetest.Produce(t, brokers, tp.in, eventsFor(ips, 4, "lc", 21))
	if kill {
		time.Sleep(8 * time.Second)
		for _, p := range procs {
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
		}
		for _, p := range procs {
			_ = p.wait(t, 10*time.Second)
		}
		procs = start3()
	}
	r, _ := strconv.ParseFloat(rate, 64)
	deadline := time.Duration(float64(len(ips))/r*float64(time.Second))*3 + 60*time.Second
	if d := os.Getenv("THREATPIPE_TEST_LIFECYCLE_WAIT"); d != "" { // to measure a product that never finishes
		deadline, _ = time.ParseDuration(d)
	}
	var got lifecycleOutcome
	for until := time.Now().Add(deadline); ; time.Sleep(time.Second) {
		got = finalVerdicts(t, scoredEvents(t, brokers, tp.out), start)
		if (got.events == 2000 && got.withoutVerdict == 0) || time.Now().After(until) {
			break
		}
	}
	stopAll(t, procs...)
	st := s.Stats()
	t.Logf("%s", got)
	if got.events != 2000 || got.withoutVerdict != 0 {
		t.Errorf("after %s: %s", deadline, got)
	}
	for _, ip := range ips {
		if n := s.Calls(ip); n < 1 || (n > 2 && !kill) {
			t.Errorf("%s: %d calls (one answered, at most one failed first)", ip, n)
		}
	}
	// A call the provider answered at the instant its enricher was killed is the one exception:
	// it was billed, but nobody learnt the answer, so it is asked again (docs/lifecycle.md).
	// Killing three enrichers once costs at most one such call each.
	extra := int64(0)
	if kill {
		extra = 3
	}
	if st.Answered < int64(len(ips)) || st.Answered > int64(len(ips))+extra {
		t.Errorf("%d answered calls for %d addresses: want exactly one each (kill -9: up to %d more)", st.Answered, len(ips), extra)
	}
	writeReport(t, fmt.Sprintf("lifecycle-kill-%v.txt", kill), fmt.Sprintf(
		"verdict lifecycle, rate %s/s, kill -9 of all enrichers mid-way %v: %s; %d answered calls for %d addresses (%.2f per address), %d failed first calls\n",
		rate, kill, got, st.Answered, len(ips), float64(st.Answered)/float64(len(ips)), st.Errors+st.RateLimited))
}
