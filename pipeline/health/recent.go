package health

import (
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// RecentWindow is how far back "recent" reaches: an error within it degrades an integration,
// and it must be over before the integration counts as ok again.
const RecentWindow = 5 * time.Minute

// FailingRun is how many of the latest calls within RecentWindow must all have failed for an
// integration to be failing: enough that one lost request does not paint it red.
const FailingRun = 3

// recentSize is how many calls Recent remembers.
const recentSize = 64

// Recent remembers how the latest calls to an integration ended (up to 64), with their times.
// Add is lock-free (one atomic add and one atomic store), so it can sit on a hot path. The zero
// value is ready to use.
type Recent struct {
	next atomic.Uint64
	ring [recentSize]atomic.Int64 // unix milliseconds << 1 | failed; 0 = empty
}

// Add remembers one call that ended at at.
func (r *Recent) Add(at time.Time, failed bool) {
	v := at.UnixMilli() << 1
	if failed {
		v |= 1
	}
	r.ring[(r.next.Add(1)-1)%recentSize].Store(v)
}

// RecentCounts summarises the calls of the last window.
type RecentCounts struct {
	Calls  int // calls within the window (at most the 64 latest)
	Failed int // of which failed
	// FailedInARow counts the latest calls that all failed, up to the latest success.
	FailedInARow int
}

// Counts summarises the calls that ended within window before now.
func (r *Recent) Counts(now time.Time, window time.Duration) RecentCounts {
	since := now.Add(-window).UnixMilli()
	var c RecentCounts
	streak := true
	n := r.next.Load()
	for i := range min(n, recentSize) {
		v := r.ring[(n-1-i)%recentSize].Load() // latest first
		if v == 0 || v>>1 < since {
			continue
		}
		c.Calls++
		failed := v&1 == 1
		if failed {
			c.Failed++
		}
		if streak && failed {
			c.FailedInARow++
		} else {
			streak = false
		}
	}
	return c
}

// Status is what the recent calls say on their own: failing when the latest FailingRun calls
// all failed, degraded when any call failed, ok otherwise (no calls at all is ok).
func (c RecentCounts) Status() string {
	switch {
	case c.FailedInARow >= FailingRun:
		return StatusFailing
	case c.Failed > 0:
		return StatusDegraded
	default:
		return StatusOK
	}
}

// LastError keeps the latest error and when it happened. Set takes a mutex, so call it on the
// error path only; the text is cleaned (ErrorText) when read, not when set. The zero value is
// ready to use.
type LastError struct {
	mu   sync.Mutex
	text string
	at   time.Time
}

// Set records text as the latest error, unless a later one is already recorded.
func (l *LastError) Set(at time.Time, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if at.Before(l.at) {
		return
	}
	l.text, l.at = text, at
}

// Get returns the latest error's cleaned text and time; zero values when there was none.
func (l *LastError) Get() (string, time.Time) {
	l.mu.Lock()
	text, at := l.text, l.at
	l.mu.Unlock()
	if at.IsZero() {
		return "", time.Time{}
	}
	return ErrorText(text), at
}

// MaxErrorText bounds the error text of a snapshot, in bytes (before the "..." mark).
const MaxErrorText = 300

var urlPattern = regexp.MustCompile(`(?i)\b[a-z][a-z0-9+.-]*://[^\s"'<>]+`)

// ErrorText makes an error message fit for a snapshot that every operator can read: every URL
// is cut to its scheme and host (paths, queries and user info may hold keys and webhook
// secrets), control characters and runs of white space become one space, invalid UTF-8 is
// replaced, and the text is cut to MaxErrorText bytes at a character boundary. Integrations
// keep their own secrets out of their messages (provider and sink errors redact them); this is
// the second line of defence for what wraps them.
func ErrorText(s string) string {
	s = urlPattern.ReplaceAllStringFunc(s, func(raw string) string {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			scheme, _, _ := strings.Cut(raw, "://")
			return scheme + "://[redacted]"
		}
		return u.Scheme + "://" + u.Host
	})
	s = strings.Join(strings.FieldsFunc(strings.ToValidUTF8(s, "\uFFFD"), func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
	if len(s) <= MaxErrorText {
		return s
	}
	cut := MaxErrorText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
