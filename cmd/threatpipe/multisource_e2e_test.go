package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/enrich/rules"
	"github.com/threatpipe/threatpipe/enrich/sim"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// httpProviders are the simulated HTTP providers; every one is configured in these tests.
var httpProviders = []string{"criminalip", "abuseipdb", "virustotal", "greynoise", "otx", "internetdb"}

// allSourcesEnv configures every source against the simulator at url: the six HTTP providers,
// GeoIP databases and IP lists built from the simulated reality of ips, and the rules (the
// default stages with the lists declared, plus extraRules appended to the rules file).
func allSourcesEnv(t *testing.T, redisAddr, url string, ips []string, extraRules string, extra ...string) []string {
	t.Helper()
	dir := t.TempDir()
	city, asn, err := sim.GeoIPDatabases(ips)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	lists := "version: 1\nlists:\n"
	for _, l := range sim.Lists(ips) {
		lists += fmt.Sprintf("  - {name: %s, path: %q, kind: %s, format: %s}\n", l.Name, write(l.File, l.Data), l.Kind, l.Format)
	}
	rulesYAML := strings.Replace(string(rules.DefaultYAML()), "version: 1\n", lists, 1) + extraRules
	env := []string{
		"THREATPIPE_REDIS_ADDR=" + redisAddr,
		"THREATPIPE_REDIS_KEY_PREFIX=" + pipelinetest.Name(t, "tp"),
		"THREATPIPE_ENRICH_RULES_FILE=" + write("rules.yaml", []byte(rulesYAML)),
		"THREATPIPE_GEOIP_CITY_DB=" + write("City.mmdb", city),
		"THREATPIPE_GEOIP_ASN_DB=" + write("ASN.mmdb", asn),
		"THREATPIPE_INTERNETDB_ENABLED=true",
	}
	for _, name := range httpProviders {
		p := "THREATPIPE_" + strings.ToUpper(name) + "_"
		env = append(env, p+"BASE_URL="+url+"/"+name, p+"RATE_LIMIT=2000", p+"RATE_BURST=2000", p+"QUOTA=0")
		if name != "internetdb" {
			env = append(env, p+"API_KEY=sim-key")
		}
	}
	return append(env, extra...)
}

