package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/threatpipe/threatpipe/ingest"
	"github.com/threatpipe/threatpipe/ingest/all"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/kafkax"
	"github.com/threatpipe/threatpipe/pipeline/redisx"
	"github.com/threatpipe/threatpipe/pipeline/telemetry"
)

func runIngest(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "ingest", `Polls the threat-intel platforms named in THREATPIPE_INGEST_SOURCES (TAXII 2.1 collections, MISP,
ThreatQ) for new and changed IP indicators and publishes each as a native event to
THREATPIPE_KAFKA_INPUT_TOPIC (source "tip:<platform>"), for the enricher to score. Each
platform's cursor is kept in Redis (<THREATPIPE_REDIS_KEY_PREFIX>:ingest:{<platform>}:cursor) and
moved only once the brokers acknowledged the page before it (acks=all): a restart repeats at
most the page in flight, with the same event ids. Values that are not IP addresses are counted
(threatpipe_ingest_indicators_skipped_total) and logged at debug level.
Serves /healthz, /readyz and /metrics on THREATPIPE_HTTP_ADDR. SIGTERM finishes the page in flight.

Ingest settings:
`+ingestVarsHelp())
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, log, err := loadRole(env, "ingest")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	// The configuration first (the role's and every listed platform's): a mistake there is named
	// before anything is asked of the brokers or the platforms.
	regs := all.Registrations()
	icfg, err := ingest.LoadConfig(env.environ, ingest.Names(regs))
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	sources, err := ingest.Build(regs, icfg, env.environ, providerHTTPClient())
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}

	reg := telemetry.NewRegistry()
	metrics := ingest.NewMetrics(reg)
	clients, err := kafkax.New(&cfg.Kafka, log)
	if err != nil {
		return err
	}
	k := &cfg.Kafka
	rdb := redisx.New(&cfg.Redis)
	defer func() { _ = rdb.Close() }()
	if err := checkSettings(ctx, clients, rdb, &cfg.Redis); err != nil {
		return err
	}
	srv, err := telemetry.NewServer(cfg.HTTPAddr, reg, log)
	if err != nil {
		return fmt.Errorf("%sHTTP_ADDR: %w", config.Prefix, err)
	}
	srv.AddCheck("kafka", kafkaCheck(clients, k.InputTopic))
	srv.AddCheck("redis", redisx.Ping(rdb))

	writer := clients.Writer(nil) // synchronous: WriteMessages returns once every in-sync replica has the page
	runner := ingest.NewRunner(sources, writer, ingest.NewCursors(rdb, cfg.Redis.KeyPrefix), metrics, log, ingest.Options{
		Topic: k.InputTopic, PageSize: icfg.PageSize, Interval: icfg.Interval, AuthRetry: icfg.AuthRetry,
		DrainTimeout: cfg.Pipeline.ShutdownTimeout, Recent: ingest.NewRecent(rdb, cfg.Redis.KeyPrefix, icfg.Republish),
	})
	log.Info("ingest starting", zap.Strings("sources", icfg.Sources), zap.Strings("brokers", k.Brokers),
		zap.String("input", k.InputTopic), zap.String("http", srv.Addr()), zap.Duration("interval", icfg.Interval),
		zap.Int("page_size", icfg.PageSize), zap.String("redis_prefix", cfg.Redis.KeyPrefix))

	// The HTTP server outlives the runner so /metrics stays scrapeable while the last page is
	// finished; readiness turns false as soon as shutdown starts.
	afterCtx, stopAfter := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAfter()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Run(afterCtx); err != nil {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		defer stopAfter()
		stopDraining := context.AfterFunc(gctx, srv.SetDraining)
		defer stopDraining()
		start := time.Now()
		if err := ingestTopics(gctx, clients, k, log); err != nil {
			return errors.Join(err, writer.Close())
		}
		runErr := runner.Run(gctx)
		closeErr := writer.Close()
		log.Info("ingest stopped", zap.Duration("uptime", time.Since(start)))
		return errors.Join(runErr, closeErr)
	})
	return g.Wait()
}

// ingestTopics creates the input topic, or checks that it exists.
func ingestTopics(ctx context.Context, clients *kafkax.Clients, k *config.Kafka, log *zap.Logger) error {
	if k.CreateTopics {
		return ensureTopics(ctx, clients, log, k.InputTopic)
	}
	return requireTopics(ctx, clients, log, map[string]string{"KAFKA_INPUT_TOPIC": k.InputTopic})
}

// ingestVarsHelp lists the THREATPIPE_INGEST_* variables for --help: the role's, then each
// platform's.
func ingestVarsHelp() string {
	vars := ingest.Vars()
	for _, r := range all.Registrations() {
		vars = append(vars, r.Vars()...)
	}
	var b strings.Builder
	for _, v := range vars {
		fmt.Fprintf(&b, "  %s=%s\n      %s\n", v.Name, v.Default, v.Description)
	}
	return strings.TrimRight(b.String(), "\n")
}
