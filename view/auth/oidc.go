package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"
)

// relyingParty is the view as an OpenID Connect client; the provider's metadata is discovered
// on first use and kept.
type relyingParty struct {
	cfg    *Config
	client *http.Client

	mu   sync.Mutex
	disc *discovered
}

// discovered is what the provider's discovery document told us.
type discovered struct {
	provider   *oidc.Provider
	verifier   *oidc.IDTokenVerifier
	oauth      oauth2.Config
	endSession string
}

// ctx makes go-oidc and oauth2 use our HTTP client (timeouts, test transports).
func (rp *relyingParty) ctx(ctx context.Context) context.Context {
	return context.WithValue(oidc.ClientContext(ctx, rp.client), oauth2.HTTPClient, rp.client)
}

func (rp *relyingParty) discover(ctx context.Context) (*discovered, error) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.disc != nil {
		return rp.disc, nil
	}
	p, err := oidc.NewProvider(rp.ctx(ctx), rp.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discovering the OpenID provider %s: %w", rp.cfg.Issuer, err)
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, fmt.Errorf("reading the OpenID provider's metadata: %w", err)
	}
	rp.disc = &discovered{
		provider: p,
		verifier: p.Verifier(&oidc.Config{ClientID: rp.cfg.ClientID}),
		oauth: oauth2.Config{
			ClientID: rp.cfg.ClientID, ClientSecret: rp.cfg.ClientSecret.Reveal(),
			Endpoint: p.Endpoint(), RedirectURL: rp.cfg.RedirectURL, Scopes: rp.cfg.Scopes,
		},
		endSession: meta.EndSession,
	}
	return rp.disc, nil
}

// serveLogin starts a sign-in: fresh state, nonce and PKCE verifier in the sealed login
// cookie, then off to the provider.
func (a *Authenticator) serveLogin(w http.ResponseWriter, r *http.Request) {
	if a.rp == nil {
		a.fail(w, r, http.StatusNotFound, "sign-in is not configured", "No OpenID provider is configured for this view (THREATPIPE_VIEW_OIDC_ISSUER).")
		return
	}
	d, err := a.rp.discover(r.Context())
	if err != nil {
		a.log.Warn("view/auth: the OpenID provider is unreachable", zap.Error(err))
		a.fail(w, r, http.StatusServiceUnavailable, "sign-in unavailable", "The sign-in provider cannot be reached; try again shortly.")
		return
	}
	st, err := newLoginState(r.URL.Query().Get("next"), a.now())
	if err != nil {
		a.internal(w, r, err)
		return
	}
	sealed, err := a.sealer.seal(r.Context(), a.cookies.login, st, a.now())
	if err != nil {
		a.internal(w, r, err)
		return
	}
	a.setCookie(w, a.cookies.login, sealed, loginStateTTL)
	http.Redirect(w, r, d.oauth.AuthCodeURL(st.State, oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier)), http.StatusFound)
}

func newLoginState(next string, now time.Time) (*loginState, error) {
	st := &loginState{Verifier: oauth2.GenerateVerifier(), Next: safeNext(next), Expires: now.Add(loginStateTTL)}
	var err error
	if st.State, err = randomString(32); err != nil {
		return nil, err
	}
	if st.Nonce, err = randomString(32); err != nil {
		return nil, err
	}
	return st, nil
}

// serveCallback finishes a sign-in: the state must match the login cookie, the code is
// exchanged with the PKCE verifier, the ID token is verified (signature, issuer, audience,
// expiry) and must carry the cookie's nonce; the groups claim decides the role.
func (a *Authenticator) serveCallback(w http.ResponseWriter, r *http.Request) {
	if a.rp == nil {
		a.fail(w, r, http.StatusNotFound, "sign-in is not configured", "No OpenID provider is configured for this view.")
		return
	}
	st, ok := a.checkCallback(w, r)
	if !ok {
		return
	}
	a.clearCookie(w, a.cookies.login) // one use only
	p, rawIDToken, err := a.exchange(r.Context(), r.URL.Query().Get("code"), st)
	if err != nil {
		a.log.Info("view/auth: sign-in refused", zap.Error(err))
		a.fail(w, r, http.StatusUnauthorized, "sign-in failed", "The sign-in could not be verified. Start again from the sign-in link.")
		return
	}
	if p.Role == RoleNone {
		a.log.Info("view/auth: signed in but in no mapped group", zap.String("subject", p.Subject), zap.String("name", p.Name))
		a.fail(w, r, http.StatusForbidden, "no access", fmt.Sprintf("You are signed in as %s, but you are in none of the groups allowed to use this console. Ask an administrator to add you to a viewer, analyst or admin group.", p.Name))
		return
	}
	// A sign-in always gets a fresh session id; a session this browser still had ends, so no
	// id set before the sign-in (a planted cookie) outlives it.
	if oldID, old, err := a.cookieSession(r); err == nil && old != nil {
		_ = a.sessions.delete(r.Context(), oldID)
	}
	now := a.now()
	id, err := a.sessions.create(r.Context(), &session{Principal: p, Created: now, Seen: now, IDToken: rawIDToken})
	if err != nil {
		a.internal(w, r, err)
		return
	}
	a.setCookie(w, a.cookies.session, id, a.cfg.SessionTTL)
	http.Redirect(w, r, st.Next, http.StatusSeeOther)
}

