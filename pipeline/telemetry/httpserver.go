package telemetry

import (
	"net/http"
	"time"
)

// Limits of every threatpipe HTTP server. Its pages are small GETs answered from memory or
// Redis (probes, metrics, the view, the EDL), none streams, so a client slower than these is
// broken or hostile and must not hold a connection and its goroutine.
const (
	// ReadHeaderTimeout bounds a slowloris client sending its headers a byte at a time.
	ReadHeaderTimeout = 5 * time.Second
	// ReadTimeout bounds the whole request, body included (the requests carry none).
	ReadTimeout = 10 * time.Second
	// WriteTimeout bounds the answer: a 50,000-address EDL or a full /metrics page takes well under
	// a second on a LAN; a minute covers a slow WAN link to a firewall.
	WriteTimeout = 60 * time.Second
	// IdleTimeout closes keep-alive connections that carry nothing, beyond a Prometheus scrape
	// interval (15-60 s) so scrapers can still reuse theirs.
	IdleTimeout = 120 * time.Second
	// MaxHeaderBytes is far above any legitimate request's headers (a basic-auth header, a
	// browser's) and far below net/http's 1 MiB default.
	MaxHeaderBytes = 32 << 10
)

// NewHTTPServer returns a server for h with threatpipe's limits. A server whose answers may
// legitimately take longer (the provider simulator's configured latency) clears WriteTimeout.
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}
