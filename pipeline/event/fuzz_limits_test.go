package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strconv"
	"testing"
)

// referenceStructure measures valid JSON with encoding/json's tokenizer: its deepest nesting and
// whether it holds a number beyond a float64.
func referenceStructure(t *testing.T, data []byte) (depth int, badNumber bool) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	cur := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return depth, badNumber
		}
		if err != nil {
			t.Fatalf("tokenizer on valid JSON: %v", err)
		}
		switch v := tok.(type) {
		case json.Delim:
			if v == '{' || v == '[' {
				cur++
				depth = max(depth, cur)
			} else {
				cur--
			}
		case json.Number:
			if _, err := strconv.ParseFloat(string(v), 64); errors.Is(err, strconv.ErrRange) {
				badNumber = true
			}
		}
	}
}

// FuzzCheckStructure holds the structure check to encoding/json: on valid JSON it rejects
// exactly the messages nesting deeper than the limit or holding a number beyond a float64, and
// whatever it accepts, encoding/json decodes into generic values. It never panics on anything.
// The committed corpus is in testdata/fuzz/FuzzCheckStructure.
func FuzzCheckStructure(f *testing.F) {
	for _, s := range []string{
		`{"a":[1,{"b":"[[{{"}]}`, `[[[[[[[[[[]]]]]]]]]]`, `{"a":"\\\"[","b":[1e308,1e309]}`,
		`-12.5e-400`, `{"n":` + string(bytes.Repeat([]byte("9"), 310)) + `}`, `"unterminated [[[`, `}}}]]]{{{`,
	} {
		f.Add([]byte(s), uint8(4))
	}
	f.Fuzz(func(t *testing.T, data []byte, limit uint8) {
		maxDepth := int(limit%100) + 1
		err := checkStructure(data, maxDepth)
		class := ClassOf(err)
		if err != nil && class != ClassTooDeep && class != ClassNumberOutOfRange {
			t.Fatalf("unexpected error %v", err)
		}
		if !json.Valid(data) {
			return
		}
		depth, badNumber := referenceStructure(t, data)
		tooDeep := depth > maxDepth
		if (err == nil) == (tooDeep || badNumber) || class == ClassTooDeep && !tooDeep || class == ClassNumberOutOfRange && !badNumber {
			t.Fatalf("check says %v; reference depth %d (limit %d), number out of range %v", err, depth, maxDepth, badNumber)
		}
		if err == nil {
			var v any
			if err := json.Unmarshal(data, &v); err != nil {
				t.Fatalf("accepted, but encoding/json refuses it: %v", err)
			}
		}
	})
}

// FuzzBoundCarried checks the carried-context bound on any object, extra field and limit: what
// it leaves is valid JSON within the limit (or nothing), made of the input's own members
// unchanged and in order, and the truncation counts exactly the members left out. The committed
// corpus is in testdata/fuzz/FuzzBoundCarried.
func FuzzBoundCarried(f *testing.F) {
	f.Add([]byte(`{"a":"xxxxxxxxxxxxxxxxxxxx","b":{"c":[1,2,3]},"d":"y"}`), "tenant", []byte(`"acme"`), uint16(30))
	f.Add([]byte(` { "k" : 1 , "k" : "dup" } `), "", []byte(`null`), uint16(8))
	f.Add([]byte(`{"\u00e9\"":"<&>","z":[{"}":"]"}]}`), "x\xff", []byte(`{"n":[true,false]}`), uint16(12))
	f.Fuzz(func(t *testing.T, obj []byte, extraKey string, extraVal []byte, limit uint16) {
		if !json.Valid(obj) || !json.Valid(extraVal) || bytes.TrimLeft(obj, " \t\r\n")[0] != '{' {
			return
		}
		in := &Input{Context: slices.Clone(obj), Extra: map[string]json.RawMessage{extraKey: slices.Clone(extraVal)}}
		before := len(obj) + extraSize(in.Extra)
		total := len(objectMembers(obj)) + 1
		boundCarried(in, int(limit))
		if before <= int(limit) {
			if !bytes.Equal(in.Context, obj) || in.Truncated != nil || len(in.Extra) != 1 {
				t.Fatalf("under the limit (%d <= %d) but changed: %s %+v", before, limit, in.Context, in.Truncated)
			}
			return
		}
		if after := len(in.Context) + extraSize(in.Extra); after > int(limit) {
			t.Fatalf("carries %d bytes after the bound of %d", after, limit)
		}
		kept := objectMembers(in.Context)
		if in.Context != nil && (!json.Valid(in.Context) || len(kept) == 0) {
			t.Fatalf("context %q is not a non-empty object", in.Context)
		}
		orig := objectMembers(obj)
		j := 0
		for _, m := range kept { // a subsequence of the original members, byte for byte
			for j < len(orig) && (!bytes.Equal(orig[j].key, m.key) || !bytes.Equal(orig[j].value, m.value)) {
				j++
			}
			if j == len(orig) {
				t.Fatalf("member %s:%s is not one of the input's, in order", m.key, m.value)
			}
			j++
		}
		omitted := total - len(kept) - len(in.Extra)
		tr := in.Truncated
		switch {
		case omitted == 0 && tr != nil, omitted > 0 && (tr == nil || tr.OmittedCount != omitted || tr.OriginalBytes != before):
			t.Fatalf("%d members left out, truncation %+v", omitted, tr)
		case tr != nil && (len(tr.Omitted) != min(omitted, maxOmittedNames)):
			t.Fatalf("%d names for %d left out", len(tr.Omitted), omitted)
		}
		s := &Scored{Context: in.Context, Extra: in.Extra, ContextTruncated: in.Truncated, Tags: []string{}, Reasons: []Reason{}}
		requireSameAsEncodingJSON(t, s)
	})
}