// TestE2EAllProvidersThreeReplicasPayOncePerProvider: three enrichers on the real broker and
// Redis with every source configured; 2,000 events naming 500 addresses cost each provider at
// most one call per address, and exactly one for every address its stage reached (the others
// were stopped early by a block list or a known-benign service).
func TestE2EAllProvidersThreeReplicasPayOncePerProvider(t *testing.T) {
	brokers := pipelinetest.Kafka(t)
	redisAddr := pipelinetest.Redis(t)
	tp := newE2ETopics(t, brokers, 6)
	s, url := simulator(t, sim.Options{Latency: 15 * time.Millisecond})
	ips := publicIPs(500)
	env := allSourcesEnv(t, redisAddr, url, ips, "")
	var procs []*proc
	for range 3 {
		addr := freeAddr(t)
		procs = append(procs, startProc(t, enricherEnv(brokers, tp, addr, env...), addr))
	}
	waitGroupMembers(t, brokers, tp.group, 3)
	pipelinetest.Produce(t, brokers, tp.in, eventsFor(ips, 4, "m", 11))
	pipelinetest.WaitFor(t, 120*time.Second, "2000 scored events", func() bool { return pipelinetest.Count(t, brokers, tp.out) >= 2000 })
	stopAll(t, procs...)

	// Which addresses each provider's stage reached, from the events themselves.
	reached := map[string]map[string]bool{}
	skipped := map[string]map[string]bool{}
	for _, name := range httpProviders {
		reached[name], skipped[name] = map[string]bool{}, map[string]bool{}
	}
	evs := scoredEvents(t, brokers, tp.out)
	for _, ev := range evs {
		for _, name := range httpProviders {
			o := ev.Providers[name]
			switch {
			case o == nil:
				t.Fatalf("%s: no %s outcome: %+v", ev.Indicator.Value, name, ev.Providers)
			case o.Status == event.StatusSkipped:
				skipped[name][ev.Indicator.Value] = true
			case o.Status == event.StatusOK || o.Status == event.StatusNotFound:
				reached[name][ev.Indicator.Value] = true
			default:
				t.Fatalf("%s: %s %s (%s)", ev.Indicator.Value, name, o.Status, o.Error)
			}
		}
		if pointsOf(ev) != ev.Score || ev.Confidence < 0 || ev.Confidence > 100 || ev.ValidatedBy == nil {
			t.Fatalf("%s: score %d, points %d, confidence %d, validated_by %v", ev.Indicator.Value, ev.Score, pointsOf(ev), ev.Confidence, ev.ValidatedBy)
		}
	}
	var report strings.Builder
	fmt.Fprintf(&report, "all sources, three replicas: 2000 events / 500 addresses\n")
	for _, name := range httpProviders {
		st := s.Provider(name).Stats()
		if st.MaxCallsPerIP > 1 || st.Lookups != int64(len(reached[name])) || st.DistinctIPs != len(reached[name]) {
			t.Errorf("%s: %d calls for %d distinct addresses (max %d per address); its stage reached %d addresses",
				name, st.Lookups, st.DistinctIPs, st.MaxCallsPerIP, len(reached[name]))
		}
		for ip := range skipped[name] {
			if s.Provider(name).Calls(ip) != 0 {
				t.Errorf("%s: %s was skipped by the rules yet cost a call", name, ip)
			}
		}
		fmt.Fprintf(&report, "  %-10s %3d calls for %3d addresses reached (%.2f per address), %3d addresses stopped early\n",
			name, st.Lookups, len(reached[name]), float64(st.Lookups)/float64(max(len(reached[name]), 1)), len(skipped[name]))
	}
	writeReport(t, "all-providers.txt", report.String())
}

