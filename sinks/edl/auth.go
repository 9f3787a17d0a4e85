package edl

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"strings"

	"go.uber.org/zap"
)

// authenticator checks the credentials a firewall sends: HTTP basic auth (PAN-OS, FortiGate,
// Check Point), a bearer token (scripts, proxies and clients that can set a header), or both
// (either is accepted). It keeps SHA-256 digests of the expected values and compares digests in
// constant time, so that neither the comparison's time nor an early exit says how much of a
// guess was right, or how long the secret is. A client certificate (mutual TLS) is checked by
// the TLS handshake before any request reaches it (server.go).
type authenticator struct {
	basic *[2][sha256.Size]byte // user, password; nil: basic auth off
	token *[sha256.Size]byte    // nil: bearer tokens off
}

func newAuthenticator(cfg *Config) *authenticator {
	a := &authenticator{}
	if cfg.Username != "" {
		a.basic = &[2][sha256.Size]byte{sha256.Sum256([]byte(cfg.Username)), sha256.Sum256([]byte(cfg.Password.Reveal()))}
	}
	if cfg.Token != "" {
		t := sha256.Sum256([]byte(cfg.Token.Reveal()))
		a.token = &t
	}
	return a
}

// on reports whether requests must carry credentials.
func (a *authenticator) on() bool { return a.basic != nil || a.token != nil }

// authorized reports whether r carries valid credentials, or none are required.
func (a *authenticator) authorized(r *http.Request) bool {
	if !a.on() {
		return true
	}
	scheme, value, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	switch {
	case strings.EqualFold(scheme, "Basic") && a.basic != nil:
		user, pass, ok := r.BasicAuth()
		u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
		// Both comparisons always run, so the time taken says nothing about which one failed.
		match := subtle.ConstantTimeCompare(u[:], a.basic[0][:]) & subtle.ConstantTimeCompare(p[:], a.basic[1][:])
		return ok && match == 1
	case strings.EqualFold(scheme, "Bearer") && a.token != nil:
		t := sha256.Sum256([]byte(strings.TrimSpace(value)))
		return subtle.ConstantTimeCompare(t[:], a.token[:]) == 1
	}
	return false
}

// challenge sets the WWW-Authenticate fields of a 401: one per scheme accepted (RFC 9110
// section 11.6.1).
func (a *authenticator) challenge(w http.ResponseWriter) {
	if a.basic != nil {
		w.Header().Add("WWW-Authenticate", `Basic realm="threatpipe EDL", charset="UTF-8"`)
	}
	if a.token != nil {
		w.Header().Add("WWW-Authenticate", `Bearer realm="threatpipe EDL"`)
	}
}

// logExposure says at start-up how the list is served: addr is where (THREATPIPE_SINK_EDL_ADDR,
// or the shared server's THREATPIPE_HTTP_ADDR; empty when unknown). Firewalls fetch the list from
// another host, and whoever can read it learns what is blocked and can probe around it; whoever
// can impersonate the server can unblock anything. So a list without authentication on an
// address other hosts reach, or credentials sent in clear text, is a warning.
func logExposure(cfg *Config, addr string, log *zap.Logger) {
	tlsOn := cfg.Addr != "" && cfg.TLSCertFile != ""
	fields := []zap.Field{zap.String("sink", Name), zap.String("addr", addr), zap.String("path", cfg.Path),
		zap.Bool("tls", tlsOn), zap.Bool("basic_auth", cfg.Username != ""), zap.Bool("bearer_token", cfg.Token != ""),
		zap.Bool("client_certificates", tlsOn && cfg.TLSClientCAFile != "")}
	authOn := cfg.Username != "" || cfg.Token != "" || (tlsOn && cfg.TLSClientCAFile != "")
	switch {
	case !authOn && !loopback(addr):
		log.Warn("serving the external dynamic list WITHOUT authentication on an address other hosts can reach: anyone there can read what is blocked. "+
			"Serve it over TLS with credentials: THREATPIPE_SINK_EDL_ADDR, _TLS_CERT_FILE, _TLS_KEY_FILE and _USERNAME/_PASSWORD (or _TOKEN, or _TLS_CLIENT_CA_FILE)", fields...)
	case !authOn:
		log.Info("serving the external dynamic list without authentication, on loopback only", fields...)
	case !tlsOn && (cfg.Username != "" || cfg.Token != "") && !loopback(addr):
		log.Warn("serving the external dynamic list with credentials over plain HTTP: they cross the network in clear text, and PAN-OS sends basic credentials "+
			"only over HTTPS. Set THREATPIPE_SINK_EDL_ADDR, _TLS_CERT_FILE and _TLS_KEY_FILE, or terminate TLS in a proxy in front", fields...)
	default:
		log.Info("serving the external dynamic list with authentication", fields...)
	}
}

// loopback reports whether a listen address (host:port) accepts connections from this host
// only. An empty host (":8080") listens on every interface; an unknown address is not loopback.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
