// Package sinktext holds the text helpers the sinks share to put outside values (titles, ISP
// names, tags, reason details) into tickets and alerts: on one line, within a vendor's limits,
// cut without splitting a character.
package sinktext

import (
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/sinks"
)

// Ellipsis marks a cut.
const Ellipsis = "…"

// Words splits s around runs of white space, control characters (line breaks included) and
// invalid UTF-8.
func Words(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError
	})
}

// OneLine is s on one line in at most max characters: its Words joined by single spaces (so
// trimmed, and empty when s has no text), cut by Truncate.
func OneLine(s string, max int) string {
	return Truncate(strings.Join(Words(s), " "), max)
}

// Truncate is s when it has at most max characters (runes), else its first max-1 characters
// and Ellipsis; "" when max is less than 1.
func Truncate(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	if max < 1 {
		return ""
	}
	r := []rune(s)
	return string(r[:max-1]) + Ellipsis
}

// SpaceControls replaces each control character of s (line breaks included) with a space and
// leaves the rest as it is: no folding, no bound. An invalid UTF-8 byte becomes U+FFFD.
func SpaceControls(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// Title is a.Title on one line in at most max characters; an action without one (or whose
// title has no text) gets "threatpipe: <target> scored <score> (<severity>)", likewise bounded.
func Title(a *sinks.Action, max int) string {
	if t := OneLine(a.Title, max); t != "" {
		return t
	}
	return OneLine(fmt.Sprintf("threatpipe: %s scored %d (%s)", a.Target, a.Score, a.SeverityLabel()), max)
}

// ReasonLines is one "source (+points): detail" line per reason, the first max of them, then
// "… and N more" for the rest; nil without reasons. The lines are neither folded nor bounded:
// the caller puts each through its own OneLine (or escaping) and limit.
func ReasonLines(reasons []event.Reason, max int) []string {
	var out []string
	for i, r := range reasons {
		if i == max {
			out = append(out, fmt.Sprintf("… and %d more", len(reasons)-max))
			break
		}
		out = append(out, fmt.Sprintf("%s (%+d): %s", r.Source, r.Points, r.Detail))
	}
	return out
}

// WebURL is raw, trimmed and re-printed, when it is an absolute http or https URL with a host,
// else "": only such a URL becomes a link in a ticket.
func WebURL(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	return u.String()
}
