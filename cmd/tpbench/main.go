// Command tpbench is threatpipe's benchmark harness (`make bench`). On the real Kafka broker and
// Redis started by scripts/services.sh it runs, in one invocation and on the same generated
// load: a plain consume-and-produce copy by threatpipe's engine (the baseline) and another
// written with franz-go (franz), the enricher on a warm cache (hits), on a warm-cache load of
// Suricata EVE, Zeek, CEF and FortiGate lines mixed with native events (formats), with a share
// of cache misses against the provider simulator (mixed), the hits load on 1, 2 and 3 enricher
// processes (scaling), and three processes on a mixed load (replicas). For each it reports
// events/s, the ratio to both copies, end-to-end latency at a fixed rate below saturation, paid
// calls per distinct new IP, dead letters by class, peak RSS, RSS growth and CPU seconds per
// million events; it profiles each scenario's CPU and compares the profile with the previous
// run's; and it writes JSON, Markdown and an SVG chart to bench/results/.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/enrich/sim"
)

type options struct {
	brokers, redis    string
	bin               string
	events, warm      int
	mix               mix
	partitions        int
	latencyRate       int
	latencySeconds    int
	simLatency        time.Duration
	simRateLimit      float64
	scenarios         string
	outDir            string
	profile           bool
	profileScenario   string
	seed              uint64
	enricherExtraEnv  string
	replicas          int
	scale             string
	nativeShare       float64
	drainTimeout      time.Duration
	completionTimeout time.Duration
}

func main() {
	if len(os.Args) > 3 && (os.Args[1] == "copy" || os.Args[1] == "franz-copy") {
		// Subprocess mode: a baseline copier, configured like the enricher:
		// tpbench copy|franz-copy IN OUT [CPUPROFILE].
		os.Exit(copyMain(os.Args[1], os.Args[2], os.Args[3], strings.Join(os.Args[4:], "")))
	}
	var o options
	flag.StringVar(&o.brokers, "brokers", envOr("THREATPIPE_KAFKA_BROKERS", "127.0.0.1:9092"), "Kafka bootstrap broker")
	flag.StringVar(&o.redis, "redis", envOr("THREATPIPE_REDIS_ADDR", "127.0.0.1:6379"), "Redis address")
	flag.StringVar(&o.bin, "bin", "bin/threatpipe", "threatpipe binary to benchmark")
	flag.IntVar(&o.events, "events", 300000, "events per throughput scenario")
	flag.IntVar(&o.warm, "ips", 5000, "distinct addresses in the warm set")
	flag.Float64Var(&o.mix.ECS, "ecs", 0.15, "share of ECS events (each names a public and a private IP)")
	flag.Float64Var(&o.mix.Gated, "gated", 0.05, "share of native events naming a private IP")
	flag.Float64Var(&o.mix.Malformed, "malformed", 0.005, "share of malformed lines")
	flag.Float64Var(&o.mix.Miss, "miss", 0.05, "share of events naming a never-seen IP in the mixed scenarios")
	flag.IntVar(&o.partitions, "partitions", 6, "partitions of the benchmark topics")
	flag.IntVar(&o.latencyRate, "latency-rate", 2000, "events/s of the paced latency phase (below saturation)")
	flag.IntVar(&o.latencySeconds, "latency-seconds", 8, "length of the paced latency phase")
	flag.DurationVar(&o.simLatency, "sim-latency", 100*time.Millisecond, "provider simulator latency")
	flag.Float64Var(&o.simRateLimit, "sim-rate-limit", 5000, "provider simulator rate limit (requests/s)")
	flag.StringVar(&o.scenarios, "scenarios", "baseline,franz,hits,formats,mixed,scaling,replicas", "scenarios to run, in order")
	flag.StringVar(&o.outDir, "out", "bench/results", "directory for results")
	flag.BoolVar(&o.profile, "profile", true, "CPU profile of each scenario's first process, compared with the previous run's")
	flag.StringVar(&o.profileScenario, "profile-scenario", "hits", "scenario whose first enricher also gets an allocation profile")
	flag.Uint64Var(&o.seed, "seed", 1, "load generator seed")
	flag.StringVar(&o.enricherExtraEnv, "env", "", "extra THREATPIPE_* settings for the enricher, comma-separated K=V")
	flag.IntVar(&o.replicas, "replicas", 3, "enricher processes in the replicas scenario")
	flag.StringVar(&o.scale, "scale", "1,2,3", "enricher processes of the scaling scenario's runs of the hits load")
	flag.Float64Var(&o.nativeShare, "native-share", 0.4, "share of native events in the formats scenario (the rest: EVE, Zeek, CEF, key=value in equal parts)")
	flag.Parse()
	o.drainTimeout = 60 * time.Second
	o.completionTimeout = 10 * time.Minute

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, &o); err != nil {
		fmt.Fprintln(os.Stderr, "tpbench:", err)
		os.Exit(1)
	}
}

