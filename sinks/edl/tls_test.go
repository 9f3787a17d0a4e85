package edl

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/threatpipe/threatpipe/sinks"
)

// testPKI is a throwaway CA with server and client certificates, written as PEM files to a
// test's temporary directory: no certificate is committed.
type testPKI struct {
	dir                string
	ca                 *x509.Certificate
	caKey              *ecdsa.PrivateKey
	caFile             string
	certFile, keyFile  string // server, for 127.0.0.1 and localhost
	clientCert         tls.Certificate
	strangerClientCert tls.Certificate // signed by another CA
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir()}
	p.ca, p.caKey = selfSigned(t, "threatpipe test CA")
	p.caFile = p.writePEM(t, "ca.pem", "CERTIFICATE", p.ca.Raw)
	p.certFile, p.keyFile = p.issueFiles(t, "server", 1)
	p.clientCert = p.issue(t, "firewall-1", 10, x509.ExtKeyUsageClientAuth, p.ca, p.caKey)
	otherCA, otherKey := selfSigned(t, "another CA")
	p.strangerClientCert = p.issue(t, "stranger", 11, x509.ExtKeyUsageClientAuth, otherCA, otherKey)
	return p
}

func selfSigned(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// issue signs a leaf certificate for usage.
func (p *testPKI) issue(t *testing.T, name string, serial int64, usage x509.ExtKeyUsage, ca *x509.Certificate, caKey *ecdsa.PrivateKey) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// issueFiles writes a server certificate with serial to name.pem and name-key.pem.
func (p *testPKI) issueFiles(t *testing.T, name string, serial int64) (certFile, keyFile string) {
	t.Helper()
	c := p.issue(t, name, serial, x509.ExtKeyUsageServerAuth, p.ca, p.caKey)
	keyDER, err := x509.MarshalECPrivateKey(c.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	return p.writePEM(t, name+".pem", "CERTIFICATE", c.Certificate[0]), p.writePEM(t, name+"-key.pem", "EC PRIVATE KEY", keyDER)
}

func (p *testPKI) writePEM(t *testing.T, name, kind string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// client trusts the test CA and presents cert, if any.
func (p *testPKI) client(cert *tls.Certificate) *http.Client {
	roots := x509.NewCertPool()
	roots.AddCert(p.ca)
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

// serveOwn builds the sink from environ (its own listener) and serves it on a free loopback
// port until the test ends; it returns the sink and the list's https URL.
func serveOwn(t *testing.T, environ ...string) (*Sink, string) {
	t.Helper()
	environ = append([]string{EnvPrefix + "ENABLED=true", EnvPrefix + "ADDR=127.0.0.1:0"}, environ...)
	got, err := sinks.Load([]sinks.Registration{Registration}, environ, sinks.Deps{Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	s := got[Name].(*Sink)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.server.serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	scheme := "http"
	if s.server.certs != nil {
		scheme = "https"
	}
	return s, scheme + "://" + ln.Addr().String() + "/edl/blocklist.txt"
}

func call(t *testing.T, c *http.Client, url string, set func(*http.Request)) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if set != nil {
		set(req)
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body), nil
}

const testToken = "tok-0123456789abcdef0123456789abcdef"

func TestServeOverTLSWithBasicAuthOrToken(t *testing.T) {
	p := newPKI(t)
	s, url := serveOwn(t, EnvPrefix+"TLS_CERT_FILE="+p.certFile, EnvPrefix+"TLS_KEY_FILE="+p.keyFile,
		EnvPrefix+"USERNAME=paloalto", EnvPrefix+"PASSWORD="+testPassword, EnvPrefix+"TOKEN="+testToken)
	doBlock(t, s, "198.51.101.7", time.Now().Add(time.Hour))
	c := p.client(nil)
	for _, tc := range []struct {
		name string
		set  func(*http.Request)
		want int
	}{
		{"no credentials", nil, http.StatusUnauthorized},
		{"basic", func(r *http.Request) { r.SetBasicAuth("paloalto", testPassword) }, http.StatusOK},
		{"basic, wrong password", func(r *http.Request) { r.SetBasicAuth("paloalto", testPassword+"x") }, http.StatusUnauthorized},
		{"basic, wrong user", func(r *http.Request) { r.SetBasicAuth("fortigate", testPassword) }, http.StatusUnauthorized},
		{"basic, the token as password", func(r *http.Request) { r.SetBasicAuth("paloalto", testToken) }, http.StatusUnauthorized},
		{"bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testToken) }, http.StatusOK},
		{"bearer, scheme in lower case", func(r *http.Request) { r.Header.Set("Authorization", "bearer "+testToken) }, http.StatusOK},
		{"bearer, wrong token", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testToken[:len(testToken)-1]) }, http.StatusUnauthorized},
		{"bearer, the password", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testPassword) }, http.StatusUnauthorized},
		{"another scheme", func(r *http.Request) { r.Header.Set("Authorization", "Digest username=paloalto") }, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body, err := call(t, c, url, tc.set)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.want)
			}
			switch tc.want {
			case http.StatusOK:
				if body != "198.51.101.7\n" || res.TLS == nil {
					t.Errorf("body %q over TLS %v", body, res.TLS != nil)
				}
			case http.StatusUnauthorized:
				if got := res.Header.Values("WWW-Authenticate"); len(got) != 2 || !strings.HasPrefix(got[0], "Basic ") || !strings.HasPrefix(got[1], "Bearer ") {
					t.Errorf("challenges %q, want Basic and Bearer", got)
				}
				if strings.Contains(body, "198.51.101.7") {
					t.Error("the list leaked in a 401")
				}
			}
		})
	}
	t.Run("a client that does not trust the certificate", func(t *testing.T) {
		if _, _, err := call(t, &http.Client{Timeout: 5 * time.Second}, url, nil); err == nil {
			t.Fatal("a client without the CA connected")
		}
	})
	t.Run("plain HTTP to the TLS port", func(t *testing.T) {
		res, _, err := call(t, &http.Client{Timeout: 5 * time.Second}, strings.Replace(url, "https://", "http://", 1), func(r *http.Request) {
			r.SetBasicAuth("paloalto", testPassword)
		})
		if err == nil && res.StatusCode == http.StatusOK {
			t.Fatal("the list was served over plain HTTP")
		}
	})
}

