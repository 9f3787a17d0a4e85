package edl

import (
	"errors"
	"fmt"
	"net"
	"path"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/config"
)

// EnvPrefix is the prefix of the sink's variables (the registry derives the same from Name).
const EnvPrefix = config.Prefix + "SINK_EDL_"

// Output formats.
const (
	FormatPlain = "plain" // 192.0.2.1, 2001:db8::1
	FormatCIDR  = "cidr"  // 192.0.2.1/32, 2001:db8::1/128
)

// Config is the EDL sink's configuration, parsed by caarlos0/env under EnvPrefix.
type Config struct {
	Enabled          bool          `env:"ENABLED" envDefault:"false" desc:"Serve the block list as an External Dynamic List (PAN-OS EDL, FortiGate IP threat feed, Check Point network feed): on THREATPIPE_SINK_EDL_ADDR when set (recommended, with TLS and credentials), else as a page of THREATPIPE_HTTP_ADDR (plain HTTP)."`
	Path             string        `env:"PATH" envDefault:"/edl/blocklist.txt" desc:"URL path the list is served at."`
	Format           string        `env:"FORMAT" envDefault:"plain" desc:"Line format: plain (192.0.2.1) or cidr (192.0.2.1/32, 2001:db8::1/128)."`
	Addr             string        `env:"ADDR" desc:"Listen address (host:port) of the list's own server, apart from the probes and metrics of THREATPIPE_HTTP_ADDR, over HTTPS with THREATPIPE_SINK_EDL_TLS_CERT_FILE. Recommended: the firewalls reach this address only. Empty: the list is a page of THREATPIPE_HTTP_ADDR, plain HTTP (put a TLS proxy in front)."`
	TLSCertFile      string        `env:"TLS_CERT_FILE" desc:"PEM certificate (with its chain) of the list's HTTPS server on THREATPIPE_SINK_EDL_ADDR; the firewalls verify it (PAN-OS certificate profile, FortiGate server-identity-check). Reloaded when the file changes."`
	TLSKeyFile       string        `env:"TLS_KEY_FILE" desc:"PEM private key of THREATPIPE_SINK_EDL_TLS_CERT_FILE. Reloaded when the file changes."`
	TLSClientCAFile  string        `env:"TLS_CLIENT_CA_FILE" desc:"PEM CA certificates: with it, only clients presenting a certificate these signed can connect (mutual TLS, e.g. FortiGate client-cert-auth). Needs THREATPIPE_SINK_EDL_TLS_CERT_FILE. Reloaded when the file changes."`
	Username         string        `env:"USERNAME" desc:"HTTP basic-auth user the firewalls must send (with THREATPIPE_SINK_EDL_PASSWORD): PAN-OS, FortiGate and Check Point all can, PAN-OS over HTTPS only. Empty, with no token or client CA: the list is served without authentication (a warning at start-up unless on loopback)."`
	Password         config.Secret `env:"PASSWORD" desc:"HTTP basic-auth password." secret:"true"`
	PasswordFromFile config.Secret `env:"PASSWORD_FILE,file" desc:"File holding the basic-auth password (instead of THREATPIPE_SINK_EDL_PASSWORD)." secret:"true"`
	Token            config.Secret `env:"TOKEN" desc:"Bearer token accepted instead of (or besides) basic auth (Authorization: Bearer <token>), for clients that can set a header; at least 16 characters." secret:"true"`
	TokenFromFile    config.Secret `env:"TOKEN_FILE,file" desc:"File holding the bearer token (instead of THREATPIPE_SINK_EDL_TOKEN)." secret:"true"`
	DefaultTTL       time.Duration `env:"DEFAULT_TTL" envDefault:"24h" desc:"How long an address stays listed when the playbook gives no expiry."`
	MaxEntries       int           `env:"MAX_ENTRIES" envDefault:"0" desc:"Most addresses listed at once; a block past it fails instead of being silently skipped by a firewall whose capacity is smaller (PAN-OS: 50,000 on most older models). 0: no limit."`
}

