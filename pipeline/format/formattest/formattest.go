// Package formattest is the contract every input format (event.FormatDecoder) must keep. Each
// format package runs Run with its fixtures; the fixtures of every format are also checked
// against every other format's Sniff, so that auto mode never sends a message to the wrong one.
package formattest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Fixture is one message of a format and what decoding it must give.
type Fixture struct {
	Name  string
	Value []byte
	// Indicators are the addresses the message must yield (canonical values, in any order);
	// empty when it must be rejected.
	Indicators []string
	// Class is the dead-letter class of a rejected message.
	Class event.ErrorClass
	// Context holds substrings the scored events' context must contain (the format's own
	// severity and signature, say).
	Context []string
}

// Options tune Run.
type Options struct {
	// Others are messages of other formats (native, ECS, the other registered formats) that
	// this format's Sniff must not claim.
	Others [][]byte
}

// Run checks dec against the contract with fixtures:
//   - Name is set and JSON agrees with the fixtures' shape;
//   - Sniff claims every fixture that decodes, and no message of another format;
//   - each fixture yields its indicators or its dead-letter class, with its context;
//   - every rejection is a *event.DecodeError with a class;
//   - no more than MaxIndicators sightings, and Partial when the message names more;
//   - the input's time falls back to the record's, and its event id to the record's id.
func Run(t *testing.T, dec event.FormatDecoder, fixtures []Fixture, opts Options) {
	t.Helper()
	if dec.Name() == "" || dec.Name() == event.AutoFormat {
		t.Fatalf("format name %q", dec.Name())
	}
	if len(fixtures) == 0 {
		t.Fatal("no fixtures")
	}
	rec := event.Record{Time: time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC), ID: func() string { return "topic/0/42" }, MaxIndicators: 32}
	for _, f := range fixtures {
		t.Run(f.Name, func(t *testing.T) {
			in, err := dec.Decode(f.Value, rec)
			if f.Class != "" {
				var de *event.DecodeError
				if !errors.As(err, &de) || de.Class != f.Class {
					t.Fatalf("Decode = %v, %v; want a %s DecodeError", in, err, f.Class)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !dec.Sniff(f.Value) {
				t.Error("Sniff does not claim a message the format decodes")
			}
			if in.Format != dec.Name() {
				t.Errorf("input format %q, want %q", in.Format, dec.Name())
			}
			if in.EventID == "" || in.ObservedAt.IsZero() || in.Source == "" {
				t.Errorf("event id %q, observed at %v, source %q: all must be set", in.EventID, in.ObservedAt, in.Source)
			}
			var got []string
			for _, s := range in.Sightings {
				got = append(got, s.Indicator.Value)
				if len(s.Fields) == 0 {
					t.Errorf("sighting %s names no field", s.Indicator.Value)
				}
			}
			if !sameSet(got, f.Indicators) {
				t.Errorf("indicators %v, want %v", got, f.Indicators)
			}
			for _, want := range f.Context {
				if !strings.Contains(string(in.Context), want) {
					t.Errorf("context %s lacks %q", in.Context, want)
				}
			}
		})
	}
	t.Run("others are not claimed", func(t *testing.T) {
		for _, o := range opts.Others {
			if dec.Sniff(o) {
				t.Errorf("Sniff claims another format's message %.120q", o)
			}
		}
	})
	t.Run("garbage is rejected with a class", func(t *testing.T) {
		for _, v := range [][]byte{nil, []byte(""), []byte("{}"), []byte("[]"), []byte("null"), []byte("\x00\x01"), []byte(strings.Repeat("a=", 1000))} {
			in, err := dec.Decode(v, rec)
			var de *event.DecodeError
			if err == nil && len(in.Sightings) == 0 || err != nil && (!errors.As(err, &de) || de.Class == "") {
				t.Errorf("Decode(%.40q) = %v, %v; want sightings or a classed DecodeError", v, in, err)
			}
		}
	})
}

// CheckLimit decodes value, which must name more than limit distinct addresses, with
// MaxIndicators limit: the first limit are kept and Partial says the rest were not.
func CheckLimit(t *testing.T, dec event.FormatDecoder, value []byte, limit int) {
	t.Helper()
	in, err := dec.Decode(value, event.Record{Time: time.Now(), ID: func() string { return "t/0/1" }, MaxIndicators: limit})
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if len(in.Sightings) != limit || in.Partial == nil || in.Partial.Class != event.ClassTooManyIndicators {
		t.Fatalf("%d sightings, partial %v; want %d and a too_many_indicators partial", len(in.Sightings), in.Partial, limit)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return fmt.Sprint(a) == fmt.Sprint(b)
}
