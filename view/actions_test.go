package view

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline/allowlist"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
	"github.com/threatpipe/threatpipe/view/auth"
	"github.com/threatpipe/threatpipe/view/auth/authtest"
	"github.com/threatpipe/threatpipe/view/steer"
)

// API tokens of each role, for the actions' tests.
const (
	actViewerToken  = "act-viewer-0123456789abcdef0123456789abcdef"
	actAnalystToken = "act-analyst-0123456789abcdef0123456789abcdef"
	actAdminToken   = "act-admin-0123456789abcdef0123456789abcdef"
	actIP           = "185.220.101.45"
)

// actionsView is the view with the analyst actions on the real broker and Redis, behind a real
// OpenID provider (bob analyst, carol viewer) and a tokens file with a token of each role.
type actionsView struct {
	*signInView
	brokers []string
	topics  steer.Topics
	list    *allowlist.Store
	ledger  *act.Ledger
	steer   *steer.Service
}

func newActionsView(t *testing.T) *actionsView {
	t.Helper()
	s, c := testStore(t, StoreOptions{HealthMaxAge: time.Minute})
	mustApply(t, s, scored(actIP, 92, c.Now().Add(-time.Minute), withTags("tor")))
	brokers := pipelinetest.Kafka(t)
	rdb, prefix := testRedis(t)
	v := &actionsView{brokers: brokers, list: allowlist.New(rdb, prefix, nil), ledger: act.NewLedger(rdb, prefix, "test"),
		topics: steer.Topics{Input: pipelinetest.Topic(t, brokers, "in", 1), Changes: pipelinetest.Topic(t, brokers, "changes", 1),
			Results: pipelinetest.Topic(t, brokers, "results", 1)}}
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), RequiredAcks: kafka.RequireAll, Balancer: &kafka.Hash{}, BatchTimeout: 5 * time.Millisecond}
	t.Cleanup(func() { _ = w.Close() })
	svc, err := steer.New(steer.Options{Producer: w, Allowlist: v.list, Ledger: v.ledger, Redis: rdb, Prefix: prefix, Topics: v.topics})
	if err != nil {
		t.Fatal(err)
	}
	v.steer = svc
	app := httptest.NewUnstartedServer(nil)
	v.signInView = &signInView{url: "http://" + app.Listener.Addr().String()}
	v.op = authtest.Start(t, authtest.Options{Users: viewUsers, RedirectURIs: []string{v.url + auth.CallbackPath}})
	cfg, err := auth.LoadConfig([]string{
		"THREATPIPE_VIEW_OIDC_ISSUER=" + v.op.Issuer, "THREATPIPE_VIEW_OIDC_CLIENT_ID=threatpipe-view",
		"THREATPIPE_VIEW_OIDC_CLIENT_SECRET=secret", "THREATPIPE_VIEW_OIDC_REDIRECT_URL=" + v.url + auth.CallbackPath,
		"THREATPIPE_VIEW_OIDC_ANALYST_GROUPS=tp-analysts", "THREATPIPE_VIEW_OIDC_VIEWER_GROUPS=tp-viewers",
		"THREATPIPE_VIEW_API_TOKENS_FILE=" + writeRoleTokens(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(cfg, auth.Options{Redis: rdb, KeyPrefix: prefix + ":view:auth:"})
	if err != nil {
		t.Fatal(err)
	}
	ui, err := NewUI(s, UIOptions{Auth: a, SignInIssuer: cfg.Issuer, Steer: svc})
	if err != nil {
		t.Fatal(err)
	}
	app.Config.Handler = ui.Handler()
	app.Start()
	t.Cleanup(app.Close)
	return v
}

// writeRoleTokens writes a tokens file with a token of each role, named after it.
func writeRoleTokens(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for role, tok := range map[string]string{"viewer": actViewerToken, "analyst": actAnalystToken, "admin": actAdminToken} {
		d := sha256.Sum256([]byte(tok))
		fmt.Fprintf(&b, "- {name: %s-bot, role: %s, sha256: %s}\n", role, role, hex.EncodeToString(d[:]))
	}
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// call sends an API request with a bearer token and a JSON body.
func (v *actionsView) call(t *testing.T, token, method, path, body string) (int, string) {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json"}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	res, out := send(t, &http.Client{Timeout: 20 * time.Second}, method, v.url+path, strings.NewReader(body), h)
	return res.StatusCode, out
}

// actionCalls are every state-changing action endpoint with a valid body.
var actionCalls = []struct{ method, path, body string }{
	{"POST", "/api/v1/indicators/" + actIP + "/false-positive", `{"reason":"our scanner","expires_in":"24h"}`},
	{"POST", "/api/v1/indicators/" + actIP + "/unblock", `{"reason":"customer outage"}`},
	{"POST", "/api/v1/indicators/" + actIP + "/refresh", `{}`},
	{"POST", "/api/v1/indicators/" + actIP + "/notes", `{"text":"seen in ticket 42"}`},
	{"PUT", "/api/v1/kill-switch", `{"on":true,"reason":"incident"}`},
	{"POST", "/api/v1/allowlist", `{"target":"203.0.113.0/24","reason":"partner","expires_in":3600}`},
	{"DELETE", "/api/v1/allowlist", `{"target":"203.0.113.0/24","reason":"partner gone"}`},
}

// nothingWritten checks that no action left a trace: no message on the topics, no allowlist
// entry, no note, the kill switch off.
func (v *actionsView) nothingWritten(t *testing.T) {
	t.Helper()
	for name, topic := range map[string]string{"input": v.topics.Input, "changes": v.topics.Changes, "results": v.topics.Results} {
		if n := pipelinetest.Count(t, v.brokers, topic); n != 0 {
			t.Errorf("%d messages on the %s topic", n, name)
		}
	}
	ctx := context.Background()
	if entries, err := v.list.List(ctx); err != nil || len(entries) != 0 {
		t.Errorf("allowlist %+v, %v", entries, err)
	}
	if notes, err := v.steer.Notes(ctx, actIP); err != nil || len(notes) != 0 {
		t.Errorf("notes %+v, %v", notes, err)
	}
	if on, err := v.ledger.KillSwitch(ctx); on || err != nil {
		t.Errorf("kill switch %v, %v", on, err)
	}
}

func TestActionsRefusedForViewersAndAnalystsOnAdminRoutesChangeNothing(t *testing.T) {
	v := newActionsView(t)
	for _, c := range actionCalls {
		if code, body := v.call(t, actViewerToken, c.method, c.path, c.body); code != http.StatusForbidden || !strings.Contains(body, "insufficient_role") {
			t.Errorf("viewer %s %s: %d %s, want 403", c.method, c.path, code, body)
		}
		if code, _ := v.call(t, "", c.method, c.path, c.body); code != http.StatusUnauthorized {
			t.Errorf("nobody %s %s: %d, want 401", c.method, c.path, code)
		}
		if strings.Contains(c.path, "kill-switch") || strings.Contains(c.path, "allowlist") {
			if code, _ := v.call(t, actAnalystToken, c.method, c.path, c.body); code != http.StatusForbidden {
				t.Errorf("analyst %s %s: %d, want 403", c.method, c.path, code)
			}
		}
	}
	for _, path := range []string{"/api/v1/indicators/" + actIP + "/notes", "/api/v1/kill-switch", "/api/v1/allowlist"} {
		if code, body := v.call(t, actViewerToken, "GET", path, ""); code != http.StatusOK {
			t.Errorf("viewer GET %s: %d %s, want 200", path, code, body)
		}
	}
	v.nothingWritten(t)
}

func TestActionsOfAnAnalystAreAuditedUnderTheirName(t *testing.T) {
	v := newActionsView(t)
	want := map[string]int{}
	for _, c := range actionCalls[:4] {
		code, body := v.call(t, actAnalystToken, c.method, c.path, c.body)
		var res struct{ Record act.Record }
		if code/100 != 2 || json.Unmarshal([]byte(body), &res) != nil || res.Record.Actor != "analyst-bot" {
			t.Fatalf("analyst %s %s: %d %s", c.method, c.path, code, body)
		}
		want[res.Record.Step]++
	}
	if code, body := v.call(t, actAnalystToken, "GET", "/api/v1/indicators/"+actIP+"/notes", ""); code != 200 || !strings.Contains(body, `"text":"seen in ticket 42"`) {
		t.Errorf("notes: %d %s", code, body)
	}
	got := map[string]int{}
	for _, m := range pipelinetest.ReadAll(t, v.brokers, v.topics.Results) {
		var rec act.Record
		if err := json.Unmarshal(m.Value, &rec); err != nil {
			t.Fatal(err)
		}
		got[rec.Step]++
		if rec.Kind != act.KindAnalyst || rec.Actor != "analyst-bot" || rec.ActorRole != "analyst" || rec.Target != actIP ||
			!strings.HasPrefix(rec.Detail, "by analyst-bot (analyst) via token") {
			t.Errorf("audit record %+v", rec)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || len(got) != 4 {
		t.Errorf("audit records by step %v, want %v", got, want)
	}
	if entries, _ := v.list.List(context.Background()); len(entries) != 1 || entries[0].Target != actIP || entries[0].Author != "analyst-bot" {
		t.Errorf("allowlist after the false positive: %+v", entries)
	}
	if n := pipelinetest.Count(t, v.brokers, v.topics.Changes); n != 2 {
		t.Errorf("%d changes, want the false positive's and the unblock's", n)
	}
	if n := pipelinetest.Count(t, v.brokers, v.topics.Input); n != 1 {
		t.Errorf("%d re-enrich requests, want 1", n)
	}
}

func TestActionsOfAnAdmin(t *testing.T) {
	v := newActionsView(t)
	for _, c := range actionCalls[4:] {
		if code, body := v.call(t, actAdminToken, c.method, c.path, c.body); code/100 != 2 || !strings.Contains(body, `"actor":"admin-bot"`) {
			t.Errorf("admin %s %s: %d %s", c.method, c.path, code, body)
		}
	}
	if code, body := v.call(t, actAdminToken, "GET", "/api/v1/kill-switch", ""); code != 200 || strings.TrimSpace(body) != `{"on":true}` {
		t.Errorf("kill switch: %d %s", code, body)
	}
	if code, body := v.call(t, actAdminToken, "DELETE", "/api/v1/allowlist", `{"target":"203.0.113.0/24","reason":"again"}`); code != http.StatusNotFound {
		t.Errorf("removing an absent entry: %d %s, want 404", code, body)
	}
	if code, body := v.call(t, actAdminToken, "POST", "/api/v1/allowlist", `{"target":"198.51.100.7","reason":"lab","expires_in":"7d"}`); code != http.StatusCreated {
		t.Fatalf("add: %d %s", code, body)
	}
	if code, body := v.call(t, actViewerToken, "GET", "/api/v1/allowlist", ""); code != 200 || !strings.Contains(body, `"target":"198.51.100.7"`) {
		t.Errorf("allowlist: %d %s", code, body)
	}
	if n := pipelinetest.Count(t, v.brokers, v.topics.Results); n != 4 {
		t.Errorf("%d audit records, want 4 (kill switch, add, remove, add)", n)
	}

	// The admin page, as a token holder (no CSRF token: a bearer request carries no ambient credential).
	admin := map[string]string{"Authorization": "Bearer " + actAdminToken}
	c := noFollow(&http.Client{Timeout: 20 * time.Second})
	if res, page := send(t, c, "GET", v.url+"/allowlist", nil, admin); res.StatusCode != 200 ||
		!strings.Contains(page, "198.51.100.7") || !strings.Contains(page, "Turn the kill switch off") {
		t.Errorf("admin page: %d\n%s", res.StatusCode, page)
	}
	admin["Content-Type"] = "application/x-www-form-urlencoded"
	if res, _ := send(t, c, "POST", v.url+"/kill-switch", strings.NewReader("on=false&reason=over"), admin); res.StatusCode != http.StatusSeeOther ||
		res.Header.Get("Location") != "/allowlist?done=kill_switch_off" {
		t.Errorf("kill switch form: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	if on, _ := v.ledger.KillSwitch(context.Background()); on {
		t.Error("the kill switch is still on")
	}
}

func TestActionsBadInputIs400AndChangesNothing(t *testing.T) {
	v := newActionsView(t)
	fp := "/api/v1/indicators/" + actIP + "/false-positive"
	for _, c := range []struct{ method, path, body, field string }{
		{"POST", "/api/v1/indicators/300.1.1.1/unblock", `{"reason":"r"}`, "ip"},
		{"POST", "/api/v1/indicators/10.0.0.0%2F8/refresh", `{}`, "ip"},
		{"POST", fp, `{"reason":"r"}`, "expires_in"},
		{"POST", fp, `{"reason":"r","expires_in":"soon"}`, "expires_in"},
		{"POST", fp, `{"reason":"r","expires_in":10}`, "expires_in"},
		{"POST", fp, `{"reason":"r","expires_in":"91d"}`, "expires_in"},
		{"POST", fp, `{"reason":"","expires_in":"1h"}`, "reason"},
		{"POST", fp, `{"reason":"r","expires_in":"1h","until":"never"}`, "body"},
		{"POST", fp, `{"reason":"r","expires_in":"1h"} {}`, "body"},
		{"POST", fp, `not json`, "body"},
		{"POST", fp, `{"reason":"` + strings.Repeat("x", maxActionBody) + `","expires_in":"1h"}`, "body"},
		{"POST", "/api/v1/indicators/" + actIP + "/notes", `{"text":"a\u001b[31m"}`, "text"},
		{"PUT", "/api/v1/kill-switch", `{"reason":"r"}`, "on"},
		{"POST", "/api/v1/allowlist", `{"target":"example.com","reason":"r","expires_in":"1h"}`, "ip"},
	} {
		code, body := v.call(t, actAdminToken, c.method, c.path, c.body)
		var e actionError
		if code != http.StatusBadRequest || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" || e.Field != c.field {
			t.Errorf("%s %s %.60s: %d %.200s, want 400 naming %s", c.method, c.path, c.body, code, body, c.field)
		}
	}
	v.nothingWritten(t)
}

func TestActionsOfACookieSessionNeedTheCSRFToken(t *testing.T) {
	v := newActionsView(t)
	c := browser(t)
	v.signIn(t, c, "bob")
	fp := v.url + "/api/v1/indicators/" + actIP + "/false-positive"
	body := `{"reason":"our scanner","expires_in":"1h"}`
	hdr := map[string]string{"Content-Type": "application/json"}
	if res, out := send(t, c, "POST", fp, strings.NewReader(body), hdr); res.StatusCode != http.StatusForbidden || !strings.Contains(out, "csrf") {
		t.Errorf("without the CSRF token: %d %s, want 403", res.StatusCode, out)
	}
	v.nothingWritten(t)

	_, page := send(t, c, "GET", v.url+"/indicators/"+actIP, nil, nil)
	m := csrfField.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, `id="false-positive"`) {
		t.Fatalf("the analyst's page has no action forms:\n%s", page)
	}
	hdr["X-CSRF-Token"] = m[1]
	if res, out := send(t, c, "POST", fp, strings.NewReader(body), hdr); res.StatusCode != http.StatusOK || !strings.Contains(out, `"actor":"Bob Analyst"`) {
		t.Errorf("with the CSRF token: %d %s", res.StatusCode, out)
	}
}

func TestActionFormsOnThePages(t *testing.T) {
	v := newActionsView(t)
	carol := browser(t)
	v.signIn(t, carol, "carol")
	_, page := send(t, carol, "GET", v.url+"/indicators/"+actIP, nil, nil)
	for _, form := range []string{`id="false-positive"`, `id="unblock"`, `id="refresh"`, `id="note"`, `href="/allowlist"`} {
		if strings.Contains(page, form) {
			t.Errorf("the viewer's page has %s", form)
		}
	}
	if !strings.Contains(page, `id="notes"`) {
		t.Error("the viewer's page lacks the notes")
	}
	if res, _ := send(t, carol, "GET", v.url+"/allowlist", nil, nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("the viewer's allowlist page: %d, want 403", res.StatusCode)
	}

	bob := browser(t)
	v.signIn(t, bob, "bob")
	_, page = send(t, bob, "GET", v.url+"/indicators/"+actIP, nil, nil)
	csrf := csrfField.FindStringSubmatch(page)[1]
	form := func(path string, fields ...string) (*http.Response, string) {
		vals := []string{"csrf_token=" + csrf}
		vals = append(vals, fields...)
		return send(t, noFollow(bob), "POST", v.url+path, strings.NewReader(strings.Join(vals, "&")),
			map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	}
	res, _ := form("/indicators/"+actIP+"/notes", "text=looks+like+our+scanner")
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || loc != "/indicators/"+actIP+"?done=note" {
		t.Fatalf("note form: %d to %q", res.StatusCode, loc)
	}
	if res, out := form("/indicators/"+actIP+"/false-positive", "reason=", "expires_in=7d"); res.StatusCode != http.StatusBadRequest || !strings.Contains(out, "reason: is required") {
		t.Errorf("false positive without a reason: %d", res.StatusCode)
	}
	if res, _ := form("/indicators/" + actIP + "/refresh"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("re-enrich form: %d", res.StatusCode)
	}
	_, page = send(t, bob, "GET", v.url+"/indicators/"+actIP+"?done=note", nil, nil)
	if !strings.Contains(page, `id="flash"`) || !strings.Contains(page, "looks like our scanner") || !strings.Contains(page, "Bob Analyst") {
		t.Errorf("after the note the page lacks the flash or the note:\n%s", page)
	}
	if res, _ := send(t, noFollow(bob), "POST", v.url+"/indicators/"+actIP+"/unblock", strings.NewReader("reason=x"),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); res.StatusCode != http.StatusForbidden {
		t.Errorf("a form without the CSRF token: %d, want 403", res.StatusCode)
	}
}
