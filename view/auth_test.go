package view

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/view/auth"
	"github.com/threatpipe/threatpipe/view/auth/authtest"
)

// The provider's users: the groups decide the roles (tp-analysts, tp-viewers; staff is none).
var viewUsers = []authtest.User{
	{ID: "u-bob", Username: "bob", Password: "pw-bob", Name: "Bob Analyst", Email: "bob@example.com", Groups: []string{"tp-analysts", "tp-viewers"}},
	{ID: "u-carol", Username: "carol", Password: "pw-carol", Name: "Carol Viewer", Email: "carol@example.com", Groups: []string{"tp-viewers"}},
	{ID: "u-dave", Username: "dave", Password: "pw-dave", Name: "Dave Nobody", Email: "dave@example.com", Groups: []string{"staff"}},
}

// API tokens of the tokens file.
const (
	viewerToken  = "viewer-token-0123456789abcdef0123456789abcdef"
	expiredToken = "expired-token-0123456789abcdef0123456789abcdef"
)

// signInView is the view behind a real OpenID provider, with an API tokens file.
type signInView struct {
	url string
	op  *authtest.Provider
}

// newSignInView serves the view over a store holding one indicator, guarded by sign-in
// configured through the same variables `threatpipe view` reads.
func newSignInView(t *testing.T) *signInView {
	t.Helper()
	s, c := testStore(t, StoreOptions{HealthMaxAge: time.Minute})
	mustApply(t, s, scored("185.220.101.45", 92, c.Now().Add(-time.Minute), withTags("tor")))
	app := httptest.NewUnstartedServer(nil)
	v := &signInView{url: "http://" + app.Listener.Addr().String()}
	v.op = authtest.Start(t, authtest.Options{Users: viewUsers, RedirectURIs: []string{v.url + auth.CallbackPath}})
	cfg, err := auth.LoadConfig([]string{
		"THREATPIPE_VIEW_OIDC_ISSUER=" + v.op.Issuer, "THREATPIPE_VIEW_OIDC_CLIENT_ID=threatpipe-view",
		"THREATPIPE_VIEW_OIDC_CLIENT_SECRET=secret", "THREATPIPE_VIEW_OIDC_REDIRECT_URL=" + v.url + auth.CallbackPath,
		"THREATPIPE_VIEW_OIDC_ANALYST_GROUPS=tp-analysts", "THREATPIPE_VIEW_OIDC_VIEWER_GROUPS=tp-viewers",
		"THREATPIPE_VIEW_API_TOKENS_FILE=" + writeTokens(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	rdb, prefix := testRedis(t)
	a, err := auth.New(cfg, auth.Options{Redis: rdb, KeyPrefix: prefix + ":view:auth:"})
	if err != nil {
		t.Fatal(err)
	}
	ui, err := NewUI(s, UIOptions{Auth: a, SignInIssuer: cfg.Issuer})
	if err != nil {
		t.Fatal(err)
	}
	app.Config.Handler = ui.Handler()
	app.Start()
	t.Cleanup(app.Close)
	return v
}

// writeTokens writes a tokens file with a viewer token and one that expired.
func writeTokens(t *testing.T) string {
	t.Helper()
	digest := func(tok string) string { d := sha256.Sum256([]byte(tok)); return hex.EncodeToString(d[:]) }
	body := fmt.Sprintf("- {name: dashboard, role: viewer, sha256: %s}\n- {name: old-soar, role: analyst, sha256: %s, expires: 2020-01-01T00:00:00Z}\n",
		digest(viewerToken), digest(expiredToken))
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// browser is a client with a cookie jar that follows redirects.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 20 * time.Second}
}

// noFollow is c without following redirects (same cookies).
func noFollow(c *http.Client) *http.Client {
	n := *c
	n.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &n
}

// signIn signs user in through the provider's login page and returns the page it lands on.
func (v *signInView) signIn(t *testing.T, c *http.Client, user string) (*http.Response, string) {
	t.Helper()
	res, err := v.op.SignIn(context.Background(), c, v.url+"/", user, "pw-"+user)
	if err != nil {
		t.Fatalf("signing in %s: %v", user, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

// send makes a request with c and optional headers, returning the response and its body.
func send(t *testing.T, c *http.Client, method, target string, body io.Reader, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, val := range header {
		req.Header.Set(k, val)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func TestSignedInUsersSeeThemselvesAndReadPagesAndAPI(t *testing.T) {
	v := newSignInView(t)
	for _, tc := range []struct{ user, name, role string }{{"bob", "Bob Analyst", "analyst"}, {"carol", "Carol Viewer", "viewer"}} {
		t.Run(tc.user, func(t *testing.T) {
			c := browser(t)
			res, page := v.signIn(t, c, tc.user)
			if res.StatusCode != 200 || res.Request.URL.String() != v.url+"/" || !strings.Contains(page, "185.220.101.45") {
				t.Fatalf("after sign-in: %d at %s:\n%s", res.StatusCode, res.Request.URL, page)
			}
			for _, want := range []string{`<span class="user">` + tc.name + `</span>`, `<span class="badge role">` + tc.role + `</span>`, `action="/auth/logout"`} {
				if !strings.Contains(page, want) {
					t.Errorf("the page lacks %q", want)
				}
			}
			if strings.Contains(page, "no sign-in configured") || strings.Contains(page, ">Sign in<") {
				t.Error("a signed-in page shows the anonymous banner or a sign-in link")
			}
			if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' "+v.op.Issuer+";") {
				t.Errorf("CSP %q does not let the logout form reach the provider", csp)
			}
			if res, body := send(t, c, "GET", v.url+"/api/v1/indicators", nil, nil); res.StatusCode != 200 || !strings.Contains(body, `"ip":"185.220.101.45"`) {
				t.Errorf("API: %d %s", res.StatusCode, body)
			}
			if res, _ := send(t, c, "GET", v.url+"/indicators/185.220.101.45", nil, nil); res.StatusCode != 200 {
				t.Errorf("indicator page: %d", res.StatusCode)
			}
			logOut(t, v, c, page)
		})
	}
}

// logOut posts the page's logout form and checks the session no longer opens the API.
func logOut(t *testing.T, v *signInView, c *http.Client, page string) {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("the page has no logout form with a CSRF token")
	}
	form := url.Values{"csrf_token": {m[1]}}.Encode()
	res, _ := send(t, noFollow(c), "POST", v.url+auth.LogoutPath, strings.NewReader(form), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	if res, _ := send(t, c, "GET", v.url+"/api/v1/indicators", nil, nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("API after logout: %d, want 401", res.StatusCode)
	}
}

func TestNotSignedInIsSentToSignInOrRefused(t *testing.T) {
	v := newSignInView(t)
	c := noFollow(browser(t))
	for _, path := range []string{"/", "/health", "/indicators/185.220.101.45"} {
		res, _ := send(t, c, "GET", v.url+path, nil, nil)
		if loc := res.Header.Get("Location"); res.StatusCode != http.StatusFound || loc != auth.LoginPath+"?next="+url.QueryEscape(path) {
			t.Errorf("%s: %d to %q, want a redirect to the sign-in", path, res.StatusCode, loc)
		}
	}
	for _, path := range []string{"/api/v1/indicators", "/api/v1/indicators/185.220.101.45", "/api/v1/stats", "/api/v1/health"} {
		res, body := send(t, c, "GET", v.url+path, nil, nil)
		var e struct{ Error string }
		if res.StatusCode != http.StatusUnauthorized || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
			t.Errorf("%s: %d %s, want 401 JSON", path, res.StatusCode, body)
		}
	}
	// The sign-in redirect's pages need the stylesheet without a session.
	if res, _ := send(t, c, "GET", v.url+"/static/style.css", nil, nil); res.StatusCode != 200 {
		t.Errorf("static file without sign-in: %d", res.StatusCode)
	}
}

func TestUserInNoGroupIsForbidden(t *testing.T) {
	v := newSignInView(t)
	c := browser(t)
	if res, page := v.signIn(t, c, "dave"); res.StatusCode != http.StatusForbidden || strings.Contains(page, "185.220.101.45") {
		t.Fatalf("dave signed in: %d\n%s", res.StatusCode, page)
	}
	if res, _ := send(t, c, "GET", v.url+"/api/v1/indicators", nil, nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("dave reads the API: %d", res.StatusCode)
	}
}

func TestAPITokens(t *testing.T) {
	v := newSignInView(t)
	c := &http.Client{Timeout: 10 * time.Second}
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	if res, body := send(t, c, "GET", v.url+"/api/v1/indicators", nil, bearer(viewerToken)); res.StatusCode != 200 || !strings.Contains(body, "185.220.101.45") {
		t.Errorf("viewer token: %d %s", res.StatusCode, body)
	}
	for _, tc := range []struct{ name, token, says string }{{"wrong", viewerToken + "x", "unknown"}, {"expired", expiredToken, "expired"}} {
		res, _ := send(t, c, "GET", v.url+"/api/v1/indicators", nil, bearer(tc.token))
		if h := res.Header.Get("WWW-Authenticate"); res.StatusCode != http.StatusUnauthorized || !strings.Contains(h, "invalid_token") || !strings.Contains(h, tc.says) {
			t.Errorf("%s token: %d %q, want 401 invalid_token (%s)", tc.name, res.StatusCode, h, tc.says)
		}
	}
}

func TestAnonymousReadFromLoopbackOnlyWithoutSignIn(t *testing.T) {
	srv, _, _ := testServer(t) // no sign-in configured
	c := &http.Client{Timeout: 10 * time.Second}
	res, page := send(t, c, "GET", srv.URL+"/", nil, nil)
	if res.StatusCode != 200 || !strings.Contains(page, "read-only: no sign-in configured") || strings.Contains(page, `action="/auth/logout"`) {
		t.Errorf("anonymous loopback page: %d, banner or logout form wrong:\n%s", res.StatusCode, page)
	}
	if csp := res.Header.Get("Content-Security-Policy"); csp != ContentSecurityPolicy {
		t.Errorf("CSP without sign-in: %q", csp)
	}
	if res, _ := send(t, c, "GET", srv.URL+"/api/v1/indicators", nil, nil); res.StatusCode != 200 {
		t.Errorf("anonymous loopback API: %d", res.StatusCode)
	}
	proxied := map[string]string{"X-Forwarded-For": "198.51.100.7"}
	for _, path := range []string{"/", "/api/v1/indicators"} {
		if res, _ := send(t, c, "GET", srv.URL+path, nil, proxied); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("proxied %s: %d, want 401", path, res.StatusCode)
		}
	}
}
