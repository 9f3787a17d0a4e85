// Package virustotal is the VirusTotal API v3 provider (shared reference providers.md §3):
// GET /api/v3/ip_addresses/{ip} with the key in the x-apikey header.
//
// Failures come as {"error":{"code":"...","message":"..."}}; the message kept is
// "<code>: <message>". A 404 NotFoundError is an answer (VirusTotal has no record of the
// address), not an error; a 404 without that code (an HTML page, another server's JSON) means
// the base URL is wrong and is permanent. Other statuses map as enrich.ClassifyHTTPStatus
// does: 401 (WrongCredentialsError, AuthenticationRequiredError, UserNotActiveError) and 403
// ForbiddenError unauthorized, 429 (QuotaExceededError for the minute, day or month, or
// TooManyRequestsError) rate limited with Retry-After when sent, 503 TransientError and 504
// DeadlineExceededError transient, and other 4xx (400 InvalidArgumentError, ...) permanent.
// VirusTotal documents no rate-limit headers, so no Quota is reported.
package virustotal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Name is the provider's stable identifier.
const Name = "virustotal"

// IPPath is the lookup endpoint's prefix, relative to the base URL; the address follows it.
const IPPath = "/api/v3/ip_addresses/"

// notFoundDetail is the detail of a not-found answer.
const notFoundDetail = "VirusTotal: no record of this address"

// Client talks to the VirusTotal API. It is safe for concurrent use.
type Client struct {
	http *providerhttp.Client
}

var _ enrich.Provider = (*Client)(nil)

// New builds a client. cfg must carry a key; an empty base URL is the production API.
// httpClient may be nil (a client with cfg.AttemptTimeout, or 30s, as its timeout); redirects
// are refused unless httpClient has its own CheckRedirect, so the key header never follows
// one to another host.
func New(cfg *Config, httpClient *http.Client) (*Client, error) {
	if cfg == nil {
		return nil, errors.New("virustotal: nil config")
	}
	if cfg.APIKey == "" {
		return nil, fmt.Errorf("%sAPI_KEY (or %sAPI_KEY_FILE) is not set", EnvPrefix, EnvPrefix)
	}
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	if err := errors.Join(providerhttp.CheckKey(EnvPrefix, cfg.APIKey), providerhttp.CheckBaseURL(EnvPrefix, base)); err != nil {
		return nil, err
	}
	hc := providerhttp.New(providerhttp.Options{Provider: Name, BaseURL: base, AuthHeader: "x-apikey",
		Key: cfg.APIKey.Reveal(), MaxBody: cfg.MaxBodyBytes, HTTPClient: httpClient, Timeout: cfg.AttemptTimeout})
	return &Client{http: hc}, nil
}

// Name implements enrich.Provider.
func (c *Client) Name() string { return Name }

// Cost implements enrich.Provider: every lookup counts against the key's daily and monthly
// quotas.
func (c *Client) Cost() enrich.Cost { return enrich.CostPaid }

// Lookup implements enrich.Provider with GET /api/v3/ip_addresses/{ip}. See decode for the
// score and verdict rules.
func (c *Client) Lookup(ctx context.Context, ind event.Indicator) (*enrich.Result, error) {
	addr, err := providerhttp.IndicatorIP(Name, ind)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Get(ctx, IPPath+url.PathEscape(addr.String()), nil)
	if err != nil {
		return nil, err
	}
	switch {
	case resp.Status == http.StatusNotFound:
		return c.notFound(resp)
	case !resp.OK():
		return nil, c.http.HTTPError(resp, errorMessage(resp.Body))
	case resp.TooLarge:
		return nil, c.http.TooLarge(resp)
	}
	res, err := decode(resp.Body)
	if err != nil {
		return nil, malformed(c.http, err)
	}
	res.Raw = resp.Body
	return res, nil
}

// notFound is the answer to a 404: VirusTotal's NotFoundError is a cacheable "no record";
// anything else is not VirusTotal speaking, and caching every address as unknown would be
// worse than failing.
func (c *Client) notFound(resp *providerhttp.Response) (*enrich.Result, error) {
	if code, _ := vtError(resp.Body); code == "NotFoundError" && !resp.HTML() {
		return &enrich.Result{Verdict: enrich.VerdictNotFound, Detail: notFoundDetail}, nil
	}
	what := "404 without VirusTotal's NotFoundError"
	if resp.HTML() {
		what = "HTML 404 page"
	}
	return nil, c.http.Fail(&enrich.Error{Kind: enrich.KindPermanent, Status: resp.Status,
		Message: what + ": is " + EnvPrefix + "BASE_URL the API?"})
}

// errorBody is VirusTotal's error document.
type errorBody struct {
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// vtError reads the error code and message, "" when the body is not that shape.
func vtError(body []byte) (code, message string) {
	var b errorBody
	if unmarshal(body, &b) != nil || b.Error == nil {
		return "", ""
	}
	return b.Error.Code, b.Error.Message
}

// errorMessage is "<code>: <message>" (either alone when the other is empty). The providerhttp
// client redacts and truncates it.
func errorMessage(body []byte) string {
	code, msg := vtError(body)
	switch {
	case code == "":
		return msg
	case msg == "":
		return code
	}
	return code + ": " + msg
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
