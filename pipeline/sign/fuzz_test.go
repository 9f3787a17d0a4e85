package sign

import (
	"errors"
	"testing"

	"github.com/segmentio/kafka-go"
)

// FuzzVerify feeds arbitrary signature headers (what any producer on the scored topic can
// write) to the verifier. It must never panic, never accept a header it did not make, and
// classify every refusal.
func FuzzVerify(f *testing.F) {
	s := NewSigner(mustKey(f, testSecret))
	f.Add(s.Value(Scored, []byte("185.220.101.1"), []byte(`{"score":95}`)), []byte("185.220.101.1"), []byte(`{"score":95}`))
	f.Add([]byte("kid=0000000000000000;v1="+string(make([]byte, 64))), []byte("k"), []byte("v"))
	f.Add([]byte(""), []byte(""), []byte(""))
	f.Add([]byte("v1=deadbeef"), []byte("k"), []byte("v"))
	v := NewVerifier(mustKey(f, testSecret))
	f.Fuzz(func(t *testing.T, header, key, value []byte) {
		m := kafka.Message{Key: key, Value: value, Headers: []kafka.Header{{Key: Header, Value: header}}}
		err := v.Verify(Scored, m)
		valid := string(header) == string(s.Value(Scored, key, value))
		switch {
		case valid && err != nil:
			t.Fatalf("a valid signature was refused: %v", err)
		case !valid && err == nil:
			t.Fatalf("header %q verified for key %q value %q", header, key, value)
		case err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrBadSignature):
			t.Fatalf("unclassified refusal: %v", err)
		}
	})
}
