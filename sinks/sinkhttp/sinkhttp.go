// Package sinkhttp is the outbound HTTP client every HTTP sink shares: a per-attempt timeout, a
// bounded retry budget with exponential backoff (cenkalti/backoff/v4) that honours Retry-After,
// bounded response bodies, and errors that say what the far end answered without leaking
// credentials.
package sinkhttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Policy bounds one outbound action. Zero fields take the defaults.
type Policy struct {
	// AttemptTimeout bounds one request and its response. Default 10s.
	AttemptTimeout time.Duration
	// RetryBudget bounds all attempts together, waits included. Default 30s.
	RetryBudget time.Duration
	// MaxBody bounds the response bytes read. Default 1 MiB.
	MaxBody int64
	// InitialInterval is the first backoff wait. Default 200ms.
	InitialInterval time.Duration
}

// Defaults for Policy's zero fields.
const (
	DefaultAttemptTimeout  = 10 * time.Second
	DefaultRetryBudget     = 30 * time.Second
	DefaultMaxBody         = 1 << 20
	DefaultInitialInterval = 200 * time.Millisecond
)

func (p Policy) withDefaults() Policy {
	if p.AttemptTimeout <= 0 {
		p.AttemptTimeout = DefaultAttemptTimeout
	}
	if p.RetryBudget <= 0 {
		p.RetryBudget = DefaultRetryBudget
	}
	if p.MaxBody <= 0 {
		p.MaxBody = DefaultMaxBody
	}
	if p.InitialInterval <= 0 {
		p.InitialInterval = DefaultInitialInterval
	}
	return p
}

// NewHTTPClient returns the client sinks share: no overall timeout (attempts carry their own)
// and no redirects, so that credentials are never replayed to another host.
func NewHTTPClient() *http.Client {
	return &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// StatusError is a non-2xx answer.
type StatusError struct {
	Sink   string
	Status int
	// Body is the start of the response body, for the audit record.
	Body       string
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s: HTTP %d", e.Sink, e.Status)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Retryable reports whether the status may succeed on a later attempt.
func (e *StatusError) Retryable() bool {
	return e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooEarly ||
		e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// Response is a successful (2xx) answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Client sends one sink's requests.
type Client struct {
	Sink   string
	HTTP   *http.Client
	Policy Policy
}

// Do sends the request newReq builds (called once per attempt, so bodies are fresh) and retries
// network errors and retryable statuses until the retry budget runs out; a Retry-After longer
// than the remaining budget ends the retries at once. Other statuses fail at once as a
// *StatusError. The request is sent with the attempt's context.
func (c *Client) Do(ctx context.Context, newReq func(ctx context.Context) (*http.Request, error)) (*Response, error) {
	pol := c.Policy.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, pol.RetryBudget)
	defer cancel()

	b := backoff.NewExponentialBackOff()
	b.InitialInterval = pol.InitialInterval
	b.MaxElapsedTime = 0 // the context bounds the whole
	b.Reset()
	for {
		resp, err := c.attempt(ctx, newReq, pol)
		if err == nil {
			return resp, nil
		}
		wait := b.NextBackOff()
		var se *StatusError
		if errors.As(err, &se) {
			if !se.Retryable() {
				return nil, err
			}
			wait = max(wait, se.RetryAfter)
		} else if errors.Is(err, errNotRetryable) {
			return nil, err
		}
		if dl, ok := ctx.Deadline(); ok && time.Now().Add(wait).After(dl) {
			return nil, fmt.Errorf("retry budget of %s spent: %w", pol.RetryBudget, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("retry budget of %s spent: %w", pol.RetryBudget, err)
		case <-t.C:
		}
	}
}

// errNotRetryable marks failures no later attempt can fix (the request cannot be built).
var errNotRetryable = errors.New("not retryable")

func (c *Client) attempt(ctx context.Context, newReq func(context.Context) (*http.Request, error), pol Policy) (*Response, error) {
	actx, cancel := context.WithTimeout(ctx, pol.AttemptTimeout)
	defer cancel()
	req, err := newReq(actx)
	if err != nil {
		return nil, fmt.Errorf("%s: building the request: %w: %w", c.Sink, errNotRetryable, err)
	}
	hc := c.HTTP
	if hc == nil {
		hc = NewHTTPClient()
	}
	res, err := hc.Do(req)
	if err != nil {
		// The URL's path and query may hold a webhook secret (Slack's do): name only the host.

		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s: %s %s://%s: %w", c.Sink, req.Method, req.URL.Scheme, req.URL.Host, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, pol.MaxBody))
	if err != nil {
		return nil, fmt.Errorf("%s: reading the response: %w", c.Sink, err)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return nil, &StatusError{
			Sink: c.Sink, Status: res.StatusCode, Body: truncate(string(body), 300),
			RetryAfter: parseRetryAfter(res.Header.Get("Retry-After"), time.Now()),
		}
	}
	return &Response{Status: res.StatusCode, Header: res.Header, Body: body}, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		return time.Duration(min(max(secs, 0), 1<<31)) * time.Second // capped: a huge value must not overflow into a short wait
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
