package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate and its key as PEM files and returns their paths.
func writeCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key")
	for path, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

func TestRedisAndKafkaTLSSettings(t *testing.T) {
	cert, key := writeCert(t)
	for _, service := range []string{"KAFKA", "REDIS"} {
		v := func(name, value string) string { return "THREATPIPE_" + service + "_" + name + "=" + value }
		c, err := Load([]string{v("TLS_ENABLED", "true"), v("TLS_CA_FILE", cert), v("TLS_CERT_FILE", cert),
			v("TLS_KEY_FILE", key), v("TLS_SERVER_NAME", "broker.internal")})
		if err != nil {
			t.Fatalf("%s: %v", service, err)
		}
		got, err := c.Kafka.TLSConfig()
		if service == "REDIS" {
			got, err = c.Redis.TLSConfig()
		}
		if err != nil || got == nil || got.RootCAs == nil || len(got.Certificates) != 1 || got.ServerName != "broker.internal" ||
			got.InsecureSkipVerify || got.MinVersion != tls.VersionTLS12 {
			t.Errorf("%s: TLS config %+v, %v", service, got, err)
		}

		for _, tc := range []struct {
			env  []string
			want string
		}{
			{[]string{v("TLS_ENABLED", "true"), v("TLS_CA_FILE", cert+".missing")}, "THREATPIPE_" + service + "_TLS_CA_FILE: "},
			{[]string{v("TLS_ENABLED", "true"), v("TLS_CA_FILE", key)}, "THREATPIPE_" + service + "_TLS_CA_FILE: "},
			{[]string{v("TLS_ENABLED", "true"), v("TLS_CERT_FILE", cert)}, "THREATPIPE_" + service + "_TLS_CERT_FILE: is set without THREATPIPE_" + service + "_TLS_KEY_FILE"},
			{[]string{v("TLS_ENABLED", "true"), v("TLS_CERT_FILE", key), v("TLS_KEY_FILE", key)}, "THREATPIPE_" + service + "_TLS_CERT_FILE: "},
			// TLS files without TLS would silently connect in plain text.
			{[]string{v("TLS_CA_FILE", cert)}, "THREATPIPE_" + service + "_TLS_CA_FILE: is set but THREATPIPE_" + service + "_TLS_ENABLED is false"},
			{[]string{v("TLS_SERVER_NAME", "x")}, "THREATPIPE_" + service + "_TLS_SERVER_NAME: is set but"},
		} {
			_, err := Load(tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v: error %v, want it to contain %q", tc.env, err, tc.want)
			}
		}
	}
	if _, err := Load([]string{"THREATPIPE_REDIS_TLS_INSECURE_SKIP_VERIFY=true"}); err != nil {
		t.Fatal(err) // unknown variables are ignored; there is no such Redis field to set
	}
	c, err := Load([]string{"THREATPIPE_REDIS_TLS_ENABLED=true"})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Redis.TLSConfig(); got == nil || got.RootCAs != nil || got.InsecureSkipVerify {
		t.Errorf("TLS without files must verify against the system pool: %+v", got)
	}
}

func TestExplainTLSError(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("dial: %w", err) }
	for _, tc := range []struct {
		err  error
		want string
	}{
		{wrap(x509.UnknownAuthorityError{}), "THREATPIPE_REDIS_TLS_CA_FILE: "},
		{wrap(x509.HostnameError{Certificate: &x509.Certificate{}, Host: "h"}), "THREATPIPE_REDIS_TLS_SERVER_NAME: "},
		{wrap(x509.CertificateInvalidError{Reason: x509.Expired}), "THREATPIPE_REDIS_TLS_CA_FILE: "},
		{wrap(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), "THREATPIPE_REDIS_TLS_ENABLED: "},
		{wrap(tls.AlertError(116)), "THREATPIPE_REDIS_TLS_CERT_FILE: "},
		{errors.New("read: remote error: tls: certificate required"), "THREATPIPE_REDIS_TLS_CERT_FILE: "},
		{errors.New("read: remote error: tls: bad certificate"), "THREATPIPE_REDIS_TLS_CERT_FILE: "},
		{wrap(io.EOF), ""},
		{errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), ""},
	} {
		got := ExplainTLSError("REDIS_", "127.0.0.1:6380", tc.err)
		if tc.want == "" {
			if got != nil {
				t.Errorf("%v: %v, want nil (not a setting's fault)", tc.err, got)
			}
			continue
		}
		if got == nil || !strings.HasPrefix(got.Error(), tc.want) || !errors.Is(got, tc.err) && !strings.Contains(got.Error(), tc.err.Error()) {
			t.Errorf("%v: %v, want it to start with %q and keep the cause", tc.err, got, tc.want)
		}
	}
}
