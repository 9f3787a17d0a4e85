// Package cef reads ArcSight Common Event Format lines, the format most SIEM forwarders and
// security appliances can emit:
//
//	[syslog header] CEF:Version|Device Vendor|Device Product|Device Version|Signature ID|Name|Severity|Extension
//
// The addresses are taken from the extension keys that name the two ends of the traffic and
// their translations (src, dst, c6a2, c6a3, sourceTranslatedAddress,
// destinationTranslatedAddress), never from dvc: that is the device that reported the event,
// not an indicator about it. Escaping follows "Implementing ArcSight Common Event Format"
// (header "\|" and "\\"; extension "\=", "\\", "\n", "\r").
package cef

import (
	"bytes"
	"fmt"
	"strings"
	"time"
	"unsafe"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/format/internal/linefmt"
)

// Format is the format's name (THREATPIPE_KAFKA_INPUT_FORMAT=cef, input_format "cef").
const Format event.Format = "cef"

// sniffWindow is how far into a line "CEF:" is looked for: past an RFC 5424 header with a long
// host name, far short of reading a whole line.
const sniffWindow = 256

// addressKeys are the extension keys read as addresses, in the order they are collected (the
// ends of the traffic first, so that a limit keeps them).
var addressKeys = [...]string{"src", "dst", "c6a2", "c6a3", "sourceTranslatedAddress", "destinationTranslatedAddress"}

const addressFields = "src, dst, c6a2, c6a3, sourceTranslatedAddress or destinationTranslatedAddress"

// Decoder decodes CEF lines. It keeps no state: one is safe for concurrent use.
type Decoder struct{}

var _ event.FormatDecoder = (*Decoder)(nil)

// New returns a CEF decoder.
func New() *Decoder { return &Decoder{} }

// Name implements event.FormatDecoder.
func (*Decoder) Name() event.Format { return Format }

// JSON implements event.FormatDecoder: CEF is a text line.
func (*Decoder) JSON() bool { return false }

// Sniff implements event.FormatDecoder: "CEF:", a version digit (after one space at most) and
// '|' within the first sniffWindow bytes (after a syslog header, if any).
func (*Decoder) Sniff(value []byte) bool {
	return cefStart(value) >= 0
}

// cefStart returns the index of "CEF:<digit>|" in the sniff window, or -1.
func cefStart(value []byte) int {
	w := value[:min(len(value), sniffWindow)]
	off := 0
	for {
		i := bytes.Index(w[off:], []byte("CEF:"))
		if i < 0 {
			return -1
		}
		i += off
		v := i + 4
		if v < len(value) && value[v] == ' ' { // "CEF: 0|", as Fortinet's CEF output writes it
			v++
		}
		if v+1 < len(value) && value[v] >= '0' && value[v] <= '9' && value[v+1] == '|' {
			return i
		}
		off = i + 4
	}
}

