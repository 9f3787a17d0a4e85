// Package jsondoc holds what the JSON input formats (pipeline/format/eve, pipeline/format/zeek)
// share: decoding a message into a format's typed struct without copying it, reading a field
// that may hold a value of the wrong type, and the event id and time rules every format keeps.
//
// A format decodes its few fields as json.RawMessage members of a struct, not as typed Go
// values: one mistyped field (a number where an address belongs, say) then becomes a warning
// on the scored events instead of failing the whole message, as with ECS events.
package jsondoc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	fastjson "github.com/segmentio/encoding/json"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Decode parses value, which must be one JSON object, into v without copying it
// (event.DecodeObject); anything else is a malformed_json *event.DecodeError.
func Decode(value []byte, v any) error { return event.DecodeObject(value, v) }

// Sniff parses value into v, a struct of the few top-level keys a format's Sniff looks at, and
// reports whether it could. It is only reached for values that already contain one of the
// format's key names, so that most messages of other formats cost a bytes.Contains.
func Sniff(value []byte, v any) bool {
	if !event.IsJSONObject(value) {
		return false
	}
	rest, err := fastjson.Parse(value, v, fastjson.DontCopyRawMessage|fastjson.DontCopyString|fastjson.DontCopyNumber)
	return err == nil && len(bytes.TrimSpace(rest)) == 0
}

// Present reports whether raw holds a value other than null.
func Present(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}

// Text returns raw as text: a string's content (isString true), or the JSON text of any other
// value. An absent or null value gives "". Like the decoded strings, the text points into the
// message value instead of copying it (the value is never modified and lives as long as the
// event it becomes); only a string with escapes is copied, unescaped.
func Text(raw json.RawMessage) (text string, isString bool) {
	if !Present(raw) {
		return "", false
	}
	if raw[0] != '"' {
		return unsafe.String(unsafe.SliceData(raw), len(raw)), false
	}
	if len(raw) >= 2 && bytes.IndexByte(raw, '\\') < 0 {
		inner := raw[1 : len(raw)-1]
		return unsafe.String(unsafe.SliceData(inner), len(inner)), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return string(raw), false
	}
	return s, true
}

// String returns raw's content if it is a JSON string, else "".
func String(raw json.RawMessage) string {
	if s, ok := Text(raw); ok {
		return s
	}
	return ""
}

// AddAddresses reads the addresses in raw, found in field, into s: a string, or an array
// whose null entries are skipped. A value of another type is passed on as its JSON text, so
// that it is reported as a warning, not ignored.
func AddAddresses(s *event.Sightings, field string, raw json.RawMessage) {
	if !Present(raw) {
		return
	}
	if raw[0] != '[' {
		text, _ := Text(raw)
		s.Add(field, text)
		return
	}
	var list []json.RawMessage
	if event.Unmarshal(raw, &list) != nil {
		s.Add(field, string(raw))
		return
	}
	for _, item := range list {
		if Present(item) {
			text, _ := Text(item)
			s.Add(field, text)
		}
	}
}

// isoLayouts are the ISO 8601 forms the formats write: RFC 3339 (Zeek's TS_ISO8601, shippers),
// and Suricata's offset without a colon. A fraction of a second is optional in each.
var isoLayouts = [...]string{time.RFC3339Nano, "2006-01-02T15:04:05-0700"}

// localLayout is a time without an offset (Suricata before 3.0 wrote local time so, and some
// converters drop the zone): read as UTC, with a warning.
const localLayout = "2006-01-02T15:04:05"

// ParseISO reads an ISO 8601 time. A time without an offset is read as UTC and warned about;
// one it cannot read gives ok false.
func ParseISO(s string) (t time.Time, warning string, ok bool) {
	layouts := isoLayouts
	if n := len(s); n > 5 && (s[n-5] == '+' || s[n-5] == '-') {
		// Suricata's form first: a failed attempt costs an allocated error per message.
		layouts[0], layouts[1] = layouts[1], layouts[0]
	}
	for _, layout := range layouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, "", inRange(t.UTC())
		}
	}
	if t, err := time.Parse(localLayout, s); err == nil {
		return t, fmt.Sprintf("timestamp %q has no UTC offset: read as UTC", Truncate(s, 64)), inRange(t)
	}
	return time.Time{}, "", false
}

// ParseEpoch reads seconds since the Unix epoch written as a decimal number ("1591367999.305988",
// Zeek's default), or whole milliseconds ("1591367999305", Zeek's JSON::TS_MILLIS): a whole
// number above 1e11 is taken as milliseconds (1e11 seconds is the year 5138).
func ParseEpoch(s string) (time.Time, bool) {
	whole, frac, hasFrac := strings.Cut(s, ".")
	if strings.ContainsAny(s, "eE+-") || whole == "" || !digits(whole) || hasFrac && (frac == "" || !digits(frac)) {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 0 || f >= maxEpoch {
			return time.Time{}, false
		}
		sec := int64(f)
		t := time.Unix(sec, int64((f-float64(sec))*1e9)).UTC()
		return t, inRange(t)
	}
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	if !hasFrac && sec > 1e11 {
		t := time.UnixMilli(sec).UTC()
		return t, inRange(t)
	}
	if len(frac) > 9 {
		frac = frac[:9]
	}
	nsec, _ := strconv.ParseInt(frac+"000000000"[len(frac):], 10, 64)
	if sec >= maxEpoch {
		return time.Time{}, false
	}
	t := time.Unix(sec, nsec).UTC()
	return t, inRange(t)
}

// maxEpoch is 10000-01-01T00:00:00Z: scored events carry RFC 3339 times, four-digit years.
const maxEpoch = 253402300800

// inRange reports whether t is a time a scored event can carry: RFC 3339 has four-digit years,
// and no sensor saw traffic before 1970.
func inRange(t time.Time) bool {
	return t.Year() >= 1970 && t.Year() <= 9999
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Truncate shortens s to at most n bytes, on a character boundary, marking the cut: for
// values quoted in warnings and dead-letter messages.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