func TestServeOverMutualTLS(t *testing.T) {
	p := newPKI(t)
	s, url := serveOwn(t, EnvPrefix+"TLS_CERT_FILE="+p.certFile, EnvPrefix+"TLS_KEY_FILE="+p.keyFile, EnvPrefix+"TLS_CLIENT_CA_FILE="+p.caFile)
	doBlock(t, s, "198.51.101.7", time.Now().Add(time.Hour))
	if res, body, err := call(t, p.client(&p.clientCert), url, nil); err != nil || res.StatusCode != http.StatusOK || body != "198.51.101.7\n" {
		t.Fatalf("a client certificate of the CA: %v %v %q", res, err, body)
	}
	for name, cert := range map[string]*tls.Certificate{"no client certificate": nil, "a certificate of another CA": &p.strangerClientCert} {
		t.Run(name, func(t *testing.T) {
			if res, _, err := call(t, p.client(cert), url, nil); err == nil {
				t.Fatalf("served: %d", res.StatusCode)
			}
		})
	}
}

func TestTLSCertificateReloadsWhenTheFilesChange(t *testing.T) {
	p := newPKI(t)
	s, url := serveOwn(t, EnvPrefix+"TLS_CERT_FILE="+p.certFile, EnvPrefix+"TLS_KEY_FILE="+p.keyFile)
	serial := func() int64 {
		t.Helper()
		c := p.client(nil)
		c.Transport.(*http.Transport).DisableKeepAlives = true
		res, _, err := call(t, c, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res.TLS.PeerCertificates[0].SerialNumber.Int64()
	}
	if got := serial(); got != 1 {
		t.Fatalf("serial %d, want 1", got)
	}
	// Renew: the new certificate and key replace the files (as certbot or cert-manager do).
	certFile, keyFile := p.issueFiles(t, "renewed", 2)
	for from, to := range map[string]string{certFile: p.certFile, keyFile: p.keyFile} {
		if err := os.Rename(from, to); err != nil {
			t.Fatal(err)
		}
	}
	later := time.Now().Add(time.Minute)
	for _, f := range []string{p.certFile, p.keyFile} {
		if err := os.Chtimes(f, later, later); err != nil {
			t.Fatal(err)
		}
	}
	if got := serial(); got != 1 {
		t.Errorf("serial %d within the check interval, want the loaded 1", got)
	}
	c := s.server.certs
	c.mu.Lock()
	c.checked = time.Time{} // as if reloadCheck had passed
	c.mu.Unlock()
	if got := serial(); got != 2 {
		t.Errorf("serial %d after the files changed, want 2", got)
	}

	// A broken file keeps the previous certificate.
	if err := os.WriteFile(p.certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.checked = time.Time{}
	c.mu.Unlock()
	if got := serial(); got != 2 {
		t.Errorf("serial %d after a broken file, want the previous 2", got)
	}
}

func TestRunListensOnItsOwnAddress(t *testing.T) {
	// Without THREATPIPE_SINK_EDL_ADDR there is nothing to run.
	s := New(testConfig(), nil)
	if err := s.Run(context.Background()); err != nil {
		t.Fatalf("Run without an address: %v", err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	got, err := sinks.Load([]sinks.Registration{Registration}, []string{EnvPrefix + "ENABLED=true", EnvPrefix + "ADDR=" + busy.Addr().String()}, sinks.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	err = got[Name].(*Sink).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "THREATPIPE_SINK_EDL_ADDR") {
		t.Fatalf("Run on a busy port: %v, want an error naming THREATPIPE_SINK_EDL_ADDR", err)
	}

	// On a free port it serves until its context ends.
	addr := busy.Addr().String()
	_ = busy.Close()
	got, err = sinks.Load([]sinks.Registration{Registration}, []string{EnvPrefix + "ENABLED=true", EnvPrefix + "ADDR=" + addr}, sinks.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- got[Name].(*Sink).Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, _, err := call(t, &http.Client{Timeout: time.Second}, "http://"+addr+"/edl/blocklist.txt", nil)
		if err == nil && res.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not served: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if res, _, err := call(t, &http.Client{Timeout: time.Second}, "http://"+addr+"/metrics", nil); err != nil || res.StatusCode != http.StatusNotFound {
		t.Errorf("the list's server serves more than the list: %v %v", res, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel: %v", err)
	}
}

func TestStartUpWarnsAboutExposure(t *testing.T) {
	p := newPKI(t)
	tlsVars := map[string]string{"ADDR": "0.0.0.0:8443", "TLS_CERT_FILE": p.certFile, "TLS_KEY_FILE": p.keyFile}
	with := func(base map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		vars     map[string]string
		httpAddr string
		warn     string // "" when no warning is expected
	}{
		{"own address, every interface, no auth", map[string]string{"ADDR": ":8443"}, "", "WITHOUT authentication"},
		{"shared server on every interface, no auth", nil, "0.0.0.0:8080", "WITHOUT authentication"},
		{"shared server, address unknown, no auth", nil, "", "WITHOUT authentication"},
		{"shared server on loopback, no auth", nil, "127.0.0.1:8080", ""},
		{"own address on loopback, no auth", map[string]string{"ADDR": "localhost:8443"}, "", ""},
		{"basic auth over plain HTTP", map[string]string{"USERNAME": "pan", "PASSWORD": testPassword}, "0.0.0.0:8080", "plain HTTP"},
		{"a token over plain HTTP", map[string]string{"ADDR": "[::]:8443", "TOKEN": testToken}, "", "plain HTTP"},
		{"TLS and basic auth", with(tlsVars, "USERNAME", "pan", "PASSWORD", testPassword), "", ""},
		{"TLS and client certificates", with(tlsVars, "TLS_CLIENT_CA_FILE", p.caFile), "", ""},
		{"TLS without auth", tlsVars, "", "WITHOUT authentication"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseConfig(t, with(tc.vars, "ENABLED", "true"))
			if err != nil {
				t.Fatal(err)
			}
			core, logs := observer.New(zap.InfoLevel)
			addr := tc.httpAddr
			if cfg.Addr != "" {
				addr = cfg.Addr
			}
			logExposure(cfg, addr, zap.New(core))
			warns := logs.FilterLevelExact(zap.WarnLevel).All()
			switch {
			case tc.warn == "" && len(warns) != 0:
				t.Errorf("warned: %s", warns[0].Message)
			case tc.warn != "" && (len(warns) != 1 || !strings.Contains(warns[0].Message, tc.warn)):
				t.Errorf("warnings %v, want one saying %q", warns, tc.warn)
			case logs.Len() != 1:
				t.Errorf("%d log lines, want 1", logs.Len())
			}
		})
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "[::1]:8443": true, "localhost:80": true, "127.1.2.3:1": true,
		":8080": false, "0.0.0.0:8080": false, "[::]:8443": false, "192.0.2.10:8443": false, "edl.example:443": false, "": false, "garbage": false,
	} {
		if got := loopback(addr); got != want {
			t.Errorf("loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestConfigTLSFilesAreChecked(t *testing.T) {
	p := newPKI(t)
	if _, err := parseConfig(t, map[string]string{"ADDR": ":8443", "TLS_CERT_FILE": p.certFile, "TLS_KEY_FILE": p.keyFile, "TLS_CLIENT_CA_FILE": p.caFile}); err != nil {
		t.Fatalf("valid files: %v", err)
	}
	// The key of another certificate, and a CA file without a certificate.
	_, otherKey := p.issueFiles(t, "other", 3)
	_, err := parseConfig(t, map[string]string{"ADDR": ":8443", "TLS_CERT_FILE": p.certFile, "TLS_KEY_FILE": otherKey})
	if err == nil || !strings.Contains(err.Error(), "THREATPIPE_SINK_EDL_TLS_CERT_FILE and THREATPIPE_SINK_EDL_TLS_KEY_FILE") {
		t.Errorf("mismatched key: %v", err)
	}
	_, err = parseConfig(t, map[string]string{"ADDR": ":8443", "TLS_CERT_FILE": p.certFile, "TLS_KEY_FILE": p.keyFile, "TLS_CLIENT_CA_FILE": p.keyFile})
	if err == nil || !strings.Contains(err.Error(), "THREATPIPE_SINK_EDL_TLS_CLIENT_CA_FILE") {
		t.Errorf("a key as CA file: %v", err)
	}
	tokenFile := filepath.Join(p.dir, "token")
	if err := os.WriteFile(tokenFile, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parseConfig(t, map[string]string{"TOKEN_FILE": tokenFile})
	if err != nil || c.Token.Reveal() != testToken {
		t.Errorf("token file: %v", err)
	}
}
