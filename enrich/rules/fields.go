package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Limits of a mapped field's value: a vendor's answer must not grow every scored event without
// bound.
const (
	maxFieldValues = 32
	maxFieldRunes  = 256
)

// path is a compiled field path such as pulse_info.related.alienvault.malware_families[] or
// ip_category.data[].type: keys separated by dots, [] for every element of an array, [N] for one.
// It is evaluated with gjson, which reads the body without decoding it.
type path struct {
	src   string
	query string // the gjson path
	many  bool   // the path can yield several values
}

func parsePath(src string) (path, error) {
	p := path{src: src}
	if strings.TrimSpace(src) == "" {
		return p, fmt.Errorf("empty path")
	}
	var q []string
	segs := strings.Split(src, ".")
	for i, seg := range segs {
		key, rest, bracket := strings.Cut(seg, "[")
		if key == "" && !bracket {
			return p, fmt.Errorf("empty segment in %q", src)
		}
		if key != "" {
			q = append(q, gjsonEscape(key))
		}
		if !bracket {
			continue
		}
		inner, tail, ok := strings.Cut(rest, "]")
		switch {
		case !ok || tail != "":
			return p, fmt.Errorf("segment %q: write key[] or key[N]", seg)
		case inner == "":
			p.many = true
			if i < len(segs)-1 { // a trailing [] is the array itself, flattened below
				q = append(q, "#")
			}
		default:
			n, err := strconv.Atoi(inner)
			if err != nil || n < 0 {
				return p, fmt.Errorf("segment %q: index must be a non-negative number", seg)
			}
			q = append(q, strconv.Itoa(n))
		}
	}
	p.query = strings.Join(q, ".")
	if p.query == "" {
		p.query = "@this"
	}
	return p, nil
}

