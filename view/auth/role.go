// Package auth is the analyst console's sign-in and authorisation layer: OpenID Connect sign-in
// (authorization code flow with PKCE) with server-side sessions in Redis, roles mapped from the
// provider's groups claim, CSRF tokens for cookie sessions, and bearer API tokens for
// automation. The view mounts /auth/* with Register and wraps its routes with Require or
// Optional; handlers read the caller with FromContext.
package auth

import (
	"context"
	"encoding"
	"fmt"
	"net/http"
	"strings"
)

// Role is what a caller may do; each role includes the ones below it.
type Role int

// The roles, lowest first. RoleNone is no role at all (refused everywhere).
const (
	RoleNone Role = iota
	RoleViewer
	RoleAnalyst
	RoleAdmin
)

// Roles are stored in sessions as text.
var (
	_ encoding.TextMarshaler   = Role(0)
	_ encoding.TextUnmarshaler = (*Role)(nil)
	_ fmt.Stringer             = Role(0)
)

var roleNames = [...]string{RoleNone: "none", RoleViewer: "viewer", RoleAnalyst: "analyst", RoleAdmin: "admin"}

// String returns the role's name.
func (r Role) String() string {
	if r < RoleNone || r > RoleAdmin {
		return fmt.Sprintf("role(%d)", int(r))
	}
	return roleNames[r]
}

// ParseRole reads viewer, analyst or admin (case-insensitive).
func ParseRole(s string) (Role, error) {
	for r := RoleViewer; r <= RoleAdmin; r++ {
		if strings.EqualFold(strings.TrimSpace(s), roleNames[r]) {
			return r, nil
		}
	}
	return RoleNone, fmt.Errorf("role %q is not one of viewer, analyst, admin", s)
}

// MarshalText writes the role's name (sessions are stored as JSON).
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads a role's name.
func (r *Role) UnmarshalText(b []byte) error {
	v, err := ParseRole(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// How a principal authenticated.
const (
	ViaOIDC      = "oidc"
	ViaToken     = "token"
	ViaAnonymous = "anonymous"
)

// Principal is who a request comes from.
type Principal struct {
	Name    string `json:"name"`
	Email   string `json:"email,omitempty"`
	Subject string `json:"sub"`
	Role    Role   `json:"role"`
	Via     string `json:"via"`
}

// Has says whether p's role includes want.
func (p Principal) Has(want Role) bool { return want > RoleNone && p.Role >= want }

// ctxKey keys the request's authentication in its context.
type ctxKey struct{}

// authInfo is what the middleware learned about a request.
type authInfo struct {
	principal Principal
	csrf      string // the session's CSRF token; empty for tokens and anonymous callers
}

func withInfo(ctx context.Context, info authInfo) context.Context {
	return context.WithValue(ctx, ctxKey{}, info)
}

// FromContext returns the request's principal, set by Require or Optional; ok is false for an
// unauthenticated request under Optional (or outside the middleware).
func FromContext(ctx context.Context) (p Principal, ok bool) {
	info, ok := ctx.Value(ctxKey{}).(authInfo)
	return info.principal, ok
}

// CSRFToken returns the token a page must embed in its forms (as the csrf_token field) or send
// as the X-CSRF-Token header for state-changing requests of a signed-in user; empty when the
// request has no cookie session.
func CSRFToken(r *http.Request) string {
	info, _ := r.Context().Value(ctxKey{}).(authInfo)
	return info.csrf
}

// roleMap maps provider groups to roles.
type roleMap struct {
	admin, analyst, viewer map[string]bool
}

func newRoleMap(c *Config) roleMap {
	set := func(l []string) map[string]bool {
		m := make(map[string]bool, len(l))
		for _, g := range l {
			m[g] = true
		}
		return m
	}
	return roleMap{admin: set(c.AdminGroups), analyst: set(c.AnalystGroups), viewer: set(c.ViewerGroups)}
}

// role returns the highest role any of groups maps to, RoleNone when none does.
func (m roleMap) role(groups []string) Role {
	best := RoleNone
	for _, g := range groups {
		switch {
		case m.admin[g]:
			return RoleAdmin
		case m.analyst[g]:
			best = RoleAnalyst
		case m.viewer[g] && best < RoleViewer:
			best = RoleViewer
		}
	}
	return best
}

// groupsFromClaims reads the groups claim: name as a top-level claim first (URL-like names such
// as https://example.com/groups contain dots), then as a dotted path into nested objects. A
// single string counts as one group; anything else as none.
func groupsFromClaims(claims map[string]any, name string) (groups []string, found bool) {
	v, ok := claims[name]
	if !ok {
		v, ok = claimPath(claims, name)
	}
	if !ok {
		return nil, false
	}
	switch t := v.(type) {
	case string:
		return []string{t}, true
	case []any:
		for _, e := range t {
			if s, ok := e.(string); ok {
				groups = append(groups, s)
			}
		}
		return groups, true
	}
	return nil, true
}

func claimPath(claims map[string]any, path string) (any, bool) {
	var cur any = claims
	for part := range strings.SplitSeq(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}
