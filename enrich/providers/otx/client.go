// Package otx is the AlienVault (LevelBlue) Open Threat Exchange provider (shared reference
// providers.md §5): GET /api/v1/indicators/IPv4/{ip}/general (IPv6: /IPv6/) for lookups and
// GET /api/v1/users/me for the key check, with the key in the X-OTX-API-KEY header.
//
// OTX knows every address: an address in no pulse is a 200 with pulse_info.count 0 (and an
// empty base_indicator), so the answer's weight is in the pulses (community threat reports)
// and the validation list (whitelists, accepted false positives). Statuses, as the vendor's
// Python SDK handles them: 403 is a rejected key (InvalidAPIKey), 404 a not-found answer (rare:
// an HTML 404 means the base URL is wrong and is a permanent error), 400 a permanent error,
// 429 rate limited with Retry-After when sent, 5xx transient.
package otx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Name is the provider's stable identifier.
const Name = "otx"

// Endpoint paths.
const (
	IndicatorsPath = "/api/v1/indicators/"
	GeneralSection = "/general"
	UserPath       = "/api/v1/users/me"
)

// AuthHeader carries the key.
const AuthHeader = "X-OTX-API-KEY"

// Client talks to the OTX API. It is safe for concurrent use.
type Client struct {
	http *providerhttp.Client
}

var _ enrich.Provider = (*Client)(nil)

// New builds a client. cfg must have been Resolved and carry a key. httpClient may be nil (a
// client with cfg.AttemptTimeout, or 30s, as its timeout); redirects are refused unless
// httpClient has its own CheckRedirect, so the key header never follows one to another host.
func New(cfg *Config, httpClient *http.Client) (*Client, error) {
	if cfg == nil {
		return nil, errors.New("otx: nil config")
	}
	if cfg.APIKey == "" {
		return nil, fmt.Errorf("%sAPI_KEY (or %sAPI_KEY_FILE) is not set", EnvPrefix, EnvPrefix)
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if err := providerhttp.CheckKey(EnvPrefix, cfg.APIKey); err != nil {
		return nil, err
	}
	if err := providerhttp.CheckBaseURL(EnvPrefix, cfg.BaseURL); err != nil {
		return nil, err
	}
	hc := providerhttp.New(providerhttp.Options{Provider: Name, BaseURL: cfg.BaseURL, AuthHeader: AuthHeader,
		Key: cfg.APIKey.Reveal(), MaxBody: cfg.MaxBodyBytes, HTTPClient: httpClient, Timeout: cfg.AttemptTimeout})
	return &Client{http: hc}, nil
}

// Name implements enrich.Provider.
func (c *Client) Name() string { return Name }

// Cost implements enrich.Provider: OTX is free, rate-limited and not metered by default.
func (c *Client) Cost() enrich.Cost { return enrich.CostFree }

// IndicatorPath is the general section's path for addr: /api/v1/indicators/IPv4/{ip}/general,
// or /IPv6/ for an IPv6 address.
func IndicatorPath(ind event.Indicator) (string, error) {
	addr, err := providerhttp.IndicatorIP(Name, ind)
	if err != nil {
		return "", err
	}
	typ := "IPv4"
	if addr.Is6() {
		typ = "IPv6"
	}
	return IndicatorsPath + typ + "/" + url.PathEscape(addr.String()) + GeneralSection, nil
}

// Lookup implements enrich.Provider with the general section (decodeGeneral has the rules).
func (c *Client) Lookup(ctx context.Context, ind event.Indicator) (*enrich.Result, error) {
	path, err := IndicatorPath(ind)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Get(ctx, path, nil)
	if err != nil {
		return nil, err
	}
	switch {
	case resp.Status == http.StatusNotFound:
		if resp.HTML() {
			// A web page, not the API: caching every address as not found would be worse
			// than failing.
			return nil, c.http.Fail(&enrich.Error{Kind: enrich.KindPermanent, Status: resp.Status,
				Message: "HTML 404 page: is " + EnvPrefix + "BASE_URL the API?"})
		}
		return &enrich.Result{Verdict: enrich.VerdictNotFound, Detail: "OTX: not found", Raw: resp.Body}, nil
	case !resp.OK():
		return nil, c.http.HTTPError(resp, errorMessage(resp.Body))
	case resp.TooLarge:
		return nil, c.http.TooLarge(resp)
	}
	res, err := decodeGeneral(resp.Body)
	if err != nil {
		var me *malformedError
		if errors.As(err, &me) {
			return nil, c.http.Malformed(me.err, "%s", me.what)
		}
		return nil, c.http.Malformed(err, "unreadable body")
	}
	res.Raw = resp.Body
	return res, nil
}

// User is what GET /api/v1/users/me says about the key's account.
type User struct {
	Username    string
	MemberSince string
	PulseCount  int64
}

// User checks the key with GET /api/v1/users/me: the only endpoint that proves it, since the
// indicator endpoints also answer a bad key. Errors are mapped as for Lookup; 404 is permanent.
func (c *Client) User(ctx context.Context) (*User, error) {
	resp, err := c.http.Get(ctx, UserPath, nil)
	if err != nil {
		return nil, err
	}
	switch {
	case !resp.OK():
		return nil, c.http.HTTPError(resp, errorMessage(resp.Body))
	case resp.TooLarge:
		return nil, c.http.TooLarge(resp)
	}
	var b struct {
		Username    string `json:"username"`
		MemberSince string `json:"member_since"`
		PulseCount  int64  `json:"pulse_count"`
	}
	if err := unmarshalLenient(resp.Body, &b); err != nil {
		return nil, c.http.Malformed(err, "not JSON")
	}
	if b.Username == "" {
		return nil, c.http.Malformed(nil, "no username")
	}
	return &User{Username: providerhttp.Clean(b.Username, 128), MemberSince: providerhttp.Clean(b.MemberSince, 64),
		PulseCount: b.PulseCount}, nil
}

// CheckAccount is `threatpipe providers check` for OTX: the account behind the key.
func (c *Client) CheckAccount(ctx context.Context) (string, error) {
	u, err := c.User(ctx)
	if err != nil {
		return "", err
	}
	s := fmt.Sprintf("user %q", u.Username)
	if u.MemberSince != "" {
		s += ", member since " + u.MemberSince
	}
	return s, nil
}
