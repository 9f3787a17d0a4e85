// Package taxiitest is a strict TAXII 2.1 server for tests: one API root and one collection,
// serving Get Objects (section 5.4) the way the specification shapes it, and refusing what a
// conforming client would not send (a wrong Accept, unknown parameters, a forged next token).
// It is importable so the source's tests and the binary's end-to-end test share it.
package taxiitest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// MediaType is the TAXII 2.1 media type.
const MediaType = "application/taxii+json;version=2.1"

// TimeFormat is the STIX/TAXII timestamp with microseconds, as servers write date_added.
const TimeFormat = "2006-01-02T15:04:05.000000Z"

// Options configure the server; zero values take the defaults.
type Options struct {
	APIRoot    string // path of the API root, default /api1/
	Collection string // collection id, default 91a7b528-80eb-42ed-a74d-c6fbd5a26116
	// Username and Password require basic authentication; Token requires a bearer token.
	Username, Password, Token string
	// MaxLimit is the most objects one response holds, whatever limit asks (default 100).
	MaxLimit int
}

// Server is the TAXII test server. Its methods are safe for concurrent use.
type Server struct {
	*httptest.Server
	opts Options

	mu       sync.Mutex
	objects  []entry
	requests []url.Values
	failures []int
}

type entry struct {
	added time.Time
	typ   string
	raw   json.RawMessage
}

// New starts a server, closed when the test ends.
func New(t testing.TB, opts Options) *Server {
	if opts.APIRoot == "" {
		opts.APIRoot = "/api1/"
	}
	if opts.Collection == "" {
		opts.Collection = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
	}
	if opts.MaxLimit == 0 {
		opts.MaxLimit = 100
	}
	s := &Server{opts: opts}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// CollectionURL is the collection's URL (THREATPIPE_INGEST_TAXII_URL).
func (s *Server) CollectionURL() string {
	return s.URL + s.opts.APIRoot + "collections/" + s.opts.Collection + "/"
}

// APIRootURL is the API root's URL, and CollectionID the collection's id.
func (s *Server) APIRootURL() string   { return s.URL + s.opts.APIRoot }
func (s *Server) CollectionID() string { return s.opts.Collection }

// Add stores STIX objects as added at added (several objects may share an instant, as a bulk
// import gives them).
func (s *Server) Add(added time.Time, objects ...map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range objects {
		raw, err := json.Marshal(o)
		if err != nil {
			panic(err)
		}
		typ, _ := o["type"].(string)
		s.objects = append(s.objects, entry{added: added.UTC().Truncate(time.Microsecond), typ: typ, raw: raw})
	}
	slices.SortStableFunc(s.objects, func(a, b entry) int { return a.added.Compare(b.added) })
}

// Fail makes the next len(statuses) object requests fail with those statuses, in order.
func (s *Server) Fail(statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, statuses...)
}

