package view

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/threatpipe/threatpipe/view/auth"
)

// Sign-in: every page and API route needs at least the viewer role (view/auth). /healthz,
// /readyz and /metrics belong to the telemetry server and /static/ is public, so probes,
// scrapers and the sign-in pages' stylesheet work without a session.

// defaultAuth is the guard when the caller passes none: no sign-in configured, so anonymous
// read from loopback clients only, which is the safe default for tests and embedding.
func defaultAuth() (*auth.Authenticator, error) {
	cfg, err := auth.LoadConfig(nil)
	if err != nil {
		return nil, fmt.Errorf("view: default sign-in settings: %w", err)
	}
	a, err := auth.New(cfg, auth.Options{})
	if err != nil {
		return nil, fmt.Errorf("view: default sign-in: %w", err)
	}
	return a, nil
}

// guard wraps a page or API handler: security headers first (so refusals carry them too),
// then the viewer role.
func (u *UI) guard(h http.HandlerFunc) http.Handler {
	return u.secure(u.auth.Require(auth.RoleViewer)(h))
}

// setSecurityHeaders: the view's headers on every response but /auth/* (whose answers the auth
// layer writes itself, with a stricter policy of its own).
func (u *UI) setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", u.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

func (u *UI) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.setSecurityHeaders(w.Header())
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

func (u *UI) secureStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.setSecurityHeaders(w.Header())
		w.Header().Set("Cache-Control", "public, max-age=300")
		next.ServeHTTP(w, r)
	})
}

// contentSecurityPolicy is ContentSecurityPolicy with the sign-in provider's origin added to
// form-action when sign-in is configured: the logout form posts to the view, which redirects
// the browser to the provider's end-session endpoint, and browsers apply form-action to the
// redirects that follow a form submission.
func contentSecurityPolicy(issuer string) string {
	origin := originOf(issuer)
	if origin == "" {
		return ContentSecurityPolicy
	}
	return strings.Replace(ContentSecurityPolicy, "form-action 'self'", "form-action 'self' "+origin, 1)
}

// originOf is scheme://host[:port] of an absolute http(s) URL, "" otherwise.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// viewer is who the page header shows: the signed-in user with a logout form, an API token,
// the anonymous loopback reader with a banner, or nobody with a sign-in link.
type viewer struct {
	Name, Role string
	// CSRF is the session's token for the logout form; empty without a cookie session.
	CSRF      string
	Session   bool // signed in through the provider: offer the logout button
	Token     bool
	Anonymous bool // no sign-in configured: the read-only banner
	SignIn    bool // nobody known and sign-in configured: offer the link
}

func (u *UI) viewerOf(r *http.Request) viewer {
	p, ok := auth.FromContext(r.Context())
	if !ok {
		return viewer{SignIn: u.opts.SignInIssuer != ""}
	}
	v := viewer{Name: p.Name, Role: p.Role.String()}
	switch p.Via {
	case auth.ViaOIDC:
		v.Session, v.CSRF = true, auth.CSRFToken(r)
	case auth.ViaToken:
		v.Token = true
	case auth.ViaAnonymous:
		v.Anonymous = true
	}
	return v
}

// layoutData is what the layout renders: the page's own data and who is looking.
type layoutData struct {
	Page   any
	Viewer viewer
	// LoginPath and LogoutPath are the auth routes (view/auth).
	LoginPath, LogoutPath string
}

func (u *UI) layout(r *http.Request, page any) layoutData {
	return layoutData{Page: page, Viewer: u.viewerOf(r), LoginPath: auth.LoginPath, LogoutPath: auth.LogoutPath}
}
