package config

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md's generated table")

func TestDefaults(t *testing.T) {
	c, err := Load(nil)
	if err != nil {
		t.Fatalf("defaults must be valid: %v", err)
	}
	if c.Kafka.InputTopic != "indicators" || c.Kafka.OutputTopic != "indicators.scored" || c.Kafka.DLQTopic != "indicators.dlq" {
		t.Errorf("topics %q %q %q", c.Kafka.InputTopic, c.Kafka.OutputTopic, c.Kafka.DLQTopic)
	}
	if c.Kafka.CommitInterval != time.Second || c.Pipeline.Workers != 256 || c.HTTPAddr != "127.0.0.1:8080" {
		t.Errorf("unexpected defaults: %+v", c)
	}
}

func TestOverrides(t *testing.T) {
	c, err := Load([]string{
		"THREATPIPE_KAFKA_BROKERS=a:9092,b:9093",
		"THREATPIPE_KAFKA_COMMIT_INTERVAL=250ms",
		"THREATPIPE_GATE_ALLOWLIST_CIDRS=203.0.113.0/24, 198.51.100.7",
		"THREATPIPE_REDIS_ADDR=r1:6379,r2:6379",
		"UNRELATED=1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Kafka.Brokers, ",") != "a:9092,b:9093" || c.Kafka.CommitInterval != 250*time.Millisecond || len(c.Redis.Addrs) != 2 {
		t.Errorf("overrides not applied: %+v", c.Kafka)
	}
	allow, err := c.Gate.Allowlist()
	if err != nil || len(allow) != 2 || allow[1].String() != "198.51.100.7/32" {
		t.Errorf("allowlist %v %v", allow, err)
	}
}

func TestInvalidValuesNameTheVariable(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		env  []string
		want []string
	}{
		{[]string{"THREATPIPE_KAFKA_BATCH_SIZE=lots"}, []string{"THREATPIPE_KAFKA_BATCH_SIZE", `"lots"`}},
		{[]string{"THREATPIPE_KAFKA_COMMIT_INTERVAL=5"}, []string{"THREATPIPE_KAFKA_COMMIT_INTERVAL"}},
		{[]string{"THREATPIPE_KAFKA_CREATE_TOPICS=maybe"}, []string{"THREATPIPE_KAFKA_CREATE_TOPICS"}},
		{[]string{"THREATPIPE_KAFKA_BROKERS=localhost"}, []string{"THREATPIPE_KAFKA_BROKERS", "host:port"}},
		{[]string{"THREATPIPE_KAFKA_BROKERS=host:99999"}, []string{"THREATPIPE_KAFKA_BROKERS", "1-65535"}},
		{[]string{"THREATPIPE_KAFKA_INPUT_TOPIC=bad topic"}, []string{"THREATPIPE_KAFKA_INPUT_TOPIC", "not a valid topic"}},
		{[]string{"THREATPIPE_KAFKA_OUTPUT_TOPIC=indicators"}, []string{"THREATPIPE_KAFKA_INPUT_TOPIC", "must differ"}},
		{[]string{"THREATPIPE_KAFKA_DLQ_TOPIC=indicators.scored"}, []string{"THREATPIPE_KAFKA_DLQ_TOPIC", "must differ"}},
		{[]string{"THREATPIPE_PIPELINE_WORKERS=0"}, []string{"THREATPIPE_PIPELINE_WORKERS", "greater than zero"}},
		{[]string{"THREATPIPE_PIPELINE_WORKERS=100", "THREATPIPE_PIPELINE_MAX_IN_FLIGHT=10"}, []string{"THREATPIPE_PIPELINE_MAX_IN_FLIGHT"}},
		{[]string{"THREATPIPE_KAFKA_HEARTBEAT_INTERVAL=20s"}, []string{"THREATPIPE_KAFKA_HEARTBEAT_INTERVAL", "a third"}},
		{[]string{"THREATPIPE_KAFKA_SASL_MECHANISM=kerberos"}, []string{"THREATPIPE_KAFKA_SASL_MECHANISM", "kerberos"}},
		{[]string{"THREATPIPE_KAFKA_SASL_MECHANISM=scram-sha-512"}, []string{"THREATPIPE_KAFKA_SASL_USERNAME", "THREATPIPE_KAFKA_SASL_PASSWORD"}},
		{[]string{"THREATPIPE_KAFKA_TLS_ENABLED=true", "THREATPIPE_KAFKA_TLS_CA_FILE=" + filepath.Join(dir, "missing.pem")}, []string{"THREATPIPE_KAFKA_TLS_CA_FILE"}},
		{[]string{"THREATPIPE_KAFKA_TLS_CERT_FILE=/x.pem"}, []string{"THREATPIPE_KAFKA_TLS_CERT_FILE", "together"}},
		{[]string{"THREATPIPE_REDIS_ADDR=redis"}, []string{"THREATPIPE_REDIS_ADDR", "host:port"}},
		{[]string{"THREATPIPE_REDIS_DB=-1"}, []string{"THREATPIPE_REDIS_DB"}},
		{[]string{"THREATPIPE_REDIS_PASSWORD_FILE=" + filepath.Join(dir, "nope")}, []string{"THREATPIPE_REDIS_PASSWORD_FILE", "nope"}},
		{[]string{"THREATPIPE_GATE_OWN_CIDRS=10.0.0.0/33"}, []string{"THREATPIPE_GATE_OWN_CIDRS"}},
		{[]string{"THREATPIPE_GATE_ALLOWLIST_CIDRS=example.com"}, []string{"THREATPIPE_GATE_ALLOWLIST_CIDRS"}},
		{[]string{"THREATPIPE_HTTP_ADDR=8080"}, []string{"THREATPIPE_HTTP_ADDR"}},
		{[]string{"THREATPIPE_LOG_LEVEL=verbose"}, []string{"THREATPIPE_LOG_LEVEL"}},
		{[]string{"THREATPIPE_LOG_FORMAT=xml"}, []string{"THREATPIPE_LOG_FORMAT"}},
	} {
		t.Run(strings.Join(tc.env, " "), func(t *testing.T) {
			_, err := Load(tc.env)
			if err == nil {
				t.Fatal("Load accepted an invalid value")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestAllProblemsReportedAtOnce(t *testing.T) {
	_, err := Load([]string{"THREATPIPE_PIPELINE_WORKERS=0", "THREATPIPE_LOG_LEVEL=loud", "THREATPIPE_REDIS_DB=-3"})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, v := range []string{"PIPELINE_WORKERS", "LOG_LEVEL", "REDIS_DB"} {
		if !strings.Contains(err.Error(), v) {
			t.Errorf("error %q misses %s", err, v)
		}
	}
}

func TestSecretsFromFilesAndRedaction(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load([]string{
		"THREATPIPE_KAFKA_SASL_MECHANISM=scram-sha-256", "THREATPIPE_KAFKA_SASL_USERNAME=svc",
		"THREATPIPE_KAFKA_SASL_PASSWORD_FILE=" + pw, "THREATPIPE_REDIS_PASSWORD=redis-pw",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Kafka.SASLPassword.Reveal() != "s3cret-from-file" {
		t.Errorf("password from file = %q (trailing newline must be trimmed)", c.Kafka.SASLPassword.Reveal())
	}
	for _, rendered := range []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprint(c.Redis.Password)} {
		if strings.Contains(rendered, "s3cret") || strings.Contains(rendered, "redis-pw") {
			t.Fatalf("a secret leaked into formatted output: %s", rendered)
		}
	}

	_, err = Load([]string{"THREATPIPE_REDIS_PASSWORD=a", "THREATPIPE_REDIS_PASSWORD_FILE=" + pw})
	if err == nil || !strings.Contains(err.Error(), "THREATPIPE_REDIS_PASSWORD_FILE") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("both set: %v", err)
	}
}

// TestDocsInSync fails when docs/configuration.md and the Config struct drift apart. Run
// `go test ./pipeline/config -run TestDocsInSync -update` to regenerate the table.
func TestDocsInSync(t *testing.T) {
	pipelinetest.GeneratedSection(t, filepath.Join("..", "..", "docs", "configuration.md"), "config table", MarkdownTable(), *update)
	for _, v := range Vars() {
		if v.Description == "" {
			t.Errorf("%s has no desc tag", v.Name)
		}
		if !strings.HasPrefix(v.Name, Prefix) {
			t.Errorf("%s lacks the %s prefix", v.Name, Prefix)
		}
	}
}
