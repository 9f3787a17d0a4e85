package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"gopkg.in/yaml.v3"
)

// The API tokens file (THREATPIPE_VIEW_API_TOKENS_FILE), a mounted Kubernetes Secret, lists
// the tokens automation may send as Authorization: Bearer <token>:
//
//	- name: soar                # who, for logs and the principal's Name
//	  role: analyst             # viewer, analyst or admin
//	  sha256: 9f86d081...       # hex SHA-256 of the token; the token itself is never stored
//	  expires: 2027-01-01T00:00:00Z   # optional, RFC 3339
//
// Tokens should be long random strings (openssl rand -hex 32), for which an unsalted digest is
// enough: nobody can guess back from it. Unknown fields, duplicate names or digests, and bad
// roles make the whole file invalid: a file that does not say exactly what it means grants
// nothing (once running, an invalid file is logged and refuses every token until fixed).

// maxTokenFile bounds the file: thousands of tokens fit in far less.
const maxTokenFile = 1 << 20

// apiToken is one entry of the file.
type apiToken struct {
	name    string
	role    Role
	digest  [sha256.Size]byte
	expires time.Time // zero: never
}

type tokenEntry struct {
	Name    string `yaml:"name"`
	Role    string `yaml:"role"`
	SHA256  string `yaml:"sha256"`
	Expires string `yaml:"expires"`
}

// parseTokens reads a tokens file's content.
func parseTokens(b []byte) ([]apiToken, error) {
	if len(b) > maxTokenFile {
		return nil, fmt.Errorf("larger than %d bytes", maxTokenFile)
	}
	var entries []tokenEntry
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&entries); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("not a YAML list of {name, role, sha256, expires}: %w", err)
	}
	names, digests := map[string]bool{}, map[[sha256.Size]byte]bool{}
	out := make([]apiToken, 0, len(entries))
	for i, e := range entries {
		t, err := e.parse()
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		if names[t.name] {
			return nil, fmt.Errorf("entry %d: the name %q is used twice", i+1, t.name)
		}
		if digests[t.digest] {
			return nil, fmt.Errorf("entry %d (%s): the same sha256 as an earlier entry", i+1, t.name)
		}
		names[t.name], digests[t.digest] = true, true
		out = append(out, t)
	}
	return out, nil
}

func (e tokenEntry) parse() (apiToken, error) {
	t := apiToken{name: strings.TrimSpace(e.Name)}
	if t.name == "" || len(t.name) > 200 || strings.ContainsAny(t.name, "\r\n\x00") {
		return t, errors.New("name must be 1-200 characters on one line")
	}
	var err error
	if t.role, err = ParseRole(e.Role); err != nil {
		return t, fmt.Errorf("%s: %w", t.name, err)
	}
	raw, err := hex.DecodeString(strings.TrimSpace(e.SHA256))
	if err != nil || len(raw) != sha256.Size {
		return t, fmt.Errorf("%s: sha256 must be 64 hex digits (sha256sum of the token)", t.name)
	}
	copy(t.digest[:], raw)
	if e.Expires != "" {
		if t.expires, err = time.Parse(time.RFC3339, strings.TrimSpace(e.Expires)); err != nil {
			return t, fmt.Errorf("%s: expires %q is not an RFC 3339 time (2027-01-01T00:00:00Z)", t.name, e.Expires)
		}
	}
	return t, nil
}

// tokenFile is the file's current tokens, reloaded when it changes: at most every interval, a
// request stats it, and a changed modification time or size reads it again.
type tokenFile struct {
	path     string
	interval time.Duration
	log      *zap.Logger

	state    atomic.Pointer[tokenState]
	reloadMu sync.Mutex // one reload at a time; other requests use the current state
}

// tokenState is one reading of the file; err set means it was invalid and grants nothing.
type tokenState struct {
	tokens    []apiToken
	err       error
	modTime   time.Time
	size      int64
	checkedAt time.Time
}

func openTokenFile(path string, interval time.Duration, log *zap.Logger) (*tokenFile, error) {
	tf := &tokenFile{path: path, interval: interval, log: log}
	st := tf.read(time.Now())
	if st.err != nil {
		return nil, st.err
	}
	tf.state.Store(st)
	return tf, nil
}

// read stats and parses the file.
func (tf *tokenFile) read(now time.Time) *tokenState {
	st := &tokenState{checkedAt: now}
	fi, err := os.Stat(tf.path)
	if err != nil {
		st.err = err
		return st
	}
	st.modTime, st.size = fi.ModTime(), fi.Size()
	f, err := os.Open(tf.path)
	if err != nil {
		st.err = err
		return st
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		st.err = fmt.Errorf("reading %s: %w", tf.path, err)
		return st
	}
	if st.tokens, err = parseTokens(b); err != nil {
		st.err = fmt.Errorf("%s: %w", tf.path, err)
	}
	return st
}

// current returns the tokens, reloading the file first if it is due and has changed.
func (tf *tokenFile) current(now time.Time) *tokenState {
	st := tf.state.Load()
	if now.Sub(st.checkedAt) < tf.interval || !tf.reloadMu.TryLock() {
		return st
	}
	defer tf.reloadMu.Unlock()
	st = tf.state.Load()
	fi, err := os.Stat(tf.path)
	if err == nil && st.err == nil && fi.ModTime().Equal(st.modTime) && fi.Size() == st.size {
		next := *st
		next.checkedAt = now
		tf.state.Store(&next)
		return &next
	}
	next := tf.read(now)
	if next.err != nil && (st.err == nil || st.err.Error() != next.err.Error()) {
		tf.log.Error("view/auth: the API tokens file is invalid: every API token is refused until it is fixed", zap.Error(next.err))
	} else if next.err == nil {
		tf.log.Info("view/auth: API tokens file reloaded", zap.Int("tokens", len(next.tokens)))
	}
	tf.state.Store(next)
	return next
}

// token outcomes.
var (
	errTokenUnknown = errors.New("unknown token")
	errTokenExpired = errors.New("expired token")
)

// lookup finds the token whose digest matches presented. Every entry is compared, in constant
// time, so the time taken says nothing about which digest came close.
func (st *tokenState) lookup(presented string, now time.Time) (apiToken, error) {
	if st.err != nil {
		return apiToken{}, errTokenUnknown
	}
	sum := sha256.Sum256([]byte(presented))
	found := -1
	for i := range st.tokens {
		if subtle.ConstantTimeCompare(sum[:], st.tokens[i].digest[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return apiToken{}, errTokenUnknown
	}
	t := st.tokens[found]
	if !t.expires.IsZero() && !now.Before(t.expires) {
		return t, errTokenExpired
	}
	return t, nil
}

// bearerToken returns the token of an Authorization: Bearer header (RFC 6750 2.1: the scheme
// is case-insensitive, the token is token68); ok is false for another scheme or a malformed one.
func bearerToken(header string) (string, bool) {
	scheme, tok, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimLeft(tok, " ")
	if tok == "" || len(tok) > 4096 {
		return "", false
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && !strings.ContainsRune("-._~+/=", rune(c)) {
			return "", false
		}
	}
	return tok, true
}
