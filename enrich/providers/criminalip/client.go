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
	"io"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Name is the provider's stable identifier.
const Name = "criminalip"

// Endpoint paths.
const (
	ReportPath  = "/v1/asset/ip/report"
	AccountPath = "/v1/user/me"
)

const (
	userAgent       = "threatpipe"
	maxMessageRunes = 200
	// maxErrorBody bounds what is read of a non-2xx body (only its message is used).
	maxErrorBody = 64 << 10
	// maxDrain bounds what is discarded after a body was read, to reuse the connection.
	maxDrain = 64 << 10
)

// Client talks to the Criminal IP API. It is safe for concurrent use.
type Client struct {
	key     string
	base    string
	hc      *http.Client
	maxBody int64
	now     func() time.Time
}

var _ enrich.Provider = (*Client)(nil)

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
	if err := checkKey(cfg.APIKey); err != nil {
		return nil, err
	}
	if err := checkBaseURL(cfg.BaseURL); err != nil {
		return nil, err
	}
	var hc http.Client
	if httpClient != nil {
		hc = *httpClient
	} else {
		hc.Timeout = 30 * time.Second
		if cfg.AttemptTimeout > 0 {
			hc.Timeout = cfg.AttemptTimeout
		}
	}
	if hc.CheckRedirect == nil {
		hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	maxBody := cfg.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = DefaultMaxBodyBytes
	}
	return &Client{
		key:     cfg.APIKey.Reveal(),
		base:    strings.TrimRight(cfg.BaseURL, "/"),
		hc:      &hc,
		maxBody: maxBody,
		now:     time.Now,
	}, nil
}

// Name implements enrich.Provider.
func (c *Client) Name() string { return Name }

// Cost implements enrich.Provider: every report spends Criminal IP credits.
func (c *Client) Cost() enrich.Cost { return enrich.CostPaid }

// Lookup implements enrich.Provider with GET /v1/asset/ip/report?ip=...&full=true. See normalise
// for the score and verdict rules. HTTP 404 and body status 404 are not-found Results.
func (c *Client) Lookup(ctx context.Context, ind event.Indicator) (*enrich.Result, error) {
	ip, err := indicatorIP(ind)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, http.MethodGet, ReportPath, url.Values{"ip": {ip}, "full": {"true"}})
	if err != nil {
		return nil, err
	}
	switch {
	case resp.status == http.StatusNotFound:
		if resp.html() {
			// A web server's page, not the API: the base URL is probably wrong. Caching every
			// IP as not found would be worse than failing.
			return nil, c.fail(&enrich.Error{Kind: enrich.KindPermanent, Status: resp.status,
				Message: "HTML 404 page: is " + EnvPrefix + "BASE_URL the API?"})
		}
		res := notFound(resp.message())
		res.Quota = parseQuota(resp.header, c.now())
		return res, nil
	case resp.status < 200 || resp.status > 299:
		return nil, c.httpError(resp)
	case resp.tooLarge:
		return nil, c.fail(&enrich.Error{Kind: enrich.KindTransient, Status: resp.status,
			Message: fmt.Sprintf("response too large (over %d bytes)", c.maxBody)})
	}
	res, err := decodeReport(resp.body)
	if err != nil {
		return nil, c.bodyError(err, resp)
	}
	res.Quota = parseQuota(resp.header, c.now())
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
	resp, err := c.do(ctx, http.MethodPost, AccountPath, nil)
	if err != nil {
		return nil, err
	}
	switch {
	case resp.status < 200 || resp.status > 299:
		return nil, c.httpError(resp)
	case resp.tooLarge:
		return nil, c.fail(&enrich.Error{Kind: enrich.KindTransient, Status: resp.status, Message: "response too large"})
	}
	var b accountBody
	if len(strings.TrimSpace(string(resp.body))) == 0 {
		return nil, c.fail(malformed("empty body"))
	}
	if err := unmarshalLenient(resp.body, &b); err != nil {
		e := malformed("not JSON")
		e.Err = err
		return nil, c.fail(e)
	}
	if !b.Status.OK {
		return nil, c.fail(malformed("no status field"))
	}
	if st := b.Status.V; st < 200 || st > 299 {
		return nil, c.bodyError(statusError(st, string(b.Message)), resp)
	}
	if b.Data == nil {
		return nil, c.fail(malformed("no data object"))
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

// response is a finished exchange: the body is read (bounded) and closed.
type response struct {
	status   int
	header   http.Header
	body     []byte
	tooLarge bool
}

func (r *response) html() bool {
	mt, _, _ := mime.ParseMediaType(r.header.Get("Content-Type"))
	return mt == "text/html"
}

// message is the body's "message" field, if the body is a JSON object with one.
func (r *response) message() string {
	var e envelope
	if unmarshalLenient(r.body, &e) != nil {
		return ""
	}
	return string(e.Message)
}

// do sends one request and reads the response body, at most maxBody bytes (maxErrorBody for
// non-2xx answers), always draining and closing it. Transport failures and context errors come
// back as transient *enrich.Error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values) (*response, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var body io.Reader
	if method == http.MethodPost {
		body = http.NoBody
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, c.fail(&enrich.Error{Kind: enrich.KindPermanent, Message: "cannot build request", Err: err})
	}
	req.Header.Set("x-api-key", c.key)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)

	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, "request failed", err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
		_ = resp.Body.Close()
	}()
	limit := c.maxBody
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		limit = min(limit, maxErrorBody)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, c.transportError(ctx, "reading response failed", err)
	}
	out := &response{status: resp.StatusCode, header: resp.Header, body: data}
	if int64(len(data)) > limit {
		out.body, out.tooLarge = nil, true
	}
	return out, nil
}

