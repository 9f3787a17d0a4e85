// Package sign signs the records the enricher publishes for the playbook workers (scored events,
// verdict changes) with HMAC-SHA256, and verifies them, so that act acts only on records a
// holder of the key produced, not on anything some other producer wrote to the topic.
//
// A signed record carries one header:
//
//	x-threatpipe-signature: kid=<16 hex>;v1=<64 hex>
//
// v1 is hex(HMAC-SHA256(key, "threatpipe-v1" 0x00 <purpose> 0x00 <len(record key), 8 bytes
// big-endian> <record key> <record value>)): the purpose ("scored" or "change") keeps a signed
// scored event from passing as a change, and the length prefix keeps the key/value boundary
// unambiguous. kid names the signing key (the first 8 bytes of SHA-256 over a fixed label and
// the key, in hex) so that a verifier holding two keys during a rotation knows which to use;
// it reveals nothing usable about the key. Other headers, the topic, partition and timestamp
// are not covered: a signature proves who produced a record, not that it is fresh, and a copy
// of a signed record replayed to the same topic verifies (act's ledger deduplicates by event).
package sign

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sync"

	"github.com/segmentio/kafka-go"
)

// Header is the record header that carries the signature.
const Header = "x-threatpipe-signature"

// MinKeyLen is the shortest key accepted, in bytes: 32, as from `openssl rand -hex 16`.
const MinKeyLen = 32

// Purpose is what kind of record is signed; a signature made for one purpose does not verify
// for another.
type Purpose string

// Purposes.
const (
	Scored Purpose = "scored" // scored events on the scored topic
	Change Purpose = "change" // verdict changes on the changes topic
	// Refresh signs an analyst's re-enrich request on the input topic (the view's, with
	// pipeline.RefreshHeader): a forced lookup spends quota, so the enricher forces only signed
	// ones when a key is set.
	Refresh Purpose = "refresh"
)

// Errors Verify returns (wrapped); Reason names them in metrics and dead letters.
var (
	ErrUnsigned     = errors.New("record is not signed")
	ErrMalformed    = errors.New("malformed signature header")
	ErrUnknownKey   = errors.New("signed with an unknown key")
	ErrBadSignature = errors.New("signature does not match")
)

// Reason is a short class for a Verify error: unsigned, malformed_signature, unknown_key or
// bad_signature.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrUnsigned):
		return "unsigned"
	case errors.Is(err, ErrMalformed):
		return "malformed_signature"
	case errors.Is(err, ErrUnknownKey):
		return "unknown_key"
	default:
		return "bad_signature"
	}
}

// Key is a signing key and its id.
type Key struct {
	id string
	// macs pools HMAC states of the key: building one costs allocations on the enricher's hot
	// path.
	macs *sync.Pool
}

// macState is one pooled HMAC state with room for the fixed part of the input.
type macState struct {
	h   hash.Hash
	buf [64]byte
}

// NewKey checks and wraps a secret.
func NewKey(secret string) (Key, error) {
	if len(secret) < MinKeyLen {
		return Key{}, fmt.Errorf("a signing key must be at least %d characters (e.g. openssl rand -hex 32)", MinKeyLen)
	}
	sum := sha256.Sum256(append([]byte("threatpipe signing key id\x00"), secret...))
	raw := []byte(secret)
	return Key{id: hex.EncodeToString(sum[:8]), macs: &sync.Pool{New: func() any {
		return &macState{h: hmac.New(sha256.New, raw)}
	}}}, nil
}

// ID is the key id written into signatures.
func (k Key) ID() string { return k.id }

// mac appends the v1 MAC of a record for p to dst.
func (k Key) mac(dst []byte, p Purpose, key, value []byte) []byte {
	st := k.macs.Get().(*macState)
	defer k.macs.Put(st)
	st.h.Reset()
	// Purposes are short constants, so the fixed part fits the buffer.
	fixed := append(st.buf[:0], "threatpipe-v1\x00"...)
	fixed = append(fixed, p...)
	fixed = append(fixed, 0)
	fixed = binary.BigEndian.AppendUint64(fixed, uint64(len(key)))
	st.h.Write(fixed)
	st.h.Write(key)
	st.h.Write(value)
	return st.h.Sum(dst)
}

// Signer signs records with one key. It is safe for concurrent use.
type Signer struct{ key Key }

// NewSigner returns a signer with k.
func NewSigner(k Key) *Signer { return &Signer{key: k} }

