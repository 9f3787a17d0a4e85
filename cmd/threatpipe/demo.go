package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/sync/errgroup"

	"github.com/threatpipe/threatpipe/enrich/sim"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/telemetry"
	"github.com/threatpipe/threatpipe/sinks/webhook"
)

// demoPlaybooks are the demo's playbooks: only sinks that need no outside system.
const demoPlaybooks = `lists:
  watched_countries: ["RU", "KP", "IR"]

playbooks:
  - name: confirmed
    description: two sources agree (or a block list matched) -> block (EDL), alert the SOC
    when: block_listed || (score >= 70 && len(validated_by) >= 2)
    window: 1h
    steps:
      - {name: block, action: block, sink: edl, duration: 10m}
      - {name: alert-topic, action: alert, sink: kafka}
      - {name: alert-webhook, action: alert, sink: webhook}
  - name: single-source
    description: one source alone rates it high -> alert only, for an analyst to confirm
    when: score >= 60 && !block_listed && len(validated_by) < 2
    window: 1h
    steps:
      - {name: alert-topic, action: alert, sink: kafka}
  - name: tor-shadow
    description: shadow mode - what would blocking every Tor exit do?
    when: '"tor" in tags'
    dry_run: true
    steps:
      - {name: block, action: block, sink: edl, duration: 1h}
`

// demoTopics are created up front on the embedded broker.
var demoTopics = []string{"indicators", "indicators.scored", "indicators.dlq", "threatpipe.ops", "indicators.changes", "actions.results", "actions.dlq", "soc.alerts"}

