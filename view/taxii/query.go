package taxii

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/view"
)

// Paging limits.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
	// maxMatch bounds the values of one match[...] filter.
	maxMatch = 100
	// maxQueryBytes bounds the query string: every filter fits far below it.
	maxQueryBytes = 16 << 10
)

// Cursor is where the next page starts: the indicator stored at AddedMS with address IP, at its
// Skip-th object (after the type and id filters). It is opaque to clients ("next").
type Cursor struct {
	AddedMS int64
	IP      string
	Skip    int
}

// cursorVersion prefixes encoded cursors so their format can change.
const cursorVersion = "c1"

// String encodes c for the envelope's next.
func (c Cursor) String() string {
	raw := fmt.Sprintf("%s.%d.%d.%s", cursorVersion, c.AddedMS, c.Skip, c.IP)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// ParseCursor decodes a next value; the address must be canonical, so a cursor cannot name
// anything but an indicator key.
func ParseCursor(s string) (Cursor, error) {
	if len(s) > 256 {
		return Cursor{}, errors.New("next is too long")
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, errors.New("next is not a cursor this server issued")
	}
	parts := strings.SplitN(string(raw), ".", 4)
	if len(parts) != 4 || parts[0] != cursorVersion {
		return Cursor{}, errors.New("next is not a cursor this server issued")
	}
	ms, err1 := strconv.ParseInt(parts[1], 10, 64)
	skip, err2 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil || ms < 0 || skip < 0 || skip > maxSkip {
		return Cursor{}, errors.New("next is not a cursor this server issued")
	}
	if _, ok := patternOf(parts[3]); !ok || canonical(parts[3]) != parts[3] {
		return Cursor{}, errors.New("next is not a cursor this server issued")
	}
	return Cursor{AddedMS: ms, IP: parts[3], Skip: skip}, nil
}

// Query is a parsed objects or manifest request.
type Query struct {
	Limit int
	// AddedAfter selects objects added strictly after it (zero: everything).
	AddedAfter time.Time
	// Next is where to resume (nil: from the start).
	Next  *Cursor
	Types map[string]bool // nil: every type
	IDs   map[string]bool // nil: every id
}

// ParseQuery parses the TAXII filters of an objects or manifest request. Unknown parameters are
// ignored, as TAXII asks; a match filter the server does not support (match[version] other than
// last, match[spec_version] other than 2.1) is an error rather than a silently wrong answer.
func ParseQuery(raw string) (Query, error) {
	if len(raw) > maxQueryBytes {
		return Query{}, errors.New("the query string is too long")
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return Query{}, fmt.Errorf("malformed query string: %w", err)
	}
	q := Query{Limit: DefaultLimit}
	if v := vals.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return Query{}, fmt.Errorf("limit %q is not a positive integer", clip(v))
		}
		q.Limit = min(n, MaxLimit)
	}
	if v := vals.Get("added_after"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return Query{}, fmt.Errorf("added_after %q is not a timestamp", clip(v))
		}
		q.AddedAfter = t.UTC()
	}
	if v := vals.Get("next"); v != "" {
		c, err := ParseCursor(v)
		if err != nil {
			return Query{}, err
		}
		q.Next = &c
	}
	if q.Types, err = matchSet(vals["match[type]"], "match[type]"); err != nil {
		return Query{}, err
	}
	if q.IDs, err = matchSet(vals["match[id]"], "match[id]"); err != nil {
		return Query{}, err
	}
	for _, v := range splitAll(vals["match[version]"]) {
		if v != "last" {
			return Query{}, fmt.Errorf("match[version] %q: only the latest version is kept", clip(v))
		}
	}
	for _, v := range splitAll(vals["match[spec_version]"]) {
		if v != SpecVersion {
			return Query{}, fmt.Errorf("match[spec_version] %q: every object is STIX 2.1", clip(v))
		}
	}
	return q, nil
}

// matchSet is the set of a match filter's comma-separated values, nil when absent.
func matchSet(vals []string, name string) (map[string]bool, error) {
	all := splitAll(vals)
	if len(all) == 0 {
		return nil, nil
	}
	if len(all) > maxMatch {
		return nil, fmt.Errorf("%s has more than %d values", name, maxMatch)
	}
	set := make(map[string]bool, len(all))
	for _, v := range all {
		set[v] = true
	}
	return set, nil
}

func splitAll(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// Wants says whether o passes the type and id filters.
func (q *Query) Wants(o Object) bool {
	return (q.Types == nil || q.Types[o.StixType()]) && (q.IDs == nil || q.IDs[o.StixID()])
}

// mayMatch says whether any object about addr can pass the id filter, before reading it.
func (q *Query) mayMatch(addr string) bool {
	if q.IDs == nil {
		return true
	}
	ids := IDsOf(addr)
	return q.IDs[ids.Indicator] || q.IDs[ids.Sighting] || q.IDs[ids.Note]
}

// start is the feed position the query starts after.
func (q *Query) start() view.FeedPos {
	if q.Next != nil {
		return view.FeedPos{AddedMS: q.Next.AddedMS, IP: q.Next.IP}
	}
	if q.AddedAfter.IsZero() {
		return view.FeedPos{}
	}
	// Strictly after added_after: its whole millisecond when it has no sub-millisecond part,
	// since stored times are whole milliseconds.
	return view.FeedPos{AddedMS: q.AddedAfter.UnixMilli()}
}

// canonical is the view's spelling of an address ("" when it is none).
func canonical(s string) string {
	ind, err := event.ParseIP(s)
	if err != nil {
		return ""
	}
	return ind.Value
}

// clip bounds echoed input in error messages.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
