package thehive

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sync"
	"testing"
	"unicode/utf8"
)

// fakeHive is a TheHive 5 stand-in for alerts, alert comments and the alert query. It answers
// like TheHive and rejects any request that deviates from the documented shape with TheHive's
// {"type": ..., "message": ...} body.
type fakeHive struct {
	t   *testing.T
	srv *httptest.Server
	key string
	org string // required X-Organisation; "" means the header must be absent

	mu       sync.Mutex
	alerts   map[string]string // id -> type|source|sourceRef
	next     int
	queue    []reply
	requests []recorded
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

func newFakeHive(t *testing.T, key, org string) *fakeHive {
	t.Helper()
	f := &fakeHive{t: t, key: key, org: org, alerts: map[string]string{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeHive) push(r ...reply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue = append(f.queue, r...)
}

func (f *fakeHive) recorded() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.requests...)
}

// add stores an alert as if created earlier; it returns its id.
func (f *fakeHive) add(sourceRef string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	id := fmt.Sprintf("~%d", 40964176+f.next)
	f.alerts[id] = AlertType + "|" + AlertSource + "|" + sourceRef
	return id
}

func hiveError(w http.ResponseWriter, status int, typ, message string) {
	b, _ := json.Marshal(map[string]string{"type": typ, "message": message})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

var commentPathRE = regexp.MustCompile(`^/api/v1/alert/([^/]+)/comment$`)

func (f *fakeHive) serve(w http.ResponseWriter, r *http.Request) {
	body := new(bytes.Buffer)
	_, _ = body.ReadFrom(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, recorded{method: r.Method, path: r.URL.EscapedPath(), query: r.URL.RawQuery, body: body.Bytes()})
	f.mu.Unlock()

	switch {
	case r.Header.Get("Authorization") != "Bearer "+f.key:
		hiveError(w, http.StatusUnauthorized, "AuthenticationError", "Authentication failure")
		return
	case r.Header.Get("X-Organisation") != f.org:
		hiveError(w, http.StatusForbidden, "AuthorizationError", "Organisation "+r.Header.Get("X-Organisation")+" not found or not allowed")
		return
	case r.Method != http.MethodPost:
		hiveError(w, http.StatusNotFound, "NotFound", "No route for "+r.Method)
		return
	case r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Accept") != "application/json":
		hiveError(w, http.StatusBadRequest, "BadRequest", "Expecting JSON (Content-Type and Accept application/json)")
		return
	}

	path := r.URL.EscapedPath()
	m := commentPathRE.FindStringSubmatch(path)
	var dedupKey, commentOn string
	switch {
	case path == AlertPath && r.URL.RawQuery == "":
		var in struct {
			Type, Source, SourceRef, Title, Description *string
			Severity, TLP, PAP                          *int
			Tags                                        []string
			ExternalLink                                *string
			Observables                                 []struct {
				DataType, Data *string
				Tags           []string
			}
		}
		if err := strictDecode(body.Bytes(), &in); err != nil {
			hiveError(w, http.StatusBadRequest, "BadRequest", "Invalid Json: "+err.Error())
			return
		}
		if msg := exactKeys(body.Bytes(), "type", "source", "sourceRef", "title", "description", "severity", "tlp", "pap", "tags",
			"externalLink", "observables"); msg != "" {
			hiveError(w, http.StatusBadRequest, "BadRequest", msg)
			return
		}
		if msg := checkAlert(in.Type, in.Source, in.SourceRef, in.Title, in.Description, in.Severity, in.TLP, in.PAP, in.Tags); msg != "" {
			hiveError(w, http.StatusBadRequest, "AttributeCheckingError", msg)
			return
		}
		var raw struct {
			Observables []json.RawMessage `json:"observables"`
		}
		_ = json.Unmarshal(body.Bytes(), &raw)
		for _, o := range raw.Observables {
			if msg := exactKeys(o, "dataType", "data", "tags"); msg != "" {
				hiveError(w, http.StatusBadRequest, "BadRequest", "observable: "+msg)
				return
			}
		}
		for _, o := range in.Observables {
			if o.DataType == nil || *o.DataType != "ip" || o.Data == nil || *o.Data == "" {
				hiveError(w, http.StatusBadRequest, "AttributeCheckingError", "observable needs dataType and data")
				return
			}
		}
		dedupKey = *in.Type + "|" + *in.Source + "|" + *in.SourceRef
	case m != nil && r.URL.RawQuery == "":
		commentOn = m[1]
		var in struct{ Message *string }
		if err := strictDecode(body.Bytes(), &in); err != nil || in.Message == nil || *in.Message == "" ||
			exactKeys(body.Bytes(), "message") != "" {
			hiveError(w, http.StatusBadRequest, "AttributeCheckingError", "message is required")
			return
		}
	case path == QueryPath:
		if r.URL.Query().Get("name") == "" {
			hiveError(w, http.StatusBadRequest, "BadRequest", "query name expected")
			return
		}
		var in lookup
		if err := strictDecode(body.Bytes(), &in); err != nil || len(in.Query) != 3 {
			hiveError(w, http.StatusBadRequest, "BadRequest", "Invalid query")
			return
		}
		var ref string
		if and, ok := in.Query[1]["_and"].([]any); ok && len(and) == 3 {
			ref, _ = and[2].(map[string]any)["_value"].(string)
		}
		want, _ := json.Marshal(buildLookup(ref))
		var wantQ lookup
		_ = json.Unmarshal(want, &wantQ)
		if !reflect.DeepEqual(in, wantQ) {
			hiveError(w, http.StatusBadRequest, "BadRequest", "Invalid query "+body.String())
			return
		}
		dedupKey = AlertType + "|" + AlertSource + "|" + ref
	default:
		hiveError(w, http.StatusNotFound, "NotFound", "No route for "+path)
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
	w.Header().Set("Content-Type", "application/json")
	switch {
	case commentOn != "":
		if _, ok := f.alerts[commentOn]; !ok {
			hiveError(w, http.StatusNotFound, "NotFoundError", "Alert "+commentOn+" not found")
			return
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(fixture(f.t, "comment_201.json"))
	case path == QueryPath:
		var found []map[string]any
		for id, k := range f.alerts {
			if k == dedupKey {
				found = append(found, f.alertJSON(id))
			}
		}
		b, _ := json.Marshal(append([]map[string]any{}, found...))
		_, _ = w.Write(b)
	default:
		for _, k := range f.alerts {
			if k == dedupKey {
				hiveError(w, http.StatusBadRequest, "CreateError", "Alert "+k[:len(AlertType)]+":"+AlertSource+":"+
					k[len(AlertType)+len(AlertSource)+2:]+" already exist in organisation SOC")
				return
			}
		}
		f.next++
		id := fmt.Sprintf("~%d", 40964176+f.next)
		f.alerts[id] = dedupKey
		b, _ := json.Marshal(f.alertJSON(id))
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(b)
	}
}

func (f *fakeHive) alertJSON(id string) map[string]any {
	var a map[string]any
	if err := json.Unmarshal(fixture(f.t, "alert_201.json"), &a); err != nil {
		f.t.Error(err)
	}
	a["_id"] = id
	return a
}

// checkAlert applies TheHive's attribute checks: required strings with their maximum
// lengths, severity 1-4, TLP 0-4, PAP 0-3, bounded tags.
func checkAlert(typ, source, sourceRef, title, desc *string, severity, tlp, pap *int, tags []string) string {
	for _, f := range []struct {
		name string
		v    *string
		max  int
	}{{"type", typ, 32}, {"source", source, 32}, {"sourceRef", sourceRef, 128}, {"title", title, 512}, {"description", desc, 1 << 20}} {
		if f.v == nil || *f.v == "" {
			return "Attribute " + f.name + " is missing"
		}
		if utf8.RuneCountInString(*f.v) > f.max {
			return "Attribute " + f.name + " is too long"
		}
	}
	switch {
	case severity == nil || *severity < 1 || *severity > 4:
		return "Attribute severity must be 1 to 4"
	case tlp == nil || *tlp < 0 || *tlp > 4:
		return "Attribute tlp must be 0 to 4"
	case pap == nil || *pap < 0 || *pap > 3:
		return "Attribute pap must be 0 to 3"
	}
	for _, t := range tags {
		if t == "" || utf8.RuneCountInString(t) > 128 {
			return "Invalid tag"
		}
	}
	return ""
}

func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}

// exactKeys checks the object's keys against the allowed ones, case included: Go's decoder
// matches field names case-insensitively, TheHive does not.
func exactKeys(b []byte, allowed ...string) string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return "not an object"
	}
	for k := range m {
		if !slices.Contains(allowed, k) {
			return "unexpected attribute " + k
		}
	}
	return ""
}
