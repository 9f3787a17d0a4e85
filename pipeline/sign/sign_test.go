package sign

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
)

const (
	testSecret = "0123456789abcdef0123456789abcdef"
	nextSecret = "fedcba9876543210fedcba9876543210fedcba98"
)

func mustKey(t testing.TB, secret string) Key {
	t.Helper()
	k, err := NewKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func record() kafka.Message {
	return kafka.Message{Topic: "indicators.scored", Key: []byte("185.220.101.1"), Value: []byte(`{"event_id":"e1","score":95}`),
		Headers: []kafka.Header{{Key: "x-other", Value: []byte("kept")}}}
}

// A known answer, computed independently (Python's hmac module), so that consumers in other
// languages can check their implementation of the documented format against it.
func TestKnownAnswer(t *testing.T) {
	s := NewSigner(mustKey(t, testSecret))
	m := record()
	got := string(s.Value(Scored, m.Key, m.Value))
	const want = "kid=6b894cf373107107;v1=e5447150a8f09f2600a5356075812bbb59531d82535c919ec458552af19883e7"
	if got != want {
		t.Fatalf("Value = %s\nwant    %s", got, want)
	}
}

func TestNewKey(t *testing.T) {
	if _, err := NewKey(strings.Repeat("x", MinKeyLen-1)); err == nil {
		t.Error("a 31-character key was accepted")
	}
	a, b := mustKey(t, testSecret), mustKey(t, nextSecret)
	if len(a.ID()) != 16 || a.ID() == b.ID() || a.ID() != mustKey(t, testSecret).ID() {
		t.Errorf("key ids %q and %q: want 16 hex characters, stable, distinct per key", a.ID(), b.ID())
	}
}

func TestSignAndVerify(t *testing.T) {
	signer := NewSigner(mustKey(t, testSecret))
	v := NewVerifier(mustKey(t, testSecret))
	signed := func(p Purpose, edit func(*kafka.Message)) kafka.Message {
		m := record()
		signer.Sign(p, &m)
		if edit != nil {
			edit(&m)
		}
		return m
	}
	tests := []struct {
		name string
		m    kafka.Message
		p    Purpose
		want error // nil: verifies
	}{
		{"scored", signed(Scored, nil), Scored, nil},
		{"change", signed(Change, nil), Change, nil},
		{"unsigned", record(), Scored, ErrUnsigned},
		{"scored presented as a change", signed(Scored, nil), Change, ErrBadSignature},
		{"value tampered", signed(Scored, func(m *kafka.Message) { m.Value = []byte(`{"event_id":"e1","score":96}`) }), Scored, ErrBadSignature},
		{"key tampered", signed(Scored, func(m *kafka.Message) { m.Key = []byte("10.0.0.1") }), Scored, ErrBadSignature},
		{"boundary moved", signed(Scored, func(m *kafka.Message) {
			m.Key, m.Value = m.Key[:len(m.Key)-1], append([]byte{m.Key[len(m.Key)-1]}, m.Value...)
		}), Scored, ErrBadSignature},
		{"last MAC digit changed", signed(Scored, func(m *kafka.Message) {
			h := m.Headers[len(m.Headers)-1].Value
			h[len(h)-1] = "01"[boolInt(h[len(h)-1] == '0')]
		}), Scored, ErrBadSignature},
		{"unknown key", signed(Scored, func(m *kafka.Message) {
			NewSigner(mustKey(t, nextSecret)).Sign(Scored, m)
		}), Scored, ErrUnknownKey},
		{"two signature headers", signed(Scored, func(m *kafka.Message) {
			m.Headers = append(m.Headers, m.Headers[len(m.Headers)-1])
		}), Scored, ErrMalformed},
		{"garbage header", signed(Scored, func(m *kafka.Message) {
			m.Headers[len(m.Headers)-1].Value = []byte("v1=abc")
		}), Scored, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Verify(tt.p, tt.m)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Rotation: while act holds both keys, records signed with either verify; once the old key is
// dropped, its signatures are refused as an unknown key.
func TestRotation(t *testing.T) {
	old, next := mustKey(t, testSecret), mustKey(t, nextSecret)
	both := NewVerifier(old, next)
	for _, k := range []Key{old, next} {
		m := record()
		NewSigner(k).Sign(Scored, &m)
		if err := both.Verify(Scored, m); err != nil {
			t.Errorf("key %s during rotation: %v", k.ID(), err)
		}
	}
	m := record()
	NewSigner(old).Sign(Scored, &m)
	if err := NewVerifier(next).Verify(Scored, m); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("old key after rotation: %v", err)
	}
}

func TestSignReplacesTheHeaderAndKeepsTheCallersSlice(t *testing.T) {
	s := NewSigner(mustKey(t, testSecret))
	m := record()
	orig := m.Headers
	s.Sign(Scored, &m)
	m.Value = []byte(`{"changed":true}`)
	s.Sign(Scored, &m)
	if len(orig) != 1 || orig[0].Key != "x-other" {
		t.Errorf("the caller's headers changed: %v", orig)
	}
	if len(m.Headers) != 2 || m.Headers[0].Key != "x-other" || m.Headers[1].Key != Header {
		t.Fatalf("headers %v, want x-other and one signature", m.Headers)
	}
	if err := NewVerifier(mustKey(t, testSecret)).Verify(Scored, m); err != nil {
		t.Errorf("re-signed record: %v", err)
	}
}

func TestReason(t *testing.T) {
	for err, want := range map[error]string{
		ErrUnsigned: "unsigned", ErrMalformed: "malformed_signature", ErrUnknownKey: "unknown_key",
		ErrBadSignature: "bad_signature", errors.New("other"): "bad_signature",
	} {
		if got := Reason(errors.Join(errors.New("wrapped"), err)); got != want {
			t.Errorf("Reason(%v) = %s, want %s", err, got, want)
		}
	}
}

func TestParseHeader(t *testing.T) {
	good := "kid=6b894cf373107107;v1=e5447150a8f09f2600a5356075812bbb59531d82535c919ec458552af19883e7"
	kid, mac, err := ParseHeader([]byte(good))
	if err != nil || kid != "6b894cf373107107" || len(mac) != 32 {
		t.Fatalf("ParseHeader(good) = %q, %x, %v", kid, mac, err)
	}
	for _, bad := range []string{
		"", "v1=e5447150", good + "0", good[:len(good)-1], strings.ToUpper(good), strings.Replace(good, ";", ",", 1),
		strings.Replace(good, "kid=6b894cf3", "kid=6b894cfg", 1), "kid=6b894cf373107107;v2=" + good[24:],
	} {
		if _, _, err := ParseHeader([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseHeader(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}

// fakeWriter records what reaches the broker.
type fakeWriter struct {
	got    []kafka.Message
	closed bool
}

func (f *fakeWriter) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	f.got = append(f.got, msgs...)
	return nil
}
func (f *fakeWriter) Close() error { f.closed = true; return nil }

func TestWriterSignsItsTopicsOnly(t *testing.T) {
	next := &fakeWriter{}
	signer := NewSigner(mustKey(t, testSecret))
	w := NewWriter(next, signer, Topics{"scored": Scored, "changes": Change})
	in := []kafka.Message{
		{Topic: "scored", Key: []byte("a"), Value: []byte("1"), WriterData: 1},
		{Topic: "changes", Key: []byte("b"), Value: []byte("2"), WriterData: 2},
		{Topic: "dlq", Key: []byte("c"), Value: []byte("3"), WriterData: 3},
	}
	if err := w.WriteMessages(context.Background(), in...); err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(mustKey(t, testSecret))
	if err := v.Verify(Scored, next.got[0]); err != nil {
		t.Errorf("scored: %v", err)
	}
	if err := v.Verify(Change, next.got[1]); err != nil {
		t.Errorf("change: %v", err)
	}
	if err := v.Verify(Scored, next.got[2]); !errors.Is(err, ErrUnsigned) {
		t.Errorf("dead letter: %v, want unsigned", err)
	}
	for i, m := range next.got {
		if m.WriterData != i+1 {
			t.Errorf("message %d lost its WriterData: %v", i, m.WriterData)
		}
	}
	if len(in[0].Headers) != 0 {
		t.Errorf("the caller's message was modified: %v", in[0].Headers)
	}
	if err := w.Close(); err != nil || !next.closed {
		t.Errorf("Close: %v, closed %v", err, next.closed)
	}
	if NewWriter(next, nil, Topics{"scored": Scored}) != Writer(next) {
		t.Error("a nil signer wraps the writer")
	}
}

func BenchmarkSign(b *testing.B) {
	s := NewSigner(mustKey(b, testSecret))
	m := kafka.Message{Key: []byte("185.220.101.1"), Value: []byte(strings.Repeat("x", 1500))}
	b.ReportAllocs()
	for b.Loop() {
		s.Sign(Scored, &m)
	}
}

func BenchmarkVerify(b *testing.B) {
	s := NewSigner(mustKey(b, testSecret))
	m := kafka.Message{Key: []byte("185.220.101.1"), Value: []byte(strings.Repeat("x", 1500))}
	s.Sign(Scored, &m)
	v := NewVerifier(mustKey(b, testSecret))
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(Scored, m); err != nil {
			b.Fatal(err)
		}
	}
}
