package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
	formats "github.com/threatpipe/threatpipe/pipeline/format/all"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/gate"
	"github.com/threatpipe/threatpipe/pipeline/kafkax"
	"github.com/threatpipe/threatpipe/pipeline/redisx"
	"github.com/threatpipe/threatpipe/pipeline/sign"
	"github.com/threatpipe/threatpipe/pipeline/telemetry"
)

func runEnrich(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "enrich", `Consumes indicator events (native or ECS) from THREATPIPE_KAFKA_INPUT_TOPIC as consumer
group THREATPIPE_KAFKA_GROUP_ID, gates private and allowlisted addresses, enriches the rest,
and publishes one scored event per indicator to THREATPIPE_KAFKA_OUTPUT_TOPIC. Messages that
cannot be decoded go to THREATPIPE_KAFKA_DLQ_TOPIC with headers naming the error.
Offsets are committed only after every output is acknowledged (at least once).
Serves /healthz, /readyz and /metrics on THREATPIPE_HTTP_ADDR. SIGTERM drains and commits.
Configuration: THREATPIPE_* variables (see `+"`threatpipe config`"+`).`)
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	memProfile := fs.String("memprofile", "", "write an allocation profile to this file at exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	stopProfiles, err := startProfiles(*cpuProfile, *memProfile)
	if err != nil {
		return err
	}
	defer stopProfiles()
	cfg, log, err := loadRole(env, "enrich")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	if err := checkInputFormat(cfg); err != nil {
		return err
	}

	reg := telemetry.NewRegistry()
	metrics := telemetry.NewPipelineMetrics(reg)
	clients, err := kafkax.New(&cfg.Kafka, log)
	if err != nil {
		return err
	}
	k := &cfg.Kafka
	rdb := redisx.New(&cfg.Redis)
	defer func() { _ = rdb.Close() }()

	// The configuration first (rules, providers, lists): a mistake there is named before anything
	// is asked of the brokers.
	enr, err := buildEnrichment(cfg, env.environ, rdb, clients, reg, log)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if err := checkSettings(ctx, clients, rdb, &cfg.Redis); err != nil {
		return err
	}
	srv, err := telemetry.NewServer(cfg.HTTPAddr, reg, log)
	if err != nil {
		return fmt.Errorf("%sHTTP_ADDR: %w", config.Prefix, err)
	}
	srv.AddCheck("kafka", kafkaCheck(clients, k.InputTopic))
	srv.AddCheck("redis", redisx.Ping(rdb))

	rcfg := clients.ReaderConfig(k.InputTopic)
	if err := rcfg.Validate(); err != nil { // NewReader panics on what Validate rejects
		return fmt.Errorf("kafka reader: %w", err)
	}
	own, _ := cfg.Gate.Own() // validated by config.Load
	allow, _ := cfg.Gate.Allowlist()
	opts := pipeline.Options{
		InputTopic: k.InputTopic, OutputTopic: k.OutputTopic, DLQTopic: k.DLQTopic,
		Workers: cfg.Pipeline.Workers, MaxInFlight: cfg.Pipeline.MaxInFlight, MaxInFlightBytes: cfg.Pipeline.MaxInFlightBytes,
		MaxEventBytes: cfg.Pipeline.MaxEventBytes, MaxIndicators: cfg.Pipeline.MaxIndicators,
		CommitInterval: k.CommitInterval, ShutdownTimeout: cfg.Pipeline.ShutdownTimeout,
	}
	signs, _ := signer(&cfg.Signing) // validated by config.Load; nil when no key is set
	if signs != nil {
		log.Info("signing scored events and changes (THREATPIPE_SIGNING_KEY)", zap.String("kid", signs.KeyID()))
	}
	gates, refreshAllowlist := sharedGate(cfg, gate.New(own, allow), rdb, log)
	handler := pipeline.NewEnrichHandler(opts, enr.proc, gates, metrics,
		pipeline.WithInputLimits(cfg.Pipeline.MaxNestingDepth, cfg.Pipeline.MaxContextBytes),
		pipeline.WithInputFormats(event.Format(k.InputFormat), formats.Formats()...),
		pipeline.WithScoredDetail(scoredDetail(cfg)), pipeline.WithRefreshRequests(refreshAllowed(&cfg.Signing)))
	newWriter := func(done func([]kafka.Message, error)) pipeline.Publisher {
		return sign.NewWriter(clients.Writer(done), signs, signedTopics(k))
	}

	log.Info("enricher starting", zap.Strings("brokers", k.Brokers), zap.String("input", k.InputTopic),
		zap.String("output", k.OutputTopic), zap.String("dlq", k.DLQTopic), zap.String("group", k.GroupID),
		zap.String("http", srv.Addr()), zap.Int("workers", cfg.Pipeline.Workers), zap.Int("max_in_flight", cfg.Pipeline.MaxInFlight),
		zap.Strings("providers", enr.providers))

	// The HTTP server and the enrichment loops outlive the engine's drain: in-flight events
	// still read the cache, and metrics stay scrapeable. Readiness turns false as soon as
	// shutdown starts.
	afterCtx, stopAfter := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAfter()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Run(afterCtx); err != nil {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	for _, loop := range enr.loops {
		g.Go(func() error { return loop(afterCtx) })
	}
	if refreshAllowlist != nil {
		g.Go(func() error { return refreshAllowlist(afterCtx) })
	}
	g.Go(func() error {
		defer stopAfter()
		stopDraining := context.AfterFunc(gctx, srv.SetDraining)
		defer stopDraining()
		start := time.Now()
		// The topics are checked with the HTTP server up: a role started before its brokers
		// answers /healthz while it waits for them.
		// The reader only after them: kafka-go's consumer group would create a missing input
		// topic with the broker's defaults where the broker allows it.
		if err := enricherTopics(gctx, clients, k, log); err != nil {
			enr.close()
			return err
		}
		reader := kafka.NewReader(rcfg)
		runErr := pipeline.New(opts, reader, newWriter, handler, metrics, log).Run(gctx)
		enr.close()
		closeErr := closeWithin(reader, 5*time.Second) // after the final commit: Close leaves the group
		log.Info("enricher stopped", zap.Duration("uptime", time.Since(start)))
		return errors.Join(runErr, closeErr)
	})
	return g.Wait()
}

// enricherTopics creates the enricher's topics, or checks that they exist.
func enricherTopics(ctx context.Context, clients *kafkax.Clients, k *config.Kafka, log *zap.Logger) error {
	if k.CreateTopics {
		return ensureTopics(ctx, clients, log, k.InputTopic, k.OutputTopic, k.DLQTopic, k.OpsTopic, k.ChangesTopic)
	}
	return requireTopics(ctx, clients, log, map[string]string{"KAFKA_INPUT_TOPIC": k.InputTopic, "KAFKA_OUTPUT_TOPIC": k.OutputTopic,
		"KAFKA_DLQ_TOPIC": k.DLQTopic, "KAFKA_CHANGES_TOPIC": k.ChangesTopic})
}

// closeWithin closes c but gives up waiting after d. kafka-go's Reader.Close waits for an
// in-progress group join, which the coordinator may hold for the whole rebalance timeout; by
// then offsets are committed, and the broker evicts a member that never leaves.
func closeWithin(c io.Closer, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("close reader: %w", err)
		}
		return nil
	case <-time.After(d):
		return nil
	}
}

// startProfiles starts CPU profiling and returns the function that stops it and writes the
// allocation profile. Benchmarks use them to name the hot path's costs.
func startProfiles(cpuPath, memPath string) (func(), error) {
	var cpuFile *os.File
	if cpuPath != "" {
		f, err := os.Create(cpuPath)
		if err != nil {
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		cpuFile = f
	}
	return func() {
		if cpuFile != nil {
			pprof.StopCPUProfile()
			_ = cpuFile.Close()
		}
		if memPath != "" {
			if f, err := os.Create(memPath); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				_ = f.Close()
			}
		}
	}, nil
}

// loadRole reads the configuration and builds the role's logger (tagged with the role); the
// caller syncs the logger when it returns.
func loadRole(env *environment, role string) (*config.Config, *zap.Logger, error) {
	cfg, err := config.Load(env.environ)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration: %w", err)
	}
	log, err := telemetry.NewLogger(cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return nil, nil, err
	}
	return cfg, log.With(zap.String("role", role)), nil
}
