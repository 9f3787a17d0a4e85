package kv

import "strings"

// mode is how a line separates its pairs.
type mode uint8

const (
	// spaced: key=value key="quoted value" (FortiGate, generic firewalls, Check Point's
	// RFC 5424 structured data [Fields@2620 key="value" ...]).
	spaced mode = iota
	// piped: key=value|key=value (Check Point Log Exporter's Splunk format).
	piped
	// bracketed: [key:"value"; key:"value"] (Check Point Log Exporter's syslog format).
	bracketed
)

// scanner walks a line's pairs without allocating: Sniff runs it on every line in auto mode.
type scanner struct {
	s    string
	i    int
	mode mode
	// header is the text before the first pair (a syslog header, say).
	header string
	// cut names a pair whose quoted value the line ended in: a truncated line.
	cut string
}

func isKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-' || c == '/'
}

// keyEnd returns the end of the key starting at p (p when none).
func keyEnd(s string, p int) int {
	for p < len(s) && isKeyChar(s[p]) {
		p++
	}
	return p
}

// newScanner finds the first pair of s and the separators the line uses; ok is false when s
// holds no pair.
func newScanner(s string) (sc scanner, ok bool) {
	for p := 0; p < len(s); p++ {
		if p > 0 {
			switch s[p-1] {
			case ' ', '\t', '[', '|', '>':
			default:
				continue
			}
		}
		k := keyEnd(s, p)
		if k == p || k >= len(s) {
			continue
		}
		switch {
		case s[k] == '=':
			sc = scanner{s: s, i: p, header: s[:p], mode: spaced}
			if isPiped(s, k+1) {
				sc.mode = piped
			}
			return sc, true
		case s[k] == ':' && p > 0 && s[p-1] == '[' && quoteAfterColons(s, k) > 0:
			return scanner{s: s, i: p, header: s[:p-1], mode: bracketed}, true
		}
	}
	return scanner{}, false
}

// isPiped reports whether the first value, starting at v, ends at a '|' that a key= follows.
func isPiped(s string, v int) bool {
	if v < len(s) && s[v] == '"' {
		return false
	}
	for j := v; j < len(s); j++ {
		switch s[j] {
		case ' ', '\t':
			return false
		case '\\':
			j++
		case '|':
			k := keyEnd(s, j+1)
			return k > j+1 && k < len(s) && s[k] == '='
		}
	}
	return false
}

// quoteAfterColons returns the index of the '"' after the one or two colons at k (Check Point
// writes "sys_message::"), or -1.
func quoteAfterColons(s string, k int) int {
	for j := k; j < len(s) && j < k+2; j++ {
		if s[j] != ':' {
			return -1
		}
		if j+1 < len(s) && s[j+1] == '"' {
			return j + 1
		}
	}
	return -1
}

// next returns the next pair; raw is the value as written (escaped when esc), ok false at the
// end of the pairs.
func (sc *scanner) next() (key, raw string, esc, ok bool) {
	switch sc.mode {
	case piped:
		return sc.nextPiped()
	case bracketed:
		return sc.nextBracketed()
	}
	return sc.nextSpaced()
}

func (sc *scanner) nextSpaced() (key, raw string, esc, ok bool) {
	s := sc.s
	for sc.i < len(s) {
		for sc.i < len(s) && (s[sc.i] == ' ' || s[sc.i] == '\t') {
			sc.i++
		}
		p := sc.i
		k := keyEnd(s, p)
		if k == p || k >= len(s) || s[k] != '=' { // a stray word (the "]" closing structured data)
			for sc.i < len(s) && s[sc.i] != ' ' && s[sc.i] != '\t' {
				sc.i++
			}
			continue
		}
		v := k + 1
		if v < len(s) && s[v] == '"' {
			raw, esc = sc.quoted(s[p:k], v)
			return s[p:k], raw, esc, true
		}
		end := unquotedEnd(s, v)
		sc.i = end
		return s[p:k], strings.TrimRight(s[v:end], " \t"), false, true
	}
	return "", "", false, false
}

// quoted reads the quoted value whose opening quote is at q; a backslash escapes the next byte.
func (sc *scanner) quoted(key string, q int) (raw string, esc bool) {
	s := sc.s
	for j := q + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			esc = true
			j++
		case '"':
			sc.i = j + 1
			return s[q+1 : j], esc
		}
	}
	sc.i, sc.cut = len(s), key
	return s[q+1:], esc
}

// unquotedEnd returns where the unquoted value starting at v ends: before the white space
// that precedes the next key=, or at the end of the line, so that an unquoted value may hold
// spaces and '='.
func unquotedEnd(s string, v int) int {
	for j := v; j < len(s); j++ {
		if s[j] != ' ' && s[j] != '\t' {
			continue
		}
		w := j
		for w < len(s) && (s[w] == ' ' || s[w] == '\t') {
			w++
		}
		if k := keyEnd(s, w); k > w && k < len(s) && s[k] == '=' {
			return j
		}
		j = w - 1
	}
	return len(s)
}

func (sc *scanner) nextPiped() (key, raw string, esc, ok bool) {
	s := sc.s
	for sc.i < len(s) {
		p := sc.i
		k := keyEnd(s, p)
		j := k
		for ; j < len(s) && s[j] != '|'; j++ {
			if s[j] == '\\' {
				esc = true
				j++
			}
		}
		sc.i = min(j+1, len(s))
		if k == p || k >= len(s) || s[k] != '=' {
			esc = false
			continue
		}
		return s[p:k], s[k+1 : min(j, len(s))], esc, true
	}
	return "", "", false, false
}

func (sc *scanner) nextBracketed() (key, raw string, esc, ok bool) {
	s := sc.s
	for sc.i < len(s) && (s[sc.i] == ' ' || s[sc.i] == ';') {
		sc.i++
	}
	p := sc.i
	k := keyEnd(s, p)
	if k == p || k >= len(s) || s[k] != ':' {
		sc.i = len(s) // "]" or something unexpected: the structured data ends
		return "", "", false, false
	}
	q := quoteAfterColons(s, k)
	if q < 0 {
		sc.i = len(s)
		return "", "", false, false
	}
	raw, esc = sc.quoted(s[p:k], q)
	return s[p:k], raw, esc, true
}

// unescape resolves a value's backslash escapes: the quote (and in bracketed mode "]"), the
// separators of piped mode ("\=", "\|") and the backslash itself. Any other backslash is kept
// as written, as Windows paths need.
func (sc *scanner) unescape(raw string) string {
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		if raw[i] == '\\' && i+1 < len(raw) {
			switch c := raw[i+1]; {
			case c == '\\',
				c == '"' && sc.mode != piped,
				c == ']' && sc.mode == bracketed,
				(c == '=' || c == '|') && sc.mode == piped:
				b.WriteByte(c)
				i++
				continue
			}
		}
		b.WriteByte(raw[i])
	}
	return b.String()
}