// KeyID is the id of the signing key.
func (s *Signer) KeyID() string { return s.key.id }

// Value is the signature header value for a record.
func (s *Signer) Value(p Purpose, key, value []byte) []byte {
	out := make([]byte, 0, 4+len(s.key.id)+4+2*sha256.Size)
	out = append(out, "kid="...)
	out = append(out, s.key.id...)
	out = append(out, ";v1="...)
	var sum [sha256.Size]byte
	return hex.AppendEncode(out, s.key.mac(sum[:0], p, key, value))
}

// Sign sets m's signature header for p, replacing any signature header it carries. It does not
// modify the header slice m came with (the caller may hold it): m gets a new one.
func (s *Signer) Sign(p Purpose, m *kafka.Message) {
	headers := make([]kafka.Header, 0, len(m.Headers)+1)
	for _, h := range m.Headers {
		if h.Key != Header {
			headers = append(headers, h)
		}
	}
	m.Headers = append(headers, kafka.Header{Key: Header, Value: s.Value(p, m.Key, m.Value)})
}

// Verifier checks signatures against one or more keys (the current one, and the previous or
// next one while rotating). It is safe for concurrent use.
type Verifier struct{ keys []Key }

// NewVerifier returns a verifier accepting signatures by any of keys.
func NewVerifier(keys ...Key) *Verifier { return &Verifier{keys: keys} }

// Verify checks m's signature for p. The comparison of MACs takes constant time.
func (v *Verifier) Verify(p Purpose, m kafka.Message) error {
	var header []byte
	found := 0
	for _, h := range m.Headers {
		if h.Key == Header {
			header = h.Value
			found++
		}
	}
	switch found {
	case 0:
		return ErrUnsigned
	case 1:
	default:
		return fmt.Errorf("%w: %d signature headers", ErrMalformed, found)
	}
	kid, mac, err := ParseHeader(header)
	if err != nil {
		return err
	}
	for _, k := range v.keys {
		if k.id == kid {
			var sum [sha256.Size]byte
			if !hmac.Equal(mac, k.mac(sum[:0], p, m.Key, m.Value)) {
				return fmt.Errorf("%w (key %s, %s record)", ErrBadSignature, kid, p)
			}
			return nil
		}
	}
	return fmt.Errorf("%w %q", ErrUnknownKey, kid)
}

// ParseHeader reads a signature header value: kid=<16 hex>;v1=<64 hex>, lower-case hex.
func ParseHeader(value []byte) (kid string, mac []byte, err error) {
	const kidLen, macLen = 16, 2 * sha256.Size
	const want = len("kid=") + kidLen + len(";v1=") + macLen
	s := string(value)
	if len(s) != want || s[:4] != "kid=" || s[4+kidLen:4+kidLen+4] != ";v1=" {
		return "", nil, fmt.Errorf("%w: want kid=<16 hex>;v1=<64 hex>", ErrMalformed)
	}
	kid = s[4 : 4+kidLen]
	hexMAC := s[4+kidLen+4:]
	if !isLowerHex(kid) || !isLowerHex(hexMAC) {
		return "", nil, fmt.Errorf("%w: not lower-case hex", ErrMalformed)
	}
	mac, _ = hex.DecodeString(hexMAC)
	return kid, mac, nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Writer is the producer side the enricher publishes through: *kafka.Writer and the engine's
// pipeline.Publisher.
type Writer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
	Close() error
}

// Topics maps each topic whose records are signed to the purpose they are signed for.
type Topics map[string]Purpose

// NewWriter returns a Writer that signs every message bound for one of topics before handing
// it to next; other messages (dead letters) pass unsigned. With a nil signer it returns next.
func NewWriter(next Writer, s *Signer, topics Topics) Writer {
	if s == nil {
		return next
	}
	return &signingWriter{next: next, signer: s, topics: topics}
}

type signingWriter struct {
	next   Writer
	signer *Signer
	topics Topics
}

// WriteMessages signs copies of msgs (the caller's are left as they are: a retry re-signs) and
// writes them; WriterData travels with the copies to the completion function.
func (w *signingWriter) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	out := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		if p, ok := w.topics[m.Topic]; ok {
			w.signer.Sign(p, &m)
		}
		out[i] = m
	}
	return w.next.WriteMessages(ctx, out...)
}

func (w *signingWriter) Close() error { return w.next.Close() }
