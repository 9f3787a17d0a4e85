package edl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline/telemetry"
)

// server serves the list on a listener of its own (THREATPIPE_SINK_EDL_ADDR), over HTTPS when a
// certificate is configured, apart from the probes and metrics of THREATPIPE_HTTP_ADDR: those
// stay on loopback or the cluster network, the list goes where the firewalls are.
type server struct {
	addr    string
	path    string
	handler http.Handler
	certs   *certFiles // nil: plain HTTP
	log     *zap.Logger
}

func newServer(cfg *Config, h http.Handler, log *zap.Logger) (*server, error) {
	s := &server{addr: cfg.Addr, path: cfg.Path, handler: h, log: log}
	if cfg.TLSCertFile != "" {
		c, err := loadCertFiles(cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSClientCAFile, log)
		if err != nil {
			return nil, err
		}
		s.certs = c
	}
	return s, nil
}

// Run serves the list on THREATPIPE_SINK_EDL_ADDR until ctx ends, when the sink has a listener
// of its own; otherwise (the list is a page of THREATPIPE_HTTP_ADDR) it returns nil at once. act
// runs it beside its HTTP server.
func (s *Sink) Run(ctx context.Context) error {
	if s.server == nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.server.addr)
	if err != nil {
		return fmt.Errorf("%sADDR: %w", EnvPrefix, err)
	}
	return s.server.serve(ctx, ln)
}

// serve serves on ln until ctx ends, then shuts down within 5 s.
func (s *server) serve(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle(s.path, s.handler)
	srv := telemetry.NewHTTPServer(mux)
	srv.ErrorLog = zap.NewStdLog(s.log.Named("edl-http"))
	if s.certs != nil {
		ln = tls.NewListener(ln, s.certs.tlsConfig())
	}
	s.log.Info("external dynamic list listening", zap.String("addr", ln.Addr().String()), zap.Bool("tls", s.certs != nil))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("edl server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	if err != nil {
		return fmt.Errorf("edl server: %w", err)
	}
	return nil
}

// certFiles holds the server certificate and the client CAs, reloaded when their files change
// (a renewed certificate is picked up without a restart). Handshakes look at the files at most
// once per reloadCheck; a file that does not load keeps the previous certificate and is logged.
type certFiles struct {
	certFile, keyFile, caFile string
	log                       *zap.Logger

	mu      sync.Mutex
	checked time.Time
	stamp   string // sizes and modification times of the files last loaded
	cert    *tls.Certificate
	cas     *x509.CertPool // nil: no client certificate asked for
}

// reloadCheck bounds how often a handshake stats the files.
const reloadCheck = 5 * time.Second

func loadCertFiles(certFile, keyFile, caFile string, log *zap.Logger) (*certFiles, error) {
	c := &certFiles{certFile: certFile, keyFile: keyFile, caFile: caFile, log: log}
	stamp, err := c.stampNow()
	if err != nil {
		return nil, err
	}
	if err := c.load(stamp); err != nil {
		return nil, err
	}
	c.checked = time.Now()
	return c, nil
}

// stampNow describes the files as they are now: a change of size or modification time reloads.
func (c *certFiles) stampNow() (string, error) {
	stamp := ""
	for _, f := range []struct{ name, path string }{{"TLS_CERT_FILE", c.certFile}, {"TLS_KEY_FILE", c.keyFile}, {"TLS_CLIENT_CA_FILE", c.caFile}} {
		if f.path == "" {
			continue
		}
		st, err := os.Stat(f.path)
		if err != nil {
			return "", fmt.Errorf("%s%s: %w", EnvPrefix, f.name, err)
		}
		stamp += fmt.Sprintf("%d:%d;", st.Size(), st.ModTime().UnixNano())
	}
	return stamp, nil
}

func (c *certFiles) load(stamp string) error {
	cert, err := loadKeyPair(c.certFile, c.keyFile)
	if err != nil {
		return err
	}
	var cas *x509.CertPool
	if c.caFile != "" {
		if cas, err = loadCAs(c.caFile); err != nil {
			return err
		}
	}
	c.cert, c.cas, c.stamp = &cert, cas, stamp
	return nil
}

// current returns the certificate and client CAs, reloading them first if the files changed.
func (c *certFiles) current() (*tls.Certificate, *x509.CertPool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); now.Sub(c.checked) >= reloadCheck {
		c.checked = now
		stamp, err := c.stampNow()
		if err == nil && stamp != c.stamp {
			err = c.load(stamp)
			if err == nil {
				c.log.Info("external dynamic list: TLS certificate reloaded", zap.String("cert_file", c.certFile))
			}
		}
		if err != nil {
			c.log.Warn("external dynamic list: cannot reload the TLS files; serving with the previous ones", zap.Error(err))
		}
	}
	return c.cert, c.cas
}

// tlsConfig asks current for each handshake, so that a reload applies to the next connection.
func (c *certFiles) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, cas := c.current()
			cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*cert}}
			if cas != nil {
				cfg.ClientCAs, cfg.ClientAuth = cas, tls.RequireAndVerifyClientCert
			}
			return cfg, nil
		},
	}
}

// loadKeyPair reads the certificate (chain) and key, naming the variables in its errors.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%sTLS_CERT_FILE and %sTLS_KEY_FILE: %w", EnvPrefix, EnvPrefix, err)
	}
	return cert, nil
}

// loadCAs reads PEM CA certificates.
func loadCAs(path string) (*x509.CertPool, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%sTLS_CLIENT_CA_FILE: %w", EnvPrefix, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw) {
		return nil, fmt.Errorf("%sTLS_CLIENT_CA_FILE: %s holds no PEM certificate", EnvPrefix, path)
	}
	return pool, nil
}
