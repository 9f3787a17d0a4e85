package event

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the scored event's JSON encoding to b and returns the extended buffer.
//
// It writes exactly what encoding/json writes for the struct tags above (field order, omitempty,
// sorted map keys, HTML-safe string escaping, number and time formats), with one difference: the
// carried Context and Extra values are copied as they arrived instead of being re-compacted, so
// they must be valid JSON, which the Decoder guarantees. A test holds the two encoders equal.
// It exists because encoding every scored event through reflection was the largest single cost
// of the cache-hit path.
func (s *Scored) AppendJSON(b []byte) []byte {
	return s.Append(b, DetailFull)
}

// Detail says how much of each provider's answer a published scored event carries.
type Detail uint8

// Details.
const (
	// DetailCompact: each answer's Intel.Compact, what the score, the playbooks and the view
	// read; the default, as it halves the bytes the brokers carry per event.
	DetailCompact Detail = iota
	// DetailFull: each answer as the provider gave it, normalised (ports, CVEs, levels, AS and
	// location per source).
	DetailFull
)

// ParseDetail reads a Detail's name: "compact" or "full".
func ParseDetail(name string) (Detail, bool) {
	switch name {
	case "compact":
		return DetailCompact, true
	case "full":
		return DetailFull, true
	}
	return 0, false
}

// String is the Detail's name.
func (d Detail) String() string {
	if d == DetailFull {
		return "full"
	}
	return "compact"
}

