// Package greynoise is the GreyNoise Community API provider (shared reference providers.md §4):
// GET /v3/community/{ip} for lookups and GET /ping for the key check, with the key in the
// "key" header.
//
// GreyNoise tells two things apart that matter to a score: addresses scanning the internet
// ("noise", classified malicious, benign or unknown) and addresses of business services ("RIOT":
// resolvers, CDNs, SaaS) whose traffic is expected. Its answers:
//
//   - 200: the address is noise or RIOT (decodeCommunity has the rules);
//   - 404 with GreyNoise's body ({"ip":..., "noise":false, "riot":false, "message":...}): a
//     normal answer, not_found; a 404 without that body (an HTML page, a router's text) means
//     the base URL is not the API and is a permanent error;
//   - 400 "Request is not a valid routable IPv4 address": permanent. Community takes IPv4
//     only, so IPv6 indicators are answered not_found locally and never sent;
//   - 401: unauthorized; 429 (with "plan" and "rate-limit" in the body): rate limited, with
//     Retry-After when sent; 5xx: transient.
package greynoise

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
const Name = "greynoise"

// Endpoint paths.
const (
	CommunityPath = "/v3/community/"
	PingPath      = "/ping"
)

// AuthHeader carries the key.
const AuthHeader = "key"

// Client talks to the GreyNoise Community API. It is safe for concurrent use.
type Client struct {
	http *providerhttp.Client
}

var _ enrich.Provider = (*Client)(nil)

// New builds a client. cfg must have been Resolved and carry a key. httpClient may be nil (a
// client with cfg.AttemptTimeout, or 30s, as its timeout); redirects are refused unless
// httpClient has its own CheckRedirect, so the key header never follows one to another host.
func New(cfg *Config, httpClient *http.Client) (*Client, error) {
	if cfg == nil {
		return nil, errors.New("greynoise: nil config")
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

// Cost implements enrich.Provider: the Community tier is free, rate-limited and not metered by
// default (set THREATPIPE_GREYNOISE_QUOTA to meter it).
func (c *Client) Cost() enrich.Cost { return enrich.CostFree }

// Lookup implements enrich.Provider with GET /v3/community/{ip}.
func (c *Client) Lookup(ctx context.Context, ind event.Indicator) (*enrich.Result, error) {
	addr, err := providerhttp.IndicatorIP(Name, ind)
	if err != nil {
		return nil, err
	}
	if !addr.Is4() {
		// Community would answer 400 "not a valid routable IPv4 address": say so without
		// spending a lookup of a small allowance.
		return notFound(detailIPv6), nil
	}
	resp, err := c.http.Get(ctx, CommunityPath+url.PathEscape(addr.String()), nil)
	if err != nil {
		return nil, err
	}
	switch {
	case resp.Status == http.StatusNotFound:
		return c.notObserved(resp)
	case !resp.OK():
		return nil, c.http.HTTPError(resp, errorMessage(resp.Body))
	case resp.TooLarge:
		return nil, c.http.TooLarge(resp)
	}
	res, err := decodeCommunity(resp.Body)
	if err != nil {
		return nil, c.malformed(err)
	}
	res.Raw = resp.Body
	return res, nil
}

// notObserved reads a 404: GreyNoise's own body is a not-found answer; anything else comes from
// something that is not the API, and caching every address as not found would be worse than
// failing.
func (c *Client) notObserved(resp *providerhttp.Response) (*enrich.Result, error) {
	if resp.HTML() {
		return nil, c.http.Fail(&enrich.Error{Kind: enrich.KindPermanent, Status: resp.Status,
			Message: "HTML 404 page: is " + EnvPrefix + "BASE_URL the API?"})
	}
	if _, err := decodeBody(resp.Body); err != nil {
		return nil, c.http.Fail(&enrich.Error{Kind: enrich.KindPermanent, Status: resp.Status,
			Message: "404 without GreyNoise's not-found body: is " + EnvPrefix + "BASE_URL the API?"})
	}
	res := notFound(detailNotObserved)
	res.Raw = resp.Body
	return res, nil
}

func (c *Client) malformed(err error) error {
	var me *malformedError
	if errors.As(err, &me) {
		return c.http.Malformed(me.err, "%s", me.what)
	}
	return c.http.Malformed(err, "unreadable body")
}

// Ping is what GET /ping says about the key.
type Ping struct {
	Offering   string // "community", "vip", ...
	Expiration string // YYYY-MM-DD as sent
	Address    string // the address GreyNoise saw the request come from
}

// Ping checks the key with GET /ping. Errors are mapped as for Lookup; a 404 is permanent.
func (c *Client) Ping(ctx context.Context) (*Ping, error) {
	resp, err := c.http.Get(ctx, PingPath, nil)
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
		Message    string `json:"message"`
		Offering   string `json:"offering"`
		Expiration string `json:"expiration"`
		Address    string `json:"address"`
	}
	if err := unmarshalLenient(resp.Body, &b); err != nil {
		return nil, c.http.Malformed(err, "not JSON")
	}
	if b.Message != "pong" && b.Offering == "" {
		return nil, c.http.Malformed(nil, "no pong")
	}
	return &Ping{Offering: providerhttp.Clean(b.Offering, 64), Expiration: providerhttp.Clean(b.Expiration, 64),
		Address: providerhttp.Clean(b.Address, 64)}, nil
}

// CheckAccount is `threatpipe providers check` for GreyNoise: the key's offering and expiry,
// as GET /ping reports them.
func (c *Client) CheckAccount(ctx context.Context) (string, error) {
	p, err := c.Ping(ctx)
	if err != nil {
		return "", err
	}
	s := "offering " + or(p.Offering, "unknown")
	if p.Expiration != "" {
		s += ", expires " + p.Expiration
	}
	if p.Address != "" {
		s += ", seen from " + p.Address
	}
	return s, nil
}
