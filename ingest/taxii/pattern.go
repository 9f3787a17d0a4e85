package taxii

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// maxPatternBytes bounds the patterns parsed: STIX indicators naming addresses are a few hundred
// bytes; a megabyte pattern is hostile or broken, and is skipped whole.
const maxPatternBytes = 64 << 10

// comparison is one comparison expression of a STIX pattern: object path, operator and the
// constant(s) compared with.
type comparison struct {
	Path    string
	Op      string
	Negated bool
	Values  []string
}

// ipPath reports whether an object path's string constant is an IP address (or CIDR).
func ipPath(path string) bool {
	switch strings.ToLower(path) {
	case "ipv4-addr:value", "ipv6-addr:value", "network-traffic:src_ref.value", "network-traffic:dst_ref.value":
		return true
	}
	return false
}

// Addresses returns the IP addresses a STIX pattern names in its equality (=, IN) and
// ISSUBSET comparisons on address objects, however they are combined (AND, OR, observation
// operators): each is an indicator. A CIDR of one address (/32, /128) is that address. The
// second result is what the pattern names that is not one address (other observables, wider
// CIDRs, negated or other comparisons), spelt "path op value", for the runner to count and skip.
func Addresses(pattern string) (ips, others []string, err error) {
	cmps, err := parsePattern(pattern)
	if err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	add := func(list *[]string, v string) {
		if !seen[v] {
			seen[v] = true
			*list = append(*list, v)
		}
	}
	for _, c := range cmps {
		usable := ipPath(c.Path) && !c.Negated && (c.Op == "=" || c.Op == "IN" || c.Op == "ISSUBSET")
		for _, v := range c.Values {
			if ip, ok := singleAddress(v); usable && ok {
				add(&ips, ip)
			} else {
				add(&others, describe(c, v))
			}
		}
	}
	return ips, others, nil
}

// singleAddress is v when it is one IP address, or the address of a one-address CIDR.
func singleAddress(v string) (string, bool) {
	if p, err := netip.ParsePrefix(v); err == nil {
		if p.IsSingleIP() {
			return p.Addr().String(), true
		}
		return "", false
	}
	if a, err := netip.ParseAddr(v); err == nil && a.Zone() == "" {
		return a.String(), true
	}
	return "", false
}

func describe(c comparison, v string) string {
	op := c.Op
	if c.Negated {
		op = "NOT " + op
	}
	return fmt.Sprintf("%s %s '%s'", c.Path, op, v)
}

var errPattern = errors.New("not a STIX pattern")

// parsePattern returns the pattern's comparison expressions. It does not check the grammar
// beyond what finding them needs (brackets balance, strings close, each comparison has a path,
// an operator and a constant): a pattern a platform accepted is taken as well formed.
func parsePattern(p string) ([]comparison, error) {
	if len(p) > maxPatternBytes {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", errPattern, len(p), maxPatternBytes)
	}
	toks, err := tokenize(p)
	if err != nil {
		return nil, err
	}
	var out []comparison
	depth := 0
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t.kind == tokPunct && t.text == "[":
			depth++
		case t.kind == tokPunct && t.text == "]":
			depth--
			if depth < 0 {
				return nil, fmt.Errorf("%w: unbalanced ]", errPattern)
			}
		case t.kind == tokPath && depth > 0:
			c, n, err := comparisonAt(toks[i:])
			if err != nil {
				return nil, err
			}
			out = append(out, c)
			i += n - 1
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("%w: unbalanced [", errPattern)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no comparison", errPattern)
	}
	return out, nil
}

// comparisonAt reads "path [NOT] op constant" (or "path [NOT] IN (c, ...)") at toks[0] and
// returns it with the number of tokens read.
func comparisonAt(toks []token) (comparison, int, error) {
	c := comparison{Path: toks[0].text}
	i := 1
	if i < len(toks) && toks[i].kind == tokWord && toks[i].text == "NOT" {
		c.Negated = true
		i++
	}
	if i >= len(toks) || (toks[i].kind != tokOp && toks[i].kind != tokWord) {
		return c, 0, fmt.Errorf("%w: %s has no operator", errPattern, c.Path)
	}
	c.Op = toks[i].text
	i++
	if c.Op != "IN" {
		if i >= len(toks) || !toks[i].constant() {
			return c, 0, fmt.Errorf("%w: %s %s has no constant", errPattern, c.Path, c.Op)
		}
		c.Values = []string{toks[i].text}
		return c, i + 1, nil
	}
	if i >= len(toks) || toks[i].text != "(" {
		return c, 0, fmt.Errorf("%w: %s IN needs a list", errPattern, c.Path)
	}
	for i++; i < len(toks) && toks[i].text != ")"; i++ {
		switch {
		case toks[i].constant():
			c.Values = append(c.Values, toks[i].text)
		case toks[i].kind == tokPunct && toks[i].text == ",":
		default:
			return c, 0, fmt.Errorf("%w: %s IN list holds %q", errPattern, c.Path, toks[i].text)
		}
	}
	if i >= len(toks) {
		return c, 0, fmt.Errorf("%w: %s IN list does not close", errPattern, c.Path)
	}
	return c, i + 1, nil
}