// gjsonEscape escapes the characters gjson gives a meaning to, so a key is only ever a key.
func gjsonEscape(key string) string {
	var b strings.Builder
	for _, r := range key {
		if strings.ContainsRune(`\.*?|#@!=<>%,:()[]{}"`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// values collects the path's scalar leaves (strings, numbers, booleans) in doc, a valid JSON
// body; nulls, objects and missing members yield nothing. Arrays are flattened.
func (p path) values(doc []byte, out []any) []any {
	return leaves(gjson.GetBytes(doc, p.query), out, 0)
}

func leaves(r gjson.Result, out []any, depth int) []any {
	if len(out) >= 4*maxFieldValues || depth > 8 {
		return out
	}
	switch r.Type {
	case gjson.String:
		return append(out, r.String())
	case gjson.Number:
		if json.Valid([]byte(r.Raw)) {
			return append(out, json.Number(r.Raw))
		}
	case gjson.True:
		return append(out, true)
	case gjson.False:
		return append(out, false)
	case gjson.JSON:
		if r.IsArray() {
			r.ForEach(func(_, v gjson.Result) bool {
				out = leaves(v, out, depth+1)
				return len(out) < 4*maxFieldValues
			})
		}
	}
	return out
}

// field is one output field's compiled mapping.
type field struct {
	name  string
	union bool
	from  []fieldFrom
}

type fieldFrom struct {
	source string
	path   path
}

// extractor reads one source's mapped fields from its response body.
type extractor struct {
	fields []field // only this source's paths
}

var _ enrich.FieldExtractor = (*extractor)(nil)

// Extract implements enrich.FieldExtractor. A body that is not valid JSON yields no fields. The
// body is not decoded: a vendor's full report can weigh tens of KiB and this runs on every
// lookup, so gjson reads only what the paths reach.
func (x *extractor) Extract(raw []byte) map[string]json.RawMessage {
	if !gjson.ValidBytes(raw) {
		return nil
	}
	out := make(map[string]json.RawMessage, len(x.fields))
	for _, f := range x.fields {
		var vals []any
		many := false
		for _, from := range f.from {
			vals = from.path.values(raw, vals)
			many = many || from.path.many || len(f.from) > 1
		}
		if v := encodeValues(vals, many); v != nil {
			out[f.name] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// encodeValues writes the values as one JSON value: a scalar when the path yields one value at
// most, else an array of distinct values; strings cleaned and cut.
func encodeValues(vals []any, many bool) json.RawMessage {
	var items []json.RawMessage
	seen := map[string]bool{}
	for _, v := range vals {
		if s, ok := v.(string); ok {
			s = clean(s)
			if s == "" {
				continue
			}
			v = s
		}
		b, err := json.Marshal(v)
		if err != nil || seen[string(b)] {
			continue
		}
		seen[string(b)] = true
		items = append(items, b)
		if len(items) == maxFieldValues {
			break
		}
	}
	switch {
	case len(items) == 0:
		return nil
	case !many && len(items) == 1:
		return items[0]
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(it)
	}
	b.WriteByte(']')
	return b.Bytes()
}

func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f || r == ' ' }), " ")
	if utf8.RuneCountInString(s) > maxFieldRunes {
		s = string([]rune(s)[:maxFieldRunes-1]) + "…"
	}
	return s
}

// merger merges the sources' extracted fields into the scored event's fields.
type merger struct {
	fields  []field
	sources [][]string // per field, its sources in mapping order, once each
}

var _ enrich.FieldMerger = (*merger)(nil)

func newMerger(fields []field) *merger {
	m := &merger{fields: fields, sources: make([][]string, len(fields))}
	for i, f := range fields {
		for _, from := range f.from {
			if !slices.Contains(m.sources[i], from.source) {
				m.sources[i] = append(m.sources[i], from.source)
			}
		}
	}
	return m
}

// Merge implements enrich.FieldMerger: per field, the first source (in the mapping's order)
// with a value, or the union of every source's values. It runs for every event, cache hits
// included, so it copies what it can and never decodes: the values are the extractor's own
// compact JSON. When every merged value is one source's value as it is, and that source has no
// other, the result is that source's own map (the usual case of one source mapping fields):
// the scored event shares it read-only, as it already shares the outcome that holds it.
func (m *merger) Merge(outcomes map[string]*event.ProviderOutcome) map[string]json.RawMessage {
	var (
		partsBuf [4]json.RawMessage
		valsBuf  [16]namedValue
		vals     = valsBuf[:0]
		whole    *event.ProviderOutcome // the one outcome every value so far is taken from as it is
		mixed    bool                   // some value is not, or comes from another outcome
	)
	for i, f := range m.fields {
		parts := partsBuf[:0]
		var from *event.ProviderOutcome
		for _, src := range m.sources[i] {
			o := outcomes[src]
			if o == nil || o.Fields == nil {
				continue
			}
			if v, ok := o.Fields[f.name]; ok {
				parts, from = append(parts, v), o
				if !f.union {
					break
				}
			}
		}
		v := mergeValues(parts, f.union)
		if v == nil {
			continue
		}
		vals = append(vals, namedValue{f.name, v})
		if len(parts) != 1 || !sameBytes(v, parts[0]) || (whole != nil && whole != from) {
			mixed = true
		}
		whole = from
	}
	switch {
	case len(vals) == 0:
		return nil
	case !mixed && len(vals) == len(whole.Fields): // field names are unique: the same keys
		return whole.Fields
	}
	out := make(map[string]json.RawMessage, len(vals))
	for _, nv := range vals {
		out[nv.name] = nv.value
	}
	return out
}

// namedValue is one merged field.
type namedValue struct {
	name  string
	value json.RawMessage
}

// sameBytes reports whether a and b are the same bytes in memory, not merely equal.
func sameBytes(a, b json.RawMessage) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// mergeValues combines the parts: the first as it is, or for a union every distinct value of
// every part as one array (at most maxFieldValues).
func mergeValues(parts []json.RawMessage, union bool) json.RawMessage {
	switch {
	case len(parts) == 0:
		return nil
	case !union:
		return parts[0]
	case len(parts) == 1 && len(parts[0]) > 0 && parts[0][0] == '[':
		return parts[0]
	}
	var b bytes.Buffer
	b.WriteByte('[')
	seen := make(map[string]bool, 8)
	add := func(raw string) bool {
		if seen[raw] {
			return true
		}
		if len(seen) == maxFieldValues {
			return false
		}
		seen[raw] = true
		if len(seen) > 1 {
			b.WriteByte(',')
		}
		b.WriteString(raw)
		return len(seen) < maxFieldValues
	}
	for _, p := range parts {
		r := gjson.ParseBytes(p)
		if r.IsArray() {
			r.ForEach(func(_, v gjson.Result) bool { return add(v.Raw) })
		} else if !add(r.Raw) {
			break
		}
	}
	b.WriteByte(']')
	return b.Bytes()
}
