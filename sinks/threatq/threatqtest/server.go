// Package threatqtest is a strict in-memory ThreatQ for tests: the OAuth2 token endpoint and
// the indicator, attribute, tag and query endpoints the threatq sink and the ingest poller
// call, with ThreatQ's request and answer shapes (see sinks/threatq for their sources). It
// refuses what ThreatQ would (a missing or expired bearer token, a wrong Content-Type, unknown
// or missing body fields) with ThreatQ-shaped 4xx answers, and can be made to fail on demand
// (401, 429 with Retry-After, 5xx). It is safe for concurrent use.
package threatqtest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options configure a Server. The zero value accepts the client_credentials grant of client
// "threatpipe" with secret "s3cret" and the password grant of analyst@example.com.
type Options struct {
	ClientID     string
	ClientSecret string
	Username     string
	Password     string
	// TokenTTL is the expires_in of issued tokens (default 1h); tokens are refused after it.
	TokenTTL time.Duration
	// MaxLimit caps the limit of a query (default 1000).
	MaxLimit int
}

// Defaults of Options.
const (
	DefaultClientID     = "threatpipe"
	DefaultClientSecret = "s3cret"
	DefaultUsername     = "analyst@example.com"
	DefaultPassword     = "pa55word"
)

func (o Options) withDefaults() Options {
	if o.ClientID == "" {
		o.ClientID = DefaultClientID
	}
	if o.ClientSecret == "" {
		o.ClientSecret = DefaultClientSecret
	}
	if o.Username == "" {
		o.Username = DefaultUsername
	}
	if o.Password == "" {
		o.Password = DefaultPassword
	}
	if o.TokenTTL <= 0 {
		o.TokenTTL = time.Hour
	}
	if o.MaxLimit <= 0 {
		o.MaxLimit = 1000
	}
	return o
}

// Request is one request the server received.
type Request struct {
	Method, Path string
	Query        url.Values
	Status       int
}

// Server is the fake ThreatQ.
type Server struct {
	opts Options
	srv  *httptest.Server

	mu         sync.Mutex
	tokens     map[string]time.Time // token -> expiry
	issued     int
	faults     []fault
	tokenFault []fault
	requests   []Request
	store
}

type fault struct {
	status     int
	retryAfter string
}

// New starts a server; Close stops it.
func New(opts Options) *Server {
	s := &Server{opts: opts.withDefaults(), tokens: map[string]time.Time{}, store: newStore()}
	s.srv = httptest.NewServer(s.routes())
	return s
}

// Start is New with the server closed at the end of the test.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s := New(opts)
	tb.Cleanup(s.Close)
	return s
}

// URL is the instance URL (the API is under /api).
func (s *Server) URL() string { return s.srv.URL }

// Client is an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Options are the server's options, defaults applied (the credentials it accepts).
func (s *Server) Options() Options { return s.opts }

// Fail makes the next n API requests (not token requests) fail with status, with a
// Retry-After header when retryAfter is set.
func (s *Server) Fail(n, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{status, retryAfter})
	}
}

// FailToken makes the next n token requests fail likewise.
func (s *Server) FailToken(n, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.tokenFault = append(s.tokenFault, fault{status, retryAfter})
	}
}

// RevokeTokens makes every token issued so far invalid (a 401 until a new one is fetched).
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// TokensIssued counts the tokens the server issued.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// Requests lists the requests received, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Count counts the requests received for method and path (a path pattern's literal prefix
// is enough: "/api/indicators/").
func (s *Server) Count(method, pathPrefix string) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Method == method && strings.HasPrefix(r.Path, pathPrefix) {
			n++
		}
	}
	return n
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/token", s.token)
	mux.HandleFunc("POST /api/indicators/query", s.api(s.query))
	mux.HandleFunc("POST /api/indicators", s.api(s.create))
	mux.HandleFunc("GET /api/indicators/{id}", s.api(s.get))
	mux.HandleFunc("POST /api/indicators/{id}/attributes", s.api(s.addAttribute))
	mux.HandleFunc("PUT /api/indicators/{id}/attributes/{aid}", s.api(s.putAttribute))
	mux.HandleFunc("POST /api/indicators/{id}/tags", s.api(s.addTag))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErrors(w, http.StatusNotFound, "The requested resource does not exist: "+r.Method+" "+r.URL.Path)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		mux.ServeHTTP(rec, r)
		s.mu.Lock()
		s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Status: rec.status})
		s.mu.Unlock()
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// api wraps an API handler: injected faults first, then the bearer token and the
// Content-Type of a body.
func (s *Server) api(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if f, ok := s.nextFault(&s.faults); ok {
			writeFault(w, f)
			return
		}
		if !s.authorised(r.Header.Get("Authorization")) {
			writeErrors(w, http.StatusUnauthorized, "Unauthenticated.")
			return
		}
		if r.Method == http.MethodPost || r.Method == http.MethodPut {
			if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
				writeErrors(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
				return
			}
		}
		h(w, r)
	}
}

