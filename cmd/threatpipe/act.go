package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/health"
	"github.com/threatpipe/threatpipe/pipeline/kafkax"
	"github.com/threatpipe/threatpipe/pipeline/redisx"
	"github.com/threatpipe/threatpipe/pipeline/sign"
	"github.com/threatpipe/threatpipe/pipeline/telemetry"
	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/all"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

func runAct(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "act", `Runs the playbooks in THREATPIPE_ACT_PLAYBOOKS (docs/playbooks.md) on the scored events of
THREATPIPE_KAFKA_OUTPUT_TOPIC: blocks at the firewall, alerts and tickets through the configured
sinks. Each action kind in THREATPIPE_ACT_KINDS runs as its own consumer group, so a slow ticket
API never delays a block; the kind "changes" consumes THREATPIPE_KAFKA_CHANGES_TOPIC, lifting the
blocks of indicators whose verdict turned benign and escalating those that turned critical. A
Redis ledger makes every action happen at most once per target and window across redelivery,
crashes and replicas; expired blocks are lifted. Every decision is
published to THREATPIPE_ACT_RESULTS_TOPIC; failed actions go to THREATPIPE_ACT_DLQ_TOPIC.
Serves /healthz, /readyz, /metrics and the EDL (when enabled) on THREATPIPE_HTTP_ADDR.`)
	validate := fs.Bool("validate", false, "check the configuration, the sinks and the playbooks, print a summary and exit")
	kill := fs.String("kill-switch", "", "set the run-time kill switch for every replica (on or off) and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *kill != "" && *kill != "on" && *kill != "off" {
		return fmt.Errorf("--kill-switch: %q is not on or off", *kill)
	}
	cfg, log, err := loadRole(env, "act")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	rdb := redisx.New(&cfg.Redis)
	defer func() { _ = rdb.Close() }()
	lrdb, closeLedgerRedis := ledgerRedis(cfg, rdb)
	defer closeLedgerRedis()
	host, _ := os.Hostname()
	ledger := act.NewLedger(lrdb, cfg.Redis.KeyPrefix, fmt.Sprintf("%s-%d-%d", host, os.Getpid(), time.Now().UnixNano()%1e6)).
		WaitForReplicas(cfg.Redis.WaitReplicas, cfg.Redis.WaitTimeout)
	ledger.Log = log.Named("ledger")
	if *kill != "" {
		if err := ledger.SetKillSwitch(ctx, *kill == "on", "set by threatpipe act --kill-switch at "+time.Now().UTC().Format(time.RFC3339)); err != nil {
			return fmt.Errorf("kill switch: %w", err)
		}
		fmt.Fprintf(env.stdout, "kill switch %s for every replica\n", *kill)
		return nil
	}

	reg := telemetry.NewRegistry()
	clients, err := kafkax.New(&cfg.Kafka, log)
	if err != nil {
		return err
	}
	srv, err := telemetry.NewServer(cfg.HTTPAddr, reg, log)
	if err != nil {
		return fmt.Errorf("%sHTTP_ADDR: %w", config.Prefix, err)
	}
	producer := clients.Writer(nil) // synchronous: Do returns once the broker acknowledged
	defer func() { _ = producer.Close() }()
	produce := func(ctx context.Context, topic, key string, value []byte) error {
		return producer.WriteMessages(ctx, kafka.Message{Topic: topic, Key: []byte(key), Value: value})
	}
	never := neverBlockList(cfg)
	configured, err := sinks.Load(all.Registrations(), env.environ, sinks.Deps{
		HTTPClient: sinkhttp.NewHTTPClient(), Log: log.Named("sinks"), Mux: srv.Mux(), Produce: produce, NeverBlock: never,
		HTTPAddr: cfg.HTTPAddr,
	})
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	set, err := act.LoadFile(cfg.Act.Playbooks, configured)
	if err != nil {
		return fmt.Errorf("%sACT_PLAYBOOKS: %w", config.Prefix, err)
	}
	if *validate {
		printPlaybooks(env, set, configured)
		return nil
	}
	if err := checkSettings(ctx, clients, rdb, &cfg.Redis); err != nil {
		return err
	}

	a := &cfg.Act
	k := &cfg.Kafka
	guard := act.Guardrails{
		NeverBlock: never, KillSwitch: a.KillSwitch,
		MaxBlocksPerMinute: a.MaxBlocksPerMinute, TripDuration: a.TripDuration,
		MaxBlockDuration: a.MaxBlockDuration, OffenceMemory: a.OffenceMemory,
	}
	if a.KillSwitch {
		log.Warn("KILL SWITCH ON (THREATPIPE_ACT_KILL_SWITCH): every action is recorded as kill_switch and none is performed")
	}
	verify, err := verifier(&cfg.Signing)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if verify == nil {
		log.Warn("THREATPIPE_SIGNING_KEY is not set: act acts on every record of the scored and changes topics, " +
			"whoever produced it; sign them (docs/operations.md) or restrict who may write to the topics")
	}
	alert := func(ctx context.Context, title string) {
		value := fmt.Appendf(nil, `{"schema_version":"1","action":"alert","title":%q,"at":%q}`, title, time.Now().UTC().Format(time.RFC3339))
		if err := produce(ctx, alertTopic(configured), "threatpipe", value); err != nil {
			log.Error("could not raise the rate-cap alert on the alerts topic", zap.Error(err))
		}
	}
	pm := telemetry.NewPipelineMetrics(reg)
	am := act.NewMetrics(reg)
	srv.AddCheck("kafka", kafkaCheck(clients, k.OutputTopic))
	srv.AddCheck("redis", redisx.Ping(rdb))
	if lrdb != rdb {
		srv.AddCheck("redis-ledger", redisx.Ping(lrdb))
	}
	act.LogEviction(ctx, lrdb, log.Named("ledger"))

	// A kind's reader and engine are made once the topics are there: kafka-go's consumer group
	// would create a missing topic with the broker's defaults where the broker allows it.
	type kindRun struct {
		rcfg  kafka.ReaderConfig
		start func(*kafka.Reader) *pipeline.Engine
	}
	var runs []kindRun
	var kinds []string
	// run consumes topic as the consumer group <prefix>-<kind> through handler, publishing its
	// audit records before it commits.
	run := func(kind, topic string, handler pipeline.Handler) error {
		rcfg := clients.ReaderConfig(topic)
		rcfg.GroupID = a.GroupPrefix + "-" + kind
		if err := rcfg.Validate(); err != nil {
			return fmt.Errorf("kafka reader: %w", err)
		}
		if verify != nil {
			purpose := sign.Scored
			if topic == k.ChangesTopic {
				purpose = sign.Change
			}
			handler = act.NewVerified(handler, act.VerifyOptions{Verifier: verify, Purpose: purpose, Require: a.RequireSignature,
				Name: rcfg.GroupID, DLQTopic: a.DLQTopic}, am, log.With(zap.String("kind", kind)))
		}
		opts := pipeline.Options{
			InputTopic: topic, OutputTopic: a.ResultsTopic, DLQTopic: a.DLQTopic,
			Workers: a.Workers, MaxInFlight: a.MaxInFlight, MaxEventBytes: cfg.Pipeline.MaxEventBytes,
			MaxIndicators: cfg.Pipeline.MaxIndicators, CommitInterval: k.CommitInterval, ShutdownTimeout: cfg.Pipeline.ShutdownTimeout,
		}
		start := func(reader *kafka.Reader) *pipeline.Engine {
			return pipeline.New(opts, reader, func(done func([]kafka.Message, error)) pipeline.Publisher { return clients.Writer(done) },
				handler, pm, log.With(zap.String("kind", kind)))
		}
		runs = append(runs, kindRun{rcfg, start})
		kinds = append(kinds, kind)
		return nil
	}
	for _, kind := range a.Kinds {
		var handler pipeline.Handler
		switch {
		case kind == changesKind:
			handler = act.NewChangeHandler(act.ChangeOptions{
				Name: a.GroupPrefix + "-" + kind, ResultsTopic: a.ResultsTopic, DLQTopic: a.DLQTopic,
				ViewURL: a.ViewURL, Guardrails: guard, Alert: alert, Sinks: configured,
			}, set, ledger, am, log.With(zap.String("kind", kind)))
		case !set.Uses(sinks.Kind(kind)):
			log.Info("no playbook step of this kind; not consuming for it", zap.String("kind", kind))
			continue
		default:
			handler = act.NewWorker(act.WorkerOptions{
				Kind: sinks.Kind(kind), Name: a.GroupPrefix + "-" + kind, ResultsTopic: a.ResultsTopic, DLQTopic: a.DLQTopic,
				ViewURL: a.ViewURL, Guardrails: guard, Alert: alert,
			}, set, ledger, am, log.With(zap.String("kind", kind)))
		}
		topic := k.OutputTopic
		if kind == changesKind {
			topic = k.ChangesTopic
		}
		if err := run(kind, topic, handler); err != nil {
			return err
		}
	}
	if len(runs) == 0 {
		return fmt.Errorf("%sACT_KINDS: none of %v is used by a playbook step", config.Prefix, a.Kinds)
	}
	log.Info("playbook workers starting", zap.Strings("kinds", kinds), zap.String("scored", k.OutputTopic), zap.String("changes", k.ChangesTopic),
		zap.String("results", a.ResultsTopic), zap.String("dlq", a.DLQTopic), zap.String("http", srv.Addr()),
		zap.Int("playbooks", len(set.Playbooks)), zap.Strings("sinks", sinkNames(configured)), zap.String("owner", ledger.Owner()))

	// The HTTP server (metrics, the EDL), the heartbeat and the lifter outlive the engines'
	// drain: an event finishing its action still needs a live claim.
	afterCtx, stopAfter := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAfter()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Run(afterCtx); err != nil {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	g.Go(func() error { return ledger.Heartbeat(afterCtx) })
	runSinkServers(afterCtx, g, configured)
	reporter := &act.HealthReporter{
		Store: health.NewStore(rdb, cfg.Redis.KeyPrefix), Health: am.Health, Ledger: ledger,
		Sinks: sinksUsed(set, kinds), KillSwitch: a.KillSwitch, Role: "act", Interval: health.ReportInterval,
		Log: log.Named("health"),
	}
	g.Go(func() error { return reporter.Run(afterCtx) })
	if slices.Contains(kinds, string(sinks.KindBlock)) {
		lifter := &act.Lifter{
			Ledger: ledger, Sinks: configured, Metrics: am, Log: log.Named("lifter"), Worker: a.GroupPrefix + "-lifter",
			Publish: func(ctx context.Context, key string, value []byte) error {
				return produce(ctx, a.ResultsTopic, key, value)
			},
			LiftInterval: a.LiftInterval, ReconcileInterval: a.ReconcileInterval, NeverBlock: never,
		}
		g.Go(func() error { return lifter.Run(gctx) })
	}
	stopDraining := context.AfterFunc(gctx, srv.SetDraining)
	defer stopDraining()
	g.Go(func() error {
		defer stopAfter()
		// The topics are checked with the HTTP server up (the EDL served, /healthz answering)
		// while the brokers are waited for.
		if err := actTopics(gctx, clients, cfg, log); err != nil {
			return err
		}
		var engines errgroup.Group
		for _, r := range runs {
			engines.Go(func() error {
				reader := kafka.NewReader(r.rcfg)
				runErr := r.start(reader).Run(gctx)
				return errors.Join(runErr, closeWithin(reader, 5*time.Second))
			})
		}
		err := engines.Wait()
		log.Info("playbook workers stopped")
		return err
	})
	return g.Wait()
}

