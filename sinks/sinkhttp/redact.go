package sinkhttp

import (
	"cmp"
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