// copyMain runs a copy subprocess until SIGINT or SIGTERM and returns its exit status.
func copyMain(mode, in, out, cpuProfile string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := withCPUProfile(cpuProfile, func() error {
		if mode == "franz-copy" {
			return franzCopyMain(ctx, os.Environ(), in, out)
		}
		return runCopy(ctx, os.Environ(), in, out)
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "tpbench %s: %v\n", mode, err)
		return 1
	}
	return 0
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// Result is one scenario's measurements.
type Result struct {
	Scenario        string  `json:"scenario"`
	Processes       int     `json:"processes"`
	Events          int     `json:"events"`
	Outputs         int     `json:"outputs"`
	Seconds         float64 `json:"seconds"`
	EventsPerSec    float64 `json:"events_per_sec"`
	RatioToBaseline float64 `json:"ratio_to_baseline"`
	// RatioToFranz is the ratio to the franz-go copy of the same run.
	RatioToFranz           float64 `json:"ratio_to_franz,omitempty"`
	PerProcessEventsPerSec float64 `json:"per_process_events_per_sec"`
	HitEventsPerSec        float64 `json:"hit_events_per_sec"`
	LatencyRate            int     `json:"latency_rate"`
	LatencyP50ms           float64 `json:"latency_p50_ms"`
	LatencyP99ms           float64 `json:"latency_p99_ms"`
	LatencyMaxms           float64 `json:"latency_max_ms"`
	FreshIPs               int     `json:"fresh_ips"`
	PaidCalls              int64   `json:"paid_calls"`
	PaidPerFreshIP         float64 `json:"paid_calls_per_fresh_ip"`
	PeakRSSMB              float64 `json:"peak_rss_mb"`
	RSSGrowth              float64 `json:"rss_growth"`
	CPUSecPerMillion       float64 `json:"cpu_seconds_per_million"`
	// ScoredBytes is the mean size of the backlog's scored events of enriched native inputs.
	ScoredBytes float64 `json:"scored_bytes,omitempty"`
	// Statuses counts the criminalip outcomes in the backlog's scored events.
	Statuses map[string]int `json:"statuses,omitempty"`
	// DeadLetters counts the backlog's dead letters, by error class in DeadLetterClasses.
	DeadLetters       int            `json:"dead_letters"`
	DeadLetterClasses map[string]int `json:"dead_letter_classes,omitempty"`
	// Kinds counts the load's events per input format (formats scenario).
	Kinds map[string]int `json:"kinds,omitempty"`
	// Profile is the CPU profile of the scenario's first process; ProfileDiffBase the previous
	// run's profile of the same scenario it was compared with.
	Profile         string `json:"profile,omitempty"`
	ProfileDiffBase string `json:"profile_diff_base,omitempty"`
}

// Report is a whole run.
type Report struct {
	StartedAt string            `json:"started_at"`
	Machine   string            `json:"machine"`
	Command   string            `json:"command"`
	Settings  map[string]string `json:"settings"`
	Results   []Result          `json:"results"`
	Targets   []Target          `json:"targets"`
	Profile   string            `json:"profile_top,omitempty"`
}

// Target is one of PRODUCT.md's performance targets, checked.
type Target struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Want  string  `json:"want"`
	Met   bool    `json:"met"`
}

type bench struct {
	o       *options
	sim     *sim.Server
	simURL  string
	runID   string
	dir     string
	kclient *kafka.Client
}

