// Package edl is the block sink that publishes blocked addresses as an External Dynamic List: a
// plain-text document, one address per line, that firewalls poll over HTTP(S) and enforce.
//
// What the firewalls expect (checked against each vendor's documentation):
//   - Palo Alto Networks PAN-OS, EDL of type "IP List" (PAN-OS admin guide, "Formatting
//     Guidelines for an External Dynamic List"): one entry per line, an IP address, IP/mask or
//     start-end range, optionally followed by a space and a comment. The firewall verifies the
//     server certificate of an HTTPS source (certificate profile) and can send HTTP basic
//     credentials ("client authentication", PAN-OS 8.0 and later, HTTPS sources only). If
//     authentication fails the firewall stops enforcing the list; if the server is unreachable it
//     keeps the last list it fetched. Capacity is per platform (PAN-OS 7.1: 50,000 addresses in
//     total on most models, 150,000 on PA-5000/PA-7000; later releases vary by model); entries
//     beyond it are skipped with a system log, so set THREATPIPE_SINK_EDL_MAX_ENTRIES.
//   - Fortinet FortiGate, IP Address threat feed (FortiOS admin guide, "Threat feeds" and
//     `config system external-resource`, type address): a text file with one IPv4 or IPv6
//     address, range or subnet per line, over HTTP or HTTPS with optional basic authentication
//     (username/password), refreshed every refresh-rate minutes (default 5). FortiOS 7.4.4 and
//     later allow 300,000 address entries and 32-128 MB per file depending on the model.
//   - Check Point, Network Feed object (R81.20 Security Management admin guide, "External
//     Network Feeds") in Flat List format with data type IP address: one object per line. The
//     Generic Data Center object wants Check Point's own JSON document and cannot read this list;
//     the Threat Prevention IoC feed (ioc_feeds) can, as a custom CSV with the value in column 1,
//     but its IP observables are IPv4 only.
//
// So the list is the common denominator: addresses only, no comments and no header, LF line
// ends, sorted (IPv4 before IPv6, numerically), served as text/plain; charset=utf-8. With
// THREATPIPE_SINK_EDL_FORMAT=cidr each address carries /32 or /128, which all three accept too.
//
// The list is served at THREATPIPE_SINK_EDL_PATH, for GET and HEAD: on a server of its own at
// THREATPIPE_SINK_EDL_ADDR, over HTTPS with THREATPIPE_SINK_EDL_TLS_CERT_FILE (reloaded when the
// file changes) and optionally asking for client certificates (server.go), or else as a page of
// threatpipe's plain-HTTP server (THREATPIPE_HTTP_ADDR). Firewalls authenticate with basic auth
// (PAN-OS sends it over HTTPS only), a bearer token, or a client certificate; credentials are
// compared in constant time (auth.go). A list served without authentication on an address other
// hosts reach, or credentials over plain HTTP, is a warning at start-up. Each response carries a strong ETag (a hash of the body) and
// Last-Modified, and If-None-Match / If-Modified-Since are answered with 304 Not Modified, so a
// poll that finds nothing new costs a few headers.
//
// The list lives in memory: Do lists an address until Action.Until (or DEFAULT_TTL), replacing
// an earlier expiry; an expired address is never served, even before Undo removes it; Undo
// removes it; Reconcile replaces the whole list with the ledger's active blocks after a restart.
package edl

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline/neverblock"
	"github.com/threatpipe/threatpipe/sinks"
)

// Name is the sink's identifier in playbooks and its variable prefix.
const Name = "edl"

// Registration adds the sink to the registry: variables under THREATPIPE_SINK_EDL_, on when
// THREATPIPE_SINK_EDL_ENABLED=true. With THREATPIPE_SINK_EDL_ADDR the list gets a server of its
// own, which Run serves; otherwise it registers the list's handler on deps.Mux.
var Registration = sinks.Register[Config](Name, sinks.KindBlock, func(cfg *Config, deps sinks.Deps) (sinks.Sink, error) {
	s := New(cfg, deps.Log)
	s.never = deps.NeverBlock
	log := deps.Log
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.Addr != "" {
		srv, err := newServer(cfg, s, log)
		if err != nil {
			return nil, err
		}
		s.server = srv
		logExposure(cfg, cfg.Addr, log)
		return s, nil
	}
	if deps.Mux == nil {
		return nil, errors.New("no HTTP server to serve the list on (set THREATPIPE_SINK_EDL_ADDR)")
	}
	if err := handle(deps.Mux, cfg.Path, s); err != nil {
		return nil, err
	}
	logExposure(cfg, deps.HTTPAddr, log)
	return s, nil
})

var (
	_ sinks.Sink           = (*Sink)(nil)
	_ sinks.Undoer         = (*Sink)(nil)
	_ sinks.Reconciler     = (*Sink)(nil)
	_ sinks.ParamValidator = (*Sink)(nil)
	_ http.Handler         = (*Sink)(nil)
)

// Sink holds the list and serves it. It is safe for concurrent use.
type Sink struct {
	defaultTTL time.Duration
	list       *list
	auth       *authenticator
	// server is the list's own listener (THREATPIPE_SINK_EDL_ADDR); nil when it is a page of
	// the shared server.
	server *server
	now    func() time.Time
	// never is the never-block list Do and Reconcile enforce (nil: the built-in ranges).
	never *neverblock.List
}

// New builds the sink from a resolved cfg. Serve it with ServeHTTP (Registration mounts it on
// the shared server).
func New(cfg *Config, log *zap.Logger) *Sink { return newSink(cfg, log, time.Now) }

