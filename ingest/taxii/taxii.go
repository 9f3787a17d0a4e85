// Package taxii polls one TAXII 2.1 collection (OASIS TAXII 2.1, section 5.4 Get Objects) for
// STIX 2.1 indicators and hands the runner the IP addresses their patterns name.
package taxii

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/ingest"
)

// MediaType is the TAXII 2.1 media type, sent in Accept.
const MediaType = "application/taxii+json;version=2.1"

// maxErrorBytes bounds the error body read for a message.
const maxErrorBytes = 8 << 10

// Source is a TAXII 2.1 collection poller.
type Source struct {
	cfg    Config
	client *http.Client
	id     string
}

var _ ingest.Source = (*Source)(nil)

// New returns the source of cfg (resolved here if the caller did not). client is shared; its
// transport's timeouts apply, and each Poll is bounded by its context.
func New(c *Config, client *http.Client) (*Source, error) {
	if c == nil {
		return nil, errors.New("taxii: nil config")
	}
	cfg := *c
	if cfg.objectsURL == nil {
		if err := cfg.Resolve(); err != nil {
			return nil, err
		}
	}
	if client == nil {
		return nil, errors.New("taxii: no HTTP client")
	}
	parts := strings.Split(strings.TrimSuffix(cfg.objectsURL.Path, "/objects/"), "/")
	return &Source{cfg: cfg, client: client, id: parts[len(parts)-1]}, nil
}

// Name implements ingest.Source.
func (s *Source) Name() string { return Name }

// Poll implements ingest.Source: one Get Objects request from the cursor's position.
func (s *Source) Poll(ctx context.Context, cursor string, limit int) (ingest.Page, error) {
	cur, err := parseCursor(cursor)
	if err != nil {
		return ingest.Page{}, err
	}
	if cursor == "" && !s.cfg.since.IsZero() {
		cur.AddedAfter = s.cfg.since.UTC().Format(time.RFC3339Nano)
	}
	if s.cfg.PageSize > 0 {
		limit = min(limit, s.cfg.PageSize)
	}
	res, err := s.get(ctx, cur, limit)
	if err != nil {
		return ingest.Page{}, err
	}
	defer res.Body.Close()
	env, err := decodeEnvelope(res.Body)
	if err != nil {
		return ingest.Page{}, fmt.Errorf("taxii %s: %w", s.id, err)
	}
	next, err := cur.advance(env, res.Header.Get("X-TAXII-Date-Added-Last"))
	if err != nil {
		return ingest.Page{}, fmt.Errorf("taxii %s: %w", s.id, err)
	}
	return ingest.Page{Indicators: indicators(env, s.id), Next: next.String(), More: env.More}, nil
}

// get sends the Get Objects request and returns a 200 response; any other status is an error
// naming the status and the server's TAXII error title (ingest.ErrAuth for 401 and 403).
func (s *Source) get(ctx context.Context, cur cursor, limit int) (*http.Response, error) {
	u := *s.cfg.objectsURL
	q := url.Values{}
	q.Set("match[type]", "indicator")
	q.Set("limit", strconv.Itoa(max(limit, 1)))
	if cur.AddedAfter != "" {
		q.Set("added_after", cur.AddedAfter)
	}
	if cur.Next != "" {
		q.Set("next", cur.Next)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("taxii %s: build request: %w", s.id, err)
	}
	req.Header.Set("Accept", MediaType)
	switch {
	case s.cfg.Token != "":
		req.Header.Set("Authorization", "Bearer "+s.cfg.Token.Reveal())
	case s.cfg.Username != "":
		req.SetBasicAuth(s.cfg.Username, s.cfg.Password.Reveal())
	}
	res, err := s.client.Do(req)
	if err != nil {
		// url.Error quotes the URL: the query has no credential, and the path is the operator's.
		return nil, fmt.Errorf("taxii %s: %w", s.id, err)
	}
	if res.StatusCode == http.StatusOK {
		return res, nil
	}
	defer res.Body.Close()
	msg := errorMessage(res.Body)
	if ingest.AuthStatus(res.StatusCode) {
		return nil, fmt.Errorf("taxii %s: %s%s: %w", s.id, res.Status, msg, ingest.ErrAuth)
	}
	return nil, fmt.Errorf("taxii %s: %s%s", s.id, res.Status, msg)
}

// errorMessage is the TAXII error message's title and description (section 3.6.1), if the body
// holds one.
func errorMessage(body io.Reader) string {
	var e struct {
		Title       string `json:"title"`
		Description string `json:"description"`
	}
	raw, _ := io.ReadAll(io.LimitReader(body, maxErrorBytes))
	if json.Unmarshal(raw, &e) != nil || e.Title == "" {
		return ""
	}
	if e.Description != "" {
		return fmt.Sprintf(" (%s: %s)", clip(e.Title), clip(e.Description))
	}
	return fmt.Sprintf(" (%s)", clip(e.Title))
}

func clip(s string) string {
	if len(s) > 200 {
		return strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}
