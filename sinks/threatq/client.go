package threatq

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

// TokenPath is ThreatQ's OAuth2 token endpoint (Cortex XSOAR ThreatQ v2: tq_request("POST",
// "/token") under SERVER_URL + "/api"; Elastic ti_threatq: token_url {{host}}/api/token).
const TokenPath = "/api/token"

const userAgent = "threatpipe"

// Client calls one ThreatQ instance's API with a bearer token from POST /api/token. It caches
// the token, fetches a new one shortly before expires_in runs out, and, when the API answers
// 401 all the same (a token revoked, a clock off), fetches a new one and repeats the call once.
// Transient failures (network, 429 with Retry-After, 5xx) are retried by sinkhttp within the
// policy's budget; other statuses fail at once as a *sinkhttp.StatusError. It is safe for
// concurrent use; the sink and the ingest poller share it.
type Client struct {
	base string
	auth Auth
	http *sinkhttp.Client
	now  func() time.Time

	// mu serialises token fetches, so that concurrent calls with an expired token fetch one.
	mu      sync.Mutex
	token   string
	refresh time.Time // when to fetch the next token
}

// NewClient builds a client from resolved settings. name labels its errors ("threatq");
// hc may be nil (sinkhttp's client, which refuses redirects so that tokens never follow one).
func NewClient(name string, auth Auth, hc *http.Client, pol sinkhttp.Policy) (*Client, error) {
	if !auth.Configured() {
		return nil, fmt.Errorf("%s: no ThreatQ URL", name)
	}
	secrets := []string{auth.ClientSecret.Reveal(), auth.Password.Reveal(), basic(auth)}
	return &Client{
		base: auth.URL,
		auth: auth,
		http: &sinkhttp.Client{Sink: name, HTTP: hc, Policy: pol, Secrets: nonEmpty(secrets)},
		now:  time.Now,
	}, nil
}

// Do calls the API: method and path (under the instance URL, "/api/indicators/query"), the
// query, and body marshalled as JSON (nil: no body). It returns the 2xx answer's body.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body any) ([]byte, error) {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	tok, err := c.bearer(ctx, "")
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(ctx, c.request(method, path, query, raw, tok))
	if sinkhttp.IsStatus(err, http.StatusUnauthorized) {
		// The token was refused before its time: fetch another and try once more.
		if tok, err = c.bearer(ctx, tok); err != nil {
			return nil, err
		}
		resp, err = c.http.Do(ctx, c.request(method, path, query, raw, tok))
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return resp.Body, nil
}

// bearer returns a token valid for a while yet; stale, when set, is a token the API refused,
// replaced unless another call already replaced it.
func (c *Client) bearer(ctx context.Context, stale string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.token != stale && c.now().Before(c.refresh) {
		return c.token, nil
	}
	tok, err := c.fetchToken(ctx)
	if err != nil {
		c.token = ""
		return "", err
	}
	c.token = tok.AccessToken
	c.refresh = c.now().Add(refreshAfter(tok.ExpiresIn))
	return c.token, nil
}

// refreshAfter is how long a token of expires_in seconds is used: a tenth (at most a minute)
// short of its life, so that a call in flight is not refused. A token without a usable expiry
// is used for a minute.
func refreshAfter(expiresIn int64) time.Duration {
	if expiresIn <= 0 || expiresIn > 10*365*24*3600 {
		return time.Minute
	}
	life := time.Duration(expiresIn) * time.Second
	return life - min(life/10, time.Minute)
}

// fetchToken asks POST /api/token for a token. The body is form-encoded, as RFC 6749 has it
// and as both public integrations send it: the password grant carries grant_type, email,
// password and client_id (Cortex XSOAR ThreatQ v2, request_new_access_token; requests'
// data= dict is a form); the client_credentials grant carries grant_type with the client's
// id and secret as HTTP Basic (Elastic ti_threatq's mock: Content-Type
// application/x-www-form-urlencoded, Authorization Basic). The answer is {"access_token",
// "token_type": "Bearer", "expires_in", "refresh_token"}.
func (c *Client) fetchToken(ctx context.Context) (token, error) {
	form := url.Values{"grant_type": {c.auth.Grant()}}
	if c.auth.Grant() == GrantPassword {
		form.Set("email", c.auth.Username)
		form.Set("password", c.auth.Password.Reveal())
		form.Set("client_id", c.auth.ClientID)
	}
	raw := []byte(form.Encode())
	u := c.base + TokenPath
	resp, err := c.http.Do(ctx, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", userAgent)
		if c.auth.ClientSecret != "" {
			req.Header.Set("Authorization", "Basic "+basic(c.auth))
		}
		return req, nil
	})
	if err != nil {
		return token{}, fmt.Errorf("token (%s grant): %w", c.auth.Grant(), err)
	}
	tok, err := decodeToken(resp.Body)
	if err != nil {
		return token{}, fmt.Errorf("%s: token (%s grant): HTTP %d: %w", c.http.Sink, c.auth.Grant(), resp.Status, err)
	}
	return tok, nil
}

// request builds one attempt's API request; the body is re-read on every attempt.
func (c *Client) request(method, path string, query url.Values, body []byte, tok string) func(context.Context) (*http.Request, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return func(ctx context.Context) (*http.Request, error) {
		var rd *bytes.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := newRequest(ctx, method, u, rd)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", userAgent)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return req, nil
	}
}

// newRequest keeps a nil *bytes.Reader from becoming a non-nil io.Reader (a GET with a body).
func newRequest(ctx context.Context, method, u string, body *bytes.Reader) (*http.Request, error) {
	if body == nil {
		return http.NewRequestWithContext(ctx, method, u, nil)
	}
	return http.NewRequestWithContext(ctx, method, u, body)
}

// basic is the client's HTTP Basic credentials, "" without a secret.
func basic(a Auth) string {
	if a.ClientSecret == "" {
		return ""
	}
	return base64.StdEncoding.EncodeToString([]byte(a.ClientID + ":" + a.ClientSecret.Reveal()))
}

func nonEmpty(ss []string) []string {
	out := ss[:0]
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
