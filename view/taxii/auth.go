package taxii

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
)

// Credentials files (mounted from Kubernetes Secrets). One entry a line; blank lines and lines
// starting with # are ignored; the optional last field restricts the entry to some collections
// (aliases, comma-separated; absent or * for all):
//
//	users file:  <name>:sha256:<hex sha256 of the password>[:<collections>]
//	tokens file: <name>:<hex sha256 of the token>[:<collections>]
//
// Only digests are stored, so the files reveal no secret. Bearer tokens should be long random
// strings (openssl rand -hex 32), for which an unsalted digest is enough; passwords are hashed
// the same way, so prefer tokens, or long random passwords.

// maxCredentialsFile bounds a credentials file.
const maxCredentialsFile = 1 << 20

// credential is one user's or token's digest and the collections it may read.
type credential struct {
	name        string
	digest      [sha256.Size]byte
	collections map[string]bool // nil: every collection
}

// Principal is who a request comes from.
type Principal struct {
	Name        string
	collections map[string]bool
}

// may says whether p may read c.
func (p *Principal) may(c Collection) bool {
	return p != nil && (p.collections == nil || p.collections[c.Alias])
}

// Auth checks a request's credentials.
type Auth struct {
	users  map[string]credential
	tokens []credential
	// anonymousLoopback lets requests without credentials from loopback addresses in.
	anonymousLoopback bool
}

// NewAuth loads the users and tokens files (either may be ""). With neither, only anonymous
// loopback access can succeed, and only when allowed.
func NewAuth(usersFile, tokensFile string, anonymousLoopback bool) (*Auth, error) {
	a := &Auth{users: map[string]credential{}, anonymousLoopback: anonymousLoopback}
	if usersFile != "" {
		creds, err := loadCredentials(usersFile, true)
		if err != nil {
			return nil, &FileError{Users: true, Err: err}
		}
		for _, c := range creds {
			a.users[c.name] = c
		}
	}
	if tokensFile != "" {
		creds, err := loadCredentials(tokensFile, false)
		if err != nil {
			return nil, &FileError{Err: err}
		}
		a.tokens = creds
	}
	return a, nil
}

// FileError is a users file's (Users) or tokens file's error, so the caller can name the
// setting that points at it.
type FileError struct {
	Users bool
	Err   error
}

func (e *FileError) Error() string { return e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// Empty says whether no credential is configured.
func (a *Auth) Empty() bool { return len(a.users) == 0 && len(a.tokens) == 0 }

func loadCredentials(path string, users bool) ([]credential, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if len(raw) > maxCredentialsFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxCredentialsFile)
	}
	creds, err := ParseCredentials(raw, users)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return creds, nil
}

// ParseCredentials parses a users file (users true) or a tokens file. Errors name the line, never
// its content (it may be a misplaced secret).
func ParseCredentials(raw []byte, users bool) ([]credential, error) {
	var out []credential
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 4096), maxCredentialsFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		c, err := parseCredential(line, users)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if users && seen[c.name] {
			return nil, fmt.Errorf("line %d: user %q is listed twice", n, c.name)
		}
		seen[c.name] = true
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	return out, nil
}

func parseCredential(line string, users bool) (credential, error) {
	f := strings.Split(line, ":")
	if users { // name:sha256:hex[:collections]
		if len(f) < 3 || len(f) > 4 || f[1] != "sha256" {
			return credential{}, fmt.Errorf("not <name>:sha256:<hex digest>[:<collections>] (bcrypt is not supported)")
		}
		f = append(f[:1], f[2:]...)
	} else if len(f) < 2 || len(f) > 3 { // name:hex[:collections]
		return credential{}, fmt.Errorf("not <name>:<hex sha256 digest>[:<collections>]")
	}
	c := credential{name: f[0]}
	if c.name == "" || strings.ContainsAny(c.name, " \t") {
		return credential{}, fmt.Errorf("the name is empty or has spaces")
	}
	d, err := hex.DecodeString(f[1])
	if err != nil || len(d) != sha256.Size {
		return credential{}, fmt.Errorf("the digest is not 64 hex digits")
	}
	copy(c.digest[:], d)
	if len(f) == 3 && f[2] != "*" {
		c.collections = map[string]bool{}
		for _, a := range strings.Split(f[2], ",") {
			if !isAlias(strings.TrimSpace(a)) {
				return credential{}, fmt.Errorf("collection %q is not one of all, critical, high, medium, low", a)
			}
			c.collections[strings.TrimSpace(a)] = true
		}
	}
	return c, nil
}

// isAlias says whether a is a collection's alias.
func isAlias(a string) bool {
	for _, c := range Collections() {
		if c.Alias == a {
			return true
		}
	}
	return false
}

// Authenticate returns the request's principal, or false when it must be refused (401).
func (a *Auth) Authenticate(r *http.Request) (*Principal, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if a.anonymousLoopback && loopback(r.RemoteAddr) {
			return &Principal{Name: "anonymous"}, true
		}
		return nil, false
	}
	if user, pass, ok := r.BasicAuth(); ok {
		c, found := a.users[user]
		d := sha256.Sum256([]byte(pass))
		// Compared even for an unknown user, so the time does not tell which users exist.
		if subtle.ConstantTimeCompare(d[:], c.digest[:]) == 1 && found {
			return &Principal{Name: c.name, collections: c.collections}, true
		}
		return nil, false
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return nil, false
	}
	d := sha256.Sum256([]byte(strings.TrimSpace(token)))
	var match *credential
	for i := range a.tokens { // every token compared: the time does not depend on which matched
		if subtle.ConstantTimeCompare(d[:], a.tokens[i].digest[:]) == 1 {
			match = &a.tokens[i]
		}
	}
	if match == nil {
		return nil, false
	}
	return &Principal{Name: match.name, collections: match.collections}, true
}

// loopback says whether a request's remote address is a loopback address.
func loopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type principalKey struct{}

func withPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

func principalOf(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
