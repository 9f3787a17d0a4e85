package steer

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/threatpipe/threatpipe/pipeline/allowlist"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Bounds of what an analyst may write; the records and the tickets' comments carry it.
const (
	MaxReason    = 500  // characters of a reason
	MaxNote      = 2000 // characters of a note
	MaxActorName = 200
	MinExpiry    = time.Minute
	MaxExpiry    = 90 * 24 * time.Hour
)

// InputError is an action refused for what it was asked (the HTTP layer answers 400 with it).
type InputError struct {
	Field string // ip, reason, text, expires_in, actor
	Msg   string
}

func (e *InputError) Error() string { return e.Field + ": " + e.Msg }

// IsInput reports whether err is an InputError (a bad request, not a failure).
func IsInput(err error) bool {
	var ie *InputError
	return errors.As(err, &ie)
}

func bad(field, format string, args ...any) error {
	return &InputError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// address is ip's canonical spelling; a CIDR is refused (only the allowlist takes ranges).
func address(ip string) (string, error) {
	ind, err := event.ParseIP(ip)
	if err != nil {
		return "", bad("ip", "%v", err)
	}
	return ind.Value, nil
}

// target is an address or CIDR in its canonical spelling, for the allowlist.
func target(s string) (string, error) {
	p, err := allowlist.ParseTarget(s)
	if err != nil {
		return "", bad("ip", "%v", err)
	}
	return allowlist.Canonical(p), nil
}

// text checks an analyst's free text: required, at most max characters, no control characters
// but newlines and tabs (it ends up in tickets, logs and headers of other tools).
func text(field, s string, max int) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", bad(field, "is required")
	case !utf8.ValidString(s):
		return "", bad(field, "is not valid UTF-8")
	case utf8.RuneCountInString(s) > max:
		return "", bad(field, "is longer than %d characters", max)
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) >= 0:
		return "", bad(field, "contains control characters")
	}
	return s, nil
}

func (a Actor) check() error {
	if _, err := text("actor", a.Name, MaxActorName); err != nil {
		return err
	}
	if len(a.Role) > 64 || len(a.Via) > 64 {
		return bad("actor", "role or via is too long")
	}
	return nil
}

func expiry(d time.Duration) error {
	if d < MinExpiry || d > MaxExpiry {
		return bad("expires_in", "%s is not between %s and %s", d, MinExpiry, "90d")
	}
	return nil
}

// by names the actor in details: "by ana (analyst)", "by ana (analyst) via token".
func (a Actor) by() string {
	s := "by " + strings.TrimSpace(a.Name)
	if a.Role != "" {
		s += " (" + a.Role + ")"
	}
	if a.Via != "" {
		s += " via " + a.Via
	}
	return s
}