// actTopics creates the playbook workers' topics, or checks that they exist.
func actTopics(ctx context.Context, clients *kafkax.Clients, cfg *config.Config, log *zap.Logger) error {
	a, k := &cfg.Act, &cfg.Kafka
	topics := map[string]string{"KAFKA_OUTPUT_TOPIC": k.OutputTopic, "ACT_RESULTS_TOPIC": a.ResultsTopic, "ACT_DLQ_TOPIC": a.DLQTopic}
	if slices.Contains(a.Kinds, changesKind) {
		topics["KAFKA_CHANGES_TOPIC"] = k.ChangesTopic
	}
	if k.CreateTopics {
		return ensureTopics(ctx, clients, log, slices.Collect(maps.Values(topics))...)
	}
	return requireTopics(ctx, clients, log, topics)
}

// alertTopic is where the rate-cap alert goes: the Kafka alert sink's topic, or soc.alerts.
func alertTopic(configured map[string]sinks.Sink) string {
	if s, ok := configured["kafka"].(interface{ Topic() string }); ok {
		return s.Topic()
	}
	return "soc.alerts"
}

func printPlaybooks(env *environment, set *act.Set, configured map[string]sinks.Sink) {
	fmt.Fprintf(env.stdout, "sinks configured: %s\n", strings.Join(sinkNames(configured), ", "))
	for _, pb := range set.Playbooks {
		mode := ""
		if pb.DryRun {
			mode = " (dry run)"
		}
		fmt.Fprintf(env.stdout, "playbook %s%s: window %s\n", pb.Name, mode, pb.Window)
		for _, st := range pb.Steps {
			extra := ""
			if st.Duration > 0 {
				extra = " for " + st.Duration.String()
			}
			fmt.Fprintf(env.stdout, "  %s: %s via %s%s\n", st.Name, st.Kind, st.Sink.Name(), extra)
		}
	}
	fmt.Fprintln(env.stdout, "playbooks OK")
}

// changesKind in THREATPIPE_ACT_KINDS runs the consumer of verdict changes.
const changesKind = "changes"

// sinksUsed are the sinks that the playbook steps of the given kinds act through (every step's,
// with the changes consumer): the integrations this process reports the health of.
func sinksUsed(set *act.Set, kinds []string) map[string]sinks.Sink {
	used := map[string]sinks.Sink{}
	all := slices.Contains(kinds, changesKind)
	for _, pb := range set.Playbooks {
		for _, st := range pb.Steps {
			if all || slices.Contains(kinds, string(st.Kind)) {
				used[st.Sink.Name()] = st.Sink
			}
		}
	}
	return used
}

func sinkNames(m map[string]sinks.Sink) []string {
	return slices.Sorted(maps.Keys(m))
}