// Decode implements event.FormatDecoder.
func (*Decoder) Decode(value []byte, rec event.Record) (*event.Input, error) {
	start := cefStart(value)
	if start < 0 {
		return nil, event.NewDecodeError(event.ClassUnknownFormat, `not a CEF line: no "CEF:<version>|" in its first %d bytes`, sniffWindow)
	}
	// The strings point into value rather than copy it, as the JSON formats' do: a message value
	// lives, unmodified, as long as the event it becomes.
	line := unsafe.String(unsafe.SliceData(value), len(value))
	line = strings.TrimRight(line, "\r\n")
	h, ext, n := splitHeader(line[start+4:])
	if n < headerFields {
		return nil, event.NewDecodeError(event.ClassMissingField,
			"CEF header has %d of its %d |-separated fields (Version|Vendor|Product|Version|Signature ID|Name|Severity): a truncated line?", n, headerFields)
	}
	in := &event.Input{Format: Format}
	pairs, lead := parseExtension(ext, make([]pair, 0, 16))
	if lead != "" {
		in.Warnings = append(in.Warnings, fmt.Sprintf("extension text before the first key=value ignored: %q", linefmt.Truncate(lead, 64)))
	}
	in.Context = context(h, pairs, len(line))
	if _, ok := severityLevel(h[6]); !ok {
		in.Warnings = append(in.Warnings, fmt.Sprintf("severity %q is neither 0-10 nor Low, Medium, High or Very-High", linefmt.Truncate(h[6], 32)))
	}

	ext1 := func(key string) string {
		for _, p := range pairs {
			if p.key == key {
				return p.value
			}
		}
		return ""
	}
	var warn string
	if in.EventID, warn = rec.EventID(strings.TrimSpace(ext1("externalId")), "externalId"); warn != "" {
		in.Warnings = append(in.Warnings, warn)
	}
	in.Source = strings.TrimSpace(ext1("dvchost"))
	if in.Source == "" {
		in.Source = strings.TrimSpace(h[1] + " " + h[2])
	}
	if in.Source == "" {
		in.Source = string(Format)
	}
	in.ObservedAt = observedAt(in, ext1, line[:start], rec.Time)

	seen := event.NewSightings(rec.MaxIndicators)
	for _, k := range addressKeys {
		for _, p := range pairs {
			if p.key == k && p.value != "" {
				seen.Add(k, p.value)
			}
		}
	}
	if err := seen.Finish(in, addressFields); err != nil {
		return nil, err
	}
	return in, nil
}

// observedAt is the first of rt, end and start that parses, else the syslog header's time,
// else the record's; each that does not parse is a warning.
func observedAt(in *event.Input, ext func(string) string, header string, fallback time.Time) time.Time {
	for _, k := range [...]string{"rt", "end", "start"} {
		v := strings.TrimSpace(ext(k))
		if v == "" {
			continue
		}
		if t, ok := parseTime(v, fallback); ok {
			return t
		}
		in.Warnings = append(in.Warnings, fmt.Sprintf("%s %q is not a CEF time (epoch milliseconds or MMM dd yyyy HH:mm:ss)", k, linefmt.Truncate(v, 64)))
	}
	if t, ok := linefmt.SyslogTime(header, fallback); ok {
		return t
	}
	return fallback.UTC()
}

// cefLayouts are the spec's date formats besides epoch milliseconds. A zone abbreviation Go does
// not know is read as UTC.
var cefLayouts = [...]string{
	"Jan _2 2006 15:04:05.000 MST", "Jan _2 2006 15:04:05 MST", "Jan _2 2006 15:04:05.000", "Jan _2 2006 15:04:05",
	"Jan _2 15:04:05.000 MST", "Jan _2 15:04:05 MST", "Jan _2 15:04:05.000", "Jan _2 15:04:05",
	time.RFC3339Nano,
}

func parseTime(v string, ref time.Time) (time.Time, bool) {
	if t, ok := linefmt.Epoch(v); ok {
		return t, true
	}
	for _, layout := range cefLayouts {
		t, err := time.Parse(layout, v)
		if err != nil {
			continue
		}
		if t.Year() == 0 { // no year written: the record's
			t = t.AddDate(ref.UTC().Year(), 0, 0)
		}
		return t, true
	}
	return time.Time{}, false
}

// severityLevel maps the header's severity to the spec's levels: 0-3 Low, 4-6 Medium, 7-8
// High, 9-10 Very-High, or one of those words.
func severityLevel(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if n, ok := smallInt(s); ok && n <= 10 {
		switch {
		case n <= 3:
			return "Low", true
		case n <= 6:
			return "Medium", true
		case n <= 8:
			return "High", true
		default:
			return "Very-High", true
		}
	}
	for _, w := range [...]string{"Unknown", "Low", "Medium", "High", "Very-High"} {
		if strings.EqualFold(s, w) {
			return w, true
		}
	}
	return "", false
}

func smallInt(s string) (int, bool) {
	if s == "" || len(s) > 2 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}
