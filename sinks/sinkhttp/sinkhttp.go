// Package sinkhttp is the outbound HTTP client every HTTP sink shares: a per-attempt timeout, a
// bounded retry budget with exponential backoff (cenkalti/backoff/v4) that honours Retry-After,
// bounded response bodies, and errors that say what the far end answered without leaking
// credentials. It also holds what every HTTP sink's configuration has in common: the
// ATTEMPT_TIMEOUT and RETRY_BUDGET variables (PolicyConfig) and the endpoint URL check
// (CheckURL, CheckBaseURL).
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
	"unicode/utf8"

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

// IsStatus reports whether err is, or wraps, a StatusError with the given status.
func IsStatus(err error, status int) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == status
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
	// Secrets are the credentials the requests carry (tokens, passwords, encoded Basic
	// credentials). A far end may echo them in an error body; they are cut out of
	// StatusError.Body before it is shortened.
	Secrets []string
}

// Do sends the request newReq builds (called once per attempt, so bodies are fresh) and retries
// network errors and retryable statuses until the retry budget runs out; a Retry-After longer
// than the remaining budget ends the retries at once. Other statuses fail at once as a
// *StatusError. The request is sent with the attempt's context.
//
// When ctx ends (the caller cancelled, or its deadline passed) the error wraps ctx.Err(), so
// that errors.Is(err, context.Canceled) tells a shutdown from a far end that kept failing.
func (c *Client) Do(ctx context.Context, newReq func(ctx context.Context) (*http.Request, error)) (*Response, error) {
	pol := c.Policy.withDefaults()
	parent := ctx
	ctx, cancel := context.WithTimeout(parent, pol.RetryBudget)
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
		if parent.Err() != nil {
			return nil, c.ended(parent, err)
		}
		if dl, ok := ctx.Deadline(); ok && time.Now().Add(wait).After(dl) {
			if pdl, ok := parent.Deadline(); ok && !pdl.After(dl) {
				// The caller's deadline, not the budget, leaves no room for another attempt.
				return nil, fmt.Errorf("%s: no time left before the context's deadline: %w; last attempt: %w",
					c.Sink, context.DeadlineExceeded, err)
			}
			return nil, fmt.Errorf("retry budget of %s spent: %w", pol.RetryBudget, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			if parent.Err() != nil {
				return nil, c.ended(parent, err)
			}
			return nil, fmt.Errorf("retry budget of %s spent: %w", pol.RetryBudget, err)
		case <-t.C:
		}
	}
}

// ended is the error of a Do whose caller's context ended: it wraps ctx.Err() and, when the last
// attempt failed for another reason, that failure too.
func (c *Client) ended(ctx context.Context, last error) error {
	if errors.Is(last, ctx.Err()) {
		return last
	}
	return fmt.Errorf("%s: %w; last attempt: %w", c.Sink, ctx.Err(), last)
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
			Sink: c.Sink, Status: res.StatusCode, Body: truncate(Redact(string(body), c.Secrets...), maxErrorBody),
			RetryAfter: parseRetryAfter(res.Header.Get("Retry-After"), time.Now()),
		}
	}
	return &Response{Status: res.StatusCode, Header: res.Header, Body: body}, nil
}

// maxErrorBody bounds StatusError.Body, in bytes (before the truncation mark).
const maxErrorBody = 300

// truncMark ends a body truncate cut.
const truncMark = "..."

// truncate cuts s to at most n bytes, at a character boundary, and marks the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// s[cut] is the first byte left out: back off to the start of its character. A character
	// is at most UTFMax bytes; past that the text is not UTF-8 and is cut at n.
	cut := n
	for cut > 0 && cut > n-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if !utf8.RuneStart(s[cut]) {
		cut = n
	}
	return s[:cut] + truncMark
}

// maxRetryAfter caps a Retry-After: a huge value must not overflow into a short wait.
const maxRetryAfter = 1 << 31 * time.Second

func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	// A value too large for int64 is as good as infinite (the cap), not absent.
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if secs >= int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(max(secs, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}
