package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/enrich/sim"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
	"github.com/threatpipe/threatpipe/sinks/misp"
	"github.com/threatpipe/threatpipe/sinks/misp/misptest"
	"github.com/threatpipe/threatpipe/sinks/threatq/threatqtest"
)

// TestE2ETIPRoundTrip runs the threat-intel platform round trip on the real broker and Redis:
// IP attributes in MISP are polled by `threatpipe ingest`, enriched and scored by `threatpipe
// enrich`, written back to MISP and ThreatQ by an intel playbook of `threatpipe act`, and served
// as STIX 2.1 indicators by the TAXII server of `threatpipe view`. The write-backs change the
// MISP records, which the next polls see; each address is still published once (the republish
// window), so nothing loops.
func TestE2ETIPRoundTrip(t *testing.T) {
	brokers := pipelinetest.Kafka(t)
	redisAddr := pipelinetest.Redis(t)
	tp := newE2ETopics(t, brokers, 3)
	prefix := pipelinetest.Name(t, "tp")
	_, simURL := simulator(t, sim.Options{})
	mispSrv := misptest.New(t, "misp-e2e-key-0123456789")
	tqSrv := threatqtest.Start(t, threatqtest.Options{})

	// 24 addresses in a MISP event (one of them twice), and a domain that is not polled.
	ips := publicIPs(24)
	seeded := time.Now().Add(-time.Hour).Unix()
	feed := mispSrv.SeedEvent("partner feed")
	for i, ip := range append(slices.Clone(ips), ips[0]) {
		mispSrv.SeedAttribute(misptest.Attribute{EventID: feed, Type: "ip-dst", Value: ip, Timestamp: seeded + int64(i)})
	}
	mispSrv.SeedAttribute(misptest.Attribute{EventID: feed, Type: "domain", Value: "evil.example", Timestamp: seeded})

	dir := t.TempDir()
	playbooks := filepath.Join(dir, "playbooks.yaml")
	writeFile(t, playbooks, `playbooks:
  - name: writeback
    description: every scored address goes back to the threat library
    when: score >= 0
    window: 1h
    steps:
      - {name: misp, action: intel, sink: misp}
      - {name: threatq, action: intel, sink: threatq}
`)
	const token = "taxii-e2e-token-0123456789abcdef"
	digest := sha256.Sum256([]byte(token))
	tokens := filepath.Join(dir, "taxii-tokens")
	writeFile(t, tokens, "siem:"+hex.EncodeToString(digest[:])+"\n")

	start := time.Now()
	common := []string{"THREATPIPE_REDIS_ADDR=" + redisAddr, "THREATPIPE_REDIS_KEY_PREFIX=" + prefix}
	enrichAddr, actAddr, viewAddr, ingestAddr := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	enricher := startProc(t, enricherEnv(brokers, tp, enrichAddr, append(providerEnv(t, redisAddr, simURL, "sim-key"), common...)...), enrichAddr)
	results := pipelinetest.Topic(t, brokers, "results", 1)
	worker := startCommand(t, "act", actEnv(brokers, redisAddr, prefix, tp.out, results,
		pipelinetest.Topic(t, brokers, "actdlq", 1), pipelinetest.Topic(t, brokers, "alerts", 1), playbooks, "http://127.0.0.1:1",
		"THREATPIPE_HTTP_ADDR="+actAddr, "THREATPIPE_ACT_KINDS=intel",
		"THREATPIPE_SINK_MISP_URL="+mispSrv.URL, "THREATPIPE_SINK_MISP_KEY="+mispSrv.Key,
		"THREATPIPE_SINK_THREATQ_URL="+tqSrv.URL(), "THREATPIPE_SINK_THREATQ_CLIENT_ID="+threatqtest.DefaultClientID,
		"THREATPIPE_SINK_THREATQ_USERNAME="+threatqtest.DefaultUsername, "THREATPIPE_SINK_THREATQ_PASSWORD="+threatqtest.DefaultPassword,
	), actAddr)
	v := viewE2E{brokers: brokers, redisAddr: redisAddr, scored: tp.out, results: results, prefix: prefix}
	viewer := startCommand(t, "view", append(v.env(viewAddr, pipelinetest.Name(t, "view")),
		"THREATPIPE_VIEW_TAXII_ENABLED=true", "THREATPIPE_VIEW_TAXII_TOKENS_FILE="+tokens), viewAddr)
	ingester := startCommand(t, "ingest", append([]string{
		"PATH=" + os.Getenv("PATH"),
		"THREATPIPE_KAFKA_BROKERS=" + strings.Join(brokers, ","), "THREATPIPE_KAFKA_INPUT_TOPIC=" + tp.in,
		"THREATPIPE_HTTP_ADDR=" + ingestAddr, "THREATPIPE_LOG_LEVEL=info",
		"THREATPIPE_INGEST_SOURCES=misp", "THREATPIPE_INGEST_INTERVAL=1s",
		"THREATPIPE_INGEST_MISP_URL=" + mispSrv.URL, "THREATPIPE_INGEST_MISP_KEY=" + mispSrv.Key, "THREATPIPE_INGEST_MISP_SETTLE=1s",
	}, common...), ingestAddr)
	waitReady(t, []*proc{enricher, worker, viewer, ingester}, 60*time.Second)

	pipelinetest.WaitFor(t, 60*time.Second, "every address scored", func() bool { return pipelinetest.Count(t, brokers, tp.out) >= int64(len(ips)) })
	scored := time.Since(start)
	info := map[string]bool{}
	for _, ev := range scoredEvents(t, brokers, tp.out) {
		info[ev.Indicator.Value] = ev.Severity == event.SeverityInfo
	}
	pipelinetest.WaitFor(t, 60*time.Second, "every address written back to MISP and ThreatQ", func() bool {
		return len(writtenToMISP(mispSrv)) >= len(ips) && len(tqSrv.Indicators()) >= len(ips)
	})
	written := time.Since(start)
	served := servedOverTAXII(t, "http://"+viewAddr, token, ips, info)
	// The write-backs added attributes to MISP; polls after them (every second, settled after 1 s)
	// find those addresses again and must not publish them again.
	pipelinetest.WaitFor(t, 30*time.Second, "the written-back attributes polled and skipped", func() bool {
		_, metrics := waitHTTP(t, "http://"+ingestAddr+"/metrics")
		return metricValue(metrics, `threatpipe_ingest_indicators_skipped_total{reason="recent",source="misp"}`) >= float64(len(ips))
	})
	_, metrics := waitHTTP(t, "http://"+ingestAddr+"/metrics")

	if n := pipelinetest.Count(t, brokers, tp.in); n != int64(len(ips)) {
		t.Errorf("%d events on the input topic, want each of the %d addresses once (a duplicate attribute, the domain and the write-backs left out)", n, len(ips))
	}
	if n := pipelinetest.Count(t, brokers, tp.out); n != int64(len(ips)) {
		t.Errorf("%d scored events, want %d: the write-backs were enriched again", n, len(ips))
	}
	attrs := writtenToMISP(mispSrv)
	for _, ip := range ips {
		tags := attrs[ip]
		if len(tags) != 1 || !slices.ContainsFunc(tags[0], func(tag string) bool { return strings.HasPrefix(tag, `threatpipe:score="`) }) {
			t.Errorf("MISP write-back of %s: %v, want one attribute tagged with its score", ip, tags)
		}
		ind, ok := tqSrv.Indicator(ip)
		if !ok || len(ind.AttributeValues("Threatpipe Score")) != 1 || len(ind.AttributeValues("Criminal IP Verdict")) != 1 {
			t.Errorf("ThreatQ write-back of %s: %+v, want one score and one Criminal IP verdict attribute", ip, ind)
		}
	}
	if n := len(tqSrv.Indicators()); n != len(ips) {
		t.Errorf("%d ThreatQ indicators, want %d", n, len(ips))
	}
	wantServed := 0
	for _, ip := range ips {
		if !info[ip] {
			wantServed++
		}
	}
	if served != wantServed || served == 0 {
		t.Errorf("%d indicators served over TAXII, want the %d scored above info", served, wantServed)
	}
	writeReport(t, "tip-round-trip.txt", fmt.Sprintf(
		"TIP round trip: MISP held %d IP attributes (%d addresses) and a domain (not asked for); ingest polled %.0f, published %.0f, skipped %.0f not IP and %.0f recent (the write-backs polled again); "+
			"enriched and scored %d (all within %.1fs of starting the four roles); written back: %d MISP attributes tagged, %d ThreatQ indicators with attributes (all within %.1fs); "+
			"served over TAXII 2.1: %d indicators (the %d scored above info)\n",
		len(ips)+1, len(ips), metricValue(metrics, `threatpipe_ingest_indicators_polled_total{source="misp"}`),
		metricValue(metrics, `threatpipe_ingest_events_published_total{source="misp"}`),
		metricValue(metrics, `threatpipe_ingest_indicators_skipped_total{reason="not_ip",source="misp"}`),
		metricValue(metrics, `threatpipe_ingest_indicators_skipped_total{reason="recent",source="misp"}`),
		pipelinetest.Count(t, brokers, tp.out), scored.Seconds(), len(attrs), len(tqSrv.Indicators()), written.Seconds(), served, wantServed))
}

