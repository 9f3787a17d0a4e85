// Package abuseipdb is the AbuseIPDB APIv2 provider (shared reference providers.md §2):
// GET /api/v2/check?ipAddress=...&maxAgeInDays=... with the key in the Key header and
// Accept: application/json (without it AbuseIPDB renders its errors as HTML pages).
//
// Failures come as {"errors":[{"detail":"...","status":N}]}; the first detail is the message.
// 401/403 are unauthorized, 422 (a bad parameter) permanent, 5xx transient. A 429 is rate
// limited with its Retry-After, except when X-RateLimit-Remaining is 0: that is AbuseIPDB's
// daily quota answer ("Daily rate limit of 1000 requests exceeded ..."), so it is quota
// exhausted, since retrying before the reset only spends requests. X-RateLimit-Limit,
// -Remaining and -Reset are read on every answer and reported as the Result's Quota.
package abuseipdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Name is the provider's stable identifier.
const Name = "abuseipdb"

// CheckPath is the lookup endpoint, relative to the base URL.
const CheckPath = "/api/v2/check"

// Client talks to the AbuseIPDB API. It is safe for concurrent use.
type Client struct {
	http   *providerhttp.Client
	maxAge int
}

var _ enrich.Provider = (*Client)(nil)

// New builds a client. cfg must carry a key; an empty base URL is the production API and a
// zero MaxAgeInDays is DefaultMaxAgeDays. httpClient may be nil (a client with
// cfg.AttemptTimeout, or 30s, as its timeout); redirects are refused unless httpClient has its
// own CheckRedirect, so the key header never follows one to another host.
func New(cfg *Config, httpClient *http.Client) (*Client, error) {
	if cfg == nil {
		return nil, errors.New("abuseipdb: nil config")
	}
	if cfg.APIKey == "" {
		return nil, fmt.Errorf("%sAPI_KEY (or %sAPI_KEY_FILE) is not set", EnvPrefix, EnvPrefix)
	}
	base, maxAge := cfg.BaseURL, cfg.MaxAgeInDays
	if base == "" {
		base = DefaultBaseURL
	}
	if maxAge == 0 {
		maxAge = DefaultMaxAgeDays
	}
	if err := errors.Join(providerhttp.CheckKey(EnvPrefix, cfg.APIKey), providerhttp.CheckBaseURL(EnvPrefix, base), checkMaxAge(maxAge)); err != nil {
		return nil, err
	}
	hc := providerhttp.New(providerhttp.Options{Provider: Name, BaseURL: base, AuthHeader: "Key",
		Key: cfg.APIKey.Reveal(), MaxBody: cfg.MaxBodyBytes, HTTPClient: httpClient, Timeout: cfg.AttemptTimeout})
	return &Client{http: hc, maxAge: maxAge}, nil
}

// Name implements enrich.Provider.
func (c *Client) Name() string { return Name }

// Cost implements enrich.Provider: every check counts against the plan's daily allowance.
func (c *Client) Cost() enrich.Cost { return enrich.CostPaid }

// Lookup implements enrich.Provider with GET /api/v2/check. AbuseIPDB answers every valid
// address (an unreported one has no reports), so there is no not-found answer; see decode for
// the score and verdict rules.
func (c *Client) Lookup(ctx context.Context, ind event.Indicator) (*enrich.Result, error) {
	addr, err := providerhttp.IndicatorIP(Name, ind)
	if err != nil {
		return nil, err
	}
	// url.Values escapes the colons of an IPv6 address, as AbuseIPDB asks.
	q := url.Values{"ipAddress": {addr.String()}, "maxAgeInDays": {strconv.Itoa(c.maxAge)}}
	resp, err := c.http.Get(ctx, CheckPath, q)
	if err != nil {
		return nil, err
	}
	quota := providerhttp.QuotaHeaders(resp.Header, c.http.Now())
	switch {
	case resp.Status == http.StatusTooManyRequests:
		return nil, c.tooMany(resp, quota)
	case !resp.OK():
		return nil, c.failure(resp)
	case resp.TooLarge:
		return nil, c.http.TooLarge(resp)
	}
	res, err := decode(resp.Body, c.maxAge)
	if err != nil {
		return nil, malformed(c.http, err)
	}
	res.Raw = resp.Body
	res.Quota = quota
	return res, nil
}

// tooMany classifies a 429: quota exhausted when the headers say nothing is left today, else
// rate limited. Either way RetryAfter is Retry-After, or the time to X-RateLimit-Reset.
func (c *Client) tooMany(resp *providerhttp.Response, quota *enrich.QuotaReport) error {
	msg := errorDetail(resp.Body)
	if quota == nil || quota.Remaining > 0 {
		return c.http.HTTPError(resp, msg)
	}
	now := c.http.Now()
	e := &enrich.Error{Kind: enrich.KindQuotaExhausted, Status: resp.Status, Message: msg,
		RetryAfter: enrich.ParseRetryAfter(resp.Header.Get("Retry-After"), now)}
	if e.RetryAfter == 0 && quota.Reset.After(now) {
		e.RetryAfter = quota.Reset.Sub(now)
	}
	return c.http.Fail(e)
}

// failure maps every other non-2xx answer by its status.
func (c *Client) failure(resp *providerhttp.Response) error {
	if resp.Status == http.StatusNotFound && resp.HTML() {
		// A web server's page, not the API: the base URL is probably wrong.
		return c.http.Fail(&enrich.Error{Kind: enrich.KindPermanent, Status: resp.Status,
			Message: "HTML 404 page: is " + EnvPrefix + "BASE_URL the API?"})
	}
	return c.http.HTTPError(resp, errorDetail(resp.Body))
}

// errorBody is AbuseIPDB's JSON:API error document; status may be a number or a string, and
// only detail is used.
type errorBody struct {
	Errors []struct {
		Detail string `json:"detail"`
	} `json:"errors"`
}

// errorDetail is the first non-empty errors[].detail, or "" when the body is not that shape.
// The providerhttp client redacts and truncates it.
func errorDetail(body []byte) string {
	var b errorBody
	if unmarshal(body, &b) != nil {
		return ""
	}
	for _, e := range b.Errors {
		if e.Detail != "" {
			return e.Detail
		}
	}
	return ""
}

// unmarshal decodes JSON, tolerating values of the wrong type (encoding/json skips such a
// field and fills the rest), so one odd field does not discard an answer; only syntax errors
// fail.
func unmarshal(body []byte, v any) error {
	err := json.Unmarshal(body, v)
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return nil
	}
	return err
}