// checkCallback reads the login cookie and compares its state with the callback's.
func (a *Authenticator) checkCallback(w http.ResponseWriter, r *http.Request) (*loginState, bool) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		a.clearCookie(w, a.cookies.login)
		a.fail(w, r, http.StatusUnauthorized, "sign-in failed", "The sign-in provider answered: "+e+" "+q.Get("error_description"))
		return nil, false
	}
	c, err := r.Cookie(a.cookies.login)
	var st *loginState
	if err == nil {
		st, err = a.sealer.open(r.Context(), a.cookies.login, c.Value, a.now())
	}
	if err != nil {
		if !errors.Is(err, errBadState) && !errors.Is(err, http.ErrNoCookie) {
			a.internal(w, r, err)
			return nil, false
		}
		a.fail(w, r, http.StatusBadRequest, "sign-in expired", "This sign-in attempt is unknown or expired (it must finish within 10 minutes, in the browser that started it). Start again from the sign-in link.")
		return nil, false
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(st.State)) != 1 {
		a.clearCookie(w, a.cookies.login)
		a.fail(w, r, http.StatusBadRequest, "sign-in failed", "The sign-in answer does not belong to this sign-in attempt. Start again from the sign-in link.")
		return nil, false
	}
	return st, true
}

// exchange redeems the code and turns the verified ID token into a principal.
func (a *Authenticator) exchange(ctx context.Context, code string, st *loginState) (Principal, string, error) {
	d, err := a.rp.discover(ctx)
	if err != nil {
		return Principal{}, "", err
	}
	if code == "" {
		return Principal{}, "", errors.New("the callback carries no code")
	}
	tok, err := d.oauth.Exchange(a.rp.ctx(ctx), code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		return Principal{}, "", fmt.Errorf("exchanging the code: %w", err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return Principal{}, "", errors.New("the token response carries no id_token")
	}
	idt, err := d.verifier.Verify(a.rp.ctx(ctx), raw)
	if err != nil {
		return Principal{}, "", fmt.Errorf("verifying the ID token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(st.Nonce)) != 1 {
		return Principal{}, "", errors.New("the ID token's nonce does not match the sign-in's")
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return Principal{}, "", fmt.Errorf("reading the ID token's claims: %w", err)
	}
	if _, found := groupsFromClaims(claims, a.cfg.GroupsClaim); !found {
		a.mergeUserinfo(ctx, d, tok, idt.Subject, claims)
	}
	return a.principal(idt.Subject, claims), raw, nil
}

// mergeUserinfo adds the userinfo endpoint's claims to those of an ID token that lacks the
// groups claim (providers that keep groups out of ID tokens). The userinfo answer counts only
// for the same subject (OpenID Connect Core 5.3.2).
func (a *Authenticator) mergeUserinfo(ctx context.Context, d *discovered, tok *oauth2.Token, sub string, claims map[string]any) {
	if d.provider.UserInfoEndpoint() == "" {
		return
	}
	ui, err := d.provider.UserInfo(a.rp.ctx(ctx), oauth2.StaticTokenSource(tok))
	if err != nil {
		a.log.Info("view/auth: reading userinfo failed", zap.Error(err))
		return
	}
	extra := map[string]any{}
	if ui.Subject != sub || ui.Claims(&extra) != nil {
		return
	}
	for k, v := range extra {
		if _, ok := claims[k]; !ok {
			claims[k] = v
		}
	}
}

// principal builds the signed-in user from their claims.
func (a *Authenticator) principal(sub string, claims map[string]any) Principal {
	str := func(k string) string { s, _ := claims[k].(string); return s }
	p := Principal{Subject: sub, Email: str("email"), Via: ViaOIDC}
	for _, n := range []string{str("name"), str("preferred_username"), p.Email, sub} {
		if n != "" {
			p.Name = n
			break
		}
	}
	groups, _ := groupsFromClaims(claims, a.cfg.GroupsClaim)
	p.Role = a.roles.role(groups)
	return p
}

// serveLogout ends the session here (in Redis, so on every replica) and, when the provider
// supports it, at the provider too. It is a POST with the session's CSRF token, so that
// another site cannot sign users out.
func (a *Authenticator) serveLogout(w http.ResponseWriter, r *http.Request) {
	if a.rp == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	id, sess, err := a.cookieSession(r)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if sess == nil {
		a.clearCookie(w, a.cookies.session)
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if !validCSRF(r, sess.CSRF) {
		a.fail(w, r, http.StatusForbidden, "invalid request", "The sign-out request lacks this session's CSRF token.")
		return
	}
	if err := a.sessions.delete(r.Context(), id); err != nil {
		a.internal(w, r, err)
		return
	}
	a.clearCookie(w, a.cookies.session)
	http.Redirect(w, r, a.afterLogout(r.Context(), sess), http.StatusSeeOther)
}

// afterLogout is the provider's end_session_endpoint (RP-initiated logout) when it has one and
// it is wanted, else the view's home.
func (a *Authenticator) afterLogout(ctx context.Context, sess *session) string {
	if !a.cfg.EndSession {
		return "/"
	}
	d, err := a.rp.discover(ctx)
	if err != nil || d.endSession == "" {
		return "/"
	}
	u, err := url.Parse(d.endSession)
	if err != nil {
		return "/"
	}
	q := u.Query()
	q.Set("client_id", a.cfg.ClientID)
	if sess.IDToken != "" {
		q.Set("id_token_hint", sess.IDToken)
	}
	if a.cfg.PostLogoutRedirect != "" {
		q.Set("post_logout_redirect_uri", a.cfg.PostLogoutRedirect)
	}
	u.RawQuery = q.Encode()
	return u.String()
}
