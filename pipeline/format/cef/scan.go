package cef

import "strings"

// headerFields is the number of |-separated fields before the extension: the version (after
// "CEF:"), device vendor, device product, device version, signature id, name and severity.
const headerFields = 7

// splitHeader splits the text after "CEF:" into the seven header fields, unescaped (the spec's
// header escapes are "\|" and "\\"; any other backslash is kept as written), and the extension
// after the seventh unescaped '|'. n is how many fields were complete: fewer than seven means a
// truncated line.
func splitHeader(s string) (fields [headerFields]string, ext string, n int) {
	start, escaped := 0, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) && (s[i+1] == '|' || s[i+1] == '\\') {
				escaped = true
				i++
			}
		case '|':
			fields[n] = s[start:i]
			if escaped {
				fields[n] = unescapeHeader(fields[n])
			}
			n++
			start, escaped = i+1, false
			if n == headerFields {
				return fields, s[start:], n
			}
		}
	}
	return fields, "", n
}

func unescapeHeader(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '|' || s[i+1] == '\\') {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// pair is one extension key and its unescaped value.
type pair struct{ key, value string }

// isKeyChar reports whether c may be in an extension key. The spec's keys are alphanumeric;
// '_' and '.' are accepted too because vendors' custom keys use them, and neither can end a
// value that follows the spec (a value's '=' must be escaped, so " word=" is always a key).
func isKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.'
}

// parseExtension reads the extension's key=value pairs. A value runs until the space before the
// next key=, so it may hold spaces; an unescaped '=' that does not follow " key" stays in the
// value (lenient: the spec asks for "\=", not every producer writes it). lead is any text
// before the first key, which a well-formed line does not have.
func parseExtension(ext string, pairs []pair) (_ []pair, lead string) {
	i := 0
	for i < len(ext) && ext[i] == ' ' {
		i++
	}
	key, at := firstKey(ext, i)
	if at < 0 {
		return pairs, strings.TrimSpace(ext)
	}
	lead = strings.TrimSpace(ext[:at])
	for {
		v := at + len(key) + 1
		end, next, nextAt := valueEnd(ext, v)
		value := strings.TrimRight(ext[v:end], " ")
		if strings.IndexByte(value, '\\') >= 0 {
			value = unescapeValue(value)
		}
		pairs = append(pairs, pair{key: key, value: value})
		if nextAt < 0 {
			return pairs, lead
		}
		key, at = next, nextAt
	}
}

// firstKey finds the first "key=" at or after from that starts the text or follows a space.
func firstKey(s string, from int) (string, int) {
	for p := from; p < len(s); p++ {
		if p > from && s[p-1] != ' ' {
			continue
		}
		k := p
		for k < len(s) && isKeyChar(s[k]) {
			k++
		}
		if k > p && k < len(s) && s[k] == '=' {
			return s[p:k], p
		}
	}
	return "", -1
}

// valueEnd scans the value starting at v: it ends before the space that precedes the next
// unescaped "key=", or at the end of s.
func valueEnd(s string, v int) (end int, next string, nextAt int) {
	for j := v; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++ // an escaped character, "\=" included, never ends a value
		case '=':
			k := j
			for k > v && isKeyChar(s[k-1]) {
				k--
			}
			if k < j && k > v && s[k-1] == ' ' {
				return k - 1, s[k:j], k
			}
		}
	}
	return len(s), "", -1
}

// unescapeValue applies the spec's extension escapes: "\=", "\\", "\n" and "\r". Any other
// backslash is kept as written, as devices that do not escape Windows paths need.
func unescapeValue(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case '=', '\\':
				b.WriteByte(s[i+1])
				i++
				continue
			case 'n':
				b.WriteByte('\n')
				i++
				continue
			case 'r':
				b.WriteByte('\r')
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
