// Package criminalip is the AI SPERA Criminal IP provider: GET /v1/asset/ip/report for lookups
// and POST /v1/user/me for the key and allowance check, with the key in the x-api-key header.
//
// Criminal IP reports failures two ways, and third-party clients disagree on which it uses
// (docs: shared reference providers.md §1.1, §9): as HTTP statuses, or as HTTP 200 with the
// status inside the body ({"status": 401, "message": "..."}). The client checks the HTTP status
// first and then, for every 2xx, the body's status, mapping both the same way:
// 401/403 unauthorized, 402 quota exhausted, 429 rate limited (Retry-After honoured), 408/5xx
// transient, other 4xx permanent, and 404 a not-found answer. A 2xx body that is not JSON or has
// no status field is a transient "malformed response" error.
package criminalip

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Name is the provider's stable identifier.
const Name = "criminalip"

// Endpoint paths.
const (
	ReportPath  = "/v1/asset/ip/report"
	AccountPath = "/v1/user/me"
)

// Client talks to the Criminal IP API. It is safe for concurrent use.
type Client struct {
	http *providerhttp.Client
	now  func() time.Time
}

var (
	_ enrich.Provider      = (*Client)(nil)
	_ enrich.QuotaReporter = (*Client)(nil)
)

// New builds a client. cfg must have been Resolved and carry a key. httpClient may be nil (a
// client with cfg.AttemptTimeout, or 30s, as its timeout); redirects are refused unless
// httpClient has its own CheckRedirect, so the key header never follows one to another host.
func New(cfg *Config, httpClient *http.Client) (*Client, error) {
	if cfg == nil {
		return nil, errors.New("criminalip: nil config")
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
	hc := providerhttp.New(providerhttp.Options{Provider: Name, BaseURL: cfg.BaseURL, AuthHeader: "x-api-key",
		Key: cfg.APIKey.Reveal(), MaxBody: cfg.MaxBodyBytes, HTTPClient: httpClient, Timeout: cfg.AttemptTimeout})
	return &Client{http: hc, now: time.Now}, nil
}

// Name implements enrich.Provider.
func (c *Client) Name() string { return Name }

// Cost implements enrich.Provider: every report spends Criminal IP credits.
func (c *Client) Cost() enrich.Cost { return enrich.CostPaid }

// Lookup implements enrich.Provider with GET /v1/asset/ip/report?ip=...&full=true. See normalise
// for the score and verdict rules. HTTP 404 and body status 404 are not-found Results.
func (c *Client) Lookup(ctx context.Context, ind event.Indicator) (*enrich.Result, error) {
	addr, err := providerhttp.IndicatorIP(Name, ind)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Get(ctx, ReportPath, url.Values{"ip": {addr.String()}, "full": {"true"}})
	if err != nil {
		return nil, err
	}
	switch {
	case resp.Status == http.StatusNotFound:
		if resp.HTML() {
			// A web server's page, not the API: the base URL is probably wrong. Caching every
			// IP as not found would be worse than failing.
			return nil, c.http.Fail(&enrich.Error{Kind: enrich.KindPermanent, Status: resp.Status,
				Message: "HTML 404 page: is " + EnvPrefix + "BASE_URL the API?"})
		}
		res := notFound(message(resp.Body))
		res.Quota = providerhttp.QuotaHeaders(resp.Header, c.now())
		return res, nil
	case !resp.OK():
		return nil, c.http.HTTPError(resp, message(resp.Body))
	case resp.TooLarge:
		return nil, c.http.TooLarge(resp)
	}
	res, err := decodeReport(resp.Body)
	if err != nil {
		return nil, c.bodyError(err, resp)
	}
	res.Raw = resp.Body
	res.Quota = providerhttp.QuotaHeaders(resp.Header, c.now())
	return res, nil
}

// Account is what POST /v1/user/me says about the key's account.
type Account struct {
	Name  string
	Email string
	// LastAccess is last_access_date as sent ("YYYY-MM-DD HH:MM:SS", no zone); LastAccessAt is
	// the same read as UTC, zero if unreadable.
	LastAccess   string
	LastAccessAt time.Time
	// MaxSearch is data.max_search, the search allowance. Whether it counts what is left or the
	// plan's total is not documented.
	MaxSearch int64
	// Plan is data.plan when the API sends it (unconfirmed field).
	Plan string
}

type accountBody struct {
	Status  flexInt    `json:"status"`
	Message flexString `json:"message"`
	Data    *struct {
		Name           flexString `json:"name"`
		Email          flexString `json:"email"`
		LastAccessDate flexString `json:"last_access_date"`
		MaxSearch      flexInt    `json:"max_search"`
		Plan           flexString `json:"plan"`
	} `json:"data"`
}

// Account checks the key with POST /v1/user/me (empty body). Errors are mapped as for Lookup;
// a 404 (HTTP or body) is a permanent error here.
func (c *Client) Account(ctx context.Context) (*Account, error) {
	resp, err := c.http.Do(ctx, http.MethodPost, AccountPath, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	switch {
	case !resp.OK():
		return nil, c.http.HTTPError(resp, message(resp.Body))
	case resp.TooLarge:
		return nil, c.http.TooLarge(resp)
	}
	var b accountBody
	if len(strings.TrimSpace(string(resp.Body))) == 0 {
		return nil, c.http.Fail(malformed("empty body"))
	}
	if err := unmarshalLenient(resp.Body, &b); err != nil {
		e := malformed("not JSON")
		e.Err = err
		return nil, c.http.Fail(e)
	}
	if !b.Status.OK {
		return nil, c.http.Fail(malformed("no status field"))
	}
	if st := b.Status.V; st < 200 || st > 299 {
		return nil, c.bodyError(statusError(st, string(b.Message)), resp)
	}
	if b.Data == nil {
		return nil, c.http.Fail(malformed("no data object"))
	}
	d := b.Data
	a := &Account{
		Name:       clean(string(d.Name), 256),
		Email:      clean(string(d.Email), 256),
		LastAccess: clean(string(d.LastAccessDate), 64),
		MaxSearch:  d.MaxSearch.V,
		Plan:       clean(string(d.Plan), 64),
	}
	a.LastAccessAt = parseTime(a.LastAccess)
	return a, nil
}

// message is the body's "message" field, if the body is a JSON object with one.
func message(body []byte) string {
	var e envelope
	if unmarshalLenient(body, &e) != nil {
		return ""
	}
	return string(e.Message)
}

// bodyError finishes an error decoded from a 2xx body: Retry-After for an in-body 429.
func (c *Client) bodyError(err error, r *providerhttp.Response) error {
	var e *enrich.Error
	if !errors.As(err, &e) {
		e = &enrich.Error{Kind: enrich.KindTransient, Err: err}
	}
	if e.Kind == enrich.KindRateLimited && e.RetryAfter == 0 {
		e.RetryAfter = enrich.ParseRetryAfter(r.Header.Get("Retry-After"), c.now())
	}
	return c.http.Fail(e)
}
