package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sessions live in Redis, so every replica sees the same ones and a sign-out ends a session
// everywhere at once:
//
//	<prefix>session:<hex sha256 of the session id>   string: the session as JSON
//
// The key holds the id's digest, not the id, so that someone who can read Redis (a MONITOR, a
// dump) learns no cookie that would let them in. The key's TTL ends the session when it is idle
// or at its absolute end, whichever comes first; both are also checked on read, since the TTL
// is only refreshed once a minute.

// sessionIDBytes is a session id's entropy (256 bits); ids travel base64url, unpadded.
const sessionIDBytes = 32

var sessionIDLen = base64.RawURLEncoding.EncodedLen(sessionIDBytes)

// touchEvery bounds how often a session's last use is written back: once per request would
// be a Redis write for every page and API call.
const touchEvery = time.Minute

// session is one signed-in user's server-side session.
type session struct {
	Principal Principal `json:"p"`
	CSRF      string    `json:"csrf"`
	Created   time.Time `json:"created"`
	Seen      time.Time `json:"seen"`
	// IDToken is kept as the id_token_hint of an RP-initiated logout.
	IDToken string `json:"idt,omitempty"`
}

// errNoSession is a missing, expired or malformed session.
var errNoSession = errors.New("no such session")

// sessionStore reads and writes sessions.
type sessionStore struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration // absolute lifetime
	idle   time.Duration
}

func (s *sessionStore) key(id string) string {
	sum := sha256.Sum256([]byte(id))
	return s.prefix + "session:" + hex.EncodeToString(sum[:])
}

// expiry is how long a session last seen at seen may still live.
func (s *sessionStore) expiry(sess *session, now time.Time) time.Duration {
	end := sess.Created.Add(s.ttl)
	if idleEnd := sess.Seen.Add(s.idle); idleEnd.Before(end) {
		end = idleEnd
	}
	return end.Sub(now)
}

// create stores a new session and returns its id.
func (s *sessionStore) create(ctx context.Context, sess *session) (string, error) {
	id, err := randomString(sessionIDBytes)
	if err != nil {
		return "", err
	}
	if sess.CSRF, err = randomString(32); err != nil {
		return "", err
	}
	b, err := json.Marshal(sess)
	if err != nil {
		return "", fmt.Errorf("encoding a session: %w", err)
	}
	// NX: a colliding id (never, with 256 bits) must not overwrite someone else's session.
	ok, err := s.rdb.SetNX(ctx, s.key(id), b, s.expiry(sess, sess.Seen)).Result()
	if err != nil {
		return "", fmt.Errorf("storing a session: %w", err)
	}
	if !ok {
		return "", errors.New("storing a session: the id exists")
	}
	return id, nil
}

// get returns the live session of id and records its use; errNoSession when there is none.
func (s *sessionStore) get(ctx context.Context, id string, now time.Time) (*session, error) {
	b, err := s.rdb.Get(ctx, s.key(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("reading a session: %w", err)
	}
	var sess session
	if err := json.Unmarshal(b, &sess); err != nil || sess.CSRF == "" {
		return nil, errNoSession
	}
	if s.expiry(&sess, now) <= 0 {
		_ = s.delete(ctx, id)
		return nil, errNoSession
	}
	if now.Sub(sess.Seen) >= touchEvery {
		if err := s.touch(ctx, id, &sess, now); err != nil {
			return nil, err
		}
	}
	return &sess, nil
}

// touch records the session's use. XX: a session deleted meanwhile (a sign-out on another
// replica) must stay deleted, not be written back.
func (s *sessionStore) touch(ctx context.Context, id string, sess *session, now time.Time) error {
	sess.Seen = now
	b, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("encoding a session: %w", err)
	}
	err = s.rdb.SetArgs(ctx, s.key(id), b, redis.SetArgs{Mode: "XX", TTL: s.expiry(sess, now)}).Err()
	if errors.Is(err, redis.Nil) {
		return errNoSession
	}
	if err != nil {
		return fmt.Errorf("refreshing a session: %w", err)
	}
	return nil
}

// delete ends a session.
func (s *sessionStore) delete(ctx context.Context, id string) error {
	if err := s.rdb.Del(ctx, s.key(id)).Err(); err != nil {
		return fmt.Errorf("deleting a session: %w", err)
	}
	return nil
}

// parseSessionID checks a session cookie's value before it becomes a Redis key: exactly the
// length and alphabet of an id this package issues, so junk costs no round trip.
func parseSessionID(v string) (string, bool) {
	if len(v) != sessionIDLen {
		return "", false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "", false
		}
	}
	return v, true
}

// randomString returns n random bytes, base64url without padding.
func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
