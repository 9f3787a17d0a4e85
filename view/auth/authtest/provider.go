// Package authtest runs a real OpenID provider in-process for tests: zitadel/oidc's
// OpenID-certified op package on an httptest server, with in-memory users carrying a groups
// claim and one confidential web client that must use PKCE (S256). Tests sign in through it
// exactly as a browser would: the relying party redirects to /authorize, the provider's login
// page takes a username and password, the callback gets a code.
package authtest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// loginPath is the provider's login page (the example server's).
const loginPath = "/login/username"

// User is one account at the provider.
type User struct {
	ID, Username, Password, Name, Email string
	Groups                              []string
}

// Options configure the provider.
type Options struct {
	Users []User
	// ClientID and ClientSecret identify the relying party; defaults threatpipe-view, secret.
	ClientID, ClientSecret string
	// RedirectURIs and PostLogoutRedirectURIs are the client's registered URIs (exact match).
	RedirectURIs, PostLogoutRedirectURIs []string
	// GroupsClaim names the groups claim; default groups.
	GroupsClaim string
	// IDTokenLifetime and AccessTokenLifetime default to 5 minutes.
	IDTokenLifetime, AccessTokenLifetime time.Duration
	// AutoLogin, a username, makes the login page approve that user without asking.
	AutoLogin string
	// GroupsInUserinfoOnly keeps the groups claim out of ID tokens (the userinfo endpoint still
	// has it), as some providers do.
	GroupsInUserinfoOnly bool
	// NonceOverride, when set, is the nonce put into every ID token instead of the request's:
	// a misbehaving provider (or a replayed token), for testing that clients check the nonce.
	NonceOverride string
}

// Provider is a running OpenID provider.
type Provider struct {
	// Issuer is the provider's issuer URL (http://127.0.0.1:<port>).
	Issuer string
	srv    *httptest.Server
	st     *storage
}

// Start runs a provider for the test and stops it when the test ends.
func Start(t testing.TB, o Options) *Provider {
	t.Helper()
	p, err := New(o)
	if err != nil {
		t.Fatalf("starting the test OpenID provider: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// New runs a provider; Close stops it.
func New(o Options) (*Provider, error) {
	withDefaults(&o)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generating the signing key: %w", err)
	}
	st := &storage{
		o: &o, key: &signingKey{id: newID(), key: key},
		client: &client{
			id: o.ClientID, secret: o.ClientSecret, redirects: o.RedirectURIs, postLogout: o.PostLogoutRedirectURIs,
			idTokenLifetime: o.IDTokenLifetime, claimsInIDToken: true,
		},
		requests: map[string]*authRequest{}, codes: map[string]string{}, tokens: map[string]*accessToken{},
	}
	srv := httptest.NewUnstartedServer(nil)
	p := &Provider{Issuer: "http://" + srv.Listener.Addr().String(), srv: srv, st: st}
	h, err := p.handler()
	if err != nil {
		srv.Close()
		return nil, err
	}
	srv.Config.Handler = h
	srv.Start()
	return p, nil
}

func withDefaults(o *Options) {
	if o.ClientID == "" {
		o.ClientID = "threatpipe-view"
	}
	if o.ClientSecret == "" {
		o.ClientSecret = "secret"
	}
	if o.GroupsClaim == "" {
		o.GroupsClaim = "groups"
	}
	if o.IDTokenLifetime <= 0 {
		o.IDTokenLifetime = 5 * time.Minute
	}
	if o.AccessTokenLifetime <= 0 {
		o.AccessTokenLifetime = 5 * time.Minute
	}
}

// handler mounts zitadel's provider at the root and the login UI beside it, as the example
// server does.
func (p *Provider) handler() (http.Handler, error) {
	var cryptoKey [32]byte
	_, _ = rand.Read(cryptoKey[:])
	provider, err := op.NewProvider(&op.Config{
		CryptoKey:                cryptoKey,
		DefaultLogoutRedirectURI: "/logged-out",
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		SupportedScopes:          []string{"openid", "profile", "email", "groups"},
	}, p.st, op.StaticIssuer(p.Issuer), op.WithAllowInsecure())
	if err != nil {
		return nil, fmt.Errorf("creating the OpenID provider: %w", err)
	}
	l := &login{st: p.st, callback: op.AuthCallbackURL(provider), autoLogin: p.st.o.AutoLogin}
	intercept := op.NewIssuerInterceptor(provider.IssuerFromRequest)
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+loginPath, intercept.HandlerFunc(l.show))
	mux.HandleFunc("POST "+loginPath, intercept.HandlerFunc(l.check))
	mux.HandleFunc("GET /logged-out", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "signed out") })
	mux.Handle("/", provider)
	return mux, nil
}

// Close stops the provider.
func (p *Provider) Close() { p.srv.Close() }

// EndedSessions lists the RP-initiated logouts the provider saw, as "<user id> <client id>".
func (p *Provider) EndedSessions() []string {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	return append([]string(nil), p.st.ended...)
}

// SignIn drives a browser sign-in: c (with a cookie jar, following redirects) opens startURL
// (the relying party's login URL, or a page that redirects there), lands on the provider's
// login page, posts username and password, and follows the redirects back through the
// relying party's callback. It returns the last response; the caller closes its body.
func (p *Provider) SignIn(ctx context.Context, c *http.Client, startURL, username, password string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, startURL, nil)
	if err != nil {
		return nil, fmt.Errorf("sign-in start: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sign-in start: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	at := resp.Request.URL
	if !strings.HasPrefix(at.String(), p.Issuer+loginPath) {
		return nil, fmt.Errorf("%w: sign-in start ended at %s (status %d)", ErrNotLoginPage, at, resp.StatusCode)
	}
	form := url.Values{"id": {at.Query().Get("authRequestID")}, "username": {username}, "password": {password}}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, p.Issuer+loginPath, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("sign-in form: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sign-in form: %w", err)
	}
	return resp, nil
}

// login is the provider's login UI: a username and password form for an auth request.
type login struct {
	st        *storage
	callback  func(context.Context, string) string
	autoLogin string
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html><body><form method="post" action="/login/username">
<input type="hidden" name="id" value="{{.ID}}">
<label>Username <input name="username"></label> <label>Password <input type="password" name="password"></label>
<button type="submit">Sign in</button></form>{{if .Error}}<p>{{.Error}}</p>{{end}}</body></html>`))

func (l *login) show(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	if l.autoLogin != "" {
		if err := l.st.checkLogin(id, l.autoLogin, "", false); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, l.callback(r.Context(), id), http.StatusFound)
		return
	}
	_ = loginPage.Execute(w, struct{ ID, Error string }{ID: id})
}

func (l *login) check(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "cannot parse the form", http.StatusBadRequest)
		return
	}
	id := r.PostForm.Get("id")
	if err := l.st.checkLogin(id, r.PostForm.Get("username"), r.PostForm.Get("password"), true); err != nil {
		w.WriteHeader(http.StatusUnauthorized)
		_ = loginPage.Execute(w, struct{ ID, Error string }{ID: id, Error: err.Error()})
		return
	}
	http.Redirect(w, r, l.callback(r.Context(), id), http.StatusFound)
}

// ErrNotLoginPage is returned by SignIn when the start URL does not lead to the login page.
var ErrNotLoginPage = errors.New("not the provider's login page")
