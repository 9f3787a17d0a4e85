package webhook

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// signedRequest is testdata/signed_request.json: a request signed outside Go (Python's hmac),
// so that Sign and Verify are checked against an independent implementation.
type signedRequest struct {
	Secret    string `json:"secret"`
	Timestamp string `json:"timestamp"`
	Body      string `json:"body"`
	Signature string `json:"signature"`
}

func loadSigned(t testing.TB) signedRequest {
	t.Helper()
	var s signedRequest
	if err := json.Unmarshal(fixture(t, "signed_request.json"), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSignMatchesIndependentImplementation(t *testing.T) {
	s := loadSigned(t)
	ts, _ := strconv.ParseInt(s.Timestamp, 10, 64)
	if got := Sign([]byte(s.Secret), ts, []byte(s.Body)); got != s.Signature {
		t.Fatalf("Sign = %s, want %s", got, s.Signature)
	}
}

func TestVerify(t *testing.T) {
	s := loadSigned(t)
	ts, _ := strconv.ParseInt(s.Timestamp, 10, 64)
	signedAt := time.Unix(ts, 0)
	hdr := func(ts string, sigs ...string) http.Header {
		h := http.Header{}
		if ts != "" {
			h.Set(HeaderTimestamp, ts)
		}
		for _, sig := range sigs {
			h.Add(HeaderSignature, sig)
		}
		return h
	}
	otherSig := Sign([]byte("another-secret-0123456789abcdef0123"), ts, []byte(s.Body))
	for _, tt := range []struct {
		name      string
		secret    string
		header    http.Header
		body      string
		now       time.Time
		tolerance time.Duration
		want      error // nil: valid
	}{
		{"valid", s.Secret, hdr(s.Timestamp, s.Signature), s.Body, signedAt.Add(time.Minute), time.Minute, nil},
		{"valid, receiver clock behind", s.Secret, hdr(s.Timestamp, s.Signature), s.Body, signedAt.Add(-30 * time.Second), time.Minute, nil},
		{"valid, default tolerance", s.Secret, hdr(s.Timestamp, s.Signature), s.Body, signedAt.Add(4 * time.Minute), 0, nil},
		{"valid among rotated signatures", s.Secret, hdr(s.Timestamp, otherSig+", "+s.Signature), s.Body, signedAt, time.Minute, nil},
		{"valid in a second header", s.Secret, hdr(s.Timestamp, otherSig, s.Signature), s.Body, signedAt, time.Minute, nil},
		{"valid, upper-case hex", s.Secret, hdr(s.Timestamp, "v1="+strings.ToUpper(s.Signature[3:])), s.Body, signedAt, time.Minute, nil},
		{"tampered body", s.Secret, hdr(s.Timestamp, s.Signature), strings.Replace(s.Body, "203.0.113.7", "203.0.113.8", 1), signedAt, time.Minute, ErrSignature},
		{"body with trailing newline", s.Secret, hdr(s.Timestamp, s.Signature), s.Body + "\n", signedAt, time.Minute, ErrSignature},
		{"tampered timestamp", s.Secret, hdr(strconv.FormatInt(ts+1, 10), s.Signature), s.Body, signedAt, time.Minute, ErrSignature},
		{"timestamp with a sign", s.Secret, hdr("+"+s.Timestamp, s.Signature), s.Body, signedAt, time.Minute, ErrMalformed},
		{"tampered signature", s.Secret, hdr(s.Timestamp, s.Signature[:len(s.Signature)-1]+"0"), s.Body, signedAt, time.Minute, ErrSignature},
		{"truncated signature", s.Secret, hdr(s.Timestamp, s.Signature[:20]), s.Body, signedAt, time.Minute, ErrSignature},
		{"wrong scheme", s.Secret, hdr(s.Timestamp, "v0="+s.Signature[3:]), s.Body, signedAt, time.Minute, ErrSignature},
		{"wrong secret", "another-secret-0123456789abcdef0123", hdr(s.Timestamp, s.Signature), s.Body, signedAt, time.Minute, ErrSignature},
		{"replayed later", s.Secret, hdr(s.Timestamp, s.Signature), s.Body, signedAt.Add(61 * time.Second), time.Minute, ErrStale},
		{"replayed after the default tolerance", s.Secret, hdr(s.Timestamp, s.Signature), s.Body, signedAt.Add(6 * time.Minute), 0, ErrStale},
		{"from the future", s.Secret, hdr(s.Timestamp, s.Signature), s.Body, signedAt.Add(-2 * time.Minute), time.Minute, ErrStale},
		{"no timestamp", s.Secret, hdr("", s.Signature), s.Body, signedAt, time.Minute, ErrNoSignature},
		{"no signature", s.Secret, hdr(s.Timestamp), s.Body, signedAt, time.Minute, ErrNoSignature},
		{"malformed timestamp", s.Secret, hdr("yesterday", s.Signature), s.Body, signedAt, time.Minute, ErrMalformed},
		{"huge timestamp", s.Secret, hdr("99999999999999999999", s.Signature), s.Body, signedAt, time.Minute, ErrMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify([]byte(tt.secret), tt.header, []byte(tt.body), tt.now, tt.tolerance)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	if err := Verify(nil, hdr(s.Timestamp, s.Signature), []byte(s.Body), signedAt, time.Minute); err == nil {
		t.Fatal("empty secret accepted")
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	secret := []byte("round-trip-secret-0123456789abcdef")
	now := time.Unix(1740830400, 0)
	body := []byte(`{"action":"alert"}`)
	h := http.Header{}
	h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(HeaderSignature, Sign(secret, now.Unix(), body))
	if err := Verify(secret, h, body, now, time.Minute); err != nil {
		t.Fatal(err)
	}
}
