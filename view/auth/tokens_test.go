package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serve runs one request through h from a non-loopback client (httptest's 192.0.2.1).
func serve(h http.Handler, method, target string, header map[string]string) *httptest.ResponseRecorder {
	return serveFrom(h, "", method, target, header)
}

func serveFrom(h http.Handler, remote, method, target string, header map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	if remote != "" {
		r.RemoteAddr = remote
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func digest(tok string) string {
	s := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(s[:])
}

func writeTokens(t *testing.T, path, content string, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// tokenApp is an Authenticator with a token file and no sign-in.
func tokenApp(t *testing.T, content string) (http.Handler, *fakeClock, string, *Authenticator) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	writeTokens(t, path, content, time.Now().Add(-time.Hour))
	clock := newClock()
	a, err := New(&Config{APITokensFile: path, SessionTTL: 8 * time.Hour, SessionIdle: time.Hour}, Options{Now: clock.Now, TokenCheckInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return testMux(a), clock, path, a
}

var tokenFile1 = `
- name: dashboards
  role: viewer
  sha256: ` + digest("viewer-token-0123456789") + `
- name: soar
  role: analyst
  sha256: ` + digest("analyst-token-0123456789") + `
  expires: 2099-01-01T00:00:00Z
- name: old-soar
  role: admin
  sha256: ` + strings.ToUpper(digest("expired-token-0123456789")) + `
  expires: 2020-01-01T00:00:00Z
`

func TestAPITokens(t *testing.T) {
	h, _, _, _ := tokenApp(t, tokenFile1)
	for _, tc := range []struct {
		name, method, path, auth string
		status                   int
		challenge                string // WWW-Authenticate, "" for none
		body                     string
	}{
		{"missing", "GET", "/api/v1/who", "", 401, `Bearer realm="threatpipe"`, "unauthenticated"},
		{"wrong", "GET", "/api/v1/who", "Bearer not-a-known-token", 401, `error="invalid_token"`, "unknown"},
		{"malformed", "GET", "/api/v1/who", "Bearer bad token!", 401, `error="invalid_token"`, "invalid_token"},
		{"other scheme", "GET", "/api/v1/who", "Basic dXNlcjpwYXNz", 401, `error="invalid_token"`, "invalid_token"},
		{"expired", "GET", "/api/v1/who", "Bearer expired-token-0123456789", 401, `error="invalid_token"`, "expired"},
		{"viewer reads", "GET", "/api/v1/who", "Bearer viewer-token-0123456789", 200, "", "who=dashboards role=viewer via=token sub=token:dashboards"},
		{"scheme case", "GET", "/api/v1/who", "bearer viewer-token-0123456789", 200, "", "role=viewer"},
		{"viewer cannot write", "POST", "/api/v1/ack", "Bearer viewer-token-0123456789", 403, `error="insufficient_scope"`, "needs analyst"},
		{"analyst writes without CSRF", "POST", "/api/v1/ack", "Bearer analyst-token-0123456789", 200, "", "role=analyst via=token"},
		{"analyst is no admin", "POST", "/settings", "Bearer analyst-token-0123456789", 403, `error="insufficient_scope"`, "needs admin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.auth != "" {
				hdr["Authorization"] = tc.auth
			}
			rec := serve(h, tc.method, tc.path, hdr)
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.body) {
				t.Fatalf("%d %s, want %d with %q", rec.Code, rec.Body, tc.status, tc.body)
			}
			got := rec.Header().Get("WWW-Authenticate")
			if (tc.challenge == "") != (got == "") || !strings.Contains(got, tc.challenge) {
				t.Fatalf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
		})
	}
}

func TestAPITokensReload(t *testing.T) {
	h, clock, path, _ := tokenApp(t, tokenFile1)
	get := func(tok string) int {
		return serve(h, "GET", "/api/v1/who", map[string]string{"Authorization": "Bearer " + tok}).Code
	}
	if get("viewer-token-0123456789") != 200 || get("rotated-token-0123456789") != 401 {
		t.Fatal("before rotation")
	}
	// Rotation: the viewer token is replaced. Until the check interval passes the old file holds.
	writeTokens(t, path, "- {name: dashboards, role: viewer, sha256: "+digest("rotated-token-0123456789")+"}\n", time.Now())
	if get("viewer-token-0123456789") != 200 {
		t.Fatal("reloaded before the interval")
	}
	clock.Advance(2 * time.Second)
	if get("viewer-token-0123456789") != 401 || get("rotated-token-0123456789") != 200 {
		t.Fatal("rotation not applied")
	}
	// A broken file grants nothing until fixed.
	writeTokens(t, path, "- {name: dashboards, role: superuser, sha256: "+digest("rotated-token-0123456789")+"}\n", time.Now().Add(time.Minute))
	clock.Advance(2 * time.Second)
	if get("rotated-token-0123456789") != 401 {
		t.Fatal("an invalid file still grants")
	}
	writeTokens(t, path, "- {name: dashboards, role: viewer, sha256: "+digest("rotated-token-0123456789")+"}\n", time.Now().Add(2*time.Minute))
	clock.Advance(2 * time.Second)
	if get("rotated-token-0123456789") != 200 {
		t.Fatal("the fixed file is not used")
	}
}

func TestParseTokens(t *testing.T) {
	ok := "- {name: a, role: viewer, sha256: " + digest("a") + "}\n"
	for _, tc := range []struct {
		name, content, err string
	}{
		{"valid", ok, ""},
		{"empty", "", ""},
		{"unknown field", "- {name: a, role: viewer, sha256: " + digest("a") + ", token: plain}\n", "not a YAML list"},
		{"bad role", "- {name: a, role: root, sha256: " + digest("a") + "}\n", "not one of viewer"},
		{"short digest", "- {name: a, role: viewer, sha256: abcd}\n", "64 hex digits"},
		{"bad expiry", "- {name: a, role: viewer, sha256: " + digest("a") + ", expires: tomorrow}\n", "RFC 3339"},
		{"no name", "- {role: viewer, sha256: " + digest("a") + "}\n", "name must be"},
		{"duplicate name", ok + "- {name: a, role: admin, sha256: " + digest("b") + "}\n", "used twice"},
		{"duplicate digest", ok + "- {name: b, role: admin, sha256: " + digest("a") + "}\n", "same sha256"},
		{"a map, not a list", "name: a\n", "not a YAML list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseTokens([]byte(tc.content))
			if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
		})
	}
}

// New refuses an invalid token file at start.
func TestNewRefusesBadTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	writeTokens(t, path, "- {name: a, role: boss, sha256: x}\n", time.Now())
	_, err := New(&Config{APITokensFile: path, SessionTTL: time.Hour, SessionIdle: time.Hour}, Options{})
	if err == nil || !strings.Contains(err.Error(), "THREATPIPE_VIEW_API_TOKENS_FILE") {
		t.Fatalf("%v", err)
	}
}

func TestAnonymousLoopbackOnly(t *testing.T) {
	h, _, _, a := tokenApp(t, tokenFile1)
	if len(a.Warnings()) == 0 || !strings.Contains(a.Warnings()[0], "NO SIGN-IN") {
		t.Fatalf("warnings %q", a.Warnings())
	}
	for _, tc := range []struct {
		name, remote, method, path string
		header                     map[string]string
		status                     int
	}{
		{"ipv4 loopback reads", "127.0.0.1:5000", "GET", "/api/v1/who", nil, 200},
		{"ipv6 loopback reads a page", "[::1]:5000", "GET", "/", nil, 200},
		{"127/8 reads", "127.9.8.7:5000", "GET", "/", nil, 200},
		{"remote refused", "192.0.2.1:5000", "GET", "/api/v1/who", nil, 401},
		{"remote page refused, no redirect", "10.0.0.1:5000", "GET", "/", nil, 401},
		{"proxied refused", "127.0.0.1:5000", "GET", "/", map[string]string{"X-Forwarded-For": "203.0.113.9"}, 401},
		{"proxied (Forwarded) refused", "127.0.0.1:5000", "GET", "/", map[string]string{"Forwarded": "for=203.0.113.9"}, 401},
		{"loopback cannot write", "127.0.0.1:5000", "POST", "/api/v1/ack", nil, 403},
		{"loopback is only viewer", "127.0.0.1:5000", "POST", "/settings", map[string]string{"X-CSRF-Token": "x"}, 403},
		{"a token still works remotely", "192.0.2.1:5000", "POST", "/api/v1/ack", map[string]string{"Authorization": "Bearer analyst-token-0123456789"}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serveFrom(h, tc.remote, tc.method, tc.path, tc.header)
			if rec.Code != tc.status {
				t.Fatalf("%d %s, want %d", rec.Code, rec.Body, tc.status)
			}
			if rec.Code == 200 && tc.header["Authorization"] == "" && !strings.Contains(rec.Body.String(), "role=viewer via=anonymous") {
				t.Fatalf("body %s", rec.Body)
			}
		})
	}
	if rec := serveFrom(h, "127.0.0.1:1", "GET", LoginPath, nil); rec.Code != http.StatusNotFound {
		t.Fatalf("login without sign-in configured: %d", rec.Code)
	}
}
