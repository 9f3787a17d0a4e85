package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers"
	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/health"
	"github.com/threatpipe/threatpipe/pipeline/kafkax"
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

func buildEnrichment(cfg *config.Config, environ []string, rdb redis.UniversalClient, clients *kafkax.Clients,
	reg prometheus.Registerer, log *zap.Logger) (*enrichment, error) {
	configured, err := loadProviders(environ, log)
	if err != nil {
		return nil, err
	}
	if len(configured) == 0 {
		log.Warn("no enrichment provider configured: events are published unscored (set THREATPIPE_CRIMINALIP_API_KEY)")
		return &enrichment{proc: enrich.Unscored{}}, nil
	}
	metrics := enrich.NewMetrics(reg)
	cache := enrich.NewCache(rdb, enrich.LocalCacheOptions{Size: cfg.Pipeline.LocalCacheSize, TTL: cfg.Pipeline.LocalCacheTTL})
	ops := clients.NewJSONPublisher(cfg.Kafka.OpsTopic, log.Named("ops"))
	host, _ := os.Hostname()
	owner := fmt.Sprintf("%s-%d", host, os.Getpid())
	e := &enrichment{loops: []func(context.Context) error{cache.Run, ops.Run}}
	lookupers := make([]*enrich.Lookuper, 0, len(configured))
	for _, c := range configured {
		lookupers = append(lookupers, enrich.NewLookuper(enrich.LookuperOptions{
			Provider: c.Provider, Policy: c.Policy, Redis: rdb, Keys: enrich.Keys{Prefix: cfg.Redis.KeyPrefix}, Cache: cache, Metrics: metrics,
			Log: log, Ops: opsNotifier{ops}, Owner: owner,
		}))
		e.providers = append(e.providers, c.Provider.Name())
	}
	e.proc, e.lookupers = enrich.NewEnricher(lookupers, metrics), lookupers
	// Each provider's health, as this replica sees it, for the prioritised view.
	store := health.NewStore(rdb, cfg.Redis.KeyPrefix)
	e.loops = append(e.loops, func(ctx context.Context) error {
		return enrich.ReportHealth(ctx, store, lookupers, owner, "enrich", health.ReportInterval)
	})
	return e, nil
}

// opsNotifier publishes ops events keyed by provider.
type opsNotifier struct{ pub *kafkax.JSONPublisher }

func (o opsNotifier) Notify(e enrich.OpsEvent) { o.pub.Publish(e.Provider, e) }
