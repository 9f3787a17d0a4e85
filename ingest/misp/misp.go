// Package misp is the MISP ingest source: it polls POST /attributes/restSearch (MISP's
// recommended attribute search; OpenAPI restSearchAttributes, PyMISP search(controller=
// "attributes")) for ip-src and ip-dst attributes changed since the cursor, oldest first:
//
//	{"returnFormat": "json", "type": ["ip-src", "ip-dst"], "timestamp": <cursor second>,
//	 "order": ["Attribute.timestamp ASC", "Attribute.id ASC"], "page": n, "limit": n,
//	 "tags": [...]}
//
// and reads {"response": {"Attribute": [...]}}. timestamp selects Attribute.timestamp >= it;
// the cursor (cursor.go) keeps the last (timestamp, id) done so that attributes sharing a
// second are neither skipped nor repeated. The HTTP client is the MISP sink's (sinks/misp).
package misp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/ingest"
	mispapi "github.com/threatpipe/threatpipe/sinks/misp"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

// maxPagesPerPoll bounds the requests of one Poll: a walk through a second holding more
// attributes than that many pages resumes on the next poll (the cursor hint skips ahead).
const maxPagesPerPoll = 20

// order sorts by (timestamp, id), the cursor's order (AppModel::findOrder rules).
var order = []string{"Attribute.timestamp ASC", "Attribute.id ASC"}

// ipTypes are the attribute types ingested.
var ipTypes = []string{"ip-src", "ip-dst"}

// Source polls one MISP instance. It is safe for concurrent use and keeps no state between
// polls beyond its start time.
type Source struct {
	cfg    Config
	client *mispapi.Client
	now    func() time.Time
	// start is the first poll's reach: now - SINCE when the source was built, fixed so that
	// polling "" twice asks the same.
	start int64
}

var _ ingest.Source = (*Source)(nil)

// New builds the source. hc may be nil (a client that refuses redirects).
func New(cfg *Config, hc *http.Client) (*Source, error) {
	if cfg == nil {
		return nil, errors.New("misp: nil config")
	}
	c := *cfg
	if err := c.Resolve(); err != nil {
		return nil, err
	}
	if hc == nil {
		hc = sinkhttp.NewHTTPClient()
	}
	// The runner retries a failed poll with its own backoff: one attempt per Poll, bar a quick
	// retry of a 429 or 5xx within the timeout.
	pol := sinkhttp.Policy{AttemptTimeout: c.Timeout, RetryBudget: c.Timeout}
	return &Source{
		cfg:    c,
		client: mispapi.NewClient("ingest misp", c.URL, c.Key.Reveal(), hc, pol),
		now:    time.Now,
		start:  time.Now().Add(-c.Since).Unix(),
	}, nil
}

// Name implements ingest.Source.
func (s *Source) Name() string { return Name }

// Poll implements ingest.Source: at most limit ip-src and ip-dst attributes after cursor.
func (s *Source) Poll(ctx context.Context, cursor string, limit int) (ingest.Page, error) {
	cur, ok, err := parseCursor(cursor)
	if err != nil {
		return ingest.Page{}, err
	}
	if !ok {
		cur = newStart(s.start)
	}
	if limit <= 0 {
		return ingest.Page{Next: cur.String(), More: true}, nil
	}
	size := min(s.cfg.PageSize, limit)
	horizon := s.now().Add(-s.cfg.Settle).Unix()
	w := walker{cur: cur, limit: limit, horizon: horizon}
	page := cur.N/size + 1
	jumped := page > 1
	for range maxPagesPerPoll {
		attrs, err := s.search(ctx, cur.TS, page, size)
		if err != nil {
			return ingest.Page{}, err
		}
		if jumped && (len(attrs) == 0 || !cur.covers(attrs[0].Timestamp, id(attrs[0]))) {
			// Attributes of the cursor's second changed since it was taken, so the hint may
			// overshoot: read from the first page instead.
			page, jumped = 1, false
			continue
		}
		jumped = false
		if !w.take(attrs) || len(attrs) < size {
			return w.result(), nil
		}
		page++
	}
	w.more = true
	return w.result(), nil
}

// newStart is the cursor before anything: everything before second start is done.
func newStart(start int64) cursor { return cursor{TS: start, ID: 0, N: 0} }

func (s *Source) search(ctx context.Context, ts int64, page, size int) ([]mispapi.Attribute, error) {
	attrs, err := s.client.SearchAttributes(ctx, mispapi.AttributeQuery{
		Type: ipTypes, Timestamp: ts, Tags: s.cfg.Tags, Order: order, Page: page, Limit: size,
	})
	if err != nil {
		if mispapi.IsAuthError(err) || sinkhttp.IsStatus(err, http.StatusUnauthorized) || sinkhttp.IsStatus(err, http.StatusForbidden) {
			return nil, fmt.Errorf("misp: %w: %w", ingest.ErrAuth, err)
		}
		return nil, fmt.Errorf("misp: %w", err)
	}
	return attrs, nil
}

func id(a mispapi.Attribute) int64 {
	n, _ := strconv.ParseInt(a.ID, 10, 64)
	return n
}

// walker gathers one poll's indicators.
type walker struct {
	cur     cursor
	limit   int
	horizon int64
	out     []ingest.Indicator
	more    bool
}

// take processes one page in order; false means the poll is over (limit reached or the
// settle horizon met).
func (w *walker) take(attrs []mispapi.Attribute) bool {
	for _, a := range attrs {
		aid := id(a)
		switch {
		case w.cur.covers(a.Timestamp, aid):
			continue
		case a.Timestamp > w.horizon:
			return false
		case len(w.out) == w.limit:
			w.more = true
			return false
		}
		w.cur = w.cur.next(a.Timestamp, aid)
		if isIPType(a.Type) {
			w.out = append(w.out, indicator(a))
		}
	}
	return true
}

func (w *walker) result() ingest.Page {
	return ingest.Page{Indicators: w.out, Next: w.cur.String(), More: w.more}
}

func isIPType(t string) bool { return t == "ip-src" || t == "ip-dst" }

func indicator(a mispapi.Attribute) ingest.Indicator {
	ctx := map[string]string{"event_id": a.EventID, "type": a.Type, "category": a.Category, "to_ids": strconv.FormatBool(a.ToIDS)}
	if c := strings.TrimSpace(a.Comment); c != "" {
		ctx["comment"] = c
	}
	return ingest.Indicator{
		Value: a.Value, Ref: a.UUID, Modified: time.Unix(a.Timestamp, 0).UTC(), Tags: a.Tags, Context: ctx,
	}
}
