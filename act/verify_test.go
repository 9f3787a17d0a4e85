package act

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/sign"
)

func TestVerifiedPassesOnlySignedRecords(t *testing.T) {
	key, err := sign.NewKey("0123456789abcdef0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := sign.NewKey("a-key-an-attacker-made-up-himself-0123")
	signer := sign.NewSigner(key)
	base := kafka.Message{Topic: scoredTopic, Partition: 2, Offset: 7, Key: []byte(attacker), Value: []byte(`{"event_id":"e1","score":95}`)}
	signed := func(s *sign.Signer, p sign.Purpose) kafka.Message {
		m := base
		s.Sign(p, &m)
		return m
	}
	tampered := signed(signer, sign.Scored)
	tampered.Value = []byte(`{"event_id":"e1","score":99}`)

	tests := []struct {
		name    string
		require bool
		msg     kafka.Message
		passed  bool
		result  string // the metric's result label
	}{
		{"signed", true, signed(signer, sign.Scored), true, "verified"},
		{"unsigned, required", true, base, false, "refused_unsigned"},
		{"unsigned, not required", false, base, true, "unsigned_accepted"},
		{"tampered", false, tampered, false, "refused_bad_signature"},
		{"signed as a change", false, signed(signer, sign.Change), false, "refused_bad_signature"},
		{"another key", false, signed(sign.NewSigner(other), sign.Scored), false, "refused_unknown_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMetrics(prometheus.NewRegistry())
			var calls int
			next := pipeline.HandlerFunc(func(context.Context, kafka.Message) ([]kafka.Message, error) {
				calls++
				return nil, nil
			})
			v := NewVerified(next, VerifyOptions{Verifier: sign.NewVerifier(key), Purpose: sign.Scored, Require: tt.require,
				Name: "act-block", DLQTopic: dlqTopic}, m, zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)))
			out, err := v.Handle(context.Background(), tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			if got := testutil.ToFloat64(m.Signatures.WithLabelValues("scored", tt.result)); got != 1 {
				t.Errorf("signatures{result=%s} = %v, want 1", tt.result, got)
			}
			if tt.passed {
				if calls != 1 || len(out) != 0 {
					t.Errorf("passed on %d times, outputs %v", calls, out)
				}
				return
			}
			if calls != 0 || len(out) != 1 {
				t.Fatalf("refused record reached the playbooks (%d calls) or produced %d outputs", calls, len(out))
			}
			dl := out[0]
			class := strings.TrimPrefix(tt.result, "refused_")
			if dl.Topic != dlqTopic || header(dl, pipeline.HeaderErrorClass) != class || header(dl, HeaderWorker) != "act-block" ||
				header(dl, pipeline.HeaderOriginalOffset) != "7" || !strings.HasPrefix(header(dl, pipeline.HeaderErrorMessage), "not acted on: ") ||
				string(dl.Value) != string(tt.msg.Value) {
				t.Errorf("dead letter %+v", dl)
			}
		})
	}
}
