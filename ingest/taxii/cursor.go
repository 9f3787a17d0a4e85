package taxii

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// cursor is the source's position, stored by the runner as an opaque string (URL-encoded
// fields). AddedAfter is the added_after of the request chain; Next the server's next token
// while the chain has more; Last the newest X-TAXII-Date-Added-Last seen in the chain, which
// becomes AddedAfter once it ends. Pages of one added_after are followed by next rather than by
// moving added_after, since objects added in the same instant may straddle a page boundary and
// added_after is exclusive: moving it mid-chain could skip them.
type cursor struct {
	AddedAfter, Next, Last string
}

func parseCursor(s string) (cursor, error) {
	if s == "" {
		return cursor{}, nil
	}
	v, err := url.ParseQuery(s)
	if err != nil {
		return cursor{}, fmt.Errorf("taxii: unreadable cursor: %w", err)
	}
	c := cursor{AddedAfter: v.Get("added_after"), Next: v.Get("next"), Last: v.Get("last")}
	for _, t := range []string{c.AddedAfter, c.Last} {
		if _, err := time.Parse(time.RFC3339Nano, t); t != "" && err != nil {
			return cursor{}, fmt.Errorf("taxii: cursor holds %q, not a time", t)
		}
	}
	return c, nil
}

func (c cursor) String() string {
	v := url.Values{}
	for k, s := range map[string]string{"added_after": c.AddedAfter, "next": c.Next, "last": c.Last} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v.Encode() // sorted by key: the same position is always the same string
}

// advance is the cursor after a page: the next page of the same chain while the server has
// more and gave a next token, else the newest date added seen (the server's pages are ordered by
// date added, section 3.4.1).
func (c cursor) advance(env envelope, dateAddedLast string) (cursor, error) {
	last := c.Last
	if dateAddedLast != "" {
		t, err := time.Parse(time.RFC3339Nano, dateAddedLast)
		if err != nil {
			return cursor{}, fmt.Errorf("X-TAXII-Date-Added-Last %q is not a timestamp", clip(dateAddedLast))
		}
		if lt, err := time.Parse(time.RFC3339Nano, last); err != nil || t.After(lt) {
			last = dateAddedLast
		}
	} else if len(env.Objects) > 0 && (!env.More || env.Next == "") {
		// Without the header the position after these objects is unknown: polling from the
		// same cursor again would repeat them for ever, and guessing could skip some.
		return cursor{}, errors.New("the server sent objects without X-TAXII-Date-Added-Last")
	}
	switch {
	case env.More && env.Next != "":
		return cursor{AddedAfter: c.AddedAfter, Next: env.Next, Last: last}, nil
	case last != "":
		return cursor{AddedAfter: last}, nil
	default:
		return cursor{AddedAfter: c.AddedAfter}, nil
	}
}
