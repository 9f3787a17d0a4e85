package misp

import (
	"fmt"
	"strconv"
	"strings"
)

// cursor is where a walk stands in MISP's attributes ordered by (timestamp, id): every
// attribute up to and including (TS, ID) is done. Timestamps are whole seconds and many
// attributes share one (an event's import), so the timestamp alone would repeat or skip them;
// the id breaks the tie. N counts the attributes of second TS done, a hint for the page to
// resume at: restSearch cannot filter on id, so the poll asks for timestamp >= TS and skips
// what the cursor covers.
type cursor struct {
	TS int64
	ID int64
	N  int
}

const cursorVersion = "v1"

func (c cursor) String() string {
	return fmt.Sprintf("%s:%d:%d:%d", cursorVersion, c.TS, c.ID, c.N)
}

func parseCursor(s string) (cursor, bool, error) {
	if s == "" {
		return cursor{}, false, nil
	}
	parts := strings.Split(s, ":")
	if len(parts) != 4 || parts[0] != cursorVersion {
		return cursor{}, false, fmt.Errorf("misp: cursor %q is not v1:<timestamp>:<id>:<n>", s)
	}
	ts, err1 := strconv.ParseInt(parts[1], 10, 64)
	id, err2 := strconv.ParseInt(parts[2], 10, 64)
	n, err3 := strconv.Atoi(parts[3])
	if err1 != nil || err2 != nil || err3 != nil || ts < 0 || id < 0 || n < 0 {
		return cursor{}, false, fmt.Errorf("misp: cursor %q is not v1:<timestamp>:<id>:<n>", s)
	}
	return cursor{TS: ts, ID: id, N: n}, true, nil
}

// covers reports whether the attribute (ts, id) is done.
func (c cursor) covers(ts, id int64) bool {
	return ts < c.TS || (ts == c.TS && id <= c.ID)
}

// next is the cursor once (ts, id) is done too.
func (c cursor) next(ts, id int64) cursor {
	if ts == c.TS {
		return cursor{TS: ts, ID: id, N: c.N + 1}
	}
	return cursor{TS: ts, ID: id, N: 1}
}