func run(ctx context.Context, o *options) error {
	if _, err := os.Stat(o.bin); err != nil {
		return fmt.Errorf("%s: %w (run make build)", o.bin, err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	b := &bench{o: o, runID: time.Now().UTC().Format("20060102T150405"),
		kclient: &kafka.Client{Addr: kafka.TCP(o.brokers), Timeout: 30 * time.Second}}
	b.dir = filepath.Join(o.outDir, b.runID)
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return err
	}
	b.sim = sim.New(sim.Options{Latency: o.simLatency, RateLimit: o.simRateLimit, ValidKeys: []string{"bench-key"}})
	hs := httptest.NewServer(b.sim)
	defer hs.Close()
	b.simURL = hs.URL

	rep := &Report{StartedAt: time.Now().UTC().Format(time.RFC3339), Machine: machine(),
		Command: "make bench  # " + strings.Join(os.Args, " "),
		Settings: map[string]string{
			"events": fmt.Sprint(o.events), "warm_ips": fmt.Sprint(o.warm), "partitions": fmt.Sprint(o.partitions),
			"mix":           fmt.Sprintf("ecs %.0f%%, gated %.0f%%, malformed %.1f%%, misses in mixed %.0f%%", 100*o.mix.ECS, 100*o.mix.Gated, 100*o.mix.Malformed, 100*o.mix.Miss),
			"simulator":     fmt.Sprintf("latency %s, rate limit %.0f/s", o.simLatency, o.simRateLimit),
			"latency_phase": fmt.Sprintf("%d events/s for %ds", o.latencyRate, o.latencySeconds),
		}}
	warmed := false
	for _, sc := range strings.Split(o.scenarios, ",") {
		plans, err := b.plans(sc, self)
		if err != nil {
			return err
		}
		for _, pl := range plans {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !pl.copy && !warmed {
				if err := b.warmUp(ctx); err != nil {
					return err
				}
				warmed = true
			}
			res, err := b.scenario(ctx, pl)
			if err != nil {
				return fmt.Errorf("%s: %w", pl.name, err)
			}
			fmt.Fprintf(os.Stderr, "tpbench: %s: %.0f events/s, p99 %.1f ms, %.2f paid calls per new IP, %d dead letters, peak RSS %.0f MB\n",
				pl.name, res.EventsPerSec, res.LatencyP99ms, res.PaidPerFreshIP, res.DeadLetters, res.PeakRSSMB)
			rep.Results = append(rep.Results, *res)
		}
	}
	finish(rep)
	if o.profile {
		rep.Profile = profileReport(rep.Results, b.dir, o.outDir, b.runID)
		_ = os.WriteFile(filepath.Join(b.dir, "profile-top.md"), []byte(rep.Profile), 0o644)
	}
	return writeReport(rep, b.dir, o.outDir)
}

func machine() string {
	cpu := "unknown CPU"
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if strings.HasPrefix(line, "model name") {
				cpu = strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
				break
			}
		}
	}
	mem := ""
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		f := strings.Fields(strings.SplitN(string(raw), "\n", 2)[0])
		if len(f) >= 2 {
			var kb int64
			fmt.Sscan(f[1], &kb)
			mem = fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
		}
	}
	return fmt.Sprintf("%d cores (%s)%s, %s/%s, %s; Kafka and Redis on the same machine", runtime.NumCPU(), cpu, mem, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

func writeReport(rep *Report, dir, outDir string) error {
	raw, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	md := markdown(rep)
	svg := chart(rep)
	for _, d := range []string{dir, outDir} {
		if err := errors.Join(
			os.WriteFile(filepath.Join(d, "results.json"), raw, 0o644),
			os.WriteFile(filepath.Join(d, "results.md"), []byte(md), 0o644),
			os.WriteFile(filepath.Join(d, "results.svg"), []byte(svg), 0o644),
		); err != nil {
			return err
		}
	}
	fmt.Println(md)
	fmt.Fprintf(os.Stderr, "tpbench: results in %s (latest copied to %s/results.{json,md,svg})\n", dir, outDir)
	return nil
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}

func median(xs []int64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return float64(s[len(s)/2])
}
