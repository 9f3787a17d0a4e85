package enrich_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers"
	"github.com/threatpipe/threatpipe/enrich/providers/criminalip"
	"github.com/threatpipe/threatpipe/enrich/rules"
	"github.com/threatpipe/threatpipe/enrich/sim"
	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/gate"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
	"github.com/threatpipe/threatpipe/pipeline/telemetry"
)

// hitBenchIPs is the warm set: as in make bench, events cycle over addresses whose answers are
// all in the in-process cache.
const hitBenchIPs = 1000

// BenchmarkHandlerHits is the enricher's cache-hit path as make bench's hits scenario runs it,
// without Kafka: EnrichHandler over native events (the bench generator's shape) with the
// default rules, Criminal IP answered by the simulator once per address while warming, and every
// measured event answered from the in-process cache. The Redis server is needed to build the
// Lookuper and to warm, not while measuring.
func BenchmarkHandlerHits(b *testing.B) {
	h := hitHandler(b)
	msgs := make([]kafka.Message, hitBenchIPs)
	for i := range msgs {
		v := fmt.Sprintf(`{"event_id":"bench-%d","observed_at":"2026-11-27T10:00:00Z","source":"bench-fw","indicator":{"type":"ipv4-addr","value":"%d.%d.%d.7"},"context":{"action":"deny","dst_port":%d}}`,
			i, 20+i%40, i/40%250, i/10000%250, 1+i%65000)
		msgs[i] = kafka.Message{Topic: "in", Partition: i % 6, Offset: int64(i), Value: []byte(v), Time: time.Unix(1_700_000_000, 0)}
	}
	ctx := context.Background()
	for _, m := range msgs { // warm: one paid lookup per address
		if _, err := h.Handle(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	var outBytes int
	var last []byte
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		outs, err := h.Handle(ctx, msgs[i%len(msgs)])
		if err != nil || len(outs) != 1 {
			b.Fatalf("%d outputs, %v", len(outs), err)
		}
		outBytes += len(outs[0].Value)
		last = outs[0].Value
		i++
	}
	b.StopTimer()
	if !bytes.Contains(last, []byte(`"cache":{"hit":true`)) {
		b.Fatalf("not a cache hit: %s", last)
	}
	b.ReportMetric(float64(outBytes)/float64(i), "out-bytes/event")
}

func hitHandler(b *testing.B) *pipeline.EnrichHandler {
	b.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: pipelinetest.Redis(b)})
	b.Cleanup(func() { _ = rdb.Close() })
	hs := httptest.NewServer(sim.New(sim.Options{ValidKeys: []string{"bench-key"}}))
	b.Cleanup(hs.Close)

	configured, err := enrich.Load([]enrich.Registration{criminalip.Registration},
		[]string{"THREATPIPE_CRIMINALIP_API_KEY=bench-key", "THREATPIPE_CRIMINALIP_BASE_URL=" + hs.URL,
			"THREATPIPE_CRIMINALIP_RATE_LIMIT=4000", "THREATPIPE_CRIMINALIP_RATE_BURST=200"},
		enrich.Deps{HTTPClient: http.DefaultClient, Log: zap.NewNop()})
	if err != nil || len(configured) != 1 {
		b.Fatalf("providers: %d, %v", len(configured), err)
	}
	f, err := rules.Load("")
	if err != nil {
		b.Fatal(err)
	}
	var known []string
	for _, r := range providers.All() {
		known = append(known, r.Name)
	}
	compiled, err := f.Compile(known)
	if err != nil {
		b.Fatal(err)
	}
	cache := enrich.NewCache(rdb, enrich.CacheOptions{Size: 100_000, TTL: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = cache.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })

	metrics := enrich.NewMetrics(prometheus.NewRegistry())
	opt := compiled.SourceOptions(criminalip.Name)
	l := enrich.NewLookuper(enrich.LookuperOptions{
		Provider: configured[0].Provider, Policy: configured[0].Policy, Redis: rdb,
		Keys: enrich.Keys{Prefix: pipelinetest.Name(b, "hitbench")}, Cache: cache, Metrics: metrics, Log: zap.NewNop(),
		Owner: "bench", Fields: opt.Fields, MaxAge: opt.MaxAge, FirstSight: opt.FirstSight, Defer: true,
	})
	b.Cleanup(l.Close)
	plan, _ := compiled.Plan(map[string]*enrich.Lookuper{criminalip.Name: l})
	enr := enrich.NewEnricher(plan, compiled.Model(), metrics)

	opts := pipeline.Options{OutputTopic: "out", DLQTopic: "dlq", MaxEventBytes: 1 << 20, MaxIndicators: 32}
	return pipeline.NewEnrichHandler(opts, enr, gate.New(nil, nil), telemetry.NewPipelineMetrics(prometheus.NewRegistry()))
}
