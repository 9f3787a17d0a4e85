package servicenow

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// fakeNow is a ServiceNow Table API stand-in for the incident table. It answers like the
// instance and rejects any request that deviates from the documented shape with the
// instance's {"error":{...},"status":"failure"} body.
type fakeNow struct {
	t    *testing.T
	srv  *httptest.Server
	auth string

	mu        sync.Mutex
	incidents map[string]string // sys_id -> number
	corr      map[string]string // sys_id -> correlation_id
	order     []string          // sys_ids, oldest first
	next      int
	queue     []reply
	requests  []recorded
}

type reply struct {
	status int
	header map[string]string
	body   string
}

type recorded struct {
	method, path, query string
	body                []byte
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newFakeNow(t *testing.T, auth string) *fakeNow {
	t.Helper()
	f := &fakeNow{t: t, auth: auth, incidents: map[string]string{}, corr: map[string]string{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeNow) push(r ...reply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue = append(f.queue, r...)
}

func (f *fakeNow) recorded() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.requests...)
}

// add stores an incident as if created earlier (by another replica, say); it returns its sys_id.
func (f *fakeNow) add(correlationID string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.insert(correlationID)
}

// insert stores a new incident; f.mu is held.
func (f *fakeNow) insert(correlationID string) string {
	f.next++
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	sysID := hex.EncodeToString(id)
	f.incidents[sysID] = fmt.Sprintf("INC%07d", 10000+f.next)
	f.corr[sysID] = correlationID
	f.order = append(f.order, sysID)
	return sysID
}

func nowError(w http.ResponseWriter, status int, message, detail string) {
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"message": message, "detail": detail}, "status": "failure"})
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

var (
	recordPathRE = regexp.MustCompile(`^/api/now/table/incident/([0-9a-f]{32})$`)
	// findQueryRE is the one encoded query Find may send.
	findQueryRE = regexp.MustCompile(`^correlation_id=(threatpipe:[0-9a-f]{32})\^ORDERBYsys_created_on$`)
)

