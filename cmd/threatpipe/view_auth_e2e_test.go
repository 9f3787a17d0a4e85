package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
	"github.com/threatpipe/threatpipe/view/auth"
	"github.com/threatpipe/threatpipe/view/auth/authtest"
)

// TestE2EViewSignInWithOpenIDProvider runs `threatpipe view` behind a real OpenID provider
// (zitadel's certified op library): an analyst signs in the way a browser does, reads the API,
// logs out, and the session cookie from before the logout opens nothing any more.
func TestE2EViewSignInWithOpenIDProvider(t *testing.T) {
	v := newViewE2E(t)
	pipelinetest.Produce(t, v.brokers, v.scored, []kafka.Message{
		viewScored("e-1", "185.220.101.45", 92, time.Now().UTC().Add(-time.Minute), "Example Hosting GmbH", "tor"),
	})
	httpAddr := freeAddr(t)
	base := "http://" + httpAddr
	op := authtest.Start(t, authtest.Options{
		Users:        []authtest.User{{ID: "u-bob", Username: "bob", Password: "pw-bob", Name: "Bob Analyst", Groups: []string{"soc-analysts"}}},
		RedirectURIs: []string{base + auth.CallbackPath},
	})
	env := append(v.env(httpAddr, v.group),
		"THREATPIPE_VIEW_OIDC_ISSUER="+op.Issuer, "THREATPIPE_VIEW_OIDC_CLIENT_ID=threatpipe-view",
		"THREATPIPE_VIEW_OIDC_CLIENT_SECRET=secret", "THREATPIPE_VIEW_OIDC_REDIRECT_URL="+base+auth.CallbackPath,
		"THREATPIPE_VIEW_OIDC_ANALYST_GROUPS=soc-analysts")
	p := startCommand(t, "view", env, httpAddr)
	waitReady(t, []*proc{p}, 60*time.Second)

	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	if code, _ := e2eGet(t, c, base+"/api/v1/indicators", nil); code != http.StatusUnauthorized {
		t.Fatalf("API before sign-in: %d, want 401", code)
	}
	res, err := op.SignIn(context.Background(), c, base+"/", "bob", "pw-bob")
	if err != nil {
		t.Fatal(err)
	}
	page := readAll(t, res)
	if res.StatusCode != 200 || !strings.Contains(page, "Bob Analyst") || !strings.Contains(page, "analyst") {
		t.Fatalf("after sign-in: %d at %s:\n%s", res.StatusCode, res.Request.URL, page)
	}
	pipelinetest.WaitFor(t, 60*time.Second, "the indicator in the signed-in API", func() bool {
		var body apiPage
		code, raw := e2eGet(t, c, base+"/api/v1/indicators", nil)
		return code == 200 && json.Unmarshal([]byte(raw), &body) == nil && body.Total == 1 && body.Indicators[0].IP == "185.220.101.45"
	})

	baseURL, _ := url.Parse(base)
	old := jar.Cookies(baseURL)
	if !strings.Contains(cookieHeader(old), "tp_session=") {
		t.Fatalf("no session cookie after sign-in: %q", cookieHeader(old))
	}
	if code, _ := e2eGet(t, &http.Client{Timeout: 10 * time.Second}, base+"/api/v1/indicators", map[string]string{"Cookie": cookieHeader(old)}); code != 200 {
		t.Fatalf("the session cookie on its own before logout: %d, want 200", code)
	}
	e2eLogOut(t, c, base, page)
	// A copy of the cookie kept from before the logout (a stolen one, say) is refused.
	stale := map[string]string{"Cookie": cookieHeader(old)}
	bare := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if code, body := e2eGet(t, bare, base+"/api/v1/indicators", stale); code != http.StatusUnauthorized {
		t.Errorf("the old session cookie after logout: %d %s, want 401", code, body)
	}
	if code, _ := e2eGet(t, bare, base+"/", stale); code != http.StatusFound {
		t.Errorf("a page with the old session cookie: %d, want a redirect to the sign-in", code)
	}
}

// TestViewBadSignInConfigNamesTheVariable: a sign-in setting that cannot work stops the view at
// start, naming the variable, before anything is contacted.
func TestViewBadSignInConfigNamesTheVariable(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"THREATPIPE_VIEW_OIDC_ISSUER=http://idp.example.com"}, "THREATPIPE_VIEW_OIDC_ISSUER"},
		{[]string{"THREATPIPE_VIEW_SESSION_TTL=forever"}, "THREATPIPE_VIEW_SESSION_TTL"},
		{[]string{"THREATPIPE_VIEW_API_TOKENS_FILE=/nonexistent/threatpipe-test/tokens.yaml"}, "THREATPIPE_VIEW_API_TOKENS_FILE"},
	} {
		var out bytes.Buffer
		env := &environment{environ: tc.env, stdout: &out, stderr: &out}
		if code := run(context.Background(), env, []string{"view"}); code != 1 || !strings.Contains(out.String(), tc.want) {
			t.Errorf("%s: exit %d %q, want exit 1 naming %s", tc.env, code, out.String(), tc.want)
		}
	}
}

var e2eCSRF = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// e2eLogOut posts the page's logout form without following the redirect to the provider.
func e2eLogOut(t *testing.T, c *http.Client, base, page string) {
	t.Helper()
	m := e2eCSRF.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no logout form on the page:\n%s", page)
	}
	nc := *c
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, base+auth.LogoutPath, strings.NewReader(url.Values{"csrf_token": {m[1]}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := nc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = readAll(t, res)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", res.StatusCode)
	}
}

// e2eGet sends a GET with c and extra headers; the status and the body.
func e2eGet(t *testing.T, c *http.Client, target string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, readAll(t, res)
}

func readAll(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func cookieHeader(cs []*http.Cookie) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.Name + "=" + c.Value
	}
	return strings.Join(parts, "; ")
}