func (s *Server) nextFault(q *[]fault) (fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(*q) == 0 {
		return fault{}, false
	}
	f := (*q)[0]
	*q = (*q)[1:]
	return f, true
}

func writeFault(w http.ResponseWriter, f fault) {
	if f.retryAfter != "" {
		w.Header().Set("Retry-After", f.retryAfter)
	}
	msg := http.StatusText(f.status)
	if f.status == http.StatusUnauthorized {
		msg = "Unauthenticated."
	}
	writeErrors(w, f.status, msg)
}

func (s *Server) authorised(header string) bool {
	tok, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || tok == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.tokens[tok]
	return ok && time.Now().Before(exp)
}

// token is POST /api/token: a form with the password grant (grant_type, email, password,
// client_id) or the client_credentials grant (grant_type, the client as HTTP Basic).
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if f, ok := s.nextFault(&s.tokenFault); ok {
		writeFault(w, f)
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		writeOAuth(w, http.StatusBadRequest, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
		return
	}
	if err := r.ParseForm(); err != nil || len(r.URL.RawQuery) > 0 {
		writeOAuth(w, http.StatusBadRequest, "invalid_request", "the request must be a form body without a query")
		return
	}
	if status, code, msg := s.checkGrant(r); status != 0 {
		writeOAuth(w, status, code, msg)
		return
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	tok := hex.EncodeToString(b)
	s.mu.Lock()
	s.tokens[tok] = time.Now().Add(s.opts.TokenTTL)
	s.issued++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type": "Bearer", "expires_in": int64(s.opts.TokenTTL / time.Second),
		"access_token": tok, "refresh_token": "r-" + tok,
	})
}

// checkGrant validates the token form; status 0 means it is good.
func (s *Server) checkGrant(r *http.Request) (status int, code, msg string) {
	form := r.PostForm
	basicID, basicSecret, hasBasic := r.BasicAuth()
	if hasBasic && (basicID != s.opts.ClientID || basicSecret != s.opts.ClientSecret) {
		return http.StatusUnauthorized, "invalid_client", "Client authentication failed"
	}
	var allowed []string
	switch form.Get("grant_type") {
	case "client_credentials":
		if !hasBasic {
			return http.StatusUnauthorized, "invalid_client", "Client authentication failed"
		}
		allowed = []string{"grant_type"}
	case "password":
		allowed = []string{"grant_type", "email", "password", "client_id"}
		if form.Get("client_id") != s.opts.ClientID {
			return http.StatusUnauthorized, "invalid_client", "Client authentication failed"
		}
		if form.Get("email") != s.opts.Username || form.Get("password") != s.opts.Password {
			return http.StatusBadRequest, "invalid_grant", "The user credentials were incorrect."
		}
	default:
		return http.StatusBadRequest, "unsupported_grant_type", "The authorization grant type is not supported."
	}
	for k, v := range form {
		if !slices.Contains(allowed, k) || len(v) != 1 {
			return http.StatusBadRequest, "invalid_request", "unexpected parameter " + k
		}
	}
	return 0, "", ""
}

// writeErrors answers {"errors": [...]}, the form ThreatQ gives most failures.
func writeErrors(w http.ResponseWriter, status int, msgs ...string) {
	writeJSON(w, status, map[string]any{"errors": msgs})
}

// writeInvalid answers a validation failure: {"data": {"errors": {"field": ["..."]}}}.
func writeInvalid(w http.ResponseWriter, field, msg string) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"data": map[string]any{"errors": map[string][]string{field: {msg}}}})
}

func writeOAuth(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
