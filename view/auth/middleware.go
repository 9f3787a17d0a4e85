package auth

import (
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"go.uber.org/zap"
)

// maxFormBytes bounds a form body read for its csrf_token: the console's forms are small.
const maxFormBytes = 1 << 20

// failure is why a request is not let through.
type failure int

const (
	failNone         failure = iota
	failNoCredential         // nobody signed in: 401 (or the sign-in page)
	failBadToken             // an unknown or malformed bearer token: 401 invalid_token
	failExpiredToken         // a known but expired bearer token: 401 invalid_token
	failCSRF                 // a cookie session's unsafe request without its token: 403
	failReadOnly             // an anonymous unsafe request: 403
	failInternal             // Redis trouble: 500
)

// Require lets through requests whose principal has at least role; others get 401 (JSON under
// the API prefix; the sign-in page for page requests when sign-in is configured) or 403.
// State-changing requests of cookie sessions must carry the session's CSRF token.
func (a *Authenticator) Require(role Role) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info, f := a.authenticate(r)
			if f != failNone {
				a.refuse(w, r, f)
				return
			}
			if !info.principal.Has(role) {
				a.forbidden(w, r, info.principal, role)
				return
			}
			next.ServeHTTP(w, r.WithContext(withInfo(r.Context(), info)))
		})
	}
}

// Optional lets every request through, with its principal in the context when there is one
// (pages that show more to signed-in users). A bad bearer token or a missing CSRF token is
// still refused: a client that tried to authenticate and failed must learn so.
func (a *Authenticator) Optional(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, f := a.authenticate(r)
		switch f {
		case failNone:
			r = r.WithContext(withInfo(r.Context(), info))
		case failNoCredential:
		default:
			a.refuse(w, r, f)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate finds the request's principal: a bearer token first (it is explicit), then a
// cookie session, then anonymous access from loopback (or THREATPIPE_VIEW_ANONYMOUS_READ_CIDRS)
// when no sign-in is configured.
func (a *Authenticator) authenticate(r *http.Request) (authInfo, failure) {
	if h := r.Header.Get("Authorization"); h != "" {
		return a.bearer(r, h)
	}
	if a.sessions != nil {
		_, sess, err := a.cookieSession(r)
		if err != nil {
			a.log.Error("view/auth: reading a session failed", zap.Error(err))
			return authInfo{}, failInternal
		}
		if sess != nil {
			if !safeMethod(r.Method) && !validCSRF(r, sess.CSRF) {
				return authInfo{}, failCSRF
			}
			return authInfo{principal: sess.Principal, csrf: sess.CSRF}, failNone
		}
	}
	if a.rp == nil {
		if from, ok := a.anonymousFrom(r); ok {
			if !safeMethod(r.Method) {
				return authInfo{}, failReadOnly
			}
			return authInfo{principal: Principal{Name: "anonymous (" + from + ")", Subject: "anonymous", Role: RoleViewer, Via: ViaAnonymous}}, failNone
		}
	}
	return authInfo{}, failNoCredential
}

// bearer checks an Authorization header. Bearer requests carry no ambient credential (a
// browser never adds one on its own), so they need no CSRF token.
func (a *Authenticator) bearer(r *http.Request, header string) (authInfo, failure) {
	tok, ok := bearerToken(header)
	if !ok || a.tokens == nil {
		return authInfo{}, failBadToken
	}
	t, err := a.tokens.current(a.now()).lookup(tok, a.now())
	switch {
	case errors.Is(err, errTokenExpired):
		return authInfo{}, failExpiredToken
	case err != nil:
		return authInfo{}, failBadToken
	}
	return authInfo{principal: Principal{Name: t.name, Subject: "token:" + t.name, Role: t.role, Via: ViaToken}}, failNone
}

// cookieSession returns the request's live session and its id; nil without one.
func (a *Authenticator) cookieSession(r *http.Request) (string, *session, error) {
	c, err := r.Cookie(a.cookies.session)
	if err != nil {
		return "", nil, nil
	}
	id, ok := parseSessionID(c.Value)
	if !ok {
		return "", nil, nil
	}
	sess, err := a.sessions.get(r.Context(), id, a.now())
	if errors.Is(err, errNoSession) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, err
	}
	return id, sess, nil
}

// safeMethod: the methods that must not change anything (RFC 9110 9.2.1).
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions || m == http.MethodTrace
}

