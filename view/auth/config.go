package auth

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/gate"
)

// ConfigPrefix is the prefix of the sign-in variables: the view's own (THREATPIPE_VIEW_).
const ConfigPrefix = config.Prefix + "VIEW_"

// Config is the analyst console's sign-in configuration. Without an issuer no interactive
// sign-in exists: API tokens still work, and pages are readable anonymously from loopback only.
type Config struct {
	Issuer             string        `env:"OIDC_ISSUER" desc:"OpenID Connect issuer URL of the sign-in provider (Keycloak realm, Okta, Entra ID tenant v2.0 endpoint, Dex); its /.well-known/openid-configuration is read. Unset: no interactive sign-in, and pages are readable anonymously from loopback clients only (a warning at start)."`
	ClientID           string        `env:"OIDC_CLIENT_ID" desc:"Client id of the view at the provider."`
	ClientSecret       config.Secret `env:"OIDC_CLIENT_SECRET" desc:"Client secret of the view (confidential client). Empty: a public client relying on PKCE alone." secret:"true"`
	ClientSecretFile   config.Secret `env:"OIDC_CLIENT_SECRET_FILE,file" desc:"File holding the client secret (instead of THREATPIPE_VIEW_OIDC_CLIENT_SECRET)." secret:"true"`
	RedirectURL        string        `env:"OIDC_REDIRECT_URL" desc:"The view's public callback URL, https://<host>/auth/callback, registered at the provider. Its scheme decides the cookies: https gives Secure __Host- cookies; http is accepted only for localhost, 127.0.0.1 and [::1] (development), with cookies that are not Secure."`
	Scopes             []string      `env:"OIDC_SCOPES" envDefault:"openid,profile,email,groups" desc:"Comma-separated scopes requested; must include openid. Drop groups for providers that reject unknown scopes (Entra ID, Okta without a groups scope) and configure the groups claim there."`
	GroupsClaim        string        `env:"OIDC_GROUPS_CLAIM" envDefault:"groups" desc:"ID token claim (or userinfo claim, when the ID token lacks it) holding the user's groups: a list of strings or one string. A name that is not a top-level claim is read as a dotted path (realm_access.roles for Keycloak realm roles)."`
	AdminGroups        []string      `env:"OIDC_ADMIN_GROUPS" desc:"Comma-separated groups whose members get the admin role (everything analysts can do, plus administration)."`
	AnalystGroups      []string      `env:"OIDC_ANALYST_GROUPS" desc:"Comma-separated groups whose members get the analyst role (viewer, plus changes such as acknowledging indicators)."`
	ViewerGroups       []string      `env:"OIDC_VIEWER_GROUPS" desc:"Comma-separated groups whose members get the viewer role (read only). A user in none of the three lists is refused (403). Names are compared exactly."`
	PostLogoutRedirect string        `env:"OIDC_POST_LOGOUT_REDIRECT_URL" desc:"Where the provider sends the browser after signing out there (registered at the provider as a post-logout redirect URI). Unset: the provider's own signed-out page."`
	EndSession         bool          `env:"OIDC_END_SESSION" envDefault:"true" desc:"On sign-out, also end the session at the provider (RP-initiated logout) when it advertises an end_session_endpoint; otherwise only the view's session ends, and the next sign-in may not ask for a password."`
	SessionTTL         time.Duration `env:"SESSION_TTL" envDefault:"8h" desc:"Absolute lifetime of a console session; the user signs in again after it, and a changed group membership applies then."`
	SessionIdle        time.Duration `env:"SESSION_IDLE" envDefault:"1h" desc:"A session unused for this long ends (at most THREATPIPE_VIEW_SESSION_TTL). Activity is recorded at most once a minute, so the timeout is exact to about a minute."`
	AnonymousReadCIDRs []string      `env:"ANONYMOUS_READ_CIDRS" desc:"Comma-separated CIDRs whose clients may also read pages and the API anonymously, as viewer, like loopback clients, while no sign-in is configured (not allowed with THREATPIPE_VIEW_OIDC_ISSUER); requests carrying proxy headers are never anonymous. An explicit opt-in for local evaluation (docker-compose) and trusted internal networks: anyone who can connect from these networks reads everything. A warning at start."`
	APITokensFile      string        `env:"API_TOKENS_FILE" desc:"YAML list of API tokens for automation ({name, role, sha256, expires}: only the SHA-256 of each token, docs in view/auth/tokens.go), a mounted Kubernetes Secret; sent as Authorization: Bearer <token>. Checked for changes every few seconds, so a rotation applies without a restart."`
}

