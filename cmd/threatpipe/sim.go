package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/enrich/sim"
	"github.com/threatpipe/threatpipe/pipeline/telemetry"
)

func runSim(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "sim [flags]", `Serves simulators of every provider's API with the real paths, headers and response shapes and
verdicts derived from one simulated reality per address, for demos, benchmarks and tests: each
under /<name>/ (criminalip, abuseipdb, virustotal, greynoise, otx, internetdb; Criminal IP also at
the root). Point the enricher at it with THREATPIPE_<NAME>_BASE_URL=<url>/<name> and one of --keys
as THREATPIPE_<NAME>_API_KEY. The flags apply to every provider. Knobs can be changed while it
runs, per provider: GET /_sim/<name>/stats, GET /_sim/<name>/calls?ip=, POST /_sim/<name>/reset,
GET or POST /_sim/<name>/config (e.g. {"latency":"200ms","error_rate":0.1,"force_429_for":"30s"});
GET /_sim/providers lists every provider's counters.`)
	addr := fs.String("addr", "127.0.0.1:8090", "listen address (host:port; port 0 picks a free one)")
	latency := fs.Duration("latency", 0, "delay added to every API answer")
	jitter := fs.Duration("jitter", 0, "random extra delay, uniform between 0 and this")
	errorRate := fs.Float64("error-rate", 0, "fraction (0-1) of lookups answered with HTTP 500")
	rateLimit := fs.Float64("rate-limit", 0, "requests per second before HTTP 429 with Retry-After (0: unlimited)")
	dailyQuota := fs.Int64("daily-quota", 0, "successful lookups per UTC day before the in-body status 402 answer (0: unmetered)")
	keys := fs.String("keys", "sim-key", "comma-separated accepted API keys (empty: any non-empty key)")
	invalidKeys := fs.Bool("invalid-keys", false, "reject every API key with HTTP 401")
	seed := fs.Uint64("seed", 1, "seed of the error and jitter sequences")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	switch {
	case *latency < 0 || *jitter < 0:
		return errors.New("--latency and --jitter must not be negative")
	case *errorRate < 0 || *errorRate > 1:
		return errors.New("--error-rate must be between 0 and 1")
	case *rateLimit < 0 || *dailyQuota < 0:
		return errors.New("--rate-limit and --daily-quota must not be negative")
	}
	var validKeys []string
	for _, k := range strings.Split(*keys, ",") {
		if k = strings.TrimSpace(k); k != "" {
			validKeys = append(validKeys, k)
		}
	}

	handler := sim.New(sim.Options{
		Latency: *latency, Jitter: *jitter, ErrorRate: *errorRate, RateLimit: *rateLimit,
		DailyQuota: *dailyQuota, ValidKeys: validKeys, InvalidKeyMode: *invalidKeys, Seed: *seed,
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := telemetry.NewHTTPServer(handler)
	srv.WriteTimeout = 0 // answers are delayed on purpose (--latency, stalls set through /_sim/)
	base := "http://" + advertised(ln.Addr())
	fmt.Fprintf(env.stderr, "threatpipe sim: provider simulators listening on %s (admin API under %s/_sim/<name>/)\n", base, base)
	for _, name := range handler.Providers() {
		fmt.Fprintf(env.stderr, "use: THREATPIPE_%s_BASE_URL=%s/%s\n", strings.ToUpper(name), base, name)
	}
	if len(validKeys) > 0 && !*invalidKeys {
		fmt.Fprintf(env.stderr, "     THREATPIPE_<NAME>_API_KEY=%s\n", validKeys[0])
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	for _, name := range handler.Providers() {
		st := handler.Provider(name).Stats()
		fmt.Fprintf(env.stderr, "threatpipe sim: %s: %d requests (%d lookups, %d distinct IPs)\n", name, st.Total, st.Lookups, st.DistinctIPs)
	}
	return nil
}

// advertised is the address clients should dial: a wildcard listen address becomes loopback.
func advertised(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := tcp.IP
	if ip == nil || ip.IsUnspecified() {
		if ip.To4() == nil && ip != nil {
			ip = net.IPv6loopback
		} else {
			ip = net.IPv4(127, 0, 0, 1)
		}
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(tcp.Port))
}
