package taxii

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/view"
)

// Paths: the discovery resource and the one API root, under it.
const (
	DiscoveryPath = "/taxii2/"
	APIRootPath   = "/taxii2/api/"
)

// Media types.
const (
	MediaTAXII = "application/taxii+json;version=2.1"
	MediaSTIX  = "application/stix+json;version=2.1"
)

// Server serves the view's indicators as a read-only TAXII 2.1 server.
type Server struct {
	feed  *Feed
	auth  *Auth
	log   *zap.Logger
	mux   *http.ServeMux
	byKey map[string]Collection // by id and by alias
}

var _ http.Handler = (*Server)(nil)

// NewServer returns the TAXII server of store, guarded by auth.
func NewServer(store *view.Store, auth *Auth, log *zap.Logger) *Server {
	s := &Server{feed: NewFeed(store), auth: auth, log: log, mux: http.NewServeMux(), byKey: map[string]Collection{}}
	for _, c := range Collections() {
		s.byKey[c.ID], s.byKey[c.Alias] = c, c
	}
	s.mux.HandleFunc(DiscoveryPath+"{$}", s.discovery)
	s.mux.HandleFunc(APIRootPath+"{$}", s.apiRoot)
	s.mux.HandleFunc(APIRootPath+"collections/{$}", s.collections)
	s.mux.HandleFunc(APIRootPath+"collections/{id}/{$}", s.collection)
	s.mux.HandleFunc(APIRootPath+"collections/{id}/objects/{$}", s.objects)
	s.mux.HandleFunc(APIRootPath+"collections/{id}/objects/{object}/{$}", s.objects)
	s.mux.HandleFunc(APIRootPath+"collections/{id}/manifest/{$}", s.manifest)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "Not found", "No TAXII resource at this path.")
	})
	return s
}

// Register mounts the server on mux under DiscoveryPath.
func (s *Server) Register(mux *http.ServeMux) { mux.Handle(DiscoveryPath, s) }

// ServeHTTP checks, in order, the method, the credentials and the Accept header, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<10) // read-only: nothing is ever read from a body
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "Method not allowed", "The collections are read-only.")
		return
	}
	p, ok := s.auth.Authenticate(r)
	if !ok {
		w.Header().Add("WWW-Authenticate", `Basic realm="threatpipe TAXII", charset="UTF-8"`)
		w.Header().Add("WWW-Authenticate", `Bearer realm="threatpipe TAXII"`)
		writeError(w, http.StatusUnauthorized, "Unauthorized", "Valid credentials (HTTP basic or a bearer token) are required.")
		return
	}
	if !acceptable(r.Header.Values("Accept")) {
		writeError(w, http.StatusNotAcceptable, "Not acceptable", "This server answers "+MediaTAXII+" only.")
		return
	}
	s.mux.ServeHTTP(w, r.WithContext(withPrincipal(r.Context(), p)))
}

// acceptable says whether an Accept header allows TAXII 2.1 JSON. No header is taken as
// anything (curl, probes); a TAXII media type with another version is refused.
func acceptable(values []string) bool {
	if len(values) == 0 {
		return true
	}
	for _, v := range values {
		for _, rng := range strings.Split(v, ",") {
			if acceptsTAXII(rng) {
				return true
			}
		}
	}
	return false
}

func acceptsTAXII(rng string) bool {
	parts := strings.Split(rng, ";")
	typ := strings.ToLower(strings.TrimSpace(parts[0]))
	version, q := "", ""
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "version":
			version = strings.Trim(strings.TrimSpace(v), `"`)
		case "q":
			q = strings.TrimSpace(v)
		}
	}
	if q == "0" || q == "0.0" || q == "0.00" || q == "0.000" {
		return false
	}
	switch typ {
	case "*/*", "application/*":
		return true
	case "application/taxii+json":
		return version == "" || version == "2.1"
	}
	return false
}

// writeJSON writes a TAXII resource.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", MediaTAXII)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away: nothing left to tell it
}

// errorBody is TAXII's error message resource.
type errorBody struct {
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	HTTPStatus  string `json:"http_status"`
}

func writeError(w http.ResponseWriter, status int, title, desc string) {
	writeJSON(w, status, errorBody{Title: title, Description: desc, HTTPStatus: strconv.Itoa(status)})
}
