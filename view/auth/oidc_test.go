package auth

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/view/auth/authtest"
)

func TestSignInRoleFromGroups(t *testing.T) {
	w := newWorld(t, nil)
	for _, tc := range []struct {
		user, role string
		status     int
	}{
		{"alice", "admin", http.StatusOK},
		{"bob", "analyst", http.StatusOK},
		{"carol", "viewer", http.StatusOK},
		{"dave", "", http.StatusForbidden},
	} {
		t.Run(tc.user, func(t *testing.T) {
			before := w.sessionKeys()
			status, page := w.signIn(browser(t), tc.user)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, page)
			}
			if tc.status == http.StatusForbidden {
				mustContain(t, page, "none of the groups")
				if w.sessionKeys() != before {
					t.Fatal("a session was stored for a user without a role")
				}
				return
			}
			mustContain(t, page, "role="+tc.role+" via=oidc sub=u-"+tc.user+" email="+tc.user+"@example.com")
			if w.sessionKeys() != before+1 {
				t.Fatal("no session in Redis")
			}
		})
	}
}

// The refusal of a user without a role is JSON for a client that asks for it.
func TestNoRoleJSON(t *testing.T) {
	w := newWorld(t, func(_ *Config, o *authtest.Options) { o.AutoLogin = "dave" })
	c := browser(t)
	status, body, _ := do(t, c, "GET", w.url+LoginPath, nil, map[string]string{"Accept": "application/json"})
	if status != http.StatusForbidden || !strings.Contains(body, `"error":"no access"`) {
		t.Fatalf("%d %s", status, body)
	}
}

// A provider that keeps groups out of ID tokens: the userinfo endpoint supplies them.
func TestGroupsFromUserinfo(t *testing.T) {
	w := newWorld(t, func(_ *Config, o *authtest.Options) { o.GroupsInUserinfoOnly = true })
	status, page := w.signIn(browser(t), "bob")
	if status != http.StatusOK {
		t.Fatalf("%d %s", status, page)
	}
	mustContain(t, page, "role=analyst")
}

func TestReturnToAndOptional(t *testing.T) {
	w := newWorld(t, nil)
	c := browser(t)
	_, page, _ := do(t, c, "GET", w.url+"/maybe", nil, nil)
	mustContain(t, page, "who=nobody")
	resp, err := w.op.SignIn(context.Background(), c, w.url+LoginPath+"?next="+url.QueryEscape("/maybe?x=1"), "carol", "pw-carol")
	if err != nil {
		t.Fatal(err)
	}
	page = readBody(t, resp)
	if resp.Request.URL.RequestURI() != "/maybe?x=1" {
		t.Fatalf("landed on %s", resp.Request.URL)
	}
	mustContain(t, page, "who=Carol Viewer role=viewer")
	// Signing in again replaces the session instead of adding one.
	before := w.sessionKeys()
	resp, err = w.op.SignIn(context.Background(), c, w.url+LoginPath, "carol", "pw-carol")
	if err != nil {
		t.Fatal(err)
	}
	if page = readBody(t, resp); resp.StatusCode != http.StatusOK || w.sessionKeys() != before {
		t.Fatalf("second sign-in: %d sessions %d→%d %s", resp.StatusCode, before, w.sessionKeys(), page)
	}
	// An open redirect is not followed: next must be a local path.
	for _, next := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example"} {
		if got := safeNext(next); got != "/" {
			t.Errorf("safeNext(%q) = %q", next, got)
		}
	}
}

func TestUnauthenticated(t *testing.T) {
	w := newWorld(t, nil)
	noFollow := browser(t)
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	status, _, h := do(t, noFollow, "GET", w.url+"/", nil, nil)
	if status != http.StatusFound || !strings.HasPrefix(h.Get("Location"), LoginPath+"?next=") {
		t.Fatalf("page: %d %s", status, h.Get("Location"))
	}
	// Loopback is not anonymous when sign-in is configured.
	status, body, h := do(t, noFollow, "GET", w.url+"/api/v1/who", nil, nil)
	if status != http.StatusUnauthorized || h.Get("WWW-Authenticate") != `Bearer realm="threatpipe"` || !strings.Contains(body, `"error":"unauthenticated"`) {
		t.Fatalf("api: %d %q %s", status, h.Get("WWW-Authenticate"), body)
	}
}