func (f *fakeNow) serve(w http.ResponseWriter, r *http.Request) {
	body := new(bytes.Buffer)
	_, _ = body.ReadFrom(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, recorded{method: r.Method, path: r.URL.EscapedPath(), query: r.URL.RawQuery, body: body.Bytes()})
	f.mu.Unlock()

	q := r.URL.Query()
	get := r.Method == http.MethodGet
	switch {
	case r.Header.Get("Authorization") != f.auth:
		nowError(w, http.StatusUnauthorized, "User Not Authenticated", "Required to provide Auth information")
		return
	case r.Header.Get("Accept") != "application/json":
		nowError(w, http.StatusNotAcceptable, "Requested response format is not supported", "Accept: "+r.Header.Get("Accept"))
		return
	case get && (body.Len() > 0 || r.Header.Get("Content-Type") != ""):
		nowError(w, http.StatusBadRequest, "Invalid request", "a GET carries no body")
		return
	case !get && r.Header.Get("Content-Type") != "application/json":
		nowError(w, http.StatusUnsupportedMediaType, "Request body format is not supported", "Content-Type: "+r.Header.Get("Content-Type"))
		return
	case q.Get("sysparm_fields") != "sys_id,number" || len(q["sysparm_fields"]) != 1:
		nowError(w, http.StatusBadRequest, "Invalid query", "unexpected query "+r.URL.RawQuery)
		return
	case !get && len(q) != 1,
		get && (len(q) != 3 || len(q["sysparm_query"]) != 1 || !findQueryRE.MatchString(q.Get("sysparm_query")) || q.Get("sysparm_limit") != "1"):
		nowError(w, http.StatusBadRequest, "Invalid query", "unexpected query "+r.URL.RawQuery)
		return
	}

	var sysID, correlation string
	m := recordPathRE.FindStringSubmatch(r.URL.EscapedPath())
	switch {
	case r.URL.EscapedPath() == IncidentPath && get:
		correlation = findQueryRE.FindStringSubmatch(q.Get("sysparm_query"))[1]
	case r.URL.EscapedPath() == IncidentPath && r.Method == http.MethodPost:
		if msg := checkIncident(body.Bytes()); msg != "" {
			nowError(w, http.StatusBadRequest, "Exception while reading request", msg)
			return
		}
		var inc struct {
			CorrelationID string `json:"correlation_id"`
		}
		_ = json.Unmarshal(body.Bytes(), &inc)
		correlation = inc.CorrelationID
	case m != nil && r.Method == http.MethodPatch:
		sysID = m[1]
		var req struct {
			WorkNotes *string `json:"work_notes"`
		}
		if err := strictDecode(body.Bytes(), &req); err != nil {
			nowError(w, http.StatusBadRequest, "Exception while reading request", err.Error())
			return
		}
		if req.WorkNotes == nil || *req.WorkNotes == "" || utf8.RuneCountInString(*req.WorkNotes) > 4000 {
			nowError(w, http.StatusBadRequest, "Exception while reading request", "work_notes must be a non-empty string of at most 4000 characters")
			return
		}
	case r.URL.EscapedPath() == IncidentPath || m != nil:
		nowError(w, http.StatusMethodNotAllowed, "Method not Supported", "Method "+r.Method+" not supported for API")
		return
	default:
		nowError(w, http.StatusBadRequest, "Requested URI does not represent any resource", r.URL.EscapedPath())
		return
	}

	f.mu.Lock()
	if len(f.queue) > 0 {
		rp := f.queue[0]
		f.queue = f.queue[1:]
		f.mu.Unlock()
		for k, v := range rp.header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rp.status)
		_, _ = w.Write([]byte(rp.body))
		return
	}
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	if get {
		// The answer's shape is testdata/list_200.json's, holding only the oldest match.
		records := []map[string]string{}
		total := 0
		for _, id := range f.order {
			if f.corr[id] == correlation {
				if total == 0 {
					records = append(records, map[string]string{"sys_id": id, "number": f.incidents[id]})
				}
				total++
			}
		}
		b, _ := json.Marshal(map[string]any{"result": records})
		w.Header().Set("X-Total-Count", fmt.Sprint(total))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(b)
		return
	}
	if sysID != "" {
		number, ok := f.incidents[sysID]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write(fixture(f.t, "error_404.json"))
			return
		}
		b, _ := json.Marshal(map[string]any{"result": map[string]string{"sys_id": sysID, "number": number}})
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(b)
		return
	}
	sysID = f.insert(correlation)
	b, _ := json.Marshal(map[string]any{"result": map[string]string{"sys_id": sysID, "number": f.incidents[sysID]}})
	w.Header().Set("Location", f.srv.URL+IncidentPath+"/"+sysID)
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(b)
}

// checkIncident validates a new incident: known fields only, all strings, the required ones
// present, urgency and impact choice values, and the dictionary's lengths.
func checkIncident(b []byte) string {
	var inc map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&inc); err != nil || dec.More() {
		return "The payload is not valid JSON."
	}
	limits := map[string]int{
		"short_description": 160, "description": 4000, "urgency": 40, "impact": 40, "category": 40,
		"assignment_group": 100, "caller_id": 100, "correlation_id": 100, "correlation_display": 100,
	}
	for k, v := range inc {
		s, ok := v.(string)
		switch {
		case limits[k] == 0:
			return "unexpected field " + k
		case !ok:
			return fmt.Sprintf("%s must be a string, not %T", k, v)
		case utf8.RuneCountInString(s) > limits[k]:
			return k + " is longer than the field allows"
		}
	}
	for _, k := range []string{"short_description", "description", "urgency", "impact", "category", "correlation_id", "correlation_display"} {
		if s, _ := inc[k].(string); strings.TrimSpace(s) == "" {
			return "missing " + k
		}
	}
	for _, k := range []string{"urgency", "impact"} {
		if s := inc[k].(string); s != "1" && s != "2" && s != "3" {
			return k + " is not a choice value"
		}
	}
	if strings.ContainsAny(inc["short_description"].(string), "\r\n") {
		return "short_description has line breaks"
	}
	return ""
}

func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid request body: %v", err)
	}
	if dec.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}
