// Package fmttest hands every input format's tests their annotated fixtures (pipeline/format/
// fixture), the messages of every other format, the checks of what a sample decodes to, and the
// invariants of their fuzz targets, failing the test on a bad file.
package fmttest

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/format/fixture"
	"github.com/threatpipe/threatpipe/pipeline/format/formattest"
)

// Tests run in their package's directory, pipeline/format/<format>.
const (
	formatRoot    = ".."
	eventMessages = "../../event/testdata/decode/messages"
)

// Fixtures reads the annotated fixtures in path.
func Fixtures(t testing.TB, path string) []formattest.Fixture {
	t.Helper()
	fs, err := fixture.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// Others returns messages of every format but self, for formattest.Options.Others; too few of
// them would make the cross-sniff check meaningless.
func Others(t testing.TB, self string) [][]byte {
	t.Helper()
	out, err := fixture.Others(formatRoot, eventMessages, self)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 20 {
		t.Fatalf("only %d messages of other formats", len(out))
	}
	return out
}

// Messages returns every message of format's testdata files, whatever their annotations (fuzz
// seeds, benchmarks).
func Messages(t testing.TB, format string) [][]byte {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(formatRoot, format, "testdata", "*.*"))
	var out [][]byte
	for _, f := range files {
		out = append(out, fixture.Values(Fixtures(t, f))...)
	}
	if len(out) == 0 {
		t.Fatalf("no %s fixtures", format)
	}
	return out
}

// Want is what one fixture must decode to besides its addresses (formattest.Run checks those).
type Want struct {
	Fixture  string
	ID       string
	At       string // RFC 3339 in UTC
	Source   string
	Warnings []string          // substrings, one per warning
	Fields   map[string]string // address: the fields it was found in, comma-separated
}

// CheckDocuments decodes each wanted fixture with dec and rec and checks its event id, time,
// source, warnings and fields, and that its context is the whole document (the JSON formats').
func CheckDocuments(t *testing.T, dec event.FormatDecoder, fixtures []formattest.Fixture, rec event.Record, wants []Want) {
	t.Helper()
	byName := map[string][]byte{}
	for _, f := range fixtures {
		byName[f.Name] = f.Value
	}
	for _, w := range wants {
		t.Run(w.Fixture, func(t *testing.T) {
			value, ok := byName[w.Fixture]
			if !ok {
				t.Fatalf("no fixture %q", w.Fixture)
			}
			in, err := dec.Decode(value, rec)
			if err != nil {
				t.Fatal(err)
			}
			at := in.ObservedAt.UTC().Format(time.RFC3339Nano)
			if in.EventID != w.ID || at != w.At || in.Source != w.Source {
				t.Errorf("id %q, at %s, source %q; want %q, %s, %q", in.EventID, at, in.Source, w.ID, w.At, w.Source)
			}
			if len(in.Warnings) != len(w.Warnings) {
				t.Errorf("warnings %q, want %d", in.Warnings, len(w.Warnings))
			}
			for _, s := range w.Warnings {
				if !strings.Contains(strings.Join(in.Warnings, "\n"), s) {
					t.Errorf("warnings %q lack %q", in.Warnings, s)
				}
			}
			for _, s := range in.Sightings {
				if want, ok := w.Fields[s.Indicator.Value]; ok && strings.Join(s.Fields, ",") != want {
					t.Errorf("%s found in %v, want %s", s.Indicator.Value, s.Fields, want)
				}
			}
			if string(in.Context) != string(value) {
				t.Error("context is not the whole document")
			}
		})
	}
}

// CheckDecoded holds what any message, decoded by dec with rec, must give (the fuzz targets'
// invariant): a rejection is a classed *event.DecodeError with a message; an accepted message
// gives at least one and at most rec.MaxIndicators sightings, an event id of at most
// event.MaxEventIDBytes, a source, a time within years 1970-9999, the format's name and a
// JSON context. It returns what Decode returned, for the format's own checks.
func CheckDecoded(t *testing.T, dec event.FormatDecoder, value []byte, rec event.Record) (*event.Input, error) {
	t.Helper()
	in, err := dec.Decode(value, rec)
	if err != nil {
		var de *event.DecodeError
		if !errors.As(err, &de) || de.Class == "" || de.Msg == "" {
			t.Fatalf("error %#v is not a classed DecodeError", err)
		}
		return nil, err
	}
	if len(in.Sightings) == 0 || len(in.Sightings) > rec.MaxIndicators || in.EventID == "" || len(in.EventID) > event.MaxEventIDBytes ||
		in.Source == "" || in.ObservedAt.IsZero() || in.Format != dec.Name() {
		t.Fatalf("incomplete input %+v", in)
	}
	if y := in.ObservedAt.UTC().Year(); y < 1970 || y > 9999 {
		t.Fatalf("observed at %v", in.ObservedAt)
	}
	if !json.Valid(in.Context) {
		t.Fatalf("context is not JSON: %s", in.Context)
	}
	return in, nil
}

// Benchmark measures one message of dec's format: decoded alone, and through the shared decoder
// in auto mode (size and structure checks, the native and ECS tests, then Sniff and Decode).
func Benchmark(b *testing.B, dec event.FormatDecoder, value []byte) {
	b.Run("decode", func(b *testing.B) {
		rec := event.Record{Time: time.Now(), ID: func() string { return "t/0/1" }, MaxIndicators: 32}
		b.ReportAllocs()
		b.SetBytes(int64(len(value)))
		for b.Loop() {
			if _, err := dec.Decode(value, rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("auto", func(b *testing.B) {
		d, err := event.NewDecoder(1<<20, 32).WithFormats(event.AutoFormat, dec)
		if err != nil {
			b.Fatal(err)
		}
		at := time.Now()
		b.ReportAllocs()
		b.SetBytes(int64(len(value)))
		for b.Loop() {
			if _, err := d.Decode(value, at, "t/0/1"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
