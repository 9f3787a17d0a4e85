package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Request headers.
const (
	// HeaderTimestamp is the Unix time, in seconds, at which the request was signed.
	HeaderTimestamp = "X-Threatpipe-Timestamp"
	// HeaderSignature is "v1=" followed by hex(HMAC-SHA256(secret, timestamp + "." + body)).
	HeaderSignature = "X-Threatpipe-Signature"
	// HeaderIdempotencyKey is the same for every delivery of one action (retries,
	// redeliveries), so that receivers can drop duplicates.
	HeaderIdempotencyKey = "X-Threatpipe-Idempotency-Key"
)

// DefaultTolerance is how far a request's timestamp may be from the receiver's clock when
// Verify is given no tolerance.
const DefaultTolerance = 5 * time.Minute

// Verification failures.
var (
	ErrNoSignature = errors.New("webhook: missing " + HeaderTimestamp + " or " + HeaderSignature + " header")
	ErrMalformed   = errors.New("webhook: malformed " + HeaderTimestamp + " header")
	ErrSignature   = errors.New("webhook: signature does not match")
	ErrStale       = errors.New("webhook: timestamp outside the tolerance (replayed, or clocks apart)")
)

// Sign returns the X-Threatpipe-Signature value for body sent at timestamp (Unix seconds).
func Sign(secret []byte, timestamp int64, body []byte) string {
	return "v1=" + hex.EncodeToString(mac(secret, strconv.FormatInt(timestamp, 10), body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a received request: header holds its X-Threatpipe-Timestamp and
// X-Threatpipe-Signature, body is the raw body as received (before any JSON decoding). The
// signature must match and the timestamp be within tolerance of now (DefaultTolerance if
// tolerance <= 0), which bounds replays; receivers that must not act twice should also
// remember X-Threatpipe-Idempotency-Key for at least the tolerance. Several comma-separated
// signatures are accepted in one header, so that a receiver can check while keys rotate.
// Errors are ErrNoSignature, ErrMalformed, ErrSignature or ErrStale.
func Verify(secret []byte, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		return errors.New("webhook: empty secret")
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts := header.Get(HeaderTimestamp)
	sigs := header.Values(HeaderSignature)
	if ts == "" || len(sigs) == 0 {
		return ErrNoSignature
	}
	// Digits only, and few enough that the conversion cannot overflow.
	if len(ts) > 12 || strings.Trim(ts, "0123456789") != "" {
		return ErrMalformed
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrMalformed
	}
	want := mac(secret, ts, body)
	matched := false
	for _, h := range sigs {
		for _, sig := range strings.Split(h, ",") {
			hexSig, ok := strings.CutPrefix(strings.TrimSpace(sig), "v1=")
			if !ok {
				continue
			}
			got, err := hex.DecodeString(hexSig)
			if err == nil && hmac.Equal(got, want) {
				matched = true
			}
		}
	}
	if !matched {
		return ErrSignature
	}
	if d := now.Sub(time.Unix(secs, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	return nil
}
