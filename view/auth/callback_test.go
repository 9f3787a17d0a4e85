package auth

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/threatpipe/threatpipe/view/auth/authtest"
)

// stopAtCallback is a browser that stops before the relying party's callback, so the test
// holds the provider's answer (code and state) in hand.
func stopAtCallback(t *testing.T) *http.Client {
	c := browser(t)
	c.CheckRedirect = func(r *http.Request, _ []*http.Request) error {
		if r.URL.Path == CallbackPath {
			return http.ErrUseLastResponse
		}
		return nil
	}
	return c
}

// answer signs user in with c up to the callback and returns the callback URL.
func (w *world) answer(c *http.Client, user string) *url.URL {
	w.t.Helper()
	resp, err := w.op.SignIn(context.Background(), c, w.url+LoginPath, user, "pw-"+user)
	if err != nil {
		w.t.Fatal(err)
	}
	readBody(w.t, resp)
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || u.Path != CallbackPath || u.Query().Get("code") == "" {
		w.t.Fatalf("no callback with a code: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return u
}

func withQuery(u *url.URL, code, state string) string {
	v := url.Values{"code": {code}, "state": {state}}
	return u.Scheme + "://" + u.Host + u.Path + "?" + v.Encode()
}

func TestCallbackRefusals(t *testing.T) {
	w := newWorld(t, nil)
	for _, tc := range []struct {
		name   string
		run    func(t *testing.T) (int, string)
		status int
		says   string
		stored int // sessions the case stores (the first use of a code twice used)
	}{
		{"state mismatch", func(t *testing.T) (int, string) {
			c := stopAtCallback(t)
			cb := w.answer(c, "carol")
			status, body, _ := do(t, c, "GET", withQuery(cb, cb.Query().Get("code"), "forged-state"), nil, nil)
			return status, body
		}, http.StatusBadRequest, "does not belong to this sign-in", 0},
		{"no login cookie", func(t *testing.T) (int, string) {
			cb := w.answer(stopAtCallback(t), "carol")
			status, body, _ := do(t, browser(t), "GET", cb.String(), nil, nil)
			return status, body
		}, http.StatusBadRequest, "unknown or expired", 0},
		{"tampered login cookie", func(t *testing.T) (int, string) {
			c := stopAtCallback(t)
			cb := w.answer(c, "carol")
			app, _ := url.Parse(w.url)
			ck := c.Jar.Cookies(app)[0]
			v := []byte(ck.Value)
			v[len(v)/2] ^= 1
			status, body, _ := do(t, http.DefaultClient, "GET", cb.String(), nil, map[string]string{"Cookie": ck.Name + "=" + string(v)})
			return status, body
		}, http.StatusBadRequest, "unknown or expired", 0},
		{"code injected from another sign-in (PKCE)", func(t *testing.T) (int, string) {
			// The victim started a sign-in (their cookie, state and verifier); the attacker
			// finished one of their own and plants its code with the victim's state.
			victim := stopAtCallback(t)
			victimState := w.startState(victim)
			attacker := w.answer(stopAtCallback(t), "alice")
			status, body, _ := do(t, victim, "GET", withQuery(attacker, attacker.Query().Get("code"), victimState), nil, nil)
			return status, body
		}, http.StatusUnauthorized, "could not be verified", 0},
		{"code used twice", func(t *testing.T) (int, string) {
			c := stopAtCallback(t)
			cb := w.answer(c, "carol")
			app, _ := url.Parse(w.url)
			ck := c.Jar.Cookies(app)[0]
			if status, body, _ := do(t, c, "GET", cb.String(), nil, nil); status != http.StatusOK {
				t.Fatalf("first use: %d %s", status, body)
			}
			status, body, _ := do(t, http.DefaultClient, "GET", cb.String(), nil, map[string]string{"Cookie": ck.Name + "=" + ck.Value})
			return status, body
		}, http.StatusUnauthorized, "could not be verified", 1},
		{"provider error", func(t *testing.T) (int, string) {
			c := stopAtCallback(t)
			w.startState(c)
			status, body, _ := do(t, c, "GET", w.url+CallbackPath+"?error=access_denied&state=x", nil, nil)
			return status, body
		}, http.StatusUnauthorized, "access_denied", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := w.sessionKeys()
			status, body := tc.run(t)
			if status != tc.status || !strings.Contains(body, tc.says) {
				t.Fatalf("%d %q, want %d saying %q", status, body, tc.status, tc.says)
			}
			if w.sessionKeys() != before+tc.stored {
				t.Fatal("a refused callback stored a session")
			}
		})
	}
}

// startState opens /auth/login with c (setting its login cookie) and returns the state sent
// to the provider.
func (w *world) startState(c *http.Client) string {
	w.t.Helper()
	noFollow := *c
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	status, _, h := do(w.t, &noFollow, "GET", w.url+LoginPath, nil, nil)
	loc, err := url.Parse(h.Get("Location"))
	if status != http.StatusFound || err != nil {
		w.t.Fatalf("login: %d %q", status, h.Get("Location"))
	}
	q := loc.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" {
		w.t.Fatalf("the authorization request lacks PKCE or a nonce: %s", loc)
	}
	return q.Get("state")
}

// A provider that puts another nonce into the ID token (a replayed token) is refused.
func TestNonceMismatch(t *testing.T) {
	w := newWorld(t, func(_ *Config, o *authtest.Options) { o.NonceOverride = "replayed-nonce" })
	status, page := w.signIn(browser(t), "alice")
	if status != http.StatusUnauthorized || !strings.Contains(page, "could not be verified") || w.sessionKeys() != 0 {
		t.Fatalf("%d %s", status, page)
	}
}

// A second replica (another Authenticator on the same Redis) finishes a sign-in the first
// started, and honours the session.
func TestReplicasShare(t *testing.T) {
	w := newWorld(t, nil)
	other, err := New(&w.a.cfg, Options{Redis: w.rdb, KeyPrefix: w.prefix, Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	c := stopAtCallback(t)
	cb := w.answer(c, "bob")
	rec := serve(testMux(other), "GET", cb.RequestURI(), cookieHeader(t, c, w.url))
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("callback on the other replica: %d %s", rec.Code, rec.Body)
	}
	sid := rec.Result().Cookies()[len(rec.Result().Cookies())-1]
	status, body, _ := do(t, http.DefaultClient, "GET", w.url+"/api/v1/who", nil, map[string]string{"Cookie": sid.Name + "=" + sid.Value})
	if status != http.StatusOK || !strings.Contains(body, "role=analyst") {
		t.Fatalf("first replica: %d %s", status, body)
	}
}

func cookieHeader(t *testing.T, c *http.Client, base string) map[string]string {
	u, _ := url.Parse(base)
	var parts []string
	for _, ck := range c.Jar.Cookies(u) {
		parts = append(parts, ck.Name+"="+ck.Value)
	}
	return map[string]string{"Cookie": strings.Join(parts, "; ")}
}
