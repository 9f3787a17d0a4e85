package pipelinetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// SecureVars returns the settings of the secured services, each read from
// THREATPIPE_TEST_SECURE_<name> (`scripts/services.sh env-secure --test` prints them) and handed
// to threatpipe as THREATPIPE_<name>.
func SecureVars() []string {
	return []string{
		"KAFKA_BROKERS", "KAFKA_TLS_ENABLED", "KAFKA_TLS_CA_FILE", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME",
		"KAFKA_SASL_PASSWORD", "REDIS_ADDR", "REDIS_TLS_ENABLED", "REDIS_TLS_CA_FILE", "REDIS_TLS_CERT_FILE",
		"REDIS_TLS_KEY_FILE", "REDIS_USERNAME", "REDIS_PASSWORD",
	}
}

// Secure is the secured pair `make test` starts beside the plain one (scripts/services.sh
// up-secure): a broker whose only listener is SASL_SSL with SCRAM-SHA-512, and a TLS-only Redis
// that wants a client certificate and an ACL user's password.
type Secure struct {
	// Kafka talks to the secured broker with its TLS and SCRAM settings.
	Kafka     *Broker
	RedisAddr string
	vars      map[string]string
}

// SecureServices returns the secured services. Without their THREATPIPE_TEST_SECURE_* variables
// the test is skipped, unless THREATPIPE_TEST_REQUIRE_SECURE_SERVICES=1 (set by `make test` and
// CI), in which case it fails. The settings are checked here with an independent client (not
// threatpipe's own code), so a broken helper cannot hide a broken product.
func SecureServices(t testing.TB) *Secure {
	t.Helper()
	vars := map[string]string{}
	var missing []string
	for _, name := range SecureVars() {
		v := os.Getenv("THREATPIPE_TEST_SECURE_" + name)
		if v == "" {
			missing = append(missing, "THREATPIPE_TEST_SECURE_"+name)
		}
		vars[name] = v
	}
	if len(missing) > 0 {
		if os.Getenv("THREATPIPE_TEST_REQUIRE_SECURE_SERVICES") == "1" {
			t.Fatalf("%s not set but THREATPIPE_TEST_REQUIRE_SECURE_SERVICES=1: start them with `make services-secure-up`", strings.Join(missing, ", "))
		}
		t.Skipf("%s needs the secured Kafka and Redis: eval \"$(scripts/services.sh env-secure --test)\" (make test does)", t.Name())
	}
	s := &Secure{RedisAddr: vars["REDIS_ADDR"], vars: vars}
	caPool := x509.NewCertPool()
	caPEM, err := os.ReadFile(vars["KAFKA_TLS_CA_FILE"])
	if err != nil || !caPool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("secured services: CA file %s: %v", vars["KAFKA_TLS_CA_FILE"], err)
	}
	mech, err := scram.Mechanism(scram.SHA512, vars["KAFKA_SASL_USERNAME"], vars["KAFKA_SASL_PASSWORD"])
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: caPool}
	brokers := strings.Split(vars["KAFKA_BROKERS"], ",")
	s.Kafka = &Broker{
		Addrs: brokers,
		// A short metadata TTL: topics the code under test creates show up within a second.
		Transport: &kafka.Transport{TLS: tlsCfg, SASL: mech, DialTimeout: 5 * time.Second, MetadataTTL: time.Second},
		Dialer:    &kafka.Dialer{TLS: tlsCfg, SASLMechanism: mech, Timeout: 10 * time.Second},
	}
	for _, addr := range []string{brokers[0], s.RedisAddr} {
		conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			t.Fatalf("secured service at %s is not reachable: %v", addr, err)
		}
		_ = conn.Close()
	}
	return s
}

// Var returns the setting name (one of SecureVars()).
func (s *Secure) Var(name string) string { return s.vars[name] }

// Env returns THREATPIPE_<name>=value for every setting, so that a threatpipe process uses the
// secured services; overrides (NAME=value, THREATPIPE_ prefix included) replace or add settings.
func (s *Secure) Env(overrides ...string) []string {
	set := map[string]string{}
	var order []string
	put := func(kv string) {
		k, v, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; !ok {
			order = append(order, k)
		}
		set[k] = v
	}
	for _, name := range SecureVars() {
		put("THREATPIPE_" + name + "=" + s.vars[name])
	}
	for _, kv := range overrides {
		put(kv)
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+set[k])
	}
	return out
}

// Redis returns a client of the secured Redis (TLS with the client certificate, the ACL user),
// closed when the test ends.
func (s *Secure) Redis(t testing.TB) *redis.Client {
	t.Helper()
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(s.vars["REDIS_TLS_CA_FILE"])
	if err != nil || !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("secured redis: CA file: %v", err)
	}
	cert, err := tls.LoadX509KeyPair(s.vars["REDIS_TLS_CERT_FILE"], s.vars["REDIS_TLS_KEY_FILE"])
	if err != nil {
		t.Fatalf("secured redis: client certificate: %v", err)
	}
	c := redis.NewClient(&redis.Options{
		Addr: s.RedisAddr, Username: s.vars["REDIS_USERNAME"], Password: s.vars["REDIS_PASSWORD"],
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, Certificates: []tls.Certificate{cert}},
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// UntrustedCA writes the certificate of a fresh CA that signed nothing to a file and returns its
// path: a CA file that makes every real server's certificate untrusted.
func UntrustedCA(t testing.TB) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "untrusted test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "untrusted-ca.crt")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
