package event

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	fuzzMaxBytes      = 64 << 10
	fuzzMaxIndicators = 8
)

// FuzzDecode checks the decoder's invariants on arbitrary bytes: it never panics, every error
// is a *DecodeError with a class, and every decoded event names between one and
// fuzzMaxIndicators distinct, canonical indicators. The committed corpus is in
// testdata/fuzz/FuzzDecode and runs under plain go test.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"event_id":"e1","observed_at":"2024-03-01T10:00:00Z","source":"s","indicator":{"type":"ipv4-addr","value":"8.8.8.8"}}`,
		`{"event_id":"e2","indicator":{"type":"ipv6-addr","value":"::ffff:1.2.3.4"},"context":{"a":[1,2]},"x":null}`,
		`{"@timestamp":"2024-06-12T08:15:30Z","event":{"id":"x"},"source":{"ip":"1.1.1.1"},"related":{"ip":["1.1.1.1","fe80::1%eth0",7]}}`,
		`{"source.ip":"2001:DB8::1","destination.ip":["[2001:db8::1]",null,"10.0.0.1"]}`,
		`{"related":{"ip":["1.0.0.1","1.0.0.2","1.0.0.3","1.0.0.4","1.0.0.5","1.0.0.6","1.0.0.7","1.0.0.8","1.0.0.9"]}}`,
		`{"indicator":null}`,
		`{}`,
		`[]`,
		`null`,
		"{\"a\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	d := NewDecoder(fuzzMaxBytes, fuzzMaxIndicators)
	fallback := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := d.Decode(data, fallback, "fuzz-0-1")
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T %v is not a *DecodeError", err, err)
			}
			if de.Class == "" || de.Msg == "" {
				t.Fatalf("error %#v has an empty class or message", de)
			}
			if in != nil {
				t.Fatalf("Input %+v returned with error %v", in, err)
			}
			return
		}
		if in == nil {
			t.Fatal("nil Input without error")
		}
		if in.EventID == "" {
			t.Fatal("empty EventID")
		}
		if in.Format != FormatNative && in.Format != FormatECS {
			t.Fatalf("Format = %q", in.Format)
		}
		if in.Source == "" {
			t.Fatal("empty Source")
		}
		if n := len(in.Sightings); n < 1 || n > fuzzMaxIndicators || (in.Format == FormatNative && n != 1) {
			t.Fatalf("%s event with %d sightings", in.Format, n)
		}
		seen := make(map[string]bool)
		for _, s := range in.Sightings {
			ind := s.Indicator
			again, err := ParseIP(ind.Value)
			if err != nil || again != ind {
				t.Fatalf("indicator %+v does not re-parse to itself: %+v, %v", ind, again, err)
			}
			if (ind.Type == IPv4) != ind.Addr.Is4() || (ind.Type != IPv4 && ind.Type != IPv6) {
				t.Fatalf("indicator %+v: type does not match the address", ind)
			}
			if seen[ind.Value] {
				t.Fatalf("duplicate indicator %q", ind.Value)
			}
			seen[ind.Value] = true
			if in.Format == FormatECS {
				if len(s.Fields) == 0 {
					t.Fatalf("ECS sighting %q has no fields", ind.Value)
				}
				for i, fld := range s.Fields {
					if !slices.Contains(ECSIPFields[:], fld) || slices.Contains(s.Fields[:i], fld) {
						t.Fatalf("ECS sighting %q has bad fields %v", ind.Value, s.Fields)
					}
				}
			} else if len(s.Fields) != 0 {
				t.Fatalf("native sighting has ECS fields %v", s.Fields)
			}
		}
		if in.Format == FormatNative {
			if strings.TrimSpace(in.EventID) == "" || len(in.EventID) > 256 {
				t.Fatalf("native EventID %q accepted", in.EventID)
			}
			if in.Context != nil && in.Context[0] != '{' {
				t.Fatalf("native Context %s is not an object", in.Context)
			}
		} else if in.Truncated == nil && string(in.Context) != string(data) {
			t.Fatal("ECS Context is not the message")
		}
		if in.Truncated != nil && len(in.Context)+extraSize(in.Extra) > DefaultMaxContextBytes {
			t.Fatalf("carried context of %d bytes after truncation", len(in.Context)+extraSize(in.Extra))
		}
		skipped := slices.ContainsFunc(in.Warnings, func(w string) bool { return strings.Contains(w, "skipped, the event already names") })
		if in.Partial != nil && (in.Format != FormatECS || len(in.Sightings) != fuzzMaxIndicators || in.Partial.Class != ClassTooManyIndicators) ||
			skipped && in.Partial == nil {
			t.Fatalf("Partial %v with %d indicators, warnings %q", in.Partial, len(in.Sightings), in.Warnings)
		}
	})
}

// FuzzParseIP checks that ParseIP never panics and that its Value is canonical: a fixed point
// that parses back to the same Indicator, with no zone and no IPv4 mapping.
func FuzzParseIP(f *testing.F) {
	for _, s := range []string{
		"192.0.2.1", " 10.0.0.1\n", "2001:DB8::0001", "::ffff:192.0.2.1", "[2001:db8::1]",
		"fe80::1%eth0", "010.0.0.1", "1.2.3.4:80", "10.0.0.0/8", "", "[]", "::1.2.3.4",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ind, err := ParseIP(s)
		if err != nil {
			if ind != (Indicator{}) {
				t.Fatalf("ParseIP(%q) = %+v with error %v", s, ind, err)
			}
			if err.Error() == "" {
				t.Fatalf("ParseIP(%q): empty error message", s)
			}
			return
		}
		if ind.Value != ind.Addr.String() {
			t.Fatalf("ParseIP(%q): Value %q != Addr %v", s, ind.Value, ind.Addr)
		}
		if ind.Addr.Zone() != "" || ind.Addr.Is4In6() || !ind.Addr.IsValid() {
			t.Fatalf("ParseIP(%q): Addr %v is not normalised", s, ind.Addr)
		}
		if (ind.Type == IPv4) != ind.Addr.Is4() || (ind.Type != IPv4 && ind.Type != IPv6) {
			t.Fatalf("ParseIP(%q): Type %q for %v", s, ind.Type, ind.Addr)
		}
		again, err := ParseIP(ind.Value)
		if err != nil || again != ind {
			t.Fatalf("ParseIP(%q) = %+v, but ParseIP(%q) = %+v, %v", s, ind, ind.Value, again, err)
		}
	})
}
