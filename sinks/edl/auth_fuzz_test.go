package edl

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

// FuzzAuthorized feeds arbitrary Authorization fields (client input) to the authenticator: it
// never panics, and accepts only the configured user and password or token.
func FuzzAuthorized(f *testing.F) {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("pan:"+testPassword))
	for _, seed := range []string{basic, "Bearer " + testToken, "bearer  " + testToken + " ", "Basic", "Basic !!!", "Bearer", "Basic " + base64.StdEncoding.EncodeToString([]byte("pan")),
		"Basic " + base64.StdEncoding.EncodeToString([]byte(":")), "Digest x", "", " ", "Bearer \x00"} {
		f.Add(seed)
	}
	a := newAuthenticator(&Config{Username: "pan", Password: testPassword, Token: testToken})
	f.Fuzz(func(t *testing.T, field string) {
		r := &http.Request{Header: http.Header{"Authorization": {field}}}
		if !a.authorized(r) {
			return
		}
		user, pass, ok := r.BasicAuth()
		if (ok && user == "pan" && pass == testPassword) || tokenOf(field) == testToken {
			return
		}
		t.Fatalf("accepted %q", field)
	})
}

// tokenOf is the token of a Bearer field as the authenticator reads it.
func tokenOf(field string) string {
	scheme, rest, _ := strings.Cut(field, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(rest)
}