// Requests returns the query of every Get Objects request served so far.
func (s *Server) Requests() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Indicator is a STIX 2.1 indicator object with a STIX pattern.
func Indicator(id, pattern string, modified time.Time, labels ...string) map[string]any {
	ts := modified.UTC().Format("2006-01-02T15:04:05.000Z")
	o := map[string]any{
		"type": "indicator", "spec_version": "2.1", "id": id, "created": ts, "modified": ts,
		"name": "test indicator", "pattern": pattern, "pattern_type": "stix", "valid_from": ts,
		"indicator_types": []string{"malicious-activity"},
	}
	if len(labels) > 0 {
		o["labels"] = labels
	}
	return o
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if status, title := s.check(r); status != 0 {
		writeError(w, status, title)
		return
	}
	q := r.URL.Query()
	s.mu.Lock()
	s.requests = append(s.requests, q)
	var fail int
	if len(s.failures) > 0 {
		fail, s.failures = s.failures[0], s.failures[1:]
	}
	s.mu.Unlock()
	if fail != 0 {
		writeError(w, fail, "injected failure")
		return
	}
	after, limit, offset, err := s.params(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.writePage(w, q, after, limit, offset)
}

// check applies the protocol rules every request must meet; status 0 means it passed.
func (s *Server) check(r *http.Request) (int, string) {
	switch {
	case !s.authorised(r):
		return http.StatusUnauthorized, "authentication required"
	case r.Method != http.MethodGet:
		return http.StatusMethodNotAllowed, "only GET is served here"
	case r.URL.Path != s.opts.APIRoot+"collections/"+s.opts.Collection+"/objects/":
		return http.StatusNotFound, "no such resource"
	case !acceptable(r.Header.Get("Accept")):
		return http.StatusNotAcceptable, "Accept must be " + MediaType
	}
	return 0, ""
}

func (s *Server) authorised(r *http.Request) bool {
	switch {
	case s.opts.Token != "":
		return r.Header.Get("Authorization") == "Bearer "+s.opts.Token
	case s.opts.Username != "":
		u, p, ok := r.BasicAuth()
		return ok && u == s.opts.Username && p == s.opts.Password
	}
	return true
}

func acceptable(accept string) bool {
	mt, params, err := mime.ParseMediaType(accept)
	return err == nil && mt == "application/taxii+json" && params["version"] == "2.1"
}

// params validates the query: only the parameters of section 5.4, a timestamp added_after, a
// positive limit, and a next token this server issued for the same added_after.
func (s *Server) params(q url.Values) (after time.Time, limit, offset int, err error) {
	for k, v := range q {
		switch {
		case k == "added_after" || k == "limit" || k == "next" || k == "match[type]" || k == "match[id]" ||
			k == "match[version]" || k == "match[spec_version]":
			if len(v) != 1 {
				return after, 0, 0, fmt.Errorf("%s given %d times", k, len(v))
			}
		default:
			return after, 0, 0, fmt.Errorf("unknown parameter %s", k)
		}
	}
	if a := q.Get("added_after"); a != "" {
		if after, err = time.Parse(time.RFC3339Nano, a); err != nil {
			return after, 0, 0, fmt.Errorf("added_after %q is not a timestamp", a)
		}
	}
	limit = s.opts.MaxLimit
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return after, 0, 0, fmt.Errorf("limit %q is not a positive integer", l)
		}
		limit = min(n, s.opts.MaxLimit)
	}
	if n := q.Get("next"); n != "" {
		tokAfter, off, ok := parseNext(n)
		if !ok || tokAfter != q.Get("added_after") {
			return after, 0, 0, fmt.Errorf("next %q was not issued for these parameters", n)
		}
		offset = off
	}
	return after, limit, offset, nil
}

func (s *Server) writePage(w http.ResponseWriter, q url.Values, after time.Time, limit, offset int) {
	types := strings.Split(q.Get("match[type]"), ",")
	s.mu.Lock()
	var matched []entry
	for _, e := range s.objects {
		if e.added.After(after) && (q.Get("match[type]") == "" || slices.Contains(types, e.typ)) {
			matched = append(matched, e)
		}
	}
	s.mu.Unlock()
	offset = min(offset, len(matched))
	page := matched[offset:min(offset+limit, len(matched))]
	body := map[string]any{}
	if len(page) > 0 {
		objs := make([]json.RawMessage, len(page))
		for i, e := range page {
			objs[i] = e.raw
		}
		body["objects"] = objs
		w.Header().Set("X-TAXII-Date-Added-First", page[0].added.Format(TimeFormat))
		w.Header().Set("X-TAXII-Date-Added-Last", page[len(page)-1].added.Format(TimeFormat))
	}
	if more := offset+len(page) < len(matched); more {
		body["more"] = true
		body["next"] = makeNext(q.Get("added_after"), offset+len(page))
	}
	w.Header().Set("Content-Type", MediaType)
	_ = json.NewEncoder(w).Encode(body)
}

// makeNext is a stateless next token: the added_after it continues and the offset in it.
func makeNext(after string, offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(after + "|" + strconv.Itoa(offset)))
}

func parseNext(tok string) (string, int, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", 0, false
	}
	after, off, ok := strings.Cut(string(raw), "|")
	n, err := strconv.Atoi(off)
	return after, n, ok && err == nil && n >= 0
}

// writeError writes a TAXII error message (section 3.6.1).
func writeError(w http.ResponseWriter, status int, title string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="taxii"`)
	}
	w.Header().Set("Content-Type", MediaType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"title": title, "http_status": strconv.Itoa(status)})
}
