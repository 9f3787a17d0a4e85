// Package misptest is a strict stand-in for a MISP instance's REST API, for tests of the MISP
// sink and ingest source and for end-to-end tests. It answers the requests those make the way
// MISP does (shapes from MISP's OpenAPI spec, app/webroot/doc/openapi.yaml, and its
// controllers: EventsController, AttributesController, TagsController, SightingsController,
// RestResponseComponent), and refuses anything else with MISP's error body {"name",
// "message", "url"} (and "saved", "errors" for refused writes): a wrong path or method, a
// missing or wrong Authorization key, Accept or Content-Type other than application/json, an
// unknown field or a field of the wrong type.
//
// It keeps events, attributes, tags and sightings in memory, with accessors for assertions
// and Seed methods for fixtures, and can inject failures (Fail) such as a refused key (403),
// 429 with Retry-After, or 5xx.
package misptest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// AuthFailed is the message MISP's AppController answers a missing or wrong key with.
const AuthFailed = "Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header."

// maxBody bounds a request body the fake reads.
const maxBody = 1 << 20

// Server is a fake MISP. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL to configure clients with; Key the auth key it accepts.
	URL string
	Key string

	srv *httptest.Server
	mu  sync.Mutex
	st  store
	// faults are answered, in order, instead of the real answer to the requests they match.
	faults   []Fault
	requests []Request
	now      func() time.Time
}

// Fault is an injected failure: the next request whose path starts with Path ("" any path)
// is answered with Status, the Retry-After header when set, and Body (default: MISP's error
// body for the status).
type Fault struct {
	Path       string
	Status     int
	RetryAfter string
	Body       string
}

// Request is one request the server received (after its auth check).
type Request struct {
	Method string
	Path   string
	Body   []byte
	// Status is what the server answered.
	Status int
}

// New starts a fake MISP accepting the auth key key; it is closed when tb's test ends.
func New(tb testing.TB, key string) *Server {
	tb.Helper()
	s := &Server{Key: key, st: newStore(), now: time.Now}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	tb.Cleanup(s.srv.Close)
	return s
}

// SetNow sets the clock giving new attributes', edits' and sightings' timestamps.
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// Fail queues injected failures.
func (s *Server) Fail(f ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f...)
}

// Requests returns the requests received so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// CountRequests is how many requests to path (exact) were received.
func (s *Server) CountRequests(path string) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Path == path {
			n++
		}
	}
	return n
}

// apiError is MISP's error body (OpenAPI ApiError; RestResponseComponent::saveFailResponse
// adds saved and errors).
type apiError struct {
	Saved   *bool  `json:"saved,omitempty"`
	Name    string `json:"name"`
	Message string `json:"message"`
	URL     string `json:"url"`
	Errors  any    `json:"errors,omitempty"`
}

// httpError is a refusal a handler returns.
type httpError struct {
	status int
	body   apiError
}

func (e *httpError) Error() string { return e.body.Message }

func fail(status int, msg string) *httpError {
	return &httpError{status: status, body: apiError{Name: msg, Message: msg}}
}

// saveFail is RestResponseComponent::saveFailResponse: 403 with the validation errors.
func saveFail(msg string, errs any) *httpError {
	f := false
	return &httpError{status: http.StatusForbidden, body: apiError{Saved: &f, Name: msg, Message: msg, Errors: errs}}
}

func defaultBody(status int, path string) []byte {
	msg := http.StatusText(status)
	switch {
	case status == http.StatusForbidden:
		msg = AuthFailed
	case status >= 500:
		msg = "An Internal Error Has Occurred."
	case status == http.StatusTooManyRequests:
		msg = "Rate limit exceeded."
	}
	b, _ := json.Marshal(apiError{Name: msg, Message: msg, URL: path})
	return b
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
	path := r.URL.EscapedPath()
	status, out, hdr := s.answer(r, path, body)
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: path, Body: body, Status: status})
	s.mu.Unlock()
	for k, v := range hdr {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

// answer checks the request's key, headers and fault queue, then routes it.
func (s *Server) answer(r *http.Request, path string, body []byte) (int, []byte, map[string]string) {
	if r.Header.Get("Authorization") != s.Key || s.Key == "" {
		return http.StatusForbidden, defaultBody(http.StatusForbidden, path), nil
	}
	if f, ok := s.nextFault(path); ok {
		out := []byte(f.Body)
		if f.Body == "" {
			out = defaultBody(f.Status, path)
		}
		var hdr map[string]string
		if f.RetryAfter != "" {
			hdr = map[string]string{"Retry-After": f.RetryAfter}
		}
		return f.Status, out, hdr
	}
	res, herr := s.route(r, path, body)
	if herr == nil {
		out, err := json.Marshal(res)
		if err != nil {
			herr = fail(http.StatusInternalServerError, err.Error())
		} else {
			return http.StatusOK, out, nil
		}
	}
	herr.body.URL = path
	out, _ := json.Marshal(herr.body)
	return herr.status, out, nil
}

func (s *Server) nextFault(path string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if strings.HasPrefix(path, f.Path) {
			s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			return f, true
		}
	}
	return Fault{}, false
}

// route dispatches to the endpoint's handler after the checks every endpoint shares.
func (s *Server) route(r *http.Request, path string, body []byte) (any, *httpError) {
	if r.URL.RawQuery != "" {
		return nil, fail(http.StatusBadRequest, "Unexpected query string "+r.URL.RawQuery)
	}
	if !strings.HasPrefix(r.Header.Get("Accept"), "application/json") || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return nil, fail(http.StatusBadRequest, "Expecting Accept and Content-Type application/json")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, fail(http.StatusBadRequest, "Empty request body")
	}
	h, id, methods := s.handler(path)
	if h == nil {
		return nil, fail(http.StatusNotFound, fmt.Sprintf("The requested address '%s' was not found on this server.", path))
	}
	if !strings.Contains(methods, r.Method) {
		return nil, fail(http.StatusMethodNotAllowed, "This method is only accessible via POST requests.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return h(id, body)
}

type handlerFunc func(id string, body []byte) (any, *httpError)

// handler is the handler of path, the id in its path, and the methods it takes.
func (s *Server) handler(path string) (handlerFunc, string, string) {
	switch path {
	case "/events/add":
		return s.addEvent, "", "POST"
	case "/events/index":
		return s.indexEvents, "", "POST"
	case "/attributes/restSearch":
		return s.searchAttributes, "", "POST"
	case "/tags/attachTagToObject":
		return s.attachTag, "", "POST"
	case "/tags/removeTagFromObject":
		return s.removeTag, "", "POST"
	case "/sightings/add":
		return s.addSighting, "", "POST"
	case "/sightings/restSearch/attribute":
		return s.searchSightings, "", "POST"
	}
	if id, ok := strings.CutPrefix(path, "/attributes/add/"); ok && isID(id) {
		return s.addAttribute, id, "POST"
	}
	// MISP's OpenAPI spec documents PUT; PyMISP sends POST; AttributesController takes both.
	if id, ok := strings.CutPrefix(path, "/attributes/edit/"); ok && isID(id) {
		return s.editAttribute, id, "POST PUT"
	}
	return nil, "", ""
}