// Append appends the scored event's JSON encoding at the given detail: DetailFull is what
// AppendJSON writes; DetailCompact writes what encoding/json would write for the event with
// every provider's Result replaced by Result.Compact().
func (s *Scored) Append(b []byte, d Detail) []byte {
	b = append(b, `{"schema_version":`...)
	b = appendString(b, s.SchemaVersion)
	b = append(b, `,"event_id":`...)
	b = appendString(b, s.EventID)
	b = append(b, `,"revision":`...)
	b = strconv.AppendInt(b, int64(s.Revision), 10)
	b = append(b, `,"observed_at":`...)
	b = appendTime(b, s.ObservedAt)
	b = append(b, `,"processed_at":`...)
	b = appendTime(b, s.ProcessedAt)
	b = append(b, `,"source":`...)
	b = appendString(b, s.Source)
	b = append(b, `,"input_format":`...)
	b = appendString(b, string(s.InputFormat))
	b = append(b, `,"indicator":{"type":`...)
	b = appendString(b, string(s.Indicator.Type))
	b = append(b, `,"value":`...)
	b = appendString(b, s.Indicator.Value)
	b = append(b, '}')
	if len(s.ECSFields) > 0 {
		b = append(b, `,"ecs_fields":`...)
		b = appendStrings(b, s.ECSFields)
	}
	b = append(b, `,"score":`...)
	b = strconv.AppendInt(b, int64(s.Score), 10)
	b = append(b, `,"severity":`...)
	b = appendString(b, string(s.Severity))
	b = append(b, `,"confidence":`...)
	b = strconv.AppendInt(b, int64(s.Confidence), 10)
	b = append(b, `,"validated_by":`...)
	b = appendStrings(b, s.ValidatedBy)
	b = append(b, `,"tags":`...)
	b = appendStrings(b, s.Tags)
	b = append(b, `,"reasons":`...)
	if s.Reasons == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, r := range s.Reasons {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"source":`...)
			b = appendString(b, r.Source)
			b = append(b, `,"detail":`...)
			b = appendString(b, r.Detail)
			b = append(b, `,"points":`...)
			b = strconv.AppendInt(b, int64(r.Points), 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if s.Gate != nil {
		b = append(b, `,"gate":{"reason":`...)
		b = appendString(b, s.Gate.Reason)
		b = append(b, `,"prefix":`...)
		b = appendString(b, s.Gate.Prefix)
		b = append(b, '}')
	}
	if len(s.Providers) > 0 {
		b = append(b, `,"providers":{`...)
		var names [8]string
		for i, name := range appendSortedKeys(names[:0], s.Providers) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, name)
			b = append(b, ':')
			b = s.Providers[name].appendJSON(b, d)
		}
		b = append(b, '}')
	}
	if s.AS != nil {
		b = append(b, `,"as":`...)
		b = s.AS.appendJSON(b)
	}
	if s.Geo != nil {
		b = append(b, `,"geo":`...)
		b = s.Geo.appendJSON(b)
	}
	if s.ISP != "" {
		b = append(b, `,"isp":`...)
		b = appendString(b, s.ISP)
	}
	if len(s.Fields) > 0 {
		b = append(b, `,"fields":`...)
		b = appendRawMap(b, s.Fields)
	}
	if len(s.Warnings) > 0 {
		b = append(b, `,"warnings":`...)
		b = appendStrings(b, s.Warnings)
	}
	if len(s.Context) > 0 {
		b = append(b, `,"context":`...)
		b = append(b, s.Context...)
	}
	if len(s.Extra) > 0 {
		b = append(b, `,"extra":`...)
		b = appendRawMap(b, s.Extra)
	}
	if t := s.ContextTruncated; t != nil {
		b = append(b, `,"context_truncated":{"original_bytes":`...)
		b = strconv.AppendInt(b, int64(t.OriginalBytes), 10)
		b = append(b, `,"omitted":`...)
		b = appendStrings(b, t.Omitted)
		b = append(b, `,"omitted_count":`...)
		b = strconv.AppendInt(b, int64(t.OmittedCount), 10)
		b = append(b, '}')
	}
	b = append(b, `,"origin":{"topic":`...)
	b = appendString(b, s.Origin.Topic)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(s.Origin.Partition), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, s.Origin.Offset, 10)
	return append(b, "}}"...)
}

func (o *ProviderOutcome) appendJSON(b []byte, d Detail) []byte {
	if o == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"status":`...)
	b = appendString(b, string(o.Status))
	if o.Result != nil {
		b = append(b, `,"result":`...)
		if d == DetailCompact {
			b = o.Result.appendCompactJSON(b)
		} else {
			b = o.Result.appendJSON(b)
		}
	}
	if o.Error != "" {
		b = append(b, `,"error":`...)
		b = appendString(b, o.Error)
	}
	if o.RetryAt != nil {
		b = append(b, `,"retry_at":`...)
		b = appendTime(b, *o.RetryAt)
	}
	if o.Cache != nil {
		b = append(b, `,"cache":{"hit":`...)
		b = strconv.AppendBool(b, o.Cache.Hit)
		b = append(b, `,"age_seconds":`...)
		b = strconv.AppendInt(b, o.Cache.AgeSeconds, 10)
		if o.Cache.Joined {
			b = append(b, `,"joined":true`...)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

func (r *Intel) appendJSON(b []byte) []byte {
	b = append(b, `{"verdict":`...)
	b = appendString(b, string(r.Verdict))
	b = append(b, `,"score":`...)
	b = strconv.AppendInt(b, int64(r.Score), 10)
	b = appendOptString(b, `,"detail":`, r.Detail)
	if len(r.Tags) > 0 {
		b = append(b, `,"tags":`...)
		b = appendStrings(b, r.Tags)
	}
	b = appendOptString(b, `,"inbound_level":`, r.InboundLevel)
	b = appendOptInt(b, `,"inbound_score":`, int64(r.InboundScore))
	b = appendOptString(b, `,"outbound_level":`, r.OutboundLevel)
	b = appendOptInt(b, `,"outbound_score":`, int64(r.OutboundScore))
	b = appendOptInt(b, `,"as_number":`, r.ASNumber)
	b = appendOptString(b, `,"as_organization":`, r.ASOrganization)
	b = appendOptString(b, `,"isp":`, r.ISP)
	b = appendOptString(b, `,"country_iso_code":`, r.CountryISO)
	b = appendOptString(b, `,"city_name":`, r.City)
	if r.Location != nil {
		b = append(b, `,"location":`...)
		b = r.Location.appendJSON(b)
	}
	if len(r.OpenPorts) > 0 {
		b = append(b, `,"open_ports":[`...)
		for i, p := range r.OpenPorts {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(p), 10)
		}
		b = append(b, ']')
	}
	b = appendOptInt(b, `,"cve_count":`, int64(r.CVECount))
	if r.MaxCVSS != 0 {
		b = append(b, `,"max_cvss":`...)
		b = appendFloat(b, r.MaxCVSS)
	}
	if r.LastSeen != nil {
		b = append(b, `,"last_seen":`...)
		b = appendTime(b, *r.LastSeen)
	}
	return r.appendTail(b)
}

// appendCompactJSON writes what appendJSON writes for r.Compact().
func (r *Intel) appendCompactJSON(b []byte) []byte {
	b = append(b, `{"verdict":`...)
	b = appendString(b, string(r.Verdict))
	b = append(b, `,"score":`...)
	b = strconv.AppendInt(b, int64(r.Score), 10)
	if len(r.Tags) > 0 {
		b = append(b, `,"tags":`...)
		b = appendStrings(b, r.Tags)
	}
	return r.appendTail(b)
}

// appendTail writes the service and list hits and closes the object: the fields both details
// end with.
func (r *Intel) appendTail(b []byte) []byte {
	b = appendOptString(b, `,"service":`, r.Service)
	if len(r.Lists) > 0 {
		b = append(b, `,"lists":[`...)
		for i, h := range r.Lists {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendString(b, h.Name)
			b = append(b, `,"kind":`...)
			b = appendString(b, h.Kind)
			b = append(b, `,"prefix":`...)
			b = appendString(b, h.Prefix)
			b = appendOptString(b, `,"tag":`, h.Tag)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func (a *AS) appendJSON(b []byte) []byte {
	b = append(b, '{')
	mark := len(b)
	if a.Number != 0 {
		b = append(b, `"number":`...)
		b = strconv.AppendInt(b, a.Number, 10)
	}
	if a.Organization != nil {
		if len(b) > mark {
			b = append(b, ',')
		}
		b = append(b, `"organization":{"name":`...)
		b = appendString(b, a.Organization.Name)
		b = append(b, '}')
	}
	return append(b, '}')
}

func (g *GeoInfo) appendJSON(b []byte) []byte {
	b = append(b, '{')
	mark := len(b)
	if g.CountryISOCode != "" {
		b = append(b, `"country_iso_code":`...)
		b = appendString(b, g.CountryISOCode)
	}
	if g.CityName != "" {
		if len(b) > mark {
			b = append(b, ',')
		}
		b = append(b, `"city_name":`...)
		b = appendString(b, g.CityName)
	}
	if g.Location != nil {
		if len(b) > mark {
			b = append(b, ',')
		}
		b = append(b, `"location":`...)
		b = g.Location.appendJSON(b)
	}
	return append(b, '}')
}

func (g *Geo) appendJSON(b []byte) []byte {
	b = append(b, `{"lat":`...)
	b = appendFloat(b, g.Lat)
	b = append(b, `,"lon":`...)
	b = appendFloat(b, g.Lon)
	return append(b, '}')
}

func appendOptString(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	return appendString(append(b, key...), v)
}

func appendOptInt(b []byte, key string, v int64) []byte {
	if v == 0 {
		return b
	}
	return strconv.AppendInt(append(b, key...), v, 10)
}

func appendStrings(b []byte, list []string) []byte {
	if list == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendRawMap writes a map of JSON values with sorted keys, as encoding/json does.
func appendRawMap(b []byte, m map[string]json.RawMessage) []byte {
	b = append(b, '{')
	var keys [16]string
	for i, k := range appendSortedKeys(keys[:0], m) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendRaw(b, m[k])
	}
	return append(b, '}')
}

func appendRaw(b []byte, raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return append(b, "null"...)
	}
	return append(b, raw...)
}

func sortedKeys[V any](m map[string]V) []string {
	return appendSortedKeys(make([]string, 0, len(m)), m)
}

// appendSortedKeys is sortedKeys into dst, which an encoder keeps on its stack: a slice per
// map per event was a measurable share of the encoding's allocations.
func appendSortedKeys[V any](dst []string, m map[string]V) []string {
	for k := range m {
		dst = append(dst, k)
	}
	slices.Sort(dst)
	return dst
}

// appendTime writes RFC 3339 with nanoseconds, as time.Time.MarshalJSON does for the years
// (0-9999) that decoding and time.Now produce.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendFloat formats like encoding/json: the shortest representation, exponent form only for
// very small or very large magnitudes. NaN and infinities cannot come out of JSON input and are
// written as 0 rather than as invalid JSON.
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, '0')
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 -> e-9, as encoding/json does.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as encoding/json does with HTML escaping on: control characters, quote,
// backslash, <, > and & escaped, invalid UTF-8 replaced by U+FFFD, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte { return AppendJSONString(b, s, true) }

// AppendJSONString appends s quoted as a JSON string, escaping as encoding/json does; with html
// false '<', '>' and '&' are kept as written (JSON does not require escaping them), as
// encoding/json's SetEscapeHTML(false) does.
func AppendJSONString(b []byte, s string, html bool) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (!html || c != '<' && c != '>' && c != '&') {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
