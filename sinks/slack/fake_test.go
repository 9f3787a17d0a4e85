package slack

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
	"unicode/utf8"
)

// webhookPath is the fake webhook's secret path; tests check it never shows in errors.
const webhookPath = "/services/T0TEST000/B0TEST000/s3cretT0kenXYZ"

func answer(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "answer_"+name+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fakeSlack is an incoming webhook that rejects what Slack rejects, with Slack's status codes
// and plain-text error strings, and records the messages it accepted.
type fakeSlack struct {
	t *testing.T
	// script may answer the n-th request (from 0) itself and return true; otherwise the
	// request is validated and answered like Slack does.
	script func(n int, w http.ResponseWriter) (handled bool)

	mu       sync.Mutex
	requests int
	accepted []map[string]any
}

func newFakeSlack(t *testing.T, script func(n int, w http.ResponseWriter) bool) (*fakeSlack, *httptest.Server) {
	f := &fakeSlack{t: t, script: script}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeSlack) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

func (f *fakeSlack) last() map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.accepted) == 0 {
		f.t.Fatal("no message accepted")
	}
	return f.accepted[len(f.accepted)-1]
}

func slackAnswer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/html") // what hooks.slack.com sends with its strings
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func (f *fakeSlack) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	n := f.requests
	f.requests++
	f.mu.Unlock()
	if f.script != nil && f.script(n, w) {
		return
	}
	if r.URL.Path != webhookPath {
		slackAnswer(w, http.StatusNotFound, answer(f.t, "no_service"))
		return
	}
	if r.Method != http.MethodPost {
		slackAnswer(w, http.StatusBadRequest, answer(f.t, "invalid_payload"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		slackAnswer(w, http.StatusBadRequest, answer(f.t, "invalid_payload"))
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		slackAnswer(w, http.StatusBadRequest, answer(f.t, "invalid_payload"))
		return
	}
	status, code, msg := validatePayload(body)
	if status != http.StatusOK {
		f.t.Logf("fake Slack rejected the message: %s", code)
		slackAnswer(w, status, code)
		return
	}
	f.mu.Lock()
	f.accepted = append(f.accepted, msg)
	f.mu.Unlock()
	slackAnswer(w, http.StatusOK, answer(f.t, "ok"))
}

// validatePayload checks a message against the incoming-webhook and Block Kit rules the sink
// relies on, independently of the sink's own types. It returns 200 or Slack's status and
// error string (the string carries the reason after a colon, for test logs).
func validatePayload(body []byte) (int, string, map[string]any) {
	var msg map[string]any
	if err := json.Unmarshal(body, &msg); err != nil {
		return http.StatusBadRequest, "invalid_payload", nil
	}
	bad := func(why string, args ...any) (int, string, map[string]any) {
		return http.StatusBadRequest, "invalid_blocks: " + fmt.Sprintf(why, args...), nil
	}
	for k := range msg {
		if k != "text" && k != "blocks" {
			return bad("unexpected top-level field %q", k)
		}
	}
	if s, ok := msg["text"].(string); !ok || s == "" {
		return http.StatusBadRequest, "no_text", nil
	}
	blocks, ok := msg["blocks"].([]any)
	if !ok || len(blocks) == 0 || len(blocks) > 50 {
		return bad("blocks must be an array of 1-50")
	}
	for i, b := range blocks {
		blk, ok := b.(map[string]any)
		if !ok {
			return bad("block %d is not an object", i)
		}
		if err := checkBlock(blk); err != "" {
			return bad("block %d: %s", i, err)
		}
	}
	return http.StatusOK, "ok", msg
}

func checkBlock(b map[string]any) string {
	allowed := map[string][]string{
		"header":  {"type", "text"},
		"section": {"type", "text", "fields"},
		"actions": {"type", "elements"},
	}
	typ, _ := b["type"].(string)
	keys, ok := allowed[typ]
	if !ok {
		return fmt.Sprintf("unsupported type %q", typ)
	}
	if err := onlyKeys(b, keys...); err != "" {
		return err
	}
	switch typ {
	case "header":
		return checkText(b["text"], 150, "plain_text")
	case "section":
		_, hasText := b["text"]
		_, hasFields := b["fields"]
		if !hasText && !hasFields {
			return "section needs text or fields"
		}
		if hasText {
			if err := checkText(b["text"], 3000, "plain_text", "mrkdwn"); err != "" {
				return err
			}
		}
		if hasFields {
			fs, ok := b["fields"].([]any)
			if !ok || len(fs) == 0 || len(fs) > 10 {
				return "fields must be an array of 1-10"
			}
			for _, f := range fs {
				if err := checkText(f, 2000, "plain_text", "mrkdwn"); err != "" {
					return "field: " + err
				}
			}
		}
	case "actions":
		els, ok := b["elements"].([]any)
		if !ok || len(els) == 0 || len(els) > 25 {
			return "elements must be an array of 1-25"
		}
		for _, e := range els {
			btn, ok := e.(map[string]any)
			if !ok || btn["type"] != "button" {
				return "element is not a button"
			}
			if err := onlyKeys(btn, "type", "text", "url", "action_id"); err != "" {
				return err
			}
			if err := checkText(btn["text"], 75, "plain_text"); err != "" {
				return "button: " + err
			}
			if u, ok := btn["url"].(string); !ok || u == "" || utf8.RuneCountInString(u) > 3000 {
				return "button url must be 1-3000 characters"
			}
			if id, ok := btn["action_id"].(string); ok && (id == "" || len(id) > 255) {
				return "action_id must be 1-255 characters"
			}
		}
	}
	return ""
}

func checkText(v any, limit int, types ...string) string {
	obj, ok := v.(map[string]any)
	if !ok {
		return "text is not an object"
	}
	if err := onlyKeys(obj, "type", "text", "emoji"); err != "" {
		return err
	}
	typ, _ := obj["type"].(string)
	okType := false
	for _, t := range types {
		okType = okType || typ == t
	}
	if !okType {
		return fmt.Sprintf("text type %q, want one of %v", typ, types)
	}
	s, ok := obj["text"].(string)
	if !ok || s == "" {
		return "text must be a non-empty string"
	}
	if n := utf8.RuneCountInString(s); n > limit {
		return fmt.Sprintf("text of %d characters, limit %d", n, limit)
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
			return fmt.Sprintf("unexpected field %q", k)
		}
	}
	return ""
}
