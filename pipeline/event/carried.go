package event

import (
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"
)

// Truncation says that a scored event does not carry its input's whole context: the context
// and extra fields together were over THREATPIPE_PIPELINE_MAX_CONTEXT_BYTES, or the scored
// event over the size limit. The whole input stays where Origin points (topic, partition,
// offset) for as long as the input topic keeps it.
type Truncation struct {
	// OriginalBytes is the size of the input's context and extra fields as they arrived.
	OriginalBytes int `json:"original_bytes"`
	// Omitted names what was left out, largest first: top-level members of the context
	// ("context.message") and extra fields ("extra.tenant"), or "context" and "extra" when
	// dropped whole. At most maxOmittedNames are named, each cut to maxOmittedName bytes.
	Omitted []string `json:"omitted"`
	// OmittedCount is how many were left out, named or not.
	OmittedCount int `json:"omitted_count"`
}

const (
	maxOmittedNames = 16
	maxOmittedName  = 64
)

// member is one top-level member of the carried context or one extra field.
type member struct {
	name  string // for Truncation.Omitted: "context.<key>" or "extra.<key>"
	key   []byte // context members: the key as it arrived, quoted
	value []byte
	size  int // what it adds to its object: key, colon, value and a comma
	extra bool
}

// boundCarried cuts in.Context and in.Extra to at most limit bytes together, leaving out their
// largest top-level members first, so that the up to MaxIndicators scored events of one input
// never hold MaxIndicators copies of a big document. Small enough input is left untouched (not
// copied); otherwise the kept members are copied unchanged, in their order, and in.Truncated
// says what was left out.
func boundCarried(in *Input, limit int) {
	size := len(in.Context) + extraSize(in.Extra)
	if size <= limit {
		return
	}
	var members []member
	if len(in.Context) > 0 {
		members = objectMembers(in.Context)
	}
	var quoted []byte
	for _, k := range sortedKeys(in.Extra) {
		quoted = appendString(quoted[:0], k)
		v := in.Extra[k]
		members = append(members, member{name: "extra." + k, value: v, size: len(quoted) + 2 + len(v), extra: true})
	}
	kept := 4 // the braces of context and extra
	for _, m := range members {
		kept += m.size
	}
	// Largest first; among equals the later one, so that a document keeps its head.
	order := make([]int, len(members))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if d := members[b].size - members[a].size; d != 0 {
			return d
		}
		return b - a
	})
	dropped := make(map[int]bool)
	t := &Truncation{OriginalBytes: size}
	for _, i := range order {
		if kept <= limit {
			break
		}
		kept -= members[i].size
		dropped[i] = true
		t.OmittedCount++
		if len(t.Omitted) < maxOmittedNames {
			t.Omitted = append(t.Omitted, cutName(members[i].name))
		}
	}
	if len(in.Context) > 0 {
		in.Context = rebuildObject(members, dropped)
	}
	for i, m := range members {
		if m.extra && dropped[i] {
			delete(in.Extra, strings.TrimPrefix(m.name, "extra."))
		}
	}
	if len(in.Extra) == 0 {
		in.Extra = nil
	}
	if t.OmittedCount > 0 {
		in.Truncated = t
	}
}

// extraSize is the size of the extra fields as AppendJSON writes them, plus one.
func extraSize(extra map[string]json.RawMessage) int {
	if len(extra) == 0 {
		return 0
	}
	n := 2
	var buf [64]byte
	for k, v := range extra {
		n += len(appendString(buf[:0], k)) + 2 + len(v)
	}
	return n
}

// rebuildObject writes the context members that were not dropped as one object, in their order;
// nil when none is left.
func rebuildObject(members []member, dropped map[int]bool) json.RawMessage {
	var b []byte
	for i, m := range members {
		if m.extra || dropped[i] {
			continue
		}
		if b == nil {
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		b = append(b, m.key...)
		b = append(b, ':')
		b = append(b, m.value...)
	}
	if b == nil {
		return nil
	}
	return append(b, '}')
}

// cutName shortens a name for Truncation.Omitted on a rune boundary.
func cutName(s string) string {
	if len(s) <= maxOmittedName {
		return s
	}
	cut := maxOmittedName
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// objectMembers splits a JSON object, already validated by the parser, into its top-level
// members. A member whose key appears twice is kept twice, as it arrived.
func objectMembers(obj []byte) []member {
	var out []member
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return nil
	}
	i++
	for {
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] != '"' {
			return out // '}' or, impossibly after validation, garbage
		}
		keyEnd := stringEnd(obj, i)
		if keyEnd < 0 {
			return out
		}
		key := obj[i:keyEnd]
		i = skipSpace(obj, keyEnd)
		if i >= len(obj) || obj[i] != ':' {
			return out
		}
		start := skipSpace(obj, i+1)
		end := valueEnd(obj, start)
		var name string
		if err := Unmarshal(key, &name); err != nil {
			name = string(key)
		}
		out = append(out, member{name: "context." + name, key: key, value: obj[start:end], size: len(key) + 2 + end - start})
		i = skipSpace(obj, end)
		if i >= len(obj) || obj[i] != ',' {
			return out
		}
		i++
	}
}

// valueEnd returns the index just past the JSON value at data[start].
func valueEnd(data []byte, start int) int {
	depth := 0
	for i := start; i < len(data); {
		switch data[i] {
		case '"':
			end := stringEnd(data, i)
			if end < 0 {
				return len(data)
			}
			if depth == 0 {
				return end
			}
			i = end
		case '{', '[':
			depth++
			i++
		case '}', ']':
			if depth == 0 {
				return i // the end of the enclosing object: a scalar ended just before
			}
			depth--
			i++
			if depth == 0 {
				return i
			}
		case ',':
			if depth == 0 {
				return i
			}
			i++
		case ' ', '\t', '\n', '\r':
			if depth == 0 && i > start {
				return i
			}
			i++
		default:
			i++
		}
	}
	return len(data)
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && strings.IndexByte(" \t\n\r", data[i]) >= 0 {
		i++
	}
	return i
}