// TestE2ERulesSpendOnlyWhereTheyMust: early stop spends no paid call (the simulator's counters
// prove it), private addresses cost nothing anywhere, an own-range address is asked only of the
// sources the rules allow, a stale answer is looked up again, and a first-sight source is not.
func TestE2ERulesSpendOnlyWhereTheyMust(t *testing.T) {
	brokers := pipelinetest.Kafka(t)
	redisAddr := pipelinetest.Redis(t)
	tp := newE2ETopics(t, brokers, 3)
	s, url := simulator(t, sim.Options{})
	ips := publicIPs(300)
	var blocked, open []string
	drop := dropPrefixes(t, sim.Lists(ips)[0].Data)
	for _, ip := range ips {
		if listed(drop, ip) {
			blocked = append(blocked, ip)
		} else if t2, _ := sim.TruthOf(ip); t2.Class != sim.ClassService {
			open = append(open, ip)
		}
	}
	if len(blocked) < 3 || len(open) < 3 {
		t.Fatalf("%d block-listed and %d open addresses among 300", len(blocked), len(open))
	}
	own := open[0] // an address of "our own" range: the lists may look, nothing else
	stale, firstSight := open[1], open[2]
	ownPrefix := strings.Join(strings.Split(own, ".")[:3], ".") + ".0/24"
	rulesTail := ""
	env := allSourcesEnv(t, redisAddr, url, ips, rulesTail,
		"THREATPIPE_GATE_OWN_CIDRS="+ownPrefix, "THREATPIPE_VIRUSTOTAL_TTL_MALICIOUS=2s", "THREATPIPE_VIRUSTOTAL_TTL_BENIGN=2s",
		"THREATPIPE_VIRUSTOTAL_TTL_NOT_FOUND=2s")
	// The rules under test: lists also see own ranges; Criminal IP answers are refreshed after
	// 2 s; VirusTotal looks an address up at first sight only.
	rulesPath := envValue(env, "THREATPIPE_ENRICH_RULES_FILE")
	raw, _ := os.ReadFile(rulesPath)
	y := strings.Replace(string(raw), "sources: [lists, geoip]", "sources: [{name: lists, own_ranges: true}, geoip]", 1)
	y = strings.Replace(y, "sources: [criminalip, abuseipdb]", "sources: [{name: criminalip, max_age: 2s}, abuseipdb]", 1)
	y = strings.Replace(y, `{name: virustotal, when: "score >= 40 && len(validated_by) < 2"}`, "{name: virustotal, first_sight: true}", 1)
	if !strings.Contains(y, "max_age: 2s") || !strings.Contains(y, "first_sight: true") {
		t.Fatalf("the default rules changed shape; adapt the test:\n%s", y)
	}
	if err := os.WriteFile(rulesPath, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	p := startProc(t, enricherEnv(brokers, tp, addr, env...), addr)
	send := func(prefix string, list []string, total int64) {
		pipelinetest.Produce(t, brokers, tp.in, eventsFor(list, 1, prefix, 5))
		pipelinetest.WaitFor(t, 60*time.Second, fmt.Sprintf("%d scored events", total), func() bool { return pipelinetest.Count(t, brokers, tp.out) >= total })
	}
	private := []string{"10.1.2.3", "192.168.7.7", "172.16.0.9", "100.64.1.1"}
	first := append(append(append([]string{}, blocked...), private...), own, stale, firstSight)
	send("a", first, int64(len(first)))
	time.Sleep(3 * time.Second) // past Criminal IP's max_age and VirusTotal's TTL
	send("b", []string{stale, firstSight}, int64(len(first)+2))
	stopAll(t, p)

	for _, name := range httpProviders {
		api := s.Provider(name)
		for _, ip := range append(append([]string{}, blocked...), private...) {
			if n := api.Calls(ip); n != 0 {
				t.Errorf("%s was asked about %s %d times: block-listed and private addresses cost nothing", name, ip, n)
			}
		}
		if n := api.Calls(own); n != 0 {
			t.Errorf("%s was asked about our own %s", name, own)
		}
	}
	if n := s.Provider("criminalip").Calls(stale); n != 2 {
		t.Errorf("criminalip: %d calls for %s, want 2 (its answer was older than max_age the second time)", n, stale)
	}
	if n := s.Provider("virustotal").Calls(firstSight); n != 1 {
		t.Errorf("virustotal: %d calls for %s, want 1 (first sight only, even after its answer expired)", n, firstSight)
	}
	var ownEv *event.Scored
	evs := scoredEvents(t, brokers, tp.out)
	for i, ev := range evs {
		if ev.Indicator.Value == own {
			ownEv = &evs[i]
		}
		if slices.Contains(blocked, ev.Indicator.Value) && (!slices.Contains(ev.ValidatedBy, "list:sim-drop") || ev.Providers["criminalip"].Status != event.StatusSkipped) {
			t.Errorf("%s: block-listed, yet validated_by %v, criminalip %+v", ev.Indicator.Value, ev.ValidatedBy, ev.Providers["criminalip"])
		}
	}
	if ownEv == nil || ownEv.Gate == nil || ownEv.Gate.Reason != "own_range" || ownEv.Providers["lists"] == nil || len(ownEv.Providers) != 1 {
		t.Fatalf("own-range event: %+v", ownEv)
	}
	writeReport(t, "rules.txt", fmt.Sprintf("rules: %d block-listed addresses and %d private ones cost 0 calls at 6 providers; "+
		"a stale answer was looked up again (2 calls); a first-sight source was not (1 call)\n", len(blocked), len(private)))
}

func envValue(env []string, name string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// dropPrefixes reads the networks of a Spamhaus DROP text ("prefix ; SBL id" per line).
func dropPrefixes(t *testing.T, data []byte) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, line := range strings.Split(string(data), "\n") {
		field, _, _ := strings.Cut(line, ";")
		if field = strings.TrimSpace(field); field == "" {
			continue
		}
		p, err := netip.ParsePrefix(field)
		if err != nil {
			t.Fatalf("simulated DROP list: %v", err)
		}
		out = append(out, p)
	}
	return out
}

func listed(prefixes []netip.Prefix, ip string) bool {
	a := netip.MustParseAddr(ip)
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