// LoadConfig parses the sign-in variables of environ (os.Environ form), reads the secret file
// and validates the result; every error names its variable.
func LoadConfig(environ []string) (*Config, error) {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	var c Config
	if err := config.Parse(&c, ConfigPrefix, vars); err != nil {
		return nil, err
	}
	if c.ClientSecretFile != "" {
		if c.ClientSecret != "" {
			return nil, fmt.Errorf("%sOIDC_CLIENT_SECRET and %sOIDC_CLIENT_SECRET_FILE are both set: set one", ConfigPrefix, ConfigPrefix)
		}
		c.ClientSecret = config.Secret(strings.TrimRight(c.ClientSecretFile.Reveal(), "\r\n"))
	}
	c.normalise()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Vars lists the sign-in variables with their defaults and descriptions, for --help and docs.
func Vars() []config.Var { return config.VarsOf(ConfigPrefix, reflect.TypeOf(Config{})) }

// normalise trims list entries: "a, b," in a variable means a and b.
func (c *Config) normalise() {
	for _, l := range []*[]string{&c.Scopes, &c.AdminGroups, &c.AnalystGroups, &c.ViewerGroups, &c.AnonymousReadCIDRs} {
		out := (*l)[:0]
		for _, s := range *l {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		*l = out
	}
}

// OIDCEnabled says whether interactive sign-in is configured.
func (c *Config) OIDCEnabled() bool { return c.Issuer != "" }

// Validate checks every value and returns all problems at once, each naming its variable.
func (c *Config) Validate() error {
	var errs []error
	add := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", ConfigPrefix, name, fmt.Sprintf(format, args...)))
	}
	if c.OIDCEnabled() {
		c.validateOIDC(add)
	} else if c.ClientID != "" || c.RedirectURL != "" {
		add("OIDC_ISSUER", "must be set with THREATPIPE_VIEW_OIDC_CLIENT_ID and THREATPIPE_VIEW_OIDC_REDIRECT_URL")
	}
	if _, err := c.AnonymousReadNets(); err != nil {
		add("ANONYMOUS_READ_CIDRS", "%v", err)
	} else if len(c.AnonymousReadCIDRs) > 0 && c.OIDCEnabled() {
		add("ANONYMOUS_READ_CIDRS", "must not be set with THREATPIPE_VIEW_OIDC_ISSUER: anonymous read exists only while no sign-in is configured (use an API token with the viewer role for unattended readers)")
	}
	if c.SessionTTL < time.Minute || c.SessionTTL > 30*24*time.Hour {
		add("SESSION_TTL", "%s is not between 1m and 720h", c.SessionTTL)
	}
	if c.SessionIdle < time.Minute || c.SessionIdle > c.SessionTTL {
		add("SESSION_IDLE", "%s is not between 1m and THREATPIPE_VIEW_SESSION_TTL (%s)", c.SessionIdle, c.SessionTTL)
	}
	if c.APITokensFile != "" {
		if fi, err := os.Stat(c.APITokensFile); err != nil {
			add("API_TOKENS_FILE", "%v", err)
		} else if !fi.Mode().IsRegular() {
			add("API_TOKENS_FILE", "%s is not a file", c.APITokensFile)
		}
	}
	return errors.Join(errs...)
}

func (c *Config) validateOIDC(add func(name, format string, args ...any)) {
	if err := checkURL(c.Issuer); err != nil {
		add("OIDC_ISSUER", "%v", err)
	}
	if c.ClientID == "" {
		add("OIDC_CLIENT_ID", "must be set with THREATPIPE_VIEW_OIDC_ISSUER")
	}
	if c.RedirectURL == "" {
		add("OIDC_REDIRECT_URL", "must be set with THREATPIPE_VIEW_OIDC_ISSUER")
	} else if err := checkURL(c.RedirectURL); err != nil {
		add("OIDC_REDIRECT_URL", "%v", err)
	} else if u, _ := url.Parse(c.RedirectURL); u.Path != CallbackPath {
		add("OIDC_REDIRECT_URL", "%q must have the path %s (where the view serves the callback)", c.RedirectURL, CallbackPath)
	}
	if c.PostLogoutRedirect != "" {
		if err := checkURL(c.PostLogoutRedirect); err != nil {
			add("OIDC_POST_LOGOUT_REDIRECT_URL", "%v", err)
		}
	}
	if !slices.Contains(c.Scopes, "openid") {
		add("OIDC_SCOPES", "%q must include openid", strings.Join(c.Scopes, ","))
	}
	if strings.TrimSpace(c.GroupsClaim) == "" {
		add("OIDC_GROUPS_CLAIM", "must not be empty")
	}
	if len(c.AdminGroups)+len(c.AnalystGroups)+len(c.ViewerGroups) == 0 {
		add("OIDC_VIEWER_GROUPS", "no group is mapped to a role (THREATPIPE_VIEW_OIDC_ADMIN_GROUPS, _ANALYST_GROUPS, _VIEWER_GROUPS): nobody could sign in")
	}
}

// AnonymousReadNets parses THREATPIPE_VIEW_ANONYMOUS_READ_CIDRS: CIDRs (or single addresses),
// IPv4 in its own form. A /0 is refused: it would make every client anonymous, and whoever
// wants that should say so with a narrower list or an API token.
func (c *Config) AnonymousReadNets() ([]netip.Prefix, error) {
	nets, err := gate.ParsePrefixes(c.AnonymousReadCIDRs)
	if err != nil {
		return nil, err
	}
	for _, p := range nets {
		if p.Bits() == 0 {
			return nil, fmt.Errorf("%s admits every address: list the networks that may read anonymously", p)
		}
	}
	return nets, nil
}

// checkURL accepts an absolute https URL, or an http one whose host is loopback: plain http
// would expose codes and session cookies on the network, and is only for development.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL", raw)
	}
	switch {
	case u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return fmt.Errorf("%q is not an absolute http(s) URL", raw)
	case u.User != nil || u.Fragment != "":
		return fmt.Errorf("%q must not carry credentials or a fragment", raw)
	case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
		return fmt.Errorf("%q uses plain http: only https, or http on localhost, 127.0.0.1 or [::1] for development", raw)
	}
	return nil
}

// isLoopbackHost says whether a URL's host names this machine.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
