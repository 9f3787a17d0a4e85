package sinkhttp

import (
	"cmp"
	"net/url"
	"slices"
	"strings"
)

// Redacted stands in for a secret Redact cut out.
const Redacted = "[redacted]"

// minCutSecret is the shortest leading part of a secret that Redact recognises at a cut: shorter
// tails match ordinary text too often, and say too little of the secret to matter.
const minCutSecret = 4

// Redact replaces every secret in text with Redacted, including a secret's leading part that a
// cut left at the end of text (truncate's "..." mark, as in a StatusError.Body). Empty secrets
// are ignored; longer secrets are replaced first, so that one holding another is not left in
// part.
func Redact(text string, secrets ...string) string {
	secrets = slices.DeleteFunc(slices.Clone(secrets), func(s string) bool { return s == "" })
	slices.SortFunc(secrets, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	for _, sec := range secrets {
		text = strings.ReplaceAll(text, sec, Redacted)
	}
	body, cut := strings.CutSuffix(text, truncMark)
	if !cut {
		return text
	}
	// The longest leading part any secret leaves at the cut.
	longest := 0
	for _, sec := range secrets {
		for n := len(sec) - 1; n >= max(minCutSecret, longest+1); n-- {
			if strings.HasSuffix(body, sec[:n]) {
				longest = n
				break
			}
		}
	}
	if longest == 0 {
		return text
	}
	return body[:len(body)-longest] + Redacted + truncMark
}

// URLSecrets are the parts of rawURL that are credentials when the URL itself is one (a Slack
// incoming webhook carries its secret in the path, other receivers a token in the query), for
// Client.Secrets and for Redact: the path and the raw query, each as sent and, when it differs,
// unescaped. A trivial path ("" or "/") and an empty query are left out, as is everything
// when rawURL does not parse.
func URLSecrets(rawURL string) []string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil
	}
	var out []string
	add := func(s string) {
		if s != "" && s != "/" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	add(u.EscapedPath())
	add(u.Path)
	add(u.RawQuery)
	if q, err := url.QueryUnescape(u.RawQuery); err == nil {
		add(q)
	}
	return out
}
