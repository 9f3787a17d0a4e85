package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
)

// clientTLS holds the TLS settings a client of Kafka or Redis shares; service is the variables'
// middle part ("KAFKA_" or "REDIS_"), so every error names the variable to fix.
type clientTLS struct {
	service                   string
	enabled                   bool
	caFile, certFile, keyFile string
	serverName                string
	insecureSkipVerify        bool
}

// config builds the TLS configuration, or nil when TLS is off. Certificates are verified against
// caFile (or the system pool) and the server name (default: the host being dialled).
func (c clientTLS) config() (*tls.Config, error) {
	if !c.enabled {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.serverName,
		InsecureSkipVerify: c.insecureSkipVerify} //nolint:gosec // opt-in, documented as testing only
	if c.caFile != "" {
		pem, err := os.ReadFile(c.caFile)
		if err != nil {
			return nil, fieldError(c.service+"TLS_CA_FILE", "%v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fieldError(c.service+"TLS_CA_FILE", "%s holds no PEM certificate", c.caFile)
		}
		cfg.RootCAs = pool
	}
	if c.certFile != "" {
		cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
		if err != nil {
			return nil, fieldError(c.service+"TLS_CERT_FILE", "%v", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// validate reports settings that cannot work: a certificate without its key, or TLS files and
// names given while TLS is off (the connection would silently be plain text).
func (c clientTLS) validate() []error {
	var errs []error
	// Name the variable that is set: the one the operator is looking at.
	switch {
	case c.certFile != "" && c.keyFile == "":
		errs = append(errs, fieldError(c.service+"TLS_CERT_FILE", "is set without %s%sTLS_KEY_FILE: set both together", Prefix, c.service))
	case c.certFile == "" && c.keyFile != "":
		errs = append(errs, fieldError(c.service+"TLS_KEY_FILE", "is set without %s%sTLS_CERT_FILE: set both together", Prefix, c.service))
	}
	if !c.enabled {
		for _, f := range []struct{ name, value string }{
			{"TLS_CA_FILE", c.caFile}, {"TLS_CERT_FILE", c.certFile}, {"TLS_SERVER_NAME", c.serverName},
		} {
			if f.value != "" {
				errs = append(errs, fieldError(c.service+f.name, "is set but %s%sTLS_ENABLED is false: set it to true, or unset this", Prefix, c.service))
			}
		}
		return errs
	}
	if _, err := c.config(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

func (k *Kafka) tlsSettings() clientTLS {
	return clientTLS{service: "KAFKA_", enabled: k.TLSEnabled, caFile: k.TLSCAFile, certFile: k.TLSCertFile,
		keyFile: k.TLSKeyFile, serverName: k.TLSServerName, insecureSkipVerify: k.TLSInsecure}
}

// TLSConfig builds the broker TLS configuration, or nil when TLS is off.
func (k *Kafka) TLSConfig() (*tls.Config, error) { return k.tlsSettings().config() }

func (r *Redis) tlsSettings() clientTLS {
	return clientTLS{service: "REDIS_", enabled: r.TLSEnabled, caFile: r.TLSCAFile, certFile: r.TLSCertFile,
		keyFile: r.TLSKeyFile, serverName: r.TLSServerName}
}

// TLSConfig builds the Redis TLS configuration, or nil when TLS is off. There is deliberately no
// way to skip verification for Redis: the ledger and kill switch live there.
func (r *Redis) TLSConfig() (*tls.Config, error) { return r.tlsSettings().config() }

// ExplainTLSError turns a failed handshake into an error that names the variable to fix, for
// service "KAFKA_" or "REDIS_" (and addr, the server dialled). Errors that are no TLS setting's
// fault are returned as nil, so callers can tell "fix the configuration" from "retry later".
func ExplainTLSError(service, addr string, err error) error {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		header   tls.RecordHeaderError
		alert    tls.AlertError
	)
	name := func(v string) string { return Prefix + service + v }
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("%s: the certificate of %s is signed by an authority this file does not hold (or, without it, the system pool): %w",
			name("TLS_CA_FILE"), addr, err)
	case errors.As(err, &hostname):
		return fmt.Errorf("%s: the certificate of %s does not name the host dialled; set the name it carries: %w",
			name("TLS_SERVER_NAME"), addr, err)
	case errors.As(err, &invalid):
		return fmt.Errorf("%s: the certificate of %s is not valid: %w", name("TLS_CA_FILE"), addr, err)
	case errors.As(err, &header):
		return fmt.Errorf("%s: %s does not speak TLS on this port: %w", name("TLS_ENABLED"), addr, err)
	case errors.As(err, &alert) && (uint8(alert) == 42 || uint8(alert) == 116), // bad_certificate, certificate_required
		// Over TCP, crypto/tls reports the server's alert as a "remote error" of an unexported
		// type, and clients may flatten it to text: match the alert's words.
		strings.Contains(err.Error(), "remote error: tls: certificate required"),
		strings.Contains(err.Error(), "remote error: tls: bad certificate"),
		strings.Contains(err.Error(), "remote error: tls: unknown certificate authority"):
		return fmt.Errorf("%s: %s requires a client certificate it trusts (with %s): %w",
			name("TLS_CERT_FILE"), addr, name("TLS_KEY_FILE"), err)
	}
	return nil
}
