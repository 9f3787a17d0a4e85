package auth

import (
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// THREATPIPE_VIEW_ANONYMOUS_READ_CIDRS: the networks' clients read like loopback does, never
// through a proxy and never writing.
func TestAnonymousReadCIDRs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	writeTokens(t, path, tokenFile1, time.Now().Add(-time.Hour))
	a, err := New(&Config{
		APITokensFile: path, SessionTTL: 8 * time.Hour, SessionIdle: time.Hour,
		AnonymousReadCIDRs: []string{"172.28.0.0/16", "fd00:28::/64", "198.51.100.7"},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if w := strings.Join(a.Warnings(), "\n"); !strings.Contains(w, "ANONYMOUS READ FROM NETWORKS") || !strings.Contains(w, "172.28.0.0/16,fd00:28::/64,198.51.100.7/32") {
		t.Fatalf("warnings %q", a.Warnings())
	}
	h := testMux(a)
	for _, tc := range []struct {
		name, remote, method, path string
		header                     map[string]string
		status                     int
		who                        string // the anonymous principal's name, for 200 without a token
	}{
		{"in the network reads the API", "172.28.0.1:5000", "GET", "/api/v1/who", nil, 200, "anonymous (172.28.0.0/16)"},
		{"in the network reads a page", "172.28.255.254:5000", "GET", "/", nil, 200, "anonymous (172.28.0.0/16)"},
		{"ipv4-mapped ipv6 in the network", "[::ffff:172.28.3.4]:5000", "GET", "/", nil, 200, "anonymous (172.28.0.0/16)"},
		{"ipv6 network", "[fd00:28::9]:5000", "GET", "/", nil, 200, "anonymous (fd00:28::/64)"},
		{"single address", "198.51.100.7:5000", "GET", "/", nil, 200, "anonymous (198.51.100.7/32)"},
		{"loopback still reads", "127.0.0.1:5000", "GET", "/", nil, 200, "anonymous (loopback)"},
		{"next to the network refused", "172.29.0.1:5000", "GET", "/api/v1/who", nil, 401, ""},
		{"next to the address refused", "198.51.100.8:5000", "GET", "/", nil, 401, ""},
		{"outside ipv6 refused", "[fd00:29::9]:5000", "GET", "/", nil, 401, ""},
		{"unparseable remote refused", "somewhere", "GET", "/", nil, 401, ""},
		{"proxied (X-Forwarded-For) refused", "172.28.0.1:5000", "GET", "/", map[string]string{"X-Forwarded-For": "172.28.0.9"}, 401, ""},
		{"proxied (Forwarded) refused", "172.28.0.1:5000", "GET", "/api/v1/who", map[string]string{"Forwarded": "for=172.28.0.9"}, 401, ""},
		{"proxied (X-Real-Ip) refused", "172.28.0.1:5000", "GET", "/", map[string]string{"X-Real-Ip": "172.28.0.9"}, 401, ""},
		{"proxied (X-Forwarded-Host) refused", "172.28.0.1:5000", "GET", "/", map[string]string{"X-Forwarded-Host": "tp.example.com"}, 401, ""},
		{"network cannot write", "172.28.0.1:5000", "POST", "/api/v1/ack", nil, 403, ""},
		{"network cannot administer", "172.28.0.1:5000", "POST", "/settings", map[string]string{"X-CSRF-Token": "x"}, 403, ""},
		{"a token still works from outside", "192.0.2.1:5000", "POST", "/api/v1/ack", map[string]string{"Authorization": "Bearer analyst-token-0123456789"}, 200, ""},
		{"a bad token is refused inside", "172.28.0.1:5000", "GET", "/", map[string]string{"Authorization": "Bearer nope"}, 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serveFrom(h, tc.remote, tc.method, tc.path, tc.header)
			if rec.Code != tc.status {
				t.Fatalf("%d %s, want %d", rec.Code, rec.Body, tc.status)
			}
			if tc.who != "" && !strings.Contains(rec.Body.String(), "who="+tc.who+" role=viewer via=anonymous") {
				t.Fatalf("body %s", rec.Body)
			}
			if tc.status == http.StatusUnauthorized && tc.header["Authorization"] == "" && !strings.Contains(rec.Body.String(), "172.28.0.0/16") {
				t.Fatalf("the 401 does not name the networks: %s", rec.Body)
			}
		})
	}
}

// Without the variable only loopback reads anonymously, and no network warning is logged.
func TestAnonymousReadCIDRsUnset(t *testing.T) {
	h, _, _, a := tokenApp(t, tokenFile1)
	if slices.ContainsFunc(a.Warnings(), func(w string) bool { return strings.Contains(w, "ANONYMOUS READ FROM NETWORKS") }) {
		t.Fatalf("warnings %q", a.Warnings())
	}
	if rec := serveFrom(h, "172.28.0.1:5000", "GET", "/", nil); rec.Code != http.StatusUnauthorized {
		t.Fatalf("%d", rec.Code)
	}
}

func TestAnonymousReadCIDRsConfig(t *testing.T) {
	c, err := LoadConfig([]string{"THREATPIPE_VIEW_ANONYMOUS_READ_CIDRS=172.28.0.0/16, 10.1.2.3/8,"})
	if err != nil {
		t.Fatal(err)
	}
	nets, err := c.AnonymousReadNets()
	if err != nil || len(nets) != 2 || nets[1].String() != "10.0.0.0/8" {
		t.Fatalf("%v %v", nets, err)
	}
	oidc := []string{
		"THREATPIPE_VIEW_OIDC_ISSUER=https://id.example.com/realms/soc",
		"THREATPIPE_VIEW_OIDC_CLIENT_ID=threatpipe",
		"THREATPIPE_VIEW_OIDC_REDIRECT_URL=https://tp.example.com/auth/callback",
		"THREATPIPE_VIEW_OIDC_VIEWER_GROUPS=soc",
	}
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"prefix too long", []string{"THREATPIPE_VIEW_ANONYMOUS_READ_CIDRS=10.0.0.0/33"}},
		{"a name", []string{"THREATPIPE_VIEW_ANONYMOUS_READ_CIDRS=compose"}},
		{"everyone (ipv4)", []string{"THREATPIPE_VIEW_ANONYMOUS_READ_CIDRS=0.0.0.0/0"}},
		{"everyone (ipv6)", []string{"THREATPIPE_VIEW_ANONYMOUS_READ_CIDRS=10.0.0.0/8,::/0"}},
		{"with sign-in", append(slices.Clone(oidc), "THREATPIPE_VIEW_ANONYMOUS_READ_CIDRS=10.0.0.0/8")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadConfig(tc.env)
			if err == nil || !strings.Contains(err.Error(), "THREATPIPE_VIEW_ANONYMOUS_READ_CIDRS") {
				t.Fatalf("%v", err)
			}
		})
	}
	// New refuses the same, for callers that build a Config themselves.
	if _, err := New(&Config{AnonymousReadCIDRs: []string{"10.0.0.0/33"}, SessionTTL: time.Hour, SessionIdle: time.Hour}, Options{}); err == nil || !strings.Contains(err.Error(), "ANONYMOUS_READ_CIDRS") {
		t.Fatalf("%v", err)
	}
	if _, err := New(&Config{Issuer: "https://id.example.com", AnonymousReadCIDRs: []string{"10.0.0.0/8"}, SessionTTL: time.Hour, SessionIdle: time.Hour}, Options{}); err == nil || !strings.Contains(err.Error(), "ANONYMOUS_READ_CIDRS") {
		t.Fatalf("%v", err)
	}
}