func newSink(cfg *Config, log *zap.Logger, now func() time.Time) *Sink {
	if log == nil {
		log = zap.NewNop()
	}
	log.Debug("external dynamic list", zap.String("path", cfg.Path), zap.String("format", cfg.Format), zap.Int("max_entries", cfg.MaxEntries))
	return &Sink{defaultTTL: cfg.DefaultTTL, now: now, list: newList(cfg.Format, cfg.MaxEntries, now()), auth: newAuthenticator(cfg)}
}

// handle mounts s at path, turning the mux's panic on a conflicting pattern into an error.
func handle(mux *http.ServeMux, path string, s *Sink) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%sPATH: cannot serve at %q: %v", EnvPrefix, path, r)
		}
	}()
	mux.Handle(path, s)
	return nil
}

// Name implements sinks.Sink.
func (s *Sink) Name() string { return Name }

// Kind implements sinks.Sink.
func (s *Sink) Kind() sinks.Kind { return sinks.KindBlock }

// ValidateParams implements sinks.ParamValidator: the sink takes no step params, so any key is a
// mistake in the playbook.
func (s *Sink) ValidateParams(params map[string]string) error {
	return sinks.NoParams(Name, params)
}

// Do implements sinks.Sink: it lists a.Target until a.Until (or now plus DEFAULT_TTL).
func (s *Sink) Do(_ context.Context, a *sinks.Action) (sinks.Result, error) {
	if a == nil {
		return sinks.Result{}, fmt.Errorf("%s: nil action", Name)
	}
	addr, err := sinks.Blockable(s.never, Name, "list", a.Target)
	if err != nil {
		return sinks.Result{}, err
	}
	now := s.now()
	until := a.UntilOr(now.Add(s.defaultTTL))
	if !until.After(now) {
		return sinks.Result{Ref: addr.String(), Detail: fmt.Sprintf("not listed: the block of %s lapsed at %s", addr, until.UTC().Format(time.RFC3339))}, nil
	}
	if err := s.list.put(addr, until, now); err != nil {
		return sinks.Result{}, fmt.Errorf("edl: cannot list %s: %w", addr, err)
	}
	return sinks.Result{Ref: addr.String(), Detail: fmt.Sprintf("listed %s on the EDL until %s", addr, until.UTC().Format(time.RFC3339))}, nil
}

// Undo implements sinks.Undoer: it removes the address; one not listed is success.
func (s *Sink) Undo(_ context.Context, a *sinks.Action, ref string) error {
	target := ref
	if a != nil && a.Target != "" {
		target = a.Target
	}
	addr, err := parseTarget(target)
	if err != nil {
		return err
	}
	s.list.remove(addr)
	return nil
}

// Reconcile implements sinks.Reconciler: the list becomes exactly the unexpired addresses of
// active. Invalid and never-block addresses, and those past MAX_ENTRIES, are reported after the
// rest is listed.
func (s *Sink) Reconcile(_ context.Context, active map[string]time.Time) error {
	entries := make(map[netip.Addr]time.Time, len(active))
	var errs []error
	for target, until := range active {
		addr, err := sinks.Blockable(s.never, Name, "list", target)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, ok := entries[addr]; !ok || until.After(prev) {
			entries[addr] = until // two spellings of one address: the later expiry wins
		}
	}
	if dropped := s.list.replace(entries, s.now()); dropped > 0 {
		errs = append(errs, fmt.Errorf("edl: %d active blocks left off: the list holds THREATPIPE_SINK_EDL_MAX_ENTRIES=%d (the shortest-lived went)", dropped, s.list.max))
	}
	return errors.Join(errs...)
}

// ServeHTTP serves the list: GET and HEAD, after authentication when it is configured, with 304
// answers to matching If-None-Match or If-Modified-Since.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.auth.authorized(r) {
		s.auth.challenge(w)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	doc := s.list.current(s.now())
	h := w.Header()
	h.Set("ETag", doc.etag)
	h.Set("Last-Modified", doc.modified.UTC().Format(http.TimeFormat))
	// Caches must revalidate: the list changes at any moment.
	h.Set("Cache-Control", "no-cache")
	if notModified(r, doc) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(doc.body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(doc.body)
	}
}

// notModified evaluates the request's preconditions (RFC 9110 section 13.2.2): If-None-Match
// when present, otherwise If-Modified-Since.
func notModified(r *http.Request, doc *document) bool {
	if inm := r.Header.Values("If-None-Match"); len(inm) > 0 {
		return etagMatch(strings.Join(inm, ","), doc.etag)
	}
	ims := r.Header.Get("If-Modified-Since")
	if ims == "" {
		return false
	}
	t, err := http.ParseTime(ims)
	return err == nil && !doc.modified.After(t)
}

// etagMatch reports whether an If-None-Match field value matches etag under the weak
// comparison (RFC 9110 section 8.8.3.2): "*", or any listed entity-tag with the same opaque
// tag, W/ or not. A malformed list matches nothing, so the full list is served.
func etagMatch(field, etag string) bool {
	if strings.TrimSpace(field) == "*" {
		return true
	}
	want := strings.TrimPrefix(etag, "W/")
	s := field
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return false
		}
		s = strings.TrimPrefix(s, "W/")
		if s == "" || s[0] != '"' {
			return false
		}
		end := strings.IndexByte(s[1:], '"')
		if end < 0 {
			return false
		}
		if s[:end+2] == want {
			return true
		}
		s = s[end+2:]
	}
}

// parseTarget validates and canonicalises the target of an Undo (sinks.BlockTarget): an
// IPv4-mapped IPv6 address is listed as IPv4. Do and Reconcile use sinks.Blockable, which also
// refuses never-block addresses.
func parseTarget(target string) (netip.Addr, error) { return sinks.BlockTarget(Name, "list", target) }
