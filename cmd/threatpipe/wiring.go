package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers"
	"github.com/threatpipe/threatpipe/enrich/providers/lists"
	"github.com/threatpipe/threatpipe/enrich/rules"
	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/allowlist"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/gate"
	"github.com/threatpipe/threatpipe/pipeline/health"
	"github.com/threatpipe/threatpipe/pipeline/kafkax"
	"github.com/threatpipe/threatpipe/pipeline/sign"
)

// enrichment is the processor the enricher runs and the background loops it needs while events
// are in flight (they stop after the engine has drained).
type enrichment struct {
	proc      pipeline.Processor
	providers []string
	loops     []func(ctx context.Context) error
	lookupers []*enrich.Lookuper
}

// close ends lookups still in flight once the engine has drained.
func (e *enrichment) close() {
	for _, l := range e.lookupers {
		l.Close()
	}
}

// providerHTTPClient is shared by every provider: connection reuse matters when every miss is a
// TLS request. Per-request deadlines come from the context.
func providerHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}}
}

// loadProviders builds the providers the environment configures.
func loadProviders(environ []string, log *zap.Logger) ([]enrich.Configured, error) {
	client := providerHTTPClient()
	configured, err := enrich.Load(providers.All(), environ, enrich.Deps{HTTPClient: client, Log: log})
	if err != nil {
		return nil, err
	}
	// Keep as many idle connections per host as a provider may use at once: below that, every
	// burst of misses closes connections after one request and dials new ones.
	tr := client.Transport.(*http.Transport)
	for _, c := range configured {
		tr.MaxIdleConnsPerHost = max(tr.MaxIdleConnsPerHost, int(c.Policy.MaxConcurrent))
	}
	tr.MaxIdleConns = max(tr.MaxIdleConns, tr.MaxIdleConnsPerHost*len(configured))
	return configured, nil
}

// sources are the enrichment sources the rules and the environment configure.
type sources struct {
	rules      *rules.Compiled
	configured []enrich.Configured
	loops      []func(ctx context.Context) error // reload loops of offline sources
}

// runner is implemented by sources that reload their data while running (GeoIP, IP lists).
type runner interface {
	Run(ctx context.Context) error
}

// loadSources reads the enrichment rules and builds every source they and the environment
// configure; errors name the variable behind them.
func loadSources(cfg *config.Config, environ []string, log *zap.Logger) (*sources, error) {
	const rulesVar = config.Prefix + "ENRICH_RULES_FILE"
	f, err := rules.Load(cfg.Enrich.RulesFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rulesVar, err)
	}
	var known []string
	for _, r := range providers.All() {
		known = append(known, r.Name)
	}
	compiled, err := f.Compile(known)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rulesVar, err)
	}
	configured, err := loadProviders(environ, log)
	if err != nil {
		return nil, err
	}
	s := &sources{rules: compiled, configured: configured}
	if defs := compiled.Lists(); len(defs) > 0 {
		src, err := lists.New(listDefs(defs), lists.Options{ReloadInterval: cfg.Enrich.ListsInterval, Log: log.Named("lists")})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rulesVar, err)
		}
		s.configured = append(s.configured, enrich.Configured{Provider: src, Policy: enrich.OfflinePolicy()})
	}
	for _, c := range s.configured {
		if r, ok := c.Provider.(runner); ok {
			s.loops = append(s.loops, r.Run)
		}
	}
	return s, nil
}

func listDefs(defs []rules.ListDef) []lists.Def {
	out := make([]lists.Def, len(defs))
	for i, d := range defs {
		out[i] = lists.Def{Name: d.Name, Path: d.Path, Kind: d.Kind, Format: d.Format, Tag: d.Tag}
	}
	return out
}

