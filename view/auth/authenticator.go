package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Paths the Authenticator serves (Register).
const (
	LoginPath    = "/auth/login"
	CallbackPath = "/auth/callback"
	LogoutPath   = "/auth/logout"
)

// Options are the Authenticator's collaborators.
type Options struct {
	// Redis holds sessions and the login state key; required when OIDC sign-in is configured.
	Redis redis.UniversalClient
	// KeyPrefix prefixes every Redis key, e.g. "<THREATPIPE_REDIS_KEY_PREFIX>:view:auth:".
	KeyPrefix string
	// HTTPClient talks to the provider; default: a client with a 10 s timeout.
	HTTPClient *http.Client
	// Logger receives operational problems (an unreadable token file, Redis errors).
	Logger *zap.Logger
	// Now is the clock (tests move it); default time.Now.
	Now func() time.Time
	// TokenCheckInterval is how often the token file's modification is checked; default 5 s.
	TokenCheckInterval time.Duration
	// APIPrefix marks API paths, which get JSON errors instead of pages; default "/api/".
	APIPrefix string
}

// Authenticator signs users in and guards handlers.
type Authenticator struct {
	cfg      Config
	roles    roleMap
	sessions *sessionStore  // nil without OIDC
	sealer   *sealer        // nil without OIDC
	rp       *relyingParty  // nil without OIDC
	tokens   *tokenFile     // nil without a token file
	anonNets []netip.Prefix // THREATPIPE_VIEW_ANONYMOUS_READ_CIDRS: anonymous read beside loopback
	cookies  cookieNames
	now      func() time.Time
	log      *zap.Logger
	api      string
	warnings []string
}

// cookieNames are the two cookies and whether they are Secure.
type cookieNames struct {
	session, login string
	secure         bool
}

// New builds an Authenticator from a validated Config. It does not contact the provider (the
// first sign-in does, and Discover checks it at start); it does read the token file, and
// fails if that is invalid.
func New(c *Config, o Options) (*Authenticator, error) {
	a := &Authenticator{cfg: *c, roles: newRoleMap(c), now: o.Now, log: o.Logger, api: o.APIPrefix}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = zap.NewNop()
	}
	if a.api == "" {
		a.api = "/api/"
	}
	nets, err := c.AnonymousReadNets()
	if err != nil {
		return nil, fmt.Errorf("%sANONYMOUS_READ_CIDRS: %w", ConfigPrefix, err)
	}
	if c.OIDCEnabled() {
		if len(nets) > 0 {
			return nil, fmt.Errorf("%sANONYMOUS_READ_CIDRS: must not be set with %sOIDC_ISSUER", ConfigPrefix, ConfigPrefix)
		}
		if err := a.setUpOIDC(c, o); err != nil {
			return nil, err
		}
	} else {
		a.anonNets = nets
		a.warnings = append(a.warnings, fmt.Sprintf("view: NO SIGN-IN IS CONFIGURED (%sOIDC_ISSUER is unset): pages and the API are readable anonymously, as viewer, from loopback clients only; every other client gets 401. Anyone who can reach a reverse proxy on this host reaches the view as loopback unless the proxy sets X-Forwarded-For or Forwarded (requests carrying them are not anonymous).", ConfigPrefix))
		if len(nets) > 0 {
			a.warnings = append(a.warnings, fmt.Sprintf("view: ANONYMOUS READ FROM NETWORKS IS ON (%sANONYMOUS_READ_CIDRS=%s): every client connecting from these networks reads all pages and the API, as viewer, without signing in. For local evaluation (docker-compose) and trusted internal networks only; configure sign-in (%sOIDC_ISSUER) or API tokens for anything else.", ConfigPrefix, joinPrefixes(nets), ConfigPrefix))
		}
	}
	if c.APITokensFile != "" {
		interval := o.TokenCheckInterval
		if interval <= 0 {
			interval = 5 * time.Second
		}
		tf, err := openTokenFile(c.APITokensFile, interval, a.log)
		if err != nil {
			return nil, fmt.Errorf("%sAPI_TOKENS_FILE: %w", ConfigPrefix, err)
		}
		a.tokens = tf
	}
	return a, nil
}

// joinPrefixes lists networks as a variable would.
func joinPrefixes(nets []netip.Prefix) string {
	s := make([]string, len(nets))
	for i, p := range nets {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func (a *Authenticator) setUpOIDC(c *Config, o Options) error {
	if o.Redis == nil {
		return errors.New("view/auth: OIDC sign-in needs Redis for its sessions")
	}
	u, err := url.Parse(c.RedirectURL)
	if err != nil {
		return fmt.Errorf("%sOIDC_REDIRECT_URL: %w", ConfigPrefix, err)
	}
	// __Host-: the browser refuses the cookie unless it is Secure, for path / and without a
	// Domain, so a sibling subdomain cannot plant or shadow it. Plain http (only on loopback,
	// Validate checks) cannot have Secure cookies, hence no prefix there.
	a.cookies = cookieNames{session: "tp_session", login: "tp_login"}
	if u.Scheme == "https" {
		a.cookies = cookieNames{session: "__Host-tp_session", login: "__Host-tp_login", secure: true}
	} else {
		a.warnings = append(a.warnings, fmt.Sprintf("view: %sOIDC_REDIRECT_URL is plain http (%s): session cookies are not Secure; for development on this host only", ConfigPrefix, c.RedirectURL))
	}
	a.sessions = &sessionStore{rdb: o.Redis, prefix: o.KeyPrefix, ttl: c.SessionTTL, idle: c.SessionIdle}
	a.sealer = &sealer{rdb: o.Redis, key: o.KeyPrefix + "login-key"}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	a.rp = &relyingParty{cfg: c, client: hc}
	return nil
}

// Warnings are the messages the caller must log at start (loudly): no sign-in configured,
// anonymous read from networks, insecure cookies.
func (a *Authenticator) Warnings() []string { return a.warnings }

// Discover reads the provider's discovery document and keys now, so a wrong issuer shows at
// start rather than at the first sign-in; without OIDC it does nothing. A failure is worth a
// warning, not an exit: sign-in retries discovery until it succeeds.
func (a *Authenticator) Discover(ctx context.Context) error {
	if a.rp == nil {
		return nil
	}
	_, err := a.rp.discover(ctx)
	return err
}

// Register mounts /auth/login, /auth/callback and /auth/logout on mux.
func (a *Authenticator) Register(mux *http.ServeMux) {
	mux.Handle("GET "+LoginPath, noStore(http.HandlerFunc(a.serveLogin)))
	mux.Handle("GET "+CallbackPath, noStore(http.HandlerFunc(a.serveCallback)))
	mux.Handle("POST "+LogoutPath, noStore(http.HandlerFunc(a.serveLogout)))
}

// noStore keeps auth responses (which set cookies) out of every cache.
func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// setCookie writes one of our cookies: HttpOnly and SameSite=Lax always (Lax, not Strict, so
// the provider's redirect back to the callback carries the login state), Secure under https.
func (a *Authenticator) setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	c := &http.Cookie{
		Name: name, Value: value, Path: "/", HttpOnly: true, Secure: a.cookies.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int(maxAge / time.Second),
	}
	if maxAge < 0 {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

func (a *Authenticator) clearCookie(w http.ResponseWriter, name string) { a.setCookie(w, name, "", -1) }

// isAPI says whether r wants JSON answers: an API path, or a client that accepts only JSON.
func (a *Authenticator) isAPI(r *http.Request) bool {
	if strings.HasPrefix(r.URL.Path, a.api) {
		return true
	}
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "application/json") && !strings.Contains(accept, "text/html")
}
