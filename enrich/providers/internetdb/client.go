// Package internetdb is the Shodan InternetDB provider (shared reference providers.md §6):
// GET /{ip}, no key, no parameters. It answers what Shodan's weekly scans saw of an address:
// open ports, CPEs, hostnames, tags and CVE ids.
//
// Its answers: 200 with all five lists (possibly empty); 404 {"detail": "No information
// available"} when Shodan has nothing, a normal not_found answer (not "no open ports"); 429
// when it throttles a caller (rate limited, Retry-After honoured when sent); 5xx transient.
// A 404 that is an HTML page, or FastAPI's {"detail": "Not Found"} for a path no route
// matches, means the base URL is not the API and is a permanent error.
package internetdb

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Name is the provider's stable identifier.
const Name = "internetdb"

// Client talks to InternetDB. It is safe for concurrent use.
type Client struct {
	http *providerhttp.Client
}

var _ enrich.Provider = (*Client)(nil)

// New builds a client. cfg must have been Resolved; its API key, if any, is ignored and never
// sent. httpClient may be nil (a client with cfg.AttemptTimeout, or 30s, as its timeout).
func New(cfg *Config, httpClient *http.Client) (*Client, error) {
	if cfg == nil {
		return nil, errors.New("internetdb: nil config")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if err := providerhttp.CheckBaseURL(EnvPrefix, cfg.BaseURL); err != nil {
		return nil, err
	}
	hc := providerhttp.New(providerhttp.Options{Provider: Name, BaseURL: cfg.BaseURL,
		MaxBody: cfg.MaxBodyBytes, HTTPClient: httpClient, Timeout: cfg.AttemptTimeout})
	return &Client{http: hc}, nil
}

// Name implements enrich.Provider.
func (c *Client) Name() string { return Name }

// Cost implements enrich.Provider: InternetDB is free and not metered.
func (c *Client) Cost() enrich.Cost { return enrich.CostFree }

// Lookup implements enrich.Provider with GET /{ip} (decodeHost has the rules).
func (c *Client) Lookup(ctx context.Context, ind event.Indicator) (*enrich.Result, error) {
	addr, err := providerhttp.IndicatorIP(Name, ind)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Get(ctx, "/"+url.PathEscape(addr.String()), nil)
	if err != nil {
		return nil, err
	}
	switch {
	case resp.Status == http.StatusNotFound:
		return c.noInformation(resp)
	case !resp.OK():
		return nil, c.http.HTTPError(resp, errorDetail(resp.Body))
	case resp.TooLarge:
		return nil, c.http.TooLarge(resp)
	}
	res, err := decodeHost(resp.Body)
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

// noInformation reads a 404: Shodan has nothing on the address, unless the answer shows it did
// not come from the lookup route, when caching every address as not found would be worse than
// failing.
func (c *Client) noInformation(resp *providerhttp.Response) (*enrich.Result, error) {
	d := errorDetail(resp.Body)
	if resp.HTML() || d == detailNoRoute {
		return nil, c.http.Fail(&enrich.Error{Kind: enrich.KindPermanent, Status: resp.Status,
			Message: "404 from outside the lookup route: is " + EnvPrefix + "BASE_URL the API?"})
	}
	return &enrich.Result{Verdict: enrich.VerdictNotFound, Detail: "InternetDB: no information available", Raw: resp.Body}, nil
}