func buildEnrichment(cfg *config.Config, environ []string, rdb redis.UniversalClient, clients *kafkax.Clients,
	reg prometheus.Registerer, log *zap.Logger) (*enrichment, error) {
	src, err := loadSources(cfg, environ, log)
	if err != nil {
		return nil, err
	}
	if len(src.configured) == 0 {
		log.Warn("no enrichment source configured: events are published unscored (set THREATPIPE_CRIMINALIP_API_KEY)")
		return &enrichment{proc: enrich.Unscored{}}, nil
	}
	metrics := enrich.NewMetrics(reg)
	cache := enrich.NewCache(rdb, enrich.CacheOptions{Size: cfg.Pipeline.LocalCacheSize, TTL: cfg.Pipeline.LocalCacheTTL,
		WaitReplicas: cfg.Redis.WaitReplicas, WaitTimeout: cfg.Redis.WaitTimeout})
	ops := clients.NewJSONPublisher(cfg.Kafka.OpsTopic, log.Named("ops"))
	host, _ := os.Hostname()
	owner := fmt.Sprintf("%s-%d", host, os.Getpid())
	e := &enrichment{loops: append([]func(context.Context) error{cache.Run, ops.Run}, src.loops...)}
	keys := enrich.Keys{Prefix: cfg.Redis.KeyPrefix}
	byName := make(map[string]*enrich.Lookuper, len(src.configured))
	for _, c := range src.configured {
		name := c.Provider.Name()
		opt := src.rules.SourceOptions(name)
		byName[name] = enrich.NewLookuper(enrich.LookuperOptions{
			Provider: c.Provider, Policy: c.Policy, Redis: rdb, Keys: keys, Cache: cache, Metrics: metrics,
			Log: log, Ops: opsNotifier{ops}, Owner: owner, Fields: opt.Fields, MaxAge: opt.MaxAge, FirstSight: opt.FirstSight,
			Defer: true,
		})
	}
	plan, unused := src.rules.Plan(byName)
	if len(unused) > 0 {
		log.Warn("configured sources that no stage of the enrichment rules names are not consulted", zap.Strings("sources", unused))
	}
	parking := enrich.NewParking(rdb, keys, enrich.ParkingOptions{})
	enr := enrich.NewEnricher(plan, src.rules.Model(), metrics).ParkWith(parking)
	e.providers = enr.Sources()
	for _, name := range e.providers {
		e.lookupers = append(e.lookupers, byName[name])
	}
	e.proc = enr
	// Parked lookups are finished in the background and their events revised (docs/lifecycle.md).
	signs, _ := signer(&cfg.Signing) // validated by config.Load
	revisions := &revisionWriter{w: sign.NewWriter(clients.Writer(nil), signs, signedTopics(&cfg.Kafka)),
		topic: cfg.Kafka.OutputTopic, changes: cfg.Kafka.ChangesTopic, detail: scoredDetail(cfg)}
	retrier := enrich.NewRetrier(enrich.RetrierOptions{
		Parking: parking, Enricher: enr, Lookupers: e.lookupers, Metrics: metrics, Log: log.Named("retrier"), Owner: owner,
		Publisher: revisions,
	})
	refresher := enrich.NewRefresher(enrich.RefresherOptions{Lookupers: e.lookupers, Redis: rdb, Keys: keys, Log: log.Named("refresh"), Metrics: metrics,
		Changed: enr.RefreshChanges(revisions, log.Named("refresh"))})
	e.loops = append(e.loops, func(ctx context.Context) error {
		// Both write revisions or changes: the writer closes after the last of them.
		defer func() { _ = revisions.w.Close() }()
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() error { return retrier.Run(gctx) })
		g.Go(func() error { return refresher.Run(gctx) })
		return g.Wait()
	})
	// Each provider's health, as this replica sees it, for the prioritised view.
	store := health.NewStore(rdb, cfg.Redis.KeyPrefix)
	lookupers := e.lookupers
	e.loops = append(e.loops, func(ctx context.Context) error {
		return enrich.ReportHealth(ctx, store, lookupers, owner, "enrich", health.ReportInterval)
	})
	return e, nil
}

// revisionWriter publishes revised scored events to the scored topic and verdict changes to the
// changes topic, keyed by indicator (signed with THREATPIPE_SIGNING_KEY), and returns once the
// brokers acknowledged them all.
type revisionWriter struct {
	w              sign.Writer
	topic, changes string
	detail         event.Detail
}

// scoredDetail is THREATPIPE_PIPELINE_SCORED_DETAIL's value (validated by config.Load).
func scoredDetail(cfg *config.Config) event.Detail {
	d, _ := event.ParseDetail(cfg.Pipeline.ScoredDetail)
	return d
}

func (r *revisionWriter) PublishChanges(ctx context.Context, changes []*event.Change) error {
	return r.PublishRevisions(ctx, nil, changes)
}

func (r *revisionWriter) PublishRevisions(ctx context.Context, evs []*event.Scored, changes []*event.Change) error {
	msgs := make([]kafka.Message, 0, len(evs)+len(changes))
	for _, ev := range evs {
		msgs = append(msgs, kafka.Message{Topic: r.topic, Key: []byte(ev.Indicator.Value), Value: ev.Append(nil, r.detail)})
	}
	for _, c := range changes {
		raw, err := json.Marshal(c)
		if err != nil {
			return err
		}
		msgs = append(msgs, kafka.Message{Topic: r.changes, Key: []byte(c.Indicator.Value), Value: raw})
	}
	return r.w.WriteMessages(ctx, msgs...)
}

// opsNotifier publishes ops events keyed by provider.
type opsNotifier struct{ pub *kafkax.JSONPublisher }

func (o opsNotifier) Notify(e enrich.OpsEvent) { o.pub.Publish(e.Provider, e) }

// sharedGate adds the shared allowlist (the view's false positives, pipeline/allowlist) to the
// static gate, with the loop that reloads it every THREATPIPE_GATE_SHARED_ALLOWLIST_REFRESH; the
// loop is nil, and the gate static, when the refresh is 0.
func sharedGate(cfg *config.Config, static *gate.Gate, rdb redis.UniversalClient, log *zap.Logger) (*gate.Gate, func(context.Context) error) {
	every := cfg.Gate.SharedAllowlistRefresh
	if every <= 0 {
		return static, nil
	}
	shared := gate.NewShared()
	r := allowlist.NewRefresher(allowlist.New(rdb, cfg.Redis.KeyPrefix, nil), shared, every, log.With(zap.String("loop", "shared_allowlist")))
	return static.WithShared(shared), r.Run
}
