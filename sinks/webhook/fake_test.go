package webhook

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

const (
	testSecret   = "whsec-test-0123456789abcdef0123456789abcdef"
	receiverPath = "/hooks/threatpipe"
	// receiverToken is in the fake's URL query; tests check it never shows in errors.
	receiverToken = "t0kenInTheQuery"
)

// delivery is one request the fake receiver accepted.
type delivery struct {
	header  http.Header
	payload map[string]any
}

// fakeReceiver is a receiver as the docs ask receivers to be: it verifies the signature and
// the timestamp, and rejects requests that do not follow the documented shape.
type fakeReceiver struct {
	t      *testing.T
	now    func() time.Time
	script func(n int, w http.ResponseWriter) bool

	mu        sync.Mutex
	requests  int
	delivered []delivery
}

func newFakeReceiver(t *testing.T, script func(n int, w http.ResponseWriter) bool) (*fakeReceiver, *httptest.Server) {
	f := &fakeReceiver{t: t, now: time.Now, script: script}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeReceiver) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

func (f *fakeReceiver) last() delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.delivered) == 0 {
		f.t.Fatal("nothing delivered")
	}
	return f.delivered[len(f.delivered)-1]
}

func reject(w http.ResponseWriter, status int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"error": fmt.Sprintf(format, args...)})
	_, _ = w.Write(b)
}

func (f *fakeReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	n := f.requests
	f.requests++
	f.mu.Unlock()
	if f.script != nil && f.script(n, w) {
		return
	}
	switch {
	case r.URL.Path != receiverPath || r.URL.Query().Get("token") != receiverToken:
		reject(w, http.StatusNotFound, "no such hook")
		return
	case r.Method != http.MethodPost:
		reject(w, http.StatusMethodNotAllowed, "POST only")
		return
	case r.Header.Get("User-Agent") != "threatpipe":
		reject(w, http.StatusBadRequest, "User-Agent %q", r.Header.Get("User-Agent"))
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		reject(w, http.StatusUnsupportedMediaType, "Content-Type %q", r.Header.Get("Content-Type"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		reject(w, http.StatusBadRequest, "reading the body: %v", err)
		return
	}
	if err := Verify([]byte(testSecret), r.Header, body, f.now(), time.Minute); err != nil {
		reject(w, http.StatusUnauthorized, "%v", err)
		return
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		reject(w, http.StatusBadRequest, "body is not JSON")
		return
	}
	if why := checkPayload(p); why != "" {
		reject(w, http.StatusUnprocessableEntity, "%s", why)
		return
	}
	if k := r.Header.Get(HeaderIdempotencyKey); k == "" {
		reject(w, http.StatusBadRequest, "no %s", HeaderIdempotencyKey)
		return
	}
	f.mu.Lock()
	f.delivered = append(f.delivered, delivery{header: r.Header.Clone(), payload: p})
	f.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// checkPayload checks the documented schema_version 1 shape; "" means valid.
func checkPayload(p map[string]any) string {
	str := func(k string) bool { _, ok := p[k].(string); return ok }
	arr := func(k string) bool { _, ok := p[k].([]any); return ok }
	for _, k := range []string{"schema_version", "action", "key", "playbook", "step", "target", "severity", "isp", "country", "title"} {
		if !str(k) {
			return fmt.Sprintf("%s is missing or not a string", k)
		}
	}
	if _, ok := p["score"].(float64); !ok {
		return "score is missing or not a number"
	}
	if !arr("tags") || !arr("reasons") {
		return "tags and reasons must be arrays"
	}
	if p["schema_version"] != "1" {
		return "unknown schema_version"
	}
	switch p["action"] {
	case "alert", "unblock":
		if _, ok := p["until"]; ok {
			return "until on a non-block"
		}
	case "block":
	default:
		return fmt.Sprintf("unknown action %v", p["action"])
	}
	if u, ok := p["until"]; ok {
		s, _ := u.(string)
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			return "until is not RFC 3339"
		}
	}
	if v, ok := p["view_url"]; ok && !str("view_url") {
		return fmt.Sprintf("view_url %v", v)
	}
	if e, ok := p["event"]; ok {
		if _, isObj := e.(map[string]any); !isObj {
			return "event is not an object"
		}
	}
	known := map[string]bool{"schema_version": true, "action": true, "key": true, "playbook": true, "step": true, "target": true,
		"score": true, "severity": true, "tags": true, "reasons": true, "isp": true, "country": true, "until": true, "title": true,
		"view_url": true, "event": true}
	for k := range p {
		if !known[k] {
			return fmt.Sprintf("undocumented field %q", k)
		}
	}
	return ""
}
