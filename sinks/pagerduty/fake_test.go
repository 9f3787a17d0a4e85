package pagerduty

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

const (
	testKey     = "e93facc04764012d7bfb002500d5d1a6"
	enqueuePath = "/v2/enqueue"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakePD is the Events API v2 enqueue endpoint: it rejects what the API rejects (and anything
// the schema does not name), in the API's error shape, and answers accepted events with the
// API's success shape.
type fakePD struct {
	t *testing.T
	// script may answer the n-th request (from 0) itself and return true.
	script func(n int, w http.ResponseWriter) bool

	mu       sync.Mutex
	requests int
	events   []map[string]any
}

func newFakePD(t *testing.T, script func(n int, w http.ResponseWriter) bool) (*fakePD, *httptest.Server) {
	f := &fakePD{t: t, script: script}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakePD) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

func (f *fakePD) last() map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.events) == 0 {
		f.t.Fatal("no event accepted")
	}
	return f.events[len(f.events)-1]
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func invalidEvent(w http.ResponseWriter, why string, args ...any) {
	b, _ := json.Marshal(map[string]any{"status": "invalid event", "message": "Event object is invalid", "errors": []string{fmt.Sprintf(why, args...)}})
	writeJSON(w, http.StatusBadRequest, b)
}

func (f *fakePD) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	n := f.requests
	f.requests++
	f.mu.Unlock()
	if f.script != nil && f.script(n, w) {
		return
	}
	if r.URL.Path != enqueuePath || r.URL.RawQuery != "" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeJSON(w, http.StatusBadRequest, fixture(f.t, "unrecognized.json"))
		return
	}
	if r.Header.Get("Authorization") != "" {
		invalidEvent(w, "test server: the Events API takes no Authorization header")
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var ev map[string]any
	if json.Unmarshal(body, &ev) != nil {
		writeJSON(w, http.StatusBadRequest, fixture(f.t, "unrecognized.json"))
		return
	}
	if why := checkEvent(ev); why != "" {
		f.t.Logf("fake PagerDuty rejected the event: %s", why)
		invalidEvent(w, "%s", why)
		return
	}
	f.mu.Lock()
	f.events = append(f.events, ev)
	f.mu.Unlock()
	var ok map[string]any
	if err := json.Unmarshal(fixture(f.t, "accepted.json"), &ok); err != nil {
		f.t.Fatal(err)
	}
	ok["dedup_key"] = ev["dedup_key"]
	b, _ := json.Marshal(ok)
	writeJSON(w, http.StatusAccepted, b)
}

// checkEvent validates an event against the Events API v2 schema; "" means valid.
func checkEvent(ev map[string]any) string {
	if why := onlyKeys(ev, "routing_key", "event_action", "dedup_key", "payload", "client", "client_url", "links", "images"); why != "" {
		return why
	}
	if k, ok := ev["routing_key"].(string); !ok || len(k) != 32 {
		return "Length of 'routing_key' is incorrect (should be 32 characters)"
	} else if k != testKey {
		return "test server: unknown routing_key"
	}
	action, _ := ev["event_action"].(string)
	dedup, hasDedup := ev["dedup_key"].(string)
	if _, present := ev["dedup_key"]; present && (!hasDedup || dedup == "" || len(dedup) > 255) {
		return "'dedup_key' must be a string of 1-255 characters"
	}
	switch action {
	case "trigger":
		return checkTrigger(ev)
	case "acknowledge", "resolve":
		if !hasDedup {
			return "'dedup_key' is required for " + action
		}
		for _, k := range []string{"payload", "client", "links"} {
			if _, ok := ev[k]; ok {
				return fmt.Sprintf("test server: %s sent with %s", k, action)
			}
		}
		return ""
	default:
		return fmt.Sprintf("'event_action' is invalid (got %v)", ev["event_action"])
	}
}

func checkTrigger(ev map[string]any) string {
	p, ok := ev["payload"].(map[string]any)
	if !ok {
		return "'payload' is missing or not an object"
	}
	if why := onlyKeys(p, "summary", "source", "severity", "timestamp", "component", "group", "class", "custom_details"); why != "" {
		return "payload: " + why
	}
	if s, ok := p["summary"].(string); !ok || s == "" || utf8.RuneCountInString(s) > 1024 {
		return "'payload.summary' must be a string of 1-1024 characters"
	}
	if s, ok := p["source"].(string); !ok || s == "" {
		return "'payload.source' is missing"
	}
	switch p["severity"] {
	case "critical", "error", "warning", "info":
	default:
		return "'payload.severity' is invalid (expected one of critical, error, warning, info)"
	}
	if ts, ok := p["timestamp"]; ok {
		s, _ := ts.(string)
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			return "'payload.timestamp' is not a valid timestamp"
		}
	}
	for _, k := range []string{"component", "group", "class"} {
		if v, ok := p[k]; ok {
			if _, isStr := v.(string); !isStr {
				return fmt.Sprintf("'payload.%s' must be a string", k)
			}
		}
	}
	if cd, ok := p["custom_details"]; ok {
		if _, isObj := cd.(map[string]any); !isObj {
			return "test server: custom_details is not an object"
		}
	}
	if c, ok := ev["client"]; ok {
		if _, isStr := c.(string); !isStr {
			return "'client' must be a string"
		}
	}
	if l, ok := ev["links"]; ok {
		links, isArr := l.([]any)
		if !isArr {
			return "'links' must be an array"
		}
		for _, x := range links {
			m, isObj := x.(map[string]any)
			if !isObj {
				return "'links' items must be objects"
			}
			if why := onlyKeys(m, "href", "text"); why != "" {
				return "links: " + why
			}
			if h, ok := m["href"].(string); !ok || h == "" {
				return "'links[].href' is required"
			}
		}
	}
	return ""
}

func onlyKeys(m map[string]any, keys ...string) string {
	for k := range m {
		found := false
		for _, want := range keys {
			found = found || k == want
		}
		if !found {
			return fmt.Sprintf("test server: unexpected field %q", k)
		}
	}
	return ""
}
