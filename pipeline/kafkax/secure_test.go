package kafkax

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline/kafkax/readback"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// TestSecuredBrokerRoundTrip runs threatpipe's own clients against the SASL_SSL (SCRAM-SHA-512)
// broker: settings check, topic creation, an acknowledged write and a consumer-group read with
// a commit, every connection over TLS with a verified certificate.
func TestSecuredBrokerRoundTrip(t *testing.T) {
	s := pipelinetest.SecureServices(t)
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"scram-sha-512", nil},
		{"scram-sha-256", []string{"THREATPIPE_KAFKA_SASL_MECHANISM=scram-sha-256"}},
		// Reached by IP, verified against a name the certificate carries.
		{"server name", []string{"THREATPIPE_KAFKA_TLS_SERVER_NAME=localhost"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := load(t, s.Env(tc.env...)...)
			clients, err := New(&c.Kafka, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := clients.CheckSettings(ctx); err != nil {
				t.Fatalf("check settings: %v", err)
			}
			topic := pipelinetest.Name(t, "secure")
			if err := clients.EnsureTopics(ctx, topic); err != nil {
				t.Fatal(err)
			}
			admin := &kafka.Client{Addr: kafka.TCP(s.Kafka.Addrs...), Transport: s.Kafka.Transport}
			t.Cleanup(func() {
				_, _ = admin.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{topic}})
			})
			pipelinetest.WaitFor(t, 20*time.Second, "the new topic in the metadata", func() bool {
				_, err := readback.Partitions(ctx, admin, topic)
				return err == nil
			})
			w := clients.Writer(nil)
			defer w.Close()
			pipelinetest.WaitFor(t, 20*time.Second, "the new topic to take writes", func() bool {
				return w.WriteMessages(ctx, kafka.Message{Topic: topic, Key: []byte("k"), Value: []byte("over SASL_SSL")}) == nil
			})
			r := kafka.NewReader(clients.ReaderConfig(topic))
			defer r.Close()
			m, err := r.FetchMessage(ctx)
			if err != nil {
				t.Fatalf("fetch: %v", err)
			}
			if string(m.Value) != "over SASL_SSL" {
				t.Errorf("read %q", m.Value)
			}
			if err := r.CommitMessages(ctx, m); err != nil {
				t.Fatalf("commit: %v", err)
			}
			if got := s.Kafka.Committed(t, c.Kafka.GroupID, topic)[m.Partition]; got != m.Offset+1 {
				t.Errorf("committed offset %d, want %d", got, m.Offset+1)
			}
		})
	}
}

// TestSecuredBrokerBadSettingsNamed checks that every setting the secured broker cannot accept
// is reported by CheckSettings with the variable to fix, quickly, instead of as a retry loop.
func TestSecuredBrokerBadSettingsNamed(t *testing.T) {
	s := pipelinetest.SecureServices(t)
	for _, tc := range []struct {
		name, want string
		env        []string
	}{
		{"wrong password", "THREATPIPE_KAFKA_SASL_PASSWORD", []string{"THREATPIPE_KAFKA_SASL_PASSWORD=wrong"}},
		{"unknown user", "THREATPIPE_KAFKA_SASL_PASSWORD", []string{"THREATPIPE_KAFKA_SASL_USERNAME=nobody"}},
		{"mechanism not offered", "THREATPIPE_KAFKA_SASL_MECHANISM", []string{"THREATPIPE_KAFKA_SASL_MECHANISM=plain"}},
		{"untrusted CA", "THREATPIPE_KAFKA_TLS_CA_FILE", []string{"THREATPIPE_KAFKA_TLS_CA_FILE=" + pipelinetest.UntrustedCA(t)}},
		{"system pool", "THREATPIPE_KAFKA_TLS_CA_FILE", []string{"THREATPIPE_KAFKA_TLS_CA_FILE="}},
		{"wrong server name", "THREATPIPE_KAFKA_TLS_SERVER_NAME", []string{"THREATPIPE_KAFKA_TLS_SERVER_NAME=kafka.example.org"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := load(t, s.Env(tc.env...)...)
			clients, err := New(&c.Kafka, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err = clients.CheckSettings(context.Background())
			if err == nil || !strings.HasPrefix(err.Error(), tc.want+":") {
				t.Fatalf("CheckSettings = %v, want an error starting with %s", err, tc.want)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %s to report it", d)
			}
			if strings.Contains(err.Error(), s.Var("KAFKA_SASL_PASSWORD")) {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
	// An unreachable broker is an outage, not a setting: no error, the processes wait for it.
	c := load(t, s.Env("THREATPIPE_KAFKA_BROKERS=127.0.0.1:1")...)
	clients, err := New(&c.Kafka, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := clients.CheckSettings(context.Background()); err != nil {
		t.Errorf("a closed port must not be a settings error: %v", err)
	}
}
