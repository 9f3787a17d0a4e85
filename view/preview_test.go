package view

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/view/auth"
)

// API tokens of the preview's tokens file, one per role.
const (
	previewViewerToken  = "preview-viewer-0123456789abcdef0123456789abcdef"
	previewAnalystToken = "preview-analyst-0123456789abcdef0123456789abcdef"
	previewAdminToken   = "preview-admin-0123456789abcdef0123456789abcdef"
)

// previewCandidate blocks and tickets critical scores, one action per indicator per hour.
const previewCandidate = `
playbooks:
  - name: critical
    when: score >= 80
    window: 1h
    steps:
      - {name: block, action: block, sink: palo}
      - {name: ticket, action: ticket, sink: jira, params: {project: SOC}}
`

// previewServer serves the view and the preview's routes, guarded by API tokens, over a store
// holding:
//   - 185.220.101.45 at -3h (70), -2h30m (90), -2h (92) and -30m (90): its history drives the
//     decisions, not only its latest score;
//   - 185.220.101.46 at -1h (50), below the condition;
//   - 192.0.2.7 at -10m (95), a special address, never blocked;
//   - 185.220.101.47 at -30h (99), outside a 24-hour preview.
func previewServer(t *testing.T) (*httptest.Server, *clock) {
	t.Helper()
	s, c := testStore(t, StoreOptions{})
	now := c.Now()
	for _, sg := range []struct {
		ip    string
		score int
		ago   time.Duration
	}{
		{"185.220.101.45", 70, 3 * time.Hour}, {"185.220.101.45", 90, 150 * time.Minute},
		{"185.220.101.45", 92, 2 * time.Hour}, {"185.220.101.45", 90, 30 * time.Minute},
		{"185.220.101.46", 50, time.Hour}, {"192.0.2.7", 95, 10 * time.Minute}, {"185.220.101.47", 99, 30 * time.Hour},
	} {
		mustApply(t, s, scored(sg.ip, sg.score, now.Add(-sg.ago)))
	}
	cfg, err := auth.LoadConfig([]string{"THREATPIPE_VIEW_API_TOKENS_FILE=" + writePreviewTokens(t)})
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(cfg, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ui, err := NewUI(s, UIOptions{Auth: a})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	ui.Register(mux) // the preview's routes among them
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, c
}

func writePreviewTokens(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for role, tok := range map[string]string{"viewer": previewViewerToken, "analyst": previewAnalystToken, "admin": previewAdminToken} {
		d := sha256.Sum256([]byte(tok))
		fmt.Fprintf(&b, "- {name: %s-bot, role: %s, sha256: %s}\n", role, role, hex.EncodeToString(d[:]))
	}
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// postPreview posts body to the preview API with token ("" for none).
func postPreview(t *testing.T, srv *httptest.Server, token, body string) (*http.Response, string) {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json"}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	return send(t, srv.Client(), http.MethodPost, srv.URL+"/api/v1/playbooks/preview", strings.NewReader(body), h)
}

func previewBody(yml string, hours int) string {
	b, _ := json.Marshal(previewRequest{YAML: yml, Hours: hours})
	return string(b)
}

func TestPreviewOverTheStore(t *testing.T) {
	srv, c := previewServer(t)
	res, body := postPreview(t, srv, previewAdminToken, previewBody(previewCandidate, 0))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	var rep PreviewReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Hours != 24 || !rep.Since.Equal(c.Now().Add(-24*time.Hour)) || rep.Indicators != 3 || rep.Events != 6 || rep.Truncated || rep.Approximation == "" {
		t.Fatalf("report: %s", body)
	}
	if len(rep.Steps) != 2 {
		t.Fatalf("steps: %s", body)
	}
	block, ticket := rep.Steps[0], rep.Steps[1]
	if block.WouldAct != 2 || block.Suppressed != 1 || block.Outcomes[act.OutcomeNeverBlock] != 1 || block.Indicators != 2 || block.ActedOn != 1 {
		t.Errorf("block: %+v", block)
	}
	if ticket.WouldAct != 4 || ticket.Outcomes[act.OutcomeCommented] != 1 || ticket.Indicators != 2 || ticket.ActedOn != 2 {
		t.Errorf("ticket: %+v", ticket)
	}
	// Actions first, then the others, newest first each; the 92 is the history entry's score,
	// not the latest event's.
	want := []string{"185.220.101.45 90 done", "185.220.101.45 90 done", "192.0.2.7 95 refused_never_block", "185.220.101.45 92 suppressed_window"}
	if got := sampleOf(block); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("block sample %q, want %q", got, want)
	}

	_, body = postPreview(t, srv, previewAdminToken, previewBody(previewCandidate, 48))
	if err := json.Unmarshal([]byte(body), &rep); err != nil || rep.Indicators != 4 || rep.Events != 7 || rep.Steps[0].ActedOn != 2 {
		t.Errorf("48 hours: %v %s", err, body)
	}
}

func sampleOf(st act.StepPreview) []string {
	out := make([]string, len(st.Sample))
	for i, s := range st.Sample {
		out[i] = fmt.Sprintf("%s %d %s", s.Indicator, s.Score, s.Outcome)
	}
	return out
}

func TestPreviewRejects(t *testing.T) {
	srv, _ := previewServer(t)
	for name, tc := range map[string]struct {
		body   string
		status int
		param  string
		want   string
	}{
		"invalid playbook": {previewBody("playbooks:\n  - name: p\n    when: scroe >= 80\n    window: soon\n    steps: [{action: block}]\n", 0),
			400, "yaml", `playbook "p": window "soon" is not a positive duration`},
		"unknown name in a condition": {previewBody("playbooks:\n  - name: p\n    when: scroe >= 80\n    steps: [{action: block, sink: palo}]\n", 0),
			400, "yaml", "unknown name scroe"},
		"empty file":     {previewBody(" ", 0), 400, "yaml", "empty"},
		"file too large": {previewBody(strings.Repeat("#", maxPreviewYAML+1), 0), 400, "yaml", "exceeds 256 KiB"},
		"hours too many": {previewBody(previewCandidate, 73), 400, "hours", "1-72"},
		"hours negative": {previewBody(previewCandidate, -1), 400, "hours", "1-72"},
		"unknown field":  {`{"yaml": "x", "hourz": 3}`, 400, "body", "unknown field"},
		"not JSON":       {"playbooks: []", 400, "body", "not a JSON object"},
		"body too large": {`{"yaml": "` + strings.Repeat("a", maxPreviewBody) + `"}`, 413, "", "exceeds"},
	} {
		t.Run(name, func(t *testing.T) {
			res, body := postPreview(t, srv, previewAdminToken, tc.body)
			var e apiError
			_ = json.Unmarshal([]byte(body), &e)
			if res.StatusCode != tc.status || e.Param != tc.param || !strings.Contains(e.Error, tc.want) {
				t.Errorf("status %d, body %.300s", res.StatusCode, body)
			}
		})
	}
}

// TestPreviewNeedsTheAdminRole: API tokens below admin are refused, and so is the anonymous
// loopback reader (a viewer) the test client is without a token.
func TestPreviewNeedsTheAdminRole(t *testing.T) {
	srv, _ := previewServer(t)
	for token, want := range map[string]int{"": 403, previewViewerToken: 403, previewAnalystToken: 403, previewAdminToken: 200} {
		res, body := postPreview(t, srv, token, previewBody(previewCandidate, 0))
		if res.StatusCode != want {
			t.Errorf("API with %q: status %d, want %d: %.200s", token, res.StatusCode, want, body)
		}
		h := map[string]string{}
		if token != "" {
			h["Authorization"] = "Bearer " + token
		}
		res, _ = send(t, srv.Client(), http.MethodGet, srv.URL+"/playbooks/preview", nil, h)
		if res.StatusCode != want {
			t.Errorf("page with %q: status %d, want %d", token, res.StatusCode, want)
		}
	}
}

func TestPreviewPage(t *testing.T) {
	srv, _ := previewServer(t)
	admin := map[string]string{"Authorization": "Bearer " + previewAdminToken}
	res, body := send(t, srv.Client(), http.MethodGet, srv.URL+"/playbooks/preview", nil, admin)
	if res.StatusCode != 200 || !previewHasAll(body, `<textarea id="preview-yaml" name="yaml"`, `name="csrf_token"`, `value="24"`) ||
		res.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("form: %d %s", res.StatusCode, body)
	}
	form := url.Values{"yaml": {previewCandidate}, "hours": {"24"}}
	admin["Content-Type"] = "application/x-www-form-urlencoded"
	res, body = send(t, srv.Client(), http.MethodPost, srv.URL+"/playbooks/preview", strings.NewReader(form.Encode()), admin)
	if res.StatusCode != 200 || !previewHasAll(body, `id="preview-result"`, "<strong>block</strong>", "<strong>ticket</strong>",
		`href="/indicators/192.0.2.7"`, "refused_never_block", "6 events of 3 indicators") {
		t.Fatalf("result: %d %s", res.StatusCode, body)
	}
	if !strings.Contains(body, "when: score &gt;= 80") {
		t.Error("the posted file is not kept in the form")
	}
	form.Set("yaml", "playbooks:\n  - name: p\n    when: score >= 80\n    window: soon\n    steps: [{action: block, sink: palo}]\n")
	res, body = send(t, srv.Client(), http.MethodPost, srv.URL+"/playbooks/preview", strings.NewReader(form.Encode()), admin)
	if res.StatusCode != 400 || !strings.Contains(body, `id="preview-error"`) || !strings.Contains(body, "is not a positive duration") {
		t.Errorf("invalid file: %d %s", res.StatusCode, body)
	}
}

func previewHasAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