// Resolve applies THREATPIPE_SINK_EDL_PASSWORD_FILE and validates the values, with errors that
// name the variable. It is idempotent.
func (c *Config) Resolve() error {
	var errs []error
	add := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", EnvPrefix, name, fmt.Sprintf(format, args...)))
	}
	if err := config.ResolveSecretFile(&c.Password, c.PasswordFromFile, EnvPrefix+"PASSWORD"); err != nil {
		errs = append(errs, err)
	} else {
		c.PasswordFromFile = ""
	}
	if err := config.ResolveSecretFile(&c.Token, c.TokenFromFile, EnvPrefix+"TOKEN"); err != nil {
		errs = append(errs, err)
	} else {
		c.TokenFromFile = ""
	}
	errs = append(errs, c.resolveServer()...)
	if err := checkPath(c.Path); err != "" {
		add("PATH", "%q %s", c.Path, err)
	}
	switch c.Format {
	case FormatPlain, FormatCIDR:
	default:
		add("FORMAT", "%q is not one of plain, cidr", c.Format)
	}
	switch {
	case (c.Username == "") != (c.Password == ""):
		add("USERNAME", "and THREATPIPE_SINK_EDL_PASSWORD must be set together")
	case strings.ContainsAny(c.Username, ":") || hasControl(c.Username):
		// RFC 7617: the user-id of basic auth cannot contain a colon.
		add("USERNAME", "must not contain a colon or control characters")
	case hasControl(c.Password.Reveal()):
		add("PASSWORD", "contains control characters (check the file or variable for stray characters)")
	}
	if c.DefaultTTL <= 0 {
		add("DEFAULT_TTL", "must be greater than zero")
	}
	if c.MaxEntries < 0 {
		add("MAX_ENTRIES", "must not be negative")
	}
	return errors.Join(errs...)
}

// Configured reports whether the operator turned the list on.
func (c *Config) Configured() bool { return c.Enabled }

// checkPath says what is wrong with a serving path, or "".
func checkPath(p string) string {
	switch {
	case !strings.HasPrefix(p, "/"):
		return "must start with /"
	case strings.HasSuffix(p, "/"):
		return "must name a file, not end with /"
	case path.Clean(p) != p:
		return "must be a clean path (no //, . or ..)"
	case strings.ContainsAny(p, "{}?#% \t") || hasControl(p):
		return "must not contain braces, ?, #, %, spaces or control characters"
	}
	return ""
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f })
}

// minTokenLen is the shortest bearer token accepted: a guessable token is no authentication.
const minTokenLen = 16

// resolveServer checks the listener, TLS and token settings; each error names its variable.
func (c *Config) resolveServer() []error {
	var errs []error
	add := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", EnvPrefix, name, fmt.Sprintf(format, args...)))
	}
	if c.Addr != "" {
		if _, port, err := net.SplitHostPort(c.Addr); err != nil || port == "" {
			add("ADDR", "%q is not host:port (0.0.0.0:8443, 192.0.2.10:8443, [::]:8443)", c.Addr)
		}
	}
	switch {
	case c.TLSCertFile != "" && c.TLSKeyFile == "":
		add("TLS_CERT_FILE", "and THREATPIPE_SINK_EDL_TLS_KEY_FILE must be set together")
	case c.TLSKeyFile != "" && c.TLSCertFile == "":
		add("TLS_KEY_FILE", "and THREATPIPE_SINK_EDL_TLS_CERT_FILE must be set together")
	case c.TLSCertFile != "" && c.Addr == "":
		add("ADDR", "is required with THREATPIPE_SINK_EDL_TLS_CERT_FILE: the list's HTTPS server needs an address of its own")
	case c.TLSCertFile != "":
		if _, err := loadKeyPair(c.TLSCertFile, c.TLSKeyFile); err != nil {
			errs = append(errs, err)
		}
	}
	if c.TLSClientCAFile != "" {
		if c.TLSCertFile == "" {
			add("TLS_CLIENT_CA_FILE", "needs THREATPIPE_SINK_EDL_TLS_CERT_FILE and _TLS_KEY_FILE: client certificates are asked for over TLS only")
		} else if _, err := loadCAs(c.TLSClientCAFile); err != nil {
			errs = append(errs, err)
		}
	}
	if t := c.Token.Reveal(); t != "" && (len(t) < minTokenLen || hasControl(t) || strings.ContainsAny(t, " \t")) {
		add("TOKEN", "must be at least %d characters, without spaces or control characters (e.g. openssl rand -hex 32)", minTokenLen)
	}
	return errs
}