func runDemo(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "demo [flags]", `Runs the whole pipeline in one process on embedded defaults: an in-process Kafka-protocol
broker (franz-go kfake), an in-process Redis (miniredis), the Criminal IP simulator, the
enricher, the playbook workers (EDL, the alerts topic and a local signed-webhook receiver), the
prioritised view, and SIEM-like traffic: heavy repeats, scanners and Tor exits, private
addresses, ECS events and a few malformed lines that land in the dead-letter topic. Every part
runs the production code; only the endpoints differ. --kafka, --redis and --provider-url point
a part at a real system. Ctrl-C stops everything cleanly.`)
	httpAddr := fs.String("http", "127.0.0.1:8080", "address of the prioritised view")
	rate := fs.Int("rate", 200, "events per second of demo traffic (0: none)")
	kafkaBrokers := fs.String("kafka", "", "use these Kafka brokers instead of the embedded one")
	redisAddr := fs.String("redis", "", "use this Redis instead of the embedded one")
	providerURL := fs.String("provider-url", "", "use this Criminal IP base URL (with THREATPIPE_CRIMINALIP_API_KEY) instead of the simulator")
	duration := fs.Duration("duration", 0, "stop after this long (0: run until Ctrl-C)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rate < 0 {
		return errors.New("--rate must not be negative")
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	viewLn, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return fmt.Errorf("--http %s: %w (is another demo running? pick another address)", *httpAddr, err)
	}
	viewAddr := viewLn.Addr().String()
	_ = viewLn.Close() // the view role listens on it itself

	// Infrastructure, embedded unless pointed elsewhere.
	brokers := *kafkaBrokers
	if brokers == "" {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, demoTopics...), kfake.AllowAutoTopicCreation())
		if err != nil {
			return fmt.Errorf("embedded Kafka: %w", err)
		}
		defer cluster.Close()
		brokers = strings.Join(cluster.ListenAddrs(), ",")
	}
	rdbAddr := *redisAddr
	if rdbAddr == "" {
		mr, err := miniredis.Run()
		if err != nil {
			return fmt.Errorf("embedded Redis: %w", err)
		}
		defer mr.Close()
		rdbAddr = mr.Addr()
	}
	apiKey := os.Getenv("THREATPIPE_CRIMINALIP_API_KEY")
	if *providerURL != "" && apiKey == "" {
		return errors.New("--provider-url needs THREATPIPE_CRIMINALIP_API_KEY")
	}
	simulator := sim.New(sim.Options{Latency: 60 * time.Millisecond, Jitter: 60 * time.Millisecond, ValidKeys: []string{demoKey}, DailyQuota: 100000, Seed: 1})
	stopSim, simURL, err := serveLocal(simulator)
	if err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	defer stopSim()
	receiver := &webhookReceiver{secret: []byte(randomHex(24))}
	stopReceiver, receiverURL, err := serveLocal(receiver)
	if err != nil {
		return fmt.Errorf("webhook receiver: %w", err)
	}
	defer stopReceiver()

	dir, err := os.MkdirTemp("", "threatpipe-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	playbooks := filepath.Join(dir, "playbooks.yaml")
	if err := os.WriteFile(playbooks, []byte(demoPlaybooks), 0o600); err != nil {
		return err
	}
	sourceVars, err := demoSources(dir, simURL, *providerURL, apiKey, newTrafficMix(1).addresses())
	if err != nil {
		return err
	}
	enrichAddr, actAddr := freeLocalAddr(), freeLocalAddr()
	common := []string{
		config.Prefix + "KAFKA_BROKERS=" + brokers,
		config.Prefix + "KAFKA_CREATE_TOPICS=true",
		config.Prefix + "KAFKA_COMMIT_INTERVAL=500ms",
		config.Prefix + "REDIS_ADDR=" + rdbAddr,
		config.Prefix + "LOG_LEVEL=warn", config.Prefix + "LOG_FORMAT=console",
		config.Prefix + "ACT_PLAYBOOKS=" + playbooks,
		// The demo's traffic names many new hostile addresses a minute; production keeps the
		// default cap of 60 (docs/playbooks.md).
		config.Prefix + "ACT_MAX_BLOCKS_PER_MINUTE=600",
		config.Prefix + "ACT_VIEW_URL=http://" + viewAddr,
		config.Prefix + "SINK_EDL_ENABLED=true",
		config.Prefix + "SINK_WEBHOOK_URL=" + receiverURL,
		config.Prefix + "SINK_WEBHOOK_SECRET=" + string(receiver.secret),
		// Signed scored events, as a deployment should run them (docs/operations.md): act acts
		// only on what the demo's enricher produced.
		config.Prefix + "SIGNING_KEY=" + randomHex(32),
	}
	common = append(common, sourceVars...)
	// Variables the user set win over the demo's, so any part can be pointed elsewhere.
	roleEnv := func(httpAddr string) *environment {
		environ := append(append([]string{}, common...), os.Environ()...)
		environ = append(environ, config.Prefix+"HTTP_ADDR="+httpAddr) // each role its own port, always
		return &environment{environ: environ, stdin: strings.NewReader(""), stdout: io.Discard, stderr: env.stderr}
	}

	ciBase := simURL + "/criminalip"
	if *providerURL != "" {
		ciBase = *providerURL
	}
	fmt.Fprintf(env.stdout, "threatpipe demo: Kafka %s, Redis %s, Criminal IP %s, other providers simulated at %s\n", brokers, rdbAddr, ciBase, simURL)
	fmt.Fprintf(env.stdout, "  the prioritised view:  http://%s/\n", viewAddr)
	fmt.Fprintf(env.stdout, "  integration health:    http://%s/health\n", viewAddr)
	fmt.Fprintf(env.stdout, "  EDL for firewalls:     http://%s/edl/blocklist.txt\n", actAddr)
	fmt.Fprintf(env.stdout, "  enricher metrics:      http://%s/metrics\n", enrichAddr)
	fmt.Fprintf(env.stdout, "Ctrl-C to stop.\n")

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return runEnrich(gctx, roleEnv(enrichAddr), nil) })
	g.Go(func() error { return runAct(gctx, roleEnv(actAddr), nil) })
	g.Go(func() error { return runView(gctx, roleEnv(viewAddr), nil) })
	var produced, malformed atomic.Int64
	if *rate > 0 {
		g.Go(func() error {
			return generateTraffic(gctx, strings.Split(brokers, ","), "indicators", *rate, &produced, &malformed)
		})
	}
	g.Go(func() error {
		summarise(gctx, env.stdout, summarySources{
			enrich: "http://" + enrichAddr, act: "http://" + actAddr, view: "http://" + viewAddr,
			produced: &produced, malformed: &malformed, webhooks: &receiver.verified,
		})
		return nil
	})
	err = g.Wait()
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = nil
	}
	fmt.Fprintf(env.stdout, "\nthreatpipe demo stopped: %d events produced (%d malformed), %d signed webhooks verified\n",
		produced.Load(), malformed.Load(), receiver.verified.Load())
	return err
}

// webhookReceiver is the demo's stand-in for a SOAR: it accepts the webhook sink's requests
// only with a valid signature, as a real receiver must.
type webhookReceiver struct {
	secret   []byte
	verified atomic.Int64
	rejected atomic.Int64
}

func (rcv *webhookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || r.Method != http.MethodPost {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if err := webhook.Verify(rcv.secret, r.Header, body, time.Now(), 5*time.Minute); err != nil {
		rcv.rejected.Add(1)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	rcv.verified.Add(1)
	w.WriteHeader(http.StatusNoContent)
}

// serveLocal serves h on a free loopback port until stop is called.
func serveLocal(h http.Handler) (stop func(), url string, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	srv := telemetry.NewHTTPServer(h)
	srv.WriteTimeout = 0 // the simulated providers answer with their configured latency
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, "http://" + ln.Addr().String(), nil
}

// freeLocalAddr picks a free loopback port for a role's own server.
func freeLocalAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer ln.Close()
	return ln.Addr().String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
