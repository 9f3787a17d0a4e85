package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Limits of a mapped field's value: a vendor's answer must not grow every scored event without
// bound.
const (
	maxFieldValues = 32
	maxFieldRunes  = 256
)

// step is one segment of a path: a key, then optionally every element ([]) or one ([N]).
type step struct {
	key   string
	each  bool
	index int // -1: none
}

// path is a compiled field path such as pulse_info.related.alienvault.malware_families[] or
// ip_category.data[].type.
type path struct {
	src   string
	steps []step
	many  bool // the path can yield several values
}

func parsePath(src string) (path, error) {
	p := path{src: src}
	if strings.TrimSpace(src) == "" {
		return p, fmt.Errorf("empty path")
	}
	for _, seg := range strings.Split(src, ".") {
		st := step{index: -1}
		key, rest, bracket := strings.Cut(seg, "[")
		st.key = key
		if bracket {
			inner, tail, ok := strings.Cut(rest, "]")
			switch {
			case !ok || tail != "":
				return p, fmt.Errorf("segment %q: write key[] or key[N]", seg)
			case inner == "":
				st.each, p.many = true, true
			default:
				n, err := strconv.Atoi(inner)
				if err != nil || n < 0 {
					return p, fmt.Errorf("segment %q: index must be a non-negative number", seg)
				}
				st.index = n
			}
		}
		if st.key == "" && !bracket {
			return p, fmt.Errorf("empty segment in %q", src)
		}
		p.steps = append(p.steps, st)
	}
	return p, nil
}

// values walks v along the path and collects its scalar leaves (strings, numbers, booleans);
// nulls, objects and missing keys yield nothing.
func (p path) values(v any) []any {
	cur := []any{v}
	for _, st := range p.steps {
		var next []any
		for _, c := range cur {
			if st.key != "" {
				m, ok := c.(map[string]any)
				if !ok {
					continue
				}
				if c, ok = m[st.key]; !ok {
					continue
				}
			}
			arr, isArr := c.([]any)
			switch {
			case st.each && isArr:
				next = append(next, arr...)
			case st.index >= 0 && isArr && st.index < len(arr):
				next = append(next, arr[st.index])
			case !st.each && st.index < 0:
				next = append(next, c)
			}
		}
		if len(next) > 4*maxFieldValues {
			next = next[:4*maxFieldValues]
		}
		cur = next
	}
	out := cur[:0]
	for _, c := range cur {
		switch c.(type) {
		case string, json.Number, bool:
			out = append(out, c)
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

// Extract implements enrich.FieldExtractor. A body that is not JSON yields no fields. Only the
// top-level members the paths name are decoded: a vendor's full report can weigh tens of KiB and
// this runs on every lookup.
func (x *extractor) Extract(raw []byte) map[string]json.RawMessage {
	doc, ok := x.decode(raw)
	if !ok {
		return nil
	}
	out := make(map[string]json.RawMessage, len(x.fields))
	for _, f := range x.fields {
		var vals []any
		many := false
		for _, from := range f.from {
			vals = append(vals, from.path.values(doc)...)
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

// decode reads the body's top-level object and decodes only the members the paths start with;
// a body that is not an object is decoded whole (a path may then address nothing).
func (x *extractor) decode(raw []byte) (any, bool) {
	var top map[string]json.RawMessage
	if json.Unmarshal(raw, &top) != nil {
		var doc any
		return doc, decodeNumbers(raw, &doc) == nil
	}
	doc := make(map[string]any, len(x.fields))
	for _, f := range x.fields {
		for _, from := range f.from {
			key := from.path.steps[0].key
			if _, done := doc[key]; done {
				continue
			}
			if member, ok := top[key]; ok {
				var v any
				if decodeNumbers(member, &v) == nil {
					doc[key] = v
				}
			}
		}
	}
	return doc, true
}

func decodeNumbers(raw []byte, v *any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
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
	fields []field
}

var _ enrich.FieldMerger = (*merger)(nil)

// Merge implements enrich.FieldMerger: per field, the first source (in the mapping's order)
// with a value, or the union of every source's values.
func (m *merger) Merge(outcomes map[string]*event.ProviderOutcome) map[string]json.RawMessage {
	var out map[string]json.RawMessage
	for _, f := range m.fields {
		var parts []json.RawMessage
		for _, src := range sources(f) {
			o := outcomes[src]
			if o == nil || o.Fields == nil {
				continue
			}
			if v, ok := o.Fields[f.name]; ok {
				parts = append(parts, v)
				if !f.union {
					break
				}
			}
		}
		if v := mergeValues(parts, f.union); v != nil {
			if out == nil {
				out = make(map[string]json.RawMessage, len(m.fields))
			}
			out[f.name] = v
		}
	}
	return out
}

// sources lists a field's sources in mapping order, once each.
func sources(f field) []string {
	var out []string
	for _, from := range f.from {
		if !slices.Contains(out, from.source) {
			out = append(out, from.source)
		}
	}
	return out
}

func mergeValues(parts []json.RawMessage, union bool) json.RawMessage {
	switch {
	case len(parts) == 0:
		return nil
	case len(parts) == 1 && !union:
		return parts[0]
	}
	var vals []any
	for _, p := range parts {
		var v any
		if decodeNumbers(p, &v) != nil {
			continue
		}
		if arr, ok := v.([]any); ok {
			vals = append(vals, arr...)
		} else {
			vals = append(vals, v)
		}
	}
	return encodeValues(vals, true)
}
