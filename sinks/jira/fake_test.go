package jira

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// fakeJira is a Jira Cloud REST v3 stand-in that answers like Jira and rejects any request
// that deviates from the documented shape, with Jira's own error body.
type fakeJira struct {
	t    *testing.T
	srv  *httptest.Server
	auth string

	mu       sync.Mutex
	issues   map[string][]string // key -> labels, of the issues that exist
	order    []string            // issue keys, oldest first
	next     int
	queue    []reply // served, one per valid request, before the normal answer
	requests []recorded
}

type reply struct {
	status int
	header map[string]string
	body   string
}

type recorded struct {
	method, path string
	body         []byte
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newFakeJira(t *testing.T, email, token string) *fakeJira {
	t.Helper()
	f := &fakeJira{t: t, issues: map[string][]string{}, auth: basic(email, token)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeJira) push(r ...reply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue = append(f.queue, r...)
}

func (f *fakeJira) recorded() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.requests...)
}

// add stores an issue as if created earlier (by another replica, say); it returns its key.
func (f *fakeJira) add(labels ...string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	key := fmt.Sprintf("SOC-%d", f.next)
	f.issues[key] = labels
	f.order = append(f.order, key)
	return key
}

func jiraError(w http.ResponseWriter, status int, messages []string, fields map[string]string) {
	if messages == nil {
		messages = []string{}
	}
	if fields == nil {
		fields = map[string]string{}
	}
	b, _ := json.Marshal(map[string]any{"errorMessages": messages, "errors": fields})
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

var (
	commentPathRE = regexp.MustCompile(`^/rest/api/3/issue/([^/]+)/comment$`)
	// labelJQLRE is the one query Find may send: the oldest issue with one key label.
	labelJQLRE = regexp.MustCompile(`^labels = "(tp-[0-9a-f]{16})" ORDER BY created ASC$`)
)

func (f *fakeJira) serve(w http.ResponseWriter, r *http.Request) {
	body := new(bytes.Buffer)
	_, _ = body.ReadFrom(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, recorded{method: r.Method, path: r.URL.EscapedPath(), body: body.Bytes()})
	f.mu.Unlock()

	switch {
	case r.Header.Get("Authorization") != f.auth:
		jiraError(w, http.StatusUnauthorized, []string{"You are not authenticated. Authentication required to perform this operation."}, nil)
		return
	case r.Method != http.MethodPost:
		jiraError(w, http.StatusMethodNotAllowed, []string{"Method " + r.Method + " not allowed"}, nil)
		return
	case r.Header.Get("Content-Type") != "application/json":
		jiraError(w, http.StatusUnsupportedMediaType, []string{"Unsupported media type " + r.Header.Get("Content-Type")}, nil)
		return
	case r.Header.Get("Accept") != "application/json":
		jiraError(w, http.StatusNotAcceptable, []string{"Not acceptable"}, nil)
		return
	case r.URL.RawQuery != "":
		jiraError(w, http.StatusBadRequest, []string{"unexpected query " + r.URL.RawQuery}, nil)
		return
	}

	var key, label string
	var labels []string
	switch m := commentPathRE.FindStringSubmatch(r.URL.EscapedPath()); {
	case r.URL.EscapedPath() == SearchPath:
		var req struct {
			JQL        *string  `json:"jql"`
			Fields     []string `json:"fields"`
			MaxResults *int     `json:"maxResults"`
		}
		if err := strictDecode(body.Bytes(), &req); err != nil || exactKeys(body.Bytes(), "jql", "fields", "maxResults") != nil {
			jiraError(w, http.StatusBadRequest, []string{"Invalid request payload. Refer to the REST API documentation and try again."}, nil)
			return
		}
		jm := labelJQLRE.FindStringSubmatch(deref(req.JQL))
		switch {
		case jm == nil:
			jiraError(w, http.StatusBadRequest, []string{"Error in the JQL Query: unexpected query " + deref(req.JQL)}, nil)
			return
		case len(req.Fields) != 1 || req.Fields[0] != "key" || req.MaxResults == nil || *req.MaxResults != 1:
			jiraError(w, http.StatusBadRequest, []string{"fields must be [\"key\"] and maxResults 1"}, nil)
			return
		}
		label = jm[1]
	case r.URL.EscapedPath() == IssuePath:
		var req struct {
			Fields struct {
				Project   *struct{ Key string }  `json:"project"`
				IssueType *struct{ Name string } `json:"issuetype"`
				Summary   *string                `json:"summary"`
				Desc      json.RawMessage        `json:"description"`
				Labels    []string               `json:"labels"`
				Priority  *struct{ Name string } `json:"priority"`
			} `json:"fields"`
		}
		if err := strictDecode(body.Bytes(), &req); err != nil {
			jiraError(w, http.StatusBadRequest, []string{err.Error()}, nil)
			return
		}
		fe := map[string]string{}
		fl := req.Fields
		if fl.Project == nil || fl.Project.Key == "" {
			fe["project"] = "Specify a valid project ID or key"
		}
		if fl.IssueType == nil || fl.IssueType.Name == "" {
			fe["issuetype"] = "Specify an issue type"
		}
		switch {
		case fl.Summary == nil || *fl.Summary == "":
			fe["summary"] = "You must specify a summary of the issue."
		case utf8.RuneCountInString(*fl.Summary) > 255:
			fe["summary"] = "Summary must be less than 255 characters."
		case strings.ContainsAny(*fl.Summary, "\r\n"):
			fe["summary"] = "The summary is invalid because it contains newline characters."
		}
		if err := checkADF(fl.Desc); err != nil {
			fe["description"] = "Operation value must be an Atlassian Document (see the Atlassian Document Format): " + err.Error()
		}
		for _, l := range fl.Labels {
			if l == "" || strings.ContainsFunc(l, func(r rune) bool { return r == ' ' || r < 0x20 }) || len(l) > 255 {
				fe["labels"] = "The label '" + l + "' contains spaces which is invalid."
			}
		}
		if fl.Labels == nil {
			fe["labels"] = "labels must be an array"
		}
		if fl.Priority != nil && fl.Priority.Name == "" {
			fe["priority"] = "Specify the Priority (name) in the string format"
		}
		if len(fe) > 0 {
			jiraError(w, http.StatusBadRequest, nil, fe)
			return
		}
		labels = fl.Labels
	case m != nil:
		key = m[1]
		var req struct {
			Body json.RawMessage `json:"body"`
		}
		if err := strictDecode(body.Bytes(), &req); err != nil {
			jiraError(w, http.StatusBadRequest, []string{err.Error()}, nil)
			return
		}
		if err := checkADF(req.Body); err != nil {
			jiraError(w, http.StatusBadRequest, nil, map[string]string{"comment": "Comment body is not valid! " + err.Error()})
			return
		}
	default:
		jiraError(w, http.StatusNotFound, []string{"null for uri: " + r.URL.String()}, nil)
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
	if label != "" {
		f.search(w, label)
		return
	}
	if key != "" {
		if _, ok := f.issues[key]; !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write(fixture(f.t, "error_404.json"))
			return
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(fixture(f.t, "comment_201.json"))
		return
	}
	f.next++
	id, newKey := fmt.Sprint(10000+f.next), fmt.Sprintf("SOC-%d", f.next)
	f.issues[newKey] = labels
	f.order = append(f.order, newKey)
	var created map[string]any
	if err := json.Unmarshal(fixture(f.t, "create_201.json"), &created); err != nil {
		f.t.Error(err)
	}
	created["id"], created["key"], created["self"] = id, newKey, f.srv.URL+IssuePath+"/"+id
	b, _ := json.Marshal(created)
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(b)
}

// search answers a label query like Jira: the oldest matching issue, in the shape of
// testdata/search_200.json, and a nextPageToken when more match.
func (f *fakeJira) search(w http.ResponseWriter, label string) {
	var answer map[string]any
	if err := json.Unmarshal(fixture(f.t, "search_200.json"), &answer); err != nil {
		f.t.Error(err)
	}
	issue := answer["issues"].([]any)[0].(map[string]any)
	var matches []string
	for _, k := range f.order {
		if slices.Contains(f.issues[k], label) {
			matches = append(matches, k)
		}
	}
	answer["issues"], answer["isLast"] = []any{}, len(matches) <= 1
	delete(answer, "nextPageToken")
	if len(matches) > 0 {
		id := strings.TrimPrefix(matches[0], "SOC-")
		issue["id"], issue["key"], issue["self"] = id, matches[0], f.srv.URL+IssuePath+"/"+id
		answer["issues"] = []any{issue}
	}
	if len(matches) > 1 {
		answer["nextPageToken"] = "CAEaAggD"
	}
	b, _ := json.Marshal(answer)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// exactKeys checks that the object has exactly the given keys, case included: Go's decoder
// matches field names case-insensitively, Jira's does not.
func exactKeys(b []byte, keys ...string) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	if len(m) != len(keys) {
		return fmt.Errorf("want the keys %v, got %d", keys, len(m))
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			return fmt.Errorf("missing %q", k)
		}
	}
	return nil
}

// strictDecode rejects unknown fields, trailing data and wrong types, as Jira's JSON binding
// does for these endpoints.
func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("Unrecognized field or invalid JSON: %v", err)
	}
	if dec.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}