// writtenToMISP maps each address threatpipe wrote back to MISP (attributes of its writeback
// events) to the tags of each such attribute.
func writtenToMISP(s *misptest.Server) map[string][][]string {
	events := map[string]bool{}
	for _, e := range s.Events() {
		if strings.HasPrefix(e.Info, strings.TrimSuffix(misp.EventInfo("writeback", time.Now()), time.Now().UTC().Format("2006-01-02"))) {
			events[e.ID] = true
		}
	}
	out := map[string][][]string{}
	for _, a := range s.Attributes() {
		if events[a.EventID] && !a.Deleted {
			out[a.Value] = append(out[a.Value], a.Tags)
		}
	}
	return out
}

// servedOverTAXII pages through the TAXII server's "all" collection with the token and counts
// the indicators of ips, checking each one's pattern names its address.
func servedOverTAXII(t *testing.T, base, token string, ips []string, info map[string]bool) int {
	t.Helper()
	var served int
	var got []string
	pipelinetest.WaitFor(t, 30*time.Second, "the scored addresses served over TAXII", func() bool {
		served, got = 0, nil
		next := ""
		for {
			q := url.Values{"match[type]": {"indicator"}, "limit": {"10"}}
			if next != "" {
				q.Set("next", next)
			}
			req, err := http.NewRequest(http.MethodGet, base+"/taxii2/api/collections/all/objects/?"+q.Encode(), nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Accept", "application/taxii+json;version=2.1")
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			var env struct {
				More    bool   `json:"more"`
				Next    string `json:"next"`
				Objects []struct {
					Type    string `json:"type"`
					Pattern string `json:"pattern"`
				} `json:"objects"`
			}
			err = json.NewDecoder(resp.Body).Decode(&env)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK || err != nil {
				t.Fatalf("TAXII objects: %d %v", resp.StatusCode, err)
			}
			for _, o := range env.Objects {
				for _, ip := range ips {
					if o.Type == "indicator" && strings.Contains(o.Pattern, "'"+ip+"'") {
						served++
						got = append(got, ip)
					}
				}
			}
			if !env.More {
				break
			}
			next = env.Next
		}
		want := 0
		for _, ip := range ips {
			if !info[ip] {
				want++
			}
		}
		return served >= want
	})
	return served
}

// metricValue is the value of one sample line of a Prometheus text exposition, 0 when absent.
func metricValue(exposition, series string) float64 {
	for _, line := range strings.Split(exposition, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			_, _ = fmt.Sscan(rest, &v)
			return v
		}
	}
	return 0
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}