func (c *Client) transportError(ctx context.Context, what string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		msg := "request cancelled"
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			msg = "request timed out"
		}
		return c.fail(&enrich.Error{Kind: enrich.KindTransient, Message: msg, Err: ctxErr})
	}
	return c.fail(&enrich.Error{Kind: enrich.KindTransient, Message: what, Err: err})
}

// httpError maps a non-2xx answer (404 is handled by the caller where it means not found).
func (c *Client) httpError(r *response) error {
	e := &enrich.Error{Kind: enrich.ClassifyHTTPStatus(r.status), Status: r.status, Message: r.message()}
	if r.status >= 300 && r.status < 400 {
		e.Message = "unexpected redirect to " + redirectHost(r.header.Get("Location"))
	}
	if e.Kind == enrich.KindRateLimited {
		e.RetryAfter = enrich.ParseRetryAfter(r.header.Get("Retry-After"), c.now())
	}
	return c.fail(e)
}

// bodyError finishes an error decoded from a 2xx body: Retry-After for an in-body 429.
func (c *Client) bodyError(err error, r *response) error {
	var e *enrich.Error
	if !errors.As(err, &e) {
		e = &enrich.Error{Kind: enrich.KindTransient, Err: err}
	}
	if e.Kind == enrich.KindRateLimited && e.RetryAfter == 0 {
		e.RetryAfter = enrich.ParseRetryAfter(r.header.Get("Retry-After"), c.now())
	}
	return c.fail(e)
}

// fail stamps the provider name and makes the message safe: the key is cut out wherever the
// provider echoed it, control characters go, and it is truncated to 200 characters.
func (c *Client) fail(e *enrich.Error) error {
	e.Provider = Name
	if c.key != "" {
		e.Message = strings.ReplaceAll(e.Message, c.key, "[redacted]")
	}
	e.Message = clean(e.Message, maxMessageRunes)
	return e
}

func redirectHost(loc string) string {
	u, err := url.Parse(loc)
	if err != nil || u.Host == "" {
		return "a relative location"
	}
	return u.Host
}

// indicatorIP returns the canonical address to look up.
func indicatorIP(ind event.Indicator) (string, error) {
	if ind.Type != event.IPv4 && ind.Type != event.IPv6 {
		return "", &enrich.Error{Provider: Name, Kind: enrich.KindPermanent, Message: fmt.Sprintf("unsupported indicator type %q", ind.Type)}
	}
	v := ind.Value
	if v == "" && ind.Addr.IsValid() {
		v = ind.Addr.Unmap().String()
	}
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		return "", &enrich.Error{Provider: Name, Kind: enrich.KindPermanent, Message: fmt.Sprintf("invalid IP address %q", clean(v, 64))}
	}
	return a.Unmap().String(), nil
}

// parseQuota reads X-RateLimit-Limit / -Remaining / -Reset, which Criminal IP does not
// document; nil unless Remaining is present. Reset may be Unix seconds (or milliseconds),
// seconds from now, an HTTP date or RFC 3339.
func parseQuota(h http.Header, now time.Time) *enrich.QuotaReport {
	rem, ok := headerInt(h.Get("X-RateLimit-Remaining"))
	if !ok {
		return nil
	}
	lim, _ := headerInt(h.Get("X-RateLimit-Limit"))
	return &enrich.QuotaReport{Limit: lim, Remaining: rem, Reset: parseReset(h.Get("X-RateLimit-Reset"), now)}
}

func headerInt(v string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

func parseReset(v string, now time.Time) time.Time {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f < 1e15 {
		switch {
		case f >= 1e12:
			return time.UnixMilli(int64(f)).UTC()
		case f >= 1e9:
			return time.Unix(int64(f), 0).UTC()
		default:
			return now.Add(time.Duration(f * float64(time.Second))).UTC()
		}
	}
	if t, err := http.ParseTime(v); err == nil {
		return t.UTC()
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC()
	}
	return time.Time{}
}
