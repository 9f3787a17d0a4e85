package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// Check reports whether a dependency is reachable. It must honour ctx. /readyz shows a failing
// check as "unreachable", or as the Status of a StatusError in its chain; the error itself (which
// may name addresses) goes to the log only.
type Check func(ctx context.Context) error

// StatusError gives a failing check a more precise public status than "unreachable" ("topic
// missing", "rejected credentials"). Status must be a few generic words: /readyz is often
// reachable by more people than the logs.
type StatusError struct {
	Status string
	Err    error
}

func (e *StatusError) Error() string { return e.Status + ": " + e.Err.Error() }

func (e *StatusError) Unwrap() error { return e.Err }

// Statuses of /readyz besides a StatusError's.
const (
	statusOK          = "ok"
	statusUnreachable = "unreachable"
)

// Server serves /healthz (the process is alive), /readyz (every dependency answers and the
// process is not draining) and /metrics. Roles add their own pages with Handle.
type Server struct {
	ln       net.Listener
	mux      *http.ServeMux
	log      *zap.Logger
	checks   map[string]Check
	draining atomic.Bool

	mu       sync.Mutex
	cachedAt time.Time
	cached   readiness
	// last is each check's previous status, so that a change is logged once, not every probe.
	last map[string]string
}

type readiness struct {
	Ready  bool              `json:"ready"`
	Checks map[string]string `json:"checks"`
}

// readyCacheTTL keeps a busy prober from turning into load on Kafka and Redis.
const readyCacheTTL = time.Second

// NewServer listens on addr at once, so that a port conflict fails start-up.
func NewServer(addr string, reg *prometheus.Registry, log *zap.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, mux: http.NewServeMux(), log: log, checks: make(map[string]Check), last: make(map[string]string)}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", s.serveReady)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// AddCheck registers a readiness check. Call before Run.
func (s *Server) AddCheck(name string, c Check) { s.checks[name] = c }

// Handle registers an extra handler. Call before Run.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Mux is the server's router, for components that register their own pages (the EDL sink).
// Register before Run.
func (s *Server) Mux() *http.ServeMux { return s.mux }

// SetDraining makes /readyz fail, so a load balancer or Kubernetes stops routing to a process
// that is shutting down.
func (s *Server) SetDraining() { s.draining.Store(true) }

func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	res := s.readiness(r.Context())
	w.Header().Set("Content-Type", "application/json")
	if !res.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(res)
}

func (s *Server) readiness(ctx context.Context) readiness {
	if s.draining.Load() {
		return readiness{Ready: false, Checks: map[string]string{"process": "draining"}}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.cachedAt) < readyCacheTTL {
		return s.cached
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	names := make([]string, 0, len(s.checks))
	for n := range s.checks {
		names = append(names, n)
	}
	sort.Strings(names)
	results := make([]error, len(names))
	var g errgroup.Group
	for i, n := range names {
		g.Go(func() error { results[i] = s.checks[n](ctx); return nil })
	}
	_ = g.Wait()
	res := readiness{Ready: true, Checks: make(map[string]string, len(names))}
	for i, n := range names {
		status := publicStatus(results[i])
		res.Checks[n] = status
		res.Ready = res.Ready && status == statusOK
		s.logChange(n, status, results[i])
	}
	s.cached, s.cachedAt = res, time.Now()
	return res
}

// publicStatus is what /readyz shows for a check's result: never the error text, which names
// addresses and internals.
func publicStatus(err error) string {
	if err == nil {
		return statusOK
	}
	var se *StatusError
	if errors.As(err, &se) && se.Status != "" {
		return se.Status
	}
	return statusUnreachable
}

// logChange logs a check's status when it differs from the previous probe's, with the error.
// Call with s.mu held.
func (s *Server) logChange(name, status string, err error) {
	prev, seen := s.last[name]
	s.last[name] = status
	switch {
	case prev == status || (!seen && status == statusOK):
	case status == statusOK:
		s.log.Info("readiness: dependency is back", zap.String("check", name), zap.String("was", prev))
	default:
		s.log.Warn("readiness: dependency is down", zap.String("check", name), zap.String("status", status), zap.Error(err))
	}
}

// Run serves until ctx is done, then shuts down within a few seconds.
func (s *Server) Run(ctx context.Context) error {
	srv := NewHTTPServer(s.mux)
	if errLog, err := zap.NewStdLogAt(s.log.Named("http"), zap.WarnLevel); err == nil {
		srv.ErrorLog = errLog // net/http's own complaints (bad requests, TLS handshakes) as JSON lines
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
