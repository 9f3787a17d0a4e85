package auth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// A sign-in's state, nonce, PKCE verifier and return path travel in a short-lived cookie,
// sealed with AES-256-GCM (so signed, and unreadable to anything but the view), from
// /auth/login to /auth/callback. The callback may reach another replica than the login did, so
// the key is shared through Redis: <prefix>login-key, created by the first replica that needs
// it. Losing it (a flushed Redis) only fails the sign-ins in flight.

// loginStateTTL bounds a sign-in's round trip through the provider (a password, perhaps MFA).
const loginStateTTL = 10 * time.Minute

// maxStateCookie bounds the sealed cookie we accept; ours are well under 1 KiB.
const maxStateCookie = 2048

// keyReread bounds how long a replica uses a key it read: after a lost key is replaced, all
// replicas agree again within this.
const keyReread = time.Minute

// loginState is one sign-in in flight.
type loginState struct {
	State    string    `json:"s"`
	Nonce    string    `json:"n"`
	Verifier string    `json:"v"`
	Next     string    `json:"r"`
	Expires  time.Time `json:"e"`
}

// sealer seals and opens login state with the shared key.
type sealer struct {
	rdb redis.UniversalClient
	key string // Redis key of the shared secret

	mu     sync.Mutex
	aead   cipher.AEAD
	readAt time.Time
}

// cipher returns the AEAD of the shared key, creating the key on first use; fresh forces a
// re-read (a cookie did not open: another replica may have replaced a lost key).
func (s *sealer) cipher(ctx context.Context, now time.Time, fresh bool) (cipher.AEAD, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.aead != nil && !fresh && now.Sub(s.readAt) < keyReread {
		return s.aead, nil
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	// SETNX then GET: every replica ends up with whichever key was stored first.
	if err := s.rdb.SetNX(ctx, s.key, base64.StdEncoding.EncodeToString(raw), 0).Err(); err != nil {
		return nil, fmt.Errorf("creating the login state key: %w", err)
	}
	stored, err := s.rdb.Get(ctx, s.key).Result()
	if err != nil {
		return nil, fmt.Errorf("reading the login state key: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(stored)
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("the login state key at %s is not 32 bytes of base64", s.key)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("login state key: %w", err)
	}
	if s.aead, err = cipher.NewGCM(block); err != nil {
		return nil, fmt.Errorf("login state key: %w", err)
	}
	s.readAt = now
	return s.aead, nil
}

// seal encrypts st; name (the cookie's) is authenticated too, so a value cannot move between
// cookies.
func (s *sealer) seal(ctx context.Context, name string, st *loginState, now time.Time) (string, error) {
	aead, err := s.cipher(ctx, now, false)
	if err != nil {
		return "", err
	}
	plain, err := json.Marshal(st)
	if err != nil {
		return "", fmt.Errorf("encoding login state: %w", err)
	}
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, plain, []byte(name))), nil
}

// errBadState is a login state cookie that is missing, forged, from another cookie or expired.
var errBadState = errors.New("the sign-in state is missing, invalid or expired")

// open decrypts and checks a login state cookie's value.
func (s *sealer) open(ctx context.Context, name, value string, now time.Time) (*loginState, error) {
	if value == "" || len(value) > maxStateCookie {
		return nil, errBadState
	}
	sealed, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil {
		return nil, errBadState
	}
	for _, fresh := range []bool{false, true} {
		aead, err := s.cipher(ctx, now, fresh)
		if err != nil {
			return nil, err
		}
		if st, ok := openWith(aead, name, sealed); ok {
			if !now.Before(st.Expires) {
				return nil, errBadState
			}
			return st, nil
		}
	}
	return nil, errBadState
}

func openWith(aead cipher.AEAD, name string, sealed []byte) (*loginState, bool) {
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, false
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], []byte(name))
	if err != nil {
		return nil, false
	}
	var st loginState
	if json.Unmarshal(plain, &st) != nil || st.State == "" || st.Nonce == "" || st.Verifier == "" {
		return nil, false
	}
	return &st, true
}

// safeNext returns a return path that stays on this site: a local absolute path, never
// //host or /\host (which browsers treat as another host), else "/".
func safeNext(next string) string {
	if next == "" || len(next) > 2048 || next[0] != '/' || strings.HasPrefix(next, "//") ||
		strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\r\n\t\x00") {
		return "/"
	}
	if strings.HasPrefix(next, "/auth/") {
		return "/" // never bounce back into the sign-in itself
	}
	return next
}
