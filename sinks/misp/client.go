package misp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

// Client sends requests to one MISP instance's REST API. The MISP sink and the MISP ingest
// source share it, so that both authenticate, bound and retry the same way.
//
// Every request is a POST of a JSON body carrying the headers PyMISP sends
// (pymisp/api.py, PyMISP.__init__ and _prepare_request): Authorization: <auth key> (the raw
// key, no scheme), Accept: application/json and Content-Type: application/json. sinkhttp
// retries 429 (honouring Retry-After) and 5xx within the retry budget and fails at once on
// other statuses. MISP answers a refused key, and also most refused writes, with 403
// (RestResponseComponent::saveFailResponse), so a 403 is never retried.
type Client struct {
	base string
	key  string
	http *sinkhttp.Client
}

// NewClient returns a client of the MISP instance at baseURL (checked by the caller's
// configuration: https, no query) with the auth key key. name labels its errors ("misp",
// "ingest misp"). hc may be nil: sinkhttp's default client, which refuses redirects so that
// the key never follows one.
func NewClient(name, baseURL, key string, hc *http.Client, pol sinkhttp.Policy) *Client {
	return &Client{
		base: strings.TrimRight(baseURL, "/"),
		key:  key,
		http: &sinkhttp.Client{Sink: name, HTTP: hc, Policy: pol, Secrets: []string{key}},
	}
}

// SetInitialBackoff sets the first retry wait; tests shorten it to keep retries fast.
func (c *Client) SetInitialBackoff(d time.Duration) { c.http.Policy.InitialInterval = d }

// Post sends in as the JSON body of a POST to path (an API path such as /events/add) and
// returns the 2xx answer's body. A non-2xx answer is an error wrapping *sinkhttp.StatusError
// and, when the body is MISP's error object, saying its message (*APIError).
func (c *Client) Post(ctx context.Context, path string, in any) ([]byte, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("%s: encoding the request to %s: %w", c.http.Sink, path, err)
	}
	u := c.base + path
	resp, err := c.http.Do(ctx, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", c.key)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", userAgent)
		return req, nil
	})
	if err != nil {
		return nil, explain(path, err)
	}
	return resp.Body, nil
}

// explain adds what MISP said to a failed request's error.
func explain(path string, err error) error {
	var se *sinkhttp.StatusError
	if !errors.As(err, &se) {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	ae, ok := decodeAPIError([]byte(se.Body))
	switch {
	case ok && se.Status == http.StatusForbidden && ae.isAuthFailure():
		return fmt.Errorf("POST %s: MISP refused the auth key (check the key, that its user is enabled and its role allows API access): %w",
			path, &keyError{err: err})
	case ok && ae.Message != "":
		return fmt.Errorf("POST %s: MISP says %q: %w", path, ae.summary(), err)
	}
	return fmt.Errorf("POST %s: %w", path, err)
}

// keyError marks a refused auth key, for IsAuthError.
type keyError struct{ err error }

func (e *keyError) Error() string { return e.err.Error() }
func (e *keyError) Unwrap() error { return e.err }

// IsAuthError reports whether err is MISP refusing the auth key (403 "Authentication
// failed"): no retry or other request can succeed until an operator fixes the key.
func IsAuthError(err error) bool {
	var ke *keyError
	return errors.As(err, &ke)
}
