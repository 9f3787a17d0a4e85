package auth

import (
	"strings"
	"testing"
	"time"
)

// FuzzParseTokens: any file either is refused or yields valid, distinct entries with a real
// role; nothing panics.
func FuzzParseTokens(f *testing.F) {
	f.Add([]byte(tokenFile1))
	f.Add([]byte(""))
	f.Add([]byte("- {name: a, role: viewer, sha256: " + digest("a") + "}\n"))
	f.Add([]byte("- {name: a, role: viewer, sha256: " + digest("a") + ", expires: 2027-01-01T00:00:00+02:00}\n"))
	f.Add([]byte("- name: a\n  role: admin\n  sha256: " + digest("a") + "\n- name: a\n  role: viewer\n  sha256: " + digest("b") + "\n"))
	f.Add([]byte("tokens: [1, 2]"))
	f.Add([]byte("- &x {name: a}\n- *x\n"))
	f.Add([]byte("- {name: \"\\u0000\", role: viewer, sha256: zz}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		toks, err := parseTokens(b)
		if err != nil {
			return
		}
		names := map[string]bool{}
		for _, tk := range toks {
			if tk.name == "" || names[tk.name] || tk.role < RoleViewer || tk.role > RoleAdmin {
				t.Fatalf("accepted a bad entry %+v", tk)
			}
			names[tk.name] = true
		}
		st := &tokenState{tokens: toks}
		if _, err := st.lookup("definitely-not-a-token", time.Now()); err == nil && len(toks) > 0 {
			t.Fatal("an unknown token matched")
		}
	})
}

// FuzzParseSessionID: a cookie value is accepted only in the exact shape of an issued id.
func FuzzParseSessionID(f *testing.F) {
	id, _ := randomString(sessionIDBytes)
	for _, s := range []string{id, "", "short", id + "x", strings.Repeat("A", sessionIDLen), strings.Repeat("=", sessionIDLen), id[:sessionIDLen-1] + "/", "\x00" + id[1:]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, ok := parseSessionID(v)
		if !ok {
			return
		}
		if got != v || len(v) != sessionIDLen || strings.ContainsAny(v, "+/=. \x00:*?[]") {
			t.Fatalf("accepted %q", v)
		}
	})
}

// FuzzBearerToken: a header yields a token only for the Bearer scheme and a token68 value.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer abc", "Basic abc", "Bearer", "Bearer ", "Bearer a b", "Bearer  abc", "Bearer a\r\nX: y", "Bearer " + strings.Repeat("a", 5000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, ok := bearerToken(h)
		if !ok {
			return
		}
		if tok == "" || len(tok) > 4096 || strings.ContainsAny(tok, " \t\r\n\"\\,") {
			t.Fatalf("accepted %q from %q", tok, h)
		}
	})
}
