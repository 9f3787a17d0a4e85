package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/allowlist"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/kafkax"
	"github.com/threatpipe/threatpipe/pipeline/redisx"
	"github.com/threatpipe/threatpipe/pipeline/telemetry"
	"github.com/threatpipe/threatpipe/view"
	"github.com/threatpipe/threatpipe/view/auth"
	"github.com/threatpipe/threatpipe/view/steer"
)

func runView(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "view", `Serves the prioritised indicator view: the ranked list of indicators by score and recency,
each indicator's reasons, provider answers, history and actions taken, and integration health,
as web pages and a JSON API (/api/v1/...) on THREATPIPE_HTTP_ADDR, next to /healthz, /readyz
and /metrics. It builds its state in Redis (under THREATPIPE_REDIS_KEY_PREFIX) from the scored
events of THREATPIPE_KAFKA_OUTPUT_TOPIC (consumer group <THREATPIPE_VIEW_GROUP_ID>-scored) and
the audit records of THREATPIPE_ACT_RESULTS_TOPIC (<THREATPIPE_VIEW_GROUP_ID>-results).
Replicas share the state and the consumer groups. SIGTERM drains and commits.
Pages and the API need sign-in (OpenID Connect, THREATPIPE_VIEW_OIDC_*) or an API token
(THREATPIPE_VIEW_API_TOKENS_FILE); with neither, only loopback clients may read, anonymously.
Analysts (and admins) act from the indicator page and the API: false positive, unblock, re-enrich
and notes; admins also set act's kill switch and edit the shared allowlist (/allowlist). Actions
write THREATPIPE_KAFKA_CHANGES_TOPIC, THREATPIPE_KAFKA_INPUT_TOPIC (re-enrich, signed with
THREATPIPE_SIGNING_KEY when set) and an audit record to THREATPIPE_ACT_RESULTS_TOPIC.

View settings:
`+viewVarsHelp())
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, log, err := loadRole(env, "view")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	vcfg, err := view.LoadConfig(env.environ)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	acfg, err := auth.LoadConfig(env.environ)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}

	reg := telemetry.NewRegistry()
	pm := telemetry.NewPipelineMetrics(reg)
	vm := view.NewMetrics(reg)
	clients, err := kafkax.New(&cfg.Kafka, log)
	if err != nil {
		return err
	}
	k, a := &cfg.Kafka, &cfg.Act
	rdb := redisx.New(&cfg.Redis)
	defer func() { _ = rdb.Close() }()
	if err := checkSettings(ctx, clients, rdb, &cfg.Redis); err != nil {
		return err
	}
	store := view.NewStore(rdb, cfg.Redis.KeyPrefix, vcfg.StoreOptions())

	srv, err := telemetry.NewServer(cfg.HTTPAddr, reg, log)
	if err != nil {
		return fmt.Errorf("%sHTTP_ADDR: %w", config.Prefix, err)
	}
	srv.AddCheck("kafka", kafkaCheck(clients, k.OutputTopic, a.ResultsTopic))
	srv.AddCheck("redis", redisx.Ping(rdb))
	authn, err := newViewAuth(ctx, acfg, rdb, cfg.Redis.KeyPrefix, log.Named("auth"))
	if err != nil {
		return err
	}
	steerSvc, closeSteer, err := newViewSteer(cfg, clients, rdb, log)
	if err != nil {
		return err
	}
	defer closeSteer()
	ui, err := view.NewUI(store, view.UIOptions{Refresh: vcfg.Refresh, Log: log.Named("http"), Auth: authn, SignInIssuer: acfg.Issuer, Steer: steerSvc,
		NeverBlock: neverBlockList(cfg)})
	if err != nil {
		return err
	}
	ui.Register(srv.Mux())
	if err := mountTAXII(env, store, srv.Mux(), log); err != nil {
		return err
	}

	type input struct {
		name, topic, group string
		handler            pipeline.Handler
	}
	inputs := []input{
		{view.InputScored, k.OutputTopic, vcfg.GroupID + "-scored", view.NewScoredHandler(store, vm, log.Named("scored"))},
		{view.InputResults, a.ResultsTopic, vcfg.GroupID + "-results", view.NewRecordHandler(store, vm, log.Named("results"))},
	}
	// An input's reader and engine are made once the topics are there: kafka-go's consumer
	// group would create a missing topic with the broker's defaults where the broker allows it,
	// or wait on it silently.
	type run struct {
		rcfg  kafka.ReaderConfig
		start func(*kafka.Reader) *pipeline.Engine
	}
	runs := make([]run, 0, len(inputs))
	for _, in := range inputs {
		rcfg := clients.ReaderConfig(in.topic)
		rcfg.GroupID = in.group
		if err := rcfg.Validate(); err != nil { // NewReader panics on what Validate rejects
			return fmt.Errorf("kafka reader for %s: %w", in.topic, err)
		}
		opts := pipeline.Options{
			InputTopic: in.topic, Workers: vcfg.Workers, MaxInFlight: vcfg.MaxInFlight,
			MaxEventBytes: cfg.Pipeline.MaxEventBytes, MaxIndicators: cfg.Pipeline.MaxIndicators,
			CommitInterval: k.CommitInterval, ShutdownTimeout: cfg.Pipeline.ShutdownTimeout,
		}
		runs = append(runs, run{rcfg, func(reader *kafka.Reader) *pipeline.Engine {
			return pipeline.New(opts, reader, view.NoPublisher, in.handler, pm, log.With(zap.String("input", in.name)))
		}})
	}

	url := viewURL(srv.Addr())
	log.Info("view starting", zap.String("url", url), zap.Strings("brokers", k.Brokers),
		zap.String("scored", k.OutputTopic), zap.String("results", a.ResultsTopic), zap.String("group", vcfg.GroupID),
		zap.String("redis_prefix", cfg.Redis.KeyPrefix), zap.Duration("retention", vcfg.Retention))
	fmt.Fprintf(env.stdout, "threatpipe view: %s\n", url)

	// The HTTP server outlives the engines' drain so the view stays readable (and /metrics
	// scrapeable) until the last event is applied; readiness turns false as shutdown starts.
	afterCtx, stopAfter := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAfter()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Run(afterCtx); err != nil {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	g.Go(func() error { return view.RunSweeper(gctx, store, vcfg.SweepInterval, vm, log.Named("sweeper")) })
	stopDraining := context.AfterFunc(gctx, srv.SetDraining)
	defer stopDraining()
	g.Go(func() error {
		defer stopAfter()
		if err := viewTopics(gctx, clients, cfg, log); err != nil {
			return err
		}
		var engines errgroup.Group
		for _, r := range runs {
			engines.Go(func() error {
				reader := kafka.NewReader(r.rcfg)
				runErr := r.start(reader).Run(gctx)
				return errors.Join(runErr, closeWithin(reader, 5*time.Second)) // after the final commit
			})
		}
		err := engines.Wait()
		log.Info("view stopped")
		return err
	})
	return g.Wait()
}