func TestLogout(t *testing.T) {
	w := newWorld(t, nil)
	c := browser(t)
	_, page := w.signIn(c, "alice")
	token := csrfOf(t, page)
	app, _ := url.Parse(w.url)
	old := c.Jar.Cookies(app)
	if len(old) != 1 || old[0].Name != "tp_session" {
		t.Fatalf("cookies %v", old)
	}
	form := func(v string) *strings.Reader { return strings.NewReader(url.Values{"csrf_token": {v}}.Encode()) }
	formCT := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}

	for _, bad := range []string{"", "wrong"} {
		if status, _, _ := do(t, c, "POST", w.url+LogoutPath, form(bad), formCT); status != http.StatusForbidden {
			t.Fatalf("logout with csrf %q: %d", bad, status)
		}
	}
	if w.sessionKeys() != 1 {
		t.Fatal("a refused logout ended the session")
	}
	status, body, _ := do(t, c, "POST", w.url+LogoutPath, form(token), formCT)
	if status != http.StatusOK || body != "bye" {
		t.Fatalf("logout: %d %q (want the provider to send us to /bye)", status, body)
	}
	if n := w.sessionKeys(); n != 0 {
		t.Fatalf("%d sessions left in Redis", n)
	}
	if left := c.Jar.Cookies(app); len(left) != 0 {
		t.Fatalf("cookies left: %v", left)
	}
	if ended := w.op.EndedSessions(); len(ended) != 1 || ended[0] != "u-alice threatpipe-view" {
		t.Fatalf("provider saw logouts %v", ended)
	}
	// The old cookie is refused everywhere (the session is gone from Redis).
	status, _, _ = do(t, http.DefaultClient, "GET", w.url+"/api/v1/who", nil, map[string]string{"Cookie": old[0].Name + "=" + old[0].Value})
	if status != http.StatusUnauthorized {
		t.Fatalf("old cookie: %d", status)
	}
}

// Without RP-initiated logout the view's own session ends and the browser goes home.
func TestLogoutLocalOnly(t *testing.T) {
	w := newWorld(t, func(c *Config, _ *authtest.Options) { c.EndSession = false })
	c := browser(t)
	_, page := w.signIn(c, "carol")
	noFollow := *c
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	status, _, h := do(t, &noFollow, "POST", w.url+LogoutPath, nil, map[string]string{"X-CSRF-Token": csrfOf(t, page)})
	if status != http.StatusSeeOther || h.Get("Location") != "/" || w.sessionKeys() != 0 || len(w.op.EndedSessions()) != 0 {
		t.Fatalf("%d %q sessions=%d ended=%v", status, h.Get("Location"), w.sessionKeys(), w.op.EndedSessions())
	}
}

func TestSessionExpiry(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []time.Duration // clock advances, each followed by a request
		okFor int             // how many of the requests still succeed
	}{
		{"idle", []time.Duration{30 * time.Minute, 61 * time.Minute}, 1},
		{"active within idle", []time.Duration{50 * time.Minute, 50 * time.Minute, 50 * time.Minute}, 3},
		{"absolute", []time.Duration{50 * time.Minute, 50 * time.Minute, 50 * time.Minute, 50 * time.Minute}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, func(c *Config, _ *authtest.Options) { c.SessionTTL, c.SessionIdle = 170*time.Minute, time.Hour })
			c := browser(t)
			if status, page := w.signIn(c, "bob"); status != http.StatusOK {
				t.Fatalf("%d %s", status, page)
			}
			for i, d := range tc.steps {
				w.clock.Advance(d)
				status, _, _ := do(t, c, "GET", w.url+"/api/v1/who", nil, nil)
				if want := map[bool]int{true: 200, false: 401}[i < tc.okFor]; status != want {
					t.Fatalf("request %d after %s: %d, want %d", i+1, d, status, want)
				}
			}
			if tc.okFor < len(tc.steps) && w.sessionKeys() != 0 {
				t.Fatal("the expired session is still in Redis")
			}
		})
	}
}

func TestCSRF(t *testing.T) {
	w := newWorld(t, nil)
	c := browser(t)
	_, page := w.signIn(c, "bob")
	token := csrfOf(t, page)
	formCT := "application/x-www-form-urlencoded"
	for _, tc := range []struct {
		name   string
		header map[string]string
		body   string
		status int
	}{
		{"missing", nil, "", http.StatusForbidden},
		{"wrong header", map[string]string{"X-CSRF-Token": token + "x"}, "", http.StatusForbidden},
		{"wrong field", map[string]string{"Content-Type": formCT}, "csrf_token=nope", http.StatusForbidden},
		{"token in query only", nil, "", http.StatusForbidden},
		{"right header", map[string]string{"X-CSRF-Token": token}, "", http.StatusOK},
		{"right field", map[string]string{"Content-Type": formCT}, "csrf_token=" + url.QueryEscape(token), http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := w.url + "/api/v1/ack"
			if tc.name == "token in query only" {
				target += "?csrf_token=" + url.QueryEscape(token)
			}
			status, body, _ := do(t, c, "POST", target, strings.NewReader(tc.body), tc.header)
			if status != tc.status {
				t.Fatalf("%d, want %d: %s", status, tc.status, body)
			}
		})
	}
	// The role still applies with the right token: bob is no admin.
	if status, _, _ := do(t, c, "POST", w.url+"/settings", nil, map[string]string{"X-CSRF-Token": token}); status != http.StatusForbidden {
		t.Fatalf("analyst on an admin route: %d", status)
	}
}
