package taxii

import (
	"fmt"
	"strings"
)

type tokKind int

const (
	tokPunct  tokKind = iota // [ ] ( ) ,
	tokOp                    // = != < <= > >=
	tokWord                  // AND OR NOT LIKE MATCHES ISSUBSET IN FOLLOWEDBY ... (upper-case)
	tokPath                  // object path: type:property[.sub|[n]|[*]]...
	tokString                // '...' (unescaped), also t'...', b'...', h'...'
	tokNumber                // integers, floats, true/false
)

type token struct {
	kind tokKind
	text string
}

func (t token) constant() bool { return t.kind == tokString || t.kind == tokNumber }

// tokenize splits a STIX 2.1 pattern into tokens. Object paths are recognised by their colon;
// bare words without one are keywords or booleans.
func tokenize(p string) ([]token, error) {
	var toks []token
	for i := 0; i < len(p); {
		c := p[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case strings.IndexByte("[](),", c) >= 0:
			toks = append(toks, token{tokPunct, string(c)})
			i++
		case c == '=' || c == '!' || c == '<' || c == '>':
			n := 1
			if i+1 < len(p) && p[i+1] == '=' {
				n = 2
			}
			if c == '!' && n == 1 {
				return nil, fmt.Errorf("%w: stray ! at %d", errPattern, i)
			}
			toks = append(toks, token{tokOp, p[i : i+n]})
			i += n
		case c == '\'':
			s, n, err := quoted(p[i:])
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{tokString, s})
			i += n
		case (c == 't' || c == 'b' || c == 'h') && i+1 < len(p) && p[i+1] == '\'':
			s, n, err := quoted(p[i+1:])
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{tokString, s})
			i += 1 + n
		case c == '-' || c == '+' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(p) && strings.IndexByte("0123456789.eE+-", p[j]) >= 0 {
				j++
			}
			toks = append(toks, token{tokNumber, p[i:j]})
			i = j
		case isWordByte(c):
			t, n := word(p[i:])
			toks = append(toks, t)
			i += n
		default:
			return nil, fmt.Errorf("%w: unexpected %q at %d", errPattern, c, i)
		}
	}
	return toks, nil
}

// quoted reads a single-quoted string at s[0] (\' and \\ are the escapes) and returns its
// value and the bytes read.
func quoted(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 >= len(s) {
				return "", 0, fmt.Errorf("%w: string ends in an escape", errPattern)
			}
			i++
			b.WriteByte(s[i])
		case '\'':
			return b.String(), i + 1, nil
		default:
			b.WriteByte(s[i])
		}
	}
	return "", 0, fmt.Errorf("%w: string does not close", errPattern)
}

// word reads a keyword or an object path. A path may hold quoted property names
// (file:hashes.'SHA-256') and list indexes ([0], [*]), which are part of it.
func word(s string) (token, int) {
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case isWordByte(c) || c == ':' || c == '.':
			i++
		case c == '\'' && i > 0 && s[i-1] == '.':
			_, n, err := quoted(s[i:])
			if err != nil {
				return token{tokPath, s[:i]}, i
			}
			i += n
		case c == '[' && strings.Contains(s[:i], ":"):
			j := strings.IndexByte(s[i:], ']')
			if j < 0 || !isIndex(s[i+1:i+j]) {
				return token{tokPath, s[:i]}, i
			}
			i += j + 1
		default:
			return classify(s[:i]), i
		}
	}
	return classify(s[:i]), i
}

func classify(w string) token {
	switch {
	case strings.Contains(w, ":"):
		return token{tokPath, w}
	case w == "true" || w == "false":
		return token{tokNumber, w}
	default:
		return token{tokWord, strings.ToUpper(w)}
	}
}

func isIndex(s string) bool {
	if s == "*" {
		return true
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isWordByte(c byte) bool {
	return c == '_' || c == '-' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}
