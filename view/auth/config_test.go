package auth

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadConfigDefaults(t *testing.T) {
	c, err := LoadConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.OIDCEnabled() || c.SessionTTL != 8*time.Hour || c.SessionIdle != time.Hour || c.GroupsClaim != "groups" ||
		!slices.Equal(c.Scopes, []string{"openid", "profile", "email", "groups"}) || !c.EndSession {
		t.Fatalf("%+v", c)
	}
}

func TestLoadConfig(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{
		"THREATPIPE_VIEW_OIDC_ISSUER=https://id.example.com/realms/soc",
		"THREATPIPE_VIEW_OIDC_CLIENT_ID=threatpipe",
		"THREATPIPE_VIEW_OIDC_REDIRECT_URL=https://tp.example.com/auth/callback",
		"THREATPIPE_VIEW_OIDC_ADMIN_GROUPS=soc-admins, ",
		"THREATPIPE_VIEW_OIDC_VIEWER_GROUPS=soc,noc",
	}
	c, err := LoadConfig(append(base, "THREATPIPE_VIEW_OIDC_CLIENT_SECRET_FILE="+secret))
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientSecret.Reveal() != "s3cret" || !slices.Equal(c.AdminGroups, []string{"soc-admins"}) || len(c.ViewerGroups) != 2 {
		t.Fatalf("%+v", c)
	}
	for _, tc := range []struct {
		name  string
		env   []string
		names []string // variables the error must name
	}{
		{"both secrets", []string{"THREATPIPE_VIEW_OIDC_CLIENT_SECRET=x", "THREATPIPE_VIEW_OIDC_CLIENT_SECRET_FILE=" + secret}, []string{"OIDC_CLIENT_SECRET_FILE"}},
		{"missing secret file", []string{"THREATPIPE_VIEW_OIDC_CLIENT_SECRET_FILE=/nonexistent/x"}, []string{"OIDC_CLIENT_SECRET_FILE"}},
		{"http issuer", []string{"THREATPIPE_VIEW_OIDC_ISSUER=http://id.example.com"}, []string{"OIDC_ISSUER"}},
		{"http redirect elsewhere", []string{"THREATPIPE_VIEW_OIDC_REDIRECT_URL=http://tp.example.com/auth/callback"}, []string{"OIDC_REDIRECT_URL"}},
		{"wrong callback path", []string{"THREATPIPE_VIEW_OIDC_REDIRECT_URL=https://tp.example.com/callback"}, []string{"OIDC_REDIRECT_URL"}},
		{"no openid scope", []string{"THREATPIPE_VIEW_OIDC_SCOPES=profile,email"}, []string{"OIDC_SCOPES"}},
		{"no groups mapped", []string{"THREATPIPE_VIEW_OIDC_ADMIN_GROUPS=", "THREATPIPE_VIEW_OIDC_VIEWER_GROUPS="}, []string{"OIDC_VIEWER_GROUPS"}},
		{"idle beyond ttl", []string{"THREATPIPE_VIEW_SESSION_TTL=1h", "THREATPIPE_VIEW_SESSION_IDLE=2h"}, []string{"SESSION_IDLE"}},
		{"bad duration", []string{"THREATPIPE_VIEW_SESSION_TTL=forever"}, []string{"SESSION_TTL"}},
		{"missing tokens file", []string{"THREATPIPE_VIEW_API_TOKENS_FILE=/nonexistent/tokens.yaml"}, []string{"API_TOKENS_FILE"}},
		{"bad logout url", []string{"THREATPIPE_VIEW_OIDC_POST_LOGOUT_REDIRECT_URL=/bye"}, []string{"OIDC_POST_LOGOUT_REDIRECT_URL"}},
		{"client id without issuer", []string{"THREATPIPE_VIEW_OIDC_ISSUER="}, []string{"OIDC_ISSUER"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadConfig(append(slices.Clone(base), tc.env...))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, n := range tc.names {
				if !strings.Contains(err.Error(), ConfigPrefix+n) {
					t.Fatalf("%v does not name %s", err, n)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatal("the secret leaked into an error")
			}
		})
	}
	// Development on this host: http on loopback is accepted.
	dev := append(slices.Clone(base), "THREATPIPE_VIEW_OIDC_ISSUER=http://127.0.0.1:5556/dex", "THREATPIPE_VIEW_OIDC_REDIRECT_URL=http://localhost:8080/auth/callback")
	if _, err := LoadConfig(dev); err != nil {
		t.Fatal(err)
	}
}

func TestVarsDocumented(t *testing.T) {
	for _, v := range Vars() {
		if v.Description == "" || !strings.HasPrefix(v.Name, ConfigPrefix) {
			t.Errorf("%s has no description", v.Name)
		}
	}
}

func TestRoleFromClaims(t *testing.T) {
	m := newRoleMap(&Config{AdminGroups: []string{"adm"}, AnalystGroups: []string{"ana"}, ViewerGroups: []string{"view"}})
	for _, tc := range []struct {
		name   string
		claims map[string]any
		claim  string
		want   Role
	}{
		{"list", map[string]any{"groups": []any{"x", "view", "ana"}}, "groups", RoleAnalyst},
		{"admin wins", map[string]any{"groups": []any{"view", "adm", "ana"}}, "groups", RoleAdmin},
		{"one string", map[string]any{"groups": "view"}, "groups", RoleViewer},
		{"none", map[string]any{"groups": []any{"x"}}, "groups", RoleNone},
		{"absent", map[string]any{}, "groups", RoleNone},
		{"not strings", map[string]any{"groups": []any{1, true, map[string]any{}}}, "groups", RoleNone},
		{"nested (Keycloak realm roles)", map[string]any{"realm_access": map[string]any{"roles": []any{"adm"}}}, "realm_access.roles", RoleAdmin},
		{"dotted top-level name", map[string]any{"https://example.com/groups": []any{"ana"}}, "https://example.com/groups", RoleAnalyst},
		{"case matters", map[string]any{"groups": []any{"ADM"}}, "groups", RoleNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, _ := groupsFromClaims(tc.claims, tc.claim)
			if got := m.role(g); got != tc.want {
				t.Fatalf("%v, want %v", got, tc.want)
			}
		})
	}
	for _, s := range []string{"viewer", "Analyst", " ADMIN "} {
		if _, err := ParseRole(s); err != nil {
			t.Error(err)
		}
	}
	if _, err := ParseRole("none"); err == nil {
		t.Error("none parsed as a role")
	}
}