// checkADF validates the subset of Atlassian Document Format the sink uses against the ADF
// schema's rules: a version 1 doc of paragraphs and bullet lists, list items holding
// paragraphs, non-empty text nodes, and strong, code or link marks (link with an href).
func checkADF(raw json.RawMessage) error {
	var d struct {
		Type    string            `json:"type"`
		Version *int              `json:"version"`
		Content []json.RawMessage `json:"content"`
	}
	if err := strictDecode(raw, &d); err != nil {
		return err
	}
	if d.Type != "doc" || d.Version == nil || *d.Version != 1 || d.Content == nil {
		return fmt.Errorf("not a version 1 doc")
	}
	for _, c := range d.Content {
		if err := checkNode(c, "block"); err != nil {
			return err
		}
	}
	return nil
}

func checkNode(raw json.RawMessage, where string) error {
	var n struct {
		Type    string            `json:"type"`
		Text    *string           `json:"text"`
		Marks   []json.RawMessage `json:"marks"`
		Content []json.RawMessage `json:"content"`
	}
	if err := strictDecode(raw, &n); err != nil {
		return err
	}
	child := ""
	switch {
	case where == "block" && n.Type == "paragraph", where == "listItem" && n.Type == "paragraph":
		child = "inline"
	case where == "block" && n.Type == "bulletList":
		child = "bulletList"
		if len(n.Content) == 0 {
			return fmt.Errorf("empty bulletList")
		}
	case where == "bulletList" && n.Type == "listItem":
		child = "listItem"
		if len(n.Content) == 0 {
			return fmt.Errorf("empty listItem")
		}
	case where == "inline" && n.Type == "text":
		if n.Text == nil || *n.Text == "" {
			return fmt.Errorf("text node without text")
		}
		if n.Content != nil {
			return fmt.Errorf("text node with content")
		}
		for _, m := range n.Marks {
			var mk struct {
				Type  string            `json:"type"`
				Attrs map[string]string `json:"attrs"`
			}
			if err := strictDecode(m, &mk); err != nil {
				return err
			}
			switch mk.Type {
			case "strong", "code":
			case "link":
				if mk.Attrs["href"] == "" {
					return fmt.Errorf("link mark without href")
				}
			default:
				return fmt.Errorf("unexpected mark %q", mk.Type)
			}
		}
		return nil
	default:
		return fmt.Errorf("unexpected %q node in %s", n.Type, where)
	}
	if n.Text != nil || n.Marks != nil {
		return fmt.Errorf("%s node with text or marks", n.Type)
	}
	for _, c := range n.Content {
		if err := checkNode(c, child); err != nil {
			return err
		}
	}
	return nil
}