// validCSRF compares the request's token, from the X-CSRF-Token header or else the csrf_token
// field of a form body, with the session's, in constant time.
func validCSRF(r *http.Request, want string) bool {
	got := r.Header.Get("X-CSRF-Token")
	if got == "" && isForm(r) {
		r.Body = http.MaxBytesReader(nil, r.Body, maxFormBytes)
		got = r.PostFormValue("csrf_token")
	}
	return got != "" && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func isForm(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return strings.HasPrefix(ct, "application/x-www-form-urlencoded") || strings.HasPrefix(ct, "multipart/form-data")
}

// proxyHeaders mark a request relayed by a proxy. The address such a request comes from is the
// proxy's, not the client's: a reverse proxy on this host (or on an allowed network) connects
// from there on behalf of anyone, so a relayed request is never anonymous. The headers are not
// trusted the other way either (anyone can send them): they only ever take anonymity away.
var proxyHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Real-Ip", "X-Forwarded-Host"}

// anonymousFrom says whether r may read anonymously, and from where ("loopback" or the
// allowed network): straight from this host or from a THREATPIPE_VIEW_ANONYMOUS_READ_CIDRS
// network, and not through a proxy.
func (a *Authenticator) anonymousFrom(r *http.Request) (string, bool) {
	for _, h := range proxyHeaders {
		if r.Header.Get(h) != "" {
			return "", false
		}
	}
	ip, ok := remoteIP(r)
	if !ok {
		return "", false
	}
	if ip.IsLoopback() {
		return "loopback", true
	}
	for _, p := range a.anonNets {
		if p.Contains(ip) {
			return p.String(), true
		}
	}
	return "", false
}

// remoteIP is the address r's connection comes from, IPv4-mapped IPv6 as IPv4 (a dual-stack
// listener reports IPv4 clients so) and without an IPv6 zone.
func remoteIP(r *http.Request) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return ip.Unmap().WithZone(""), true
}

// refuse answers a failed authentication.
func (a *Authenticator) refuse(w http.ResponseWriter, r *http.Request, f failure) {
	switch f {
	case failBadToken, failExpiredToken:
		desc := "the token is unknown or malformed"
		if f == failExpiredToken {
			desc = "the token has expired"
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="threatpipe", error="invalid_token", error_description="`+desc+`"`)
		a.fail(w, r, http.StatusUnauthorized, "invalid_token", desc)
	case failCSRF:
		a.fail(w, r, http.StatusForbidden, "csrf", "This request changes something but lacks this session's CSRF token (X-CSRF-Token header or csrf_token form field). Reload the page and try again.")
	case failReadOnly:
		a.fail(w, r, http.StatusForbidden, "read_only", "Anonymous access is read-only.")
	case failInternal:
		a.fail(w, r, http.StatusInternalServerError, "internal", "Sessions cannot be read right now; try again shortly.")
	default:
		a.unauthenticated(w, r)
	}
}

// unauthenticated sends page requests to the sign-in (when there is one) and tells API clients
// how to authenticate; RFC 6750 3.1: no error code when no credential was sent.
func (a *Authenticator) unauthenticated(w http.ResponseWriter, r *http.Request) {
	if _, err := r.Cookie(a.cookies.session); a.sessions != nil && err == nil {
		a.clearCookie(w, a.cookies.session) // its session ended: stop sending it
	}
	if a.rp != nil && !a.isAPI(r) && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		http.Redirect(w, r, LoginPath+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusFound)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="threatpipe"`)
	msg := "Sign in, or send an API token as Authorization: Bearer <token>."
	if a.rp == nil {
		msg = "No sign-in is configured: send an API token as Authorization: Bearer <token> (anonymous access is for loopback clients only)."
		if len(a.anonNets) > 0 {
			msg = "No sign-in is configured: send an API token as Authorization: Bearer <token> (anonymous access is for loopback clients and " + joinPrefixes(a.anonNets) + " only, never through a proxy)."
		}
	}
	a.fail(w, r, http.StatusUnauthorized, "unauthenticated", msg)
}

// forbidden answers a principal whose role is too low.
func (a *Authenticator) forbidden(w http.ResponseWriter, r *http.Request, p Principal, want Role) {
	if p.Via == ViaToken {
		w.Header().Set("WWW-Authenticate", `Bearer realm="threatpipe", error="insufficient_scope", error_description="needs the `+want.String()+` role"`)
	}
	a.fail(w, r, http.StatusForbidden, "insufficient_role", p.Name+" has the "+p.Role.String()+" role; this needs "+want.String()+".")
}
