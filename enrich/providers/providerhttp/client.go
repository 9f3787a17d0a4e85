// Package providerhttp is what every threat-intel provider's HTTP client shares: the base URL,
// the API key in the vendor's header, bounded response bodies, transport errors classified as
// transient, HTTP statuses classified by enrich.ClassifyHTTPStatus with Retry-After honoured,
// X-RateLimit-* headers read as quota reports, and error messages that never carry the key.
// A provider package keeps only its request shape and its decoding.
package providerhttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

const (
	userAgent = "threatpipe"
	// MaxMessageRunes bounds a provider message kept in an error.
	MaxMessageRunes = 200
	// maxErrorBody bounds what is read of a non-2xx body (only its message is used).
	maxErrorBody = 64 << 10
	// maxDrain bounds what is discarded after a body was read, to reuse the connection.
	maxDrain = 64 << 10
)

// Client sends one provider's requests. It is safe for concurrent use.
type Client struct {
	provider   string
	base       string
	authHeader string // "" for keyless APIs
	key        string
	hc         *http.Client
	maxBody    int64
	Now        func() time.Time
}

// Options build a Client.
type Options struct {
	Provider   string // the provider's name, stamped on every error
	BaseURL    string
	AuthHeader string // the header the key travels in ("Key", "x-apikey"); "" sends none
	Key        string
	MaxBody    int64        // default DefaultMaxBodyBytes
	HTTPClient *http.Client // nil: a client with Timeout
	Timeout    time.Duration
}

// New builds a client. Redirects are refused unless the given http.Client has its own
// CheckRedirect, so the key header never follows one to another host.
func New(o Options) *Client {
	var hc http.Client
	if o.HTTPClient != nil {
		hc = *o.HTTPClient
	} else {
		hc.Timeout = 30 * time.Second
		if o.Timeout > 0 {
			hc.Timeout = o.Timeout
		}
	}
	if hc.CheckRedirect == nil {
		hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBodyBytes
	}
	return &Client{provider: o.Provider, base: strings.TrimRight(o.BaseURL, "/"), authHeader: o.AuthHeader, key: o.Key,
		hc: &hc, maxBody: o.MaxBody, Now: time.Now}
}

// Response is a finished exchange: the body is read (bounded) and closed.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	// TooLarge: a 2xx body was over the limit; Body is nil.
	TooLarge bool
}

// OK reports a 2xx status.
func (r *Response) OK() bool { return r.Status >= 200 && r.Status <= 299 }

// HTML reports a text/html body: a web server's page, not the API's JSON.
func (r *Response) HTML() bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "text/html"
}

// Do sends one request to base+path with query and reads the response body, at most MaxBody
// bytes (64 KiB for non-2xx answers), always draining and closing it. body may be nil.
// Transport failures and context errors come back as transient *enrich.Error.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body io.Reader, header http.Header) (*Response, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	if body == nil && method == http.MethodPost {
		body = http.NoBody
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, c.Fail(&enrich.Error{Kind: enrich.KindPermanent, Message: "cannot build request", Err: err})
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if c.authHeader != "" && c.key != "" {
		req.Header.Set(c.authHeader, c.key)
	}
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
	out := &Response{Status: resp.StatusCode, Header: resp.Header, Body: data}
	if int64(len(data)) > limit {
		out.Body = nil
		out.TooLarge = out.OK()
	}
	return out, nil
}

// Get is Do for a GET without a body.
func (c *Client) Get(ctx context.Context, path string, query url.Values) (*Response, error) {
	return c.Do(ctx, http.MethodGet, path, query, nil, nil)
}

func (c *Client) transportError(ctx context.Context, what string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		msg := "request cancelled"
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			msg = "request timed out"
		}
		return c.Fail(&enrich.Error{Kind: enrich.KindTransient, Message: msg, Err: ctxErr})
	}
	return c.Fail(&enrich.Error{Kind: enrich.KindTransient, Message: what, Err: err})
}

// HTTPError maps a non-2xx answer by its status (enrich.ClassifyHTTPStatus), with message (the
// vendor's, from its error body) and, for 429, Retry-After. The caller handles statuses that
// mean an answer (a 404 "not found", say) before calling it.
func (c *Client) HTTPError(r *Response, message string) error {
	e := &enrich.Error{Kind: enrich.ClassifyHTTPStatus(r.Status), Status: r.Status, Message: message}
	if r.Status >= 300 && r.Status < 400 {
		e.Message = "unexpected redirect to " + redirectHost(r.Header.Get("Location"))
	}
	if e.Kind == enrich.KindRateLimited {
		e.RetryAfter = enrich.ParseRetryAfter(r.Header.Get("Retry-After"), c.Now())
	}
	return c.Fail(e)
}

// TooLarge is the error for a 2xx body over the limit.
func (c *Client) TooLarge(r *Response) error {
	return c.Fail(&enrich.Error{Kind: enrich.KindTransient, Status: r.Status,
		Message: fmt.Sprintf("response too large (over %d bytes)", c.maxBody)})
}

// Malformed is the error for a 2xx body that cannot be read: transient, since a broken proxy
// or a half-deployed API usually recovers.
func (c *Client) Malformed(err error, format string, args ...any) error {
	return c.Fail(&enrich.Error{Kind: enrich.KindTransient, Message: "malformed response: " + fmt.Sprintf(format, args...), Err: err})
}

// Fail stamps the provider name and makes the message safe: the key is cut out wherever the
// provider echoed it, control characters go, and it is truncated to MaxMessageRunes.
func (c *Client) Fail(e *enrich.Error) error {
	e.Provider = c.provider
	if c.key != "" {
		e.Message = strings.ReplaceAll(e.Message, c.key, "[redacted]")
	}
	e.Message = Clean(e.Message, MaxMessageRunes)
	return e
}

func redirectHost(loc string) string {
	u, err := url.Parse(loc)
	if err != nil || u.Host == "" {
		return "a relative location"
	}
	return u.Host
}

// IndicatorIP returns the canonical address of an IP indicator, or a permanent error naming
// provider.
func IndicatorIP(provider string, ind event.Indicator) (netip.Addr, error) {
	if ind.Type != event.IPv4 && ind.Type != event.IPv6 {
		return netip.Addr{}, &enrich.Error{Provider: provider, Kind: enrich.KindPermanent, Message: fmt.Sprintf("unsupported indicator type %q", ind.Type)}
	}
	v := ind.Value
	if v == "" && ind.Addr.IsValid() {
		v = ind.Addr.Unmap().String()
	}
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, &enrich.Error{Provider: provider, Kind: enrich.KindPermanent, Message: fmt.Sprintf("invalid IP address %q", Clean(v, 64))}
	}
	return a.Unmap(), nil
}