// newViewSteer builds the analyst actions' backend: a synchronous writer that waits for every
// in-sync replica (an action the analyst was told happened must not be lost), the shared
// allowlist under the view's key prefix (the enrichers' gates read it there), act's kill switch
// on the ledger's Redis (THREATPIPE_ACT_REDIS_* when set, as act reads it), and the signer, so
// that act and the enricher accept the changes and re-enrich requests when a key is set.
func newViewSteer(cfg *config.Config, clients *kafkax.Clients, rdb redis.UniversalClient, log *zap.Logger) (*steer.Service, func(), error) {
	sg, err := signer(&cfg.Signing)
	if err != nil {
		return nil, nil, err
	}
	lrdb, closeLedger := ledgerRedis(cfg, rdb)
	host, _ := os.Hostname()
	ledger := act.NewLedger(lrdb, cfg.Redis.KeyPrefix, fmt.Sprintf("view-%s-%d", host, os.Getpid()))
	ledger.Log = log.Named("ledger")
	w := clients.Writer(nil)
	svc, err := steer.New(steer.Options{
		Producer: w, Allowlist: allowlist.New(rdb, cfg.Redis.KeyPrefix, nil), Ledger: ledger,
		Redis: rdb, Prefix: cfg.Redis.KeyPrefix, Signer: sg,
		Topics: steer.Topics{Input: cfg.Kafka.InputTopic, Changes: cfg.Kafka.ChangesTopic, Results: cfg.Act.ResultsTopic},
	})
	closeAll := func() { _ = w.Close(); closeLedger() }
	if err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("analyst actions: %w", err)
	}
	return svc, closeAll, nil
}

// newViewAuth builds the view's sign-in over the view's Redis (sessions are shared by
// replicas), logs its warnings loudly, and checks the provider now so that a wrong issuer shows
// at start; an unreachable provider is only a warning, as sign-in retries discovery.
func newViewAuth(ctx context.Context, acfg *auth.Config, rdb redis.UniversalClient, prefix string, log *zap.Logger) (*auth.Authenticator, error) {
	a, err := auth.New(acfg, auth.Options{Redis: rdb, KeyPrefix: prefix + ":view:auth:", Logger: log})
	if err != nil {
		return nil, fmt.Errorf("view sign-in: %w", err)
	}
	for _, w := range a.Warnings() {
		log.Warn(w)
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := a.Discover(dctx); err != nil {
		log.Warn("view: the OpenID provider cannot be read yet; sign-in will retry", zap.Error(err))
	}
	return a, nil
}

// viewTopics creates the view's topics, or checks that they exist.
func viewTopics(ctx context.Context, clients *kafkax.Clients, cfg *config.Config, log *zap.Logger) error {
	k, a := &cfg.Kafka, &cfg.Act
	if k.CreateTopics {
		return ensureTopics(ctx, clients, log, k.OutputTopic, a.ResultsTopic)
	}
	return requireTopics(ctx, clients, log, map[string]string{"KAFKA_OUTPUT_TOPIC": k.OutputTopic, "ACT_RESULTS_TOPIC": a.ResultsTopic})
}

// viewURL is where an operator on this host reaches the view listening on addr.
func viewURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr + "/"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// viewVarsHelp lists the THREATPIPE_VIEW_* variables, sign-in included, for --help.
func viewVarsHelp() string {
	var b strings.Builder
	for _, v := range append(view.Vars(), auth.Vars()...) {
		fmt.Fprintf(&b, "  %s=%s\n      %s\n", v.Name, v.Default, v.Description)
	}
	return strings.TrimRight(b.String(), "\n")
}
