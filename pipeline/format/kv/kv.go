// Package kv reads key=value firewall log lines, the syslog output of most firewalls that do
// not speak CEF: FortiGate (date=... time=... devname="..." srcip=... dstip=...), Check Point's
// Log Exporter (syslog [key:"value"; ...], RFC 5424 structured data and the Splunk key=value|
// form) and generic src=/dst= lines, each optionally behind a syslog header.
//
// Addresses come from srcip, src, dstip, dst, remip, transip and tranip; everything else is
// carried as strings in the scored event's context, so the device's own severity (FortiGate
// level, Check Point severity) and signature (logid, attack, msg, protection_name) reach the
// SOC unchanged.
package kv

import (
	"bytes"
	"fmt"
	"strings"
	"time"
	"unsafe"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/format/internal/linefmt"
)

// Format is the format's name (THREATPIPE_KAFKA_INPUT_FORMAT=kv, input_format "kv").
const Format event.Format = "kv"

// addressKeys are the keys read as addresses, in the order they are collected (the ends of
// the traffic first, so that a limit keeps them).
var addressKeys = [...]string{"srcip", "src", "dstip", "dst", "remip", "transip", "tranip"}

const addressFields = "srcip, src, dstip, dst, remip, transip or tranip"

// cefWindow matches the CEF decoder's sniff window: a line with "CEF:" that early is CEF's,
// whose extension is key=value too.
const cefWindow = 256

// Decoder decodes key=value lines. It keeps no state: one is safe for concurrent use.
type Decoder struct{}

var _ event.FormatDecoder = (*Decoder)(nil)

// New returns a key=value decoder.
func New() *Decoder { return &Decoder{} }

// Name implements event.FormatDecoder.
func (*Decoder) Name() event.Format { return Format }

// JSON implements event.FormatDecoder: these are text lines.
func (*Decoder) JSON() bool { return false }

// Sniff implements event.FormatDecoder: a line that is neither a JSON object nor CEF and holds
// at least two pairs, one of them an address key with a value. It walks the pairs without
// allocating, stopping as soon as both are seen (Check Point writes src near the end).
func (*Decoder) Sniff(value []byte) bool {
	trimmed := bytes.TrimLeft(value, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] == '{' || bytes.Contains(value[:min(len(value), cefWindow)], []byte("CEF:")) {
		return false
	}
	sc, ok := newScanner(unsafe.String(unsafe.SliceData(value), len(value)))
	if !ok {
		return false
	}
	pairs, addr := 0, false
	for {
		key, raw, _, ok := sc.next()
		if !ok {
			return false
		}
		pairs++
		addr = addr || raw != "" && isAddressKey(key)
		if pairs >= 2 && addr {
			return true
		}
	}
}

func isAddressKey(key string) bool {
	for _, k := range addressKeys {
		if key == k {
			return true
		}
	}
	return false
}

type pair struct{ key, value string }

// Decode implements event.FormatDecoder.
func (*Decoder) Decode(value []byte, rec event.Record) (*event.Input, error) {
	// The strings point into value rather than copy it, as the JSON formats' do: a message value
	// lives, unmodified, as long as the event it becomes.
	line := strings.TrimRight(unsafe.String(unsafe.SliceData(value), len(value)), "\r\n")
	sc, ok := newScanner(line)
	if !ok {
		return nil, event.NewDecodeError(event.ClassUnknownFormat, "not a key=value line: no key=value pair found")
	}
	pairs := make([]pair, 0, 48)
	o := linefmt.NewObject(len(line) + 16)
	for {
		key, raw, esc, ok := sc.next()
		if !ok {
			break
		}
		if esc {
			raw = sc.unescape(raw)
		}
		pairs = append(pairs, pair{key, raw})
		o.Add(key, raw)
	}
	in := &event.Input{Format: Format, Context: o.JSON()}
	if sc.cut != "" {
		in.Warnings = append(in.Warnings, fmt.Sprintf("the line ends inside the quoted value of %s: truncated?", linefmt.Truncate(sc.cut, 64)))
	}
	get := func(key string) string {
		for _, p := range pairs {
			if p.key == key {
				return strings.TrimSpace(p.value)
			}
		}
		return ""
	}
	var warn string
	if in.EventID, warn = rec.EventID(eventID(get), "event id"); warn != "" {
		in.Warnings = append(in.Warnings, warn)
	}
	in.Source = firstNonEmpty(get("devname"), get("origin"), get("hostname"), string(Format))
	in.ObservedAt = observedAt(in, get, sc.header, rec.Time)

	seen := event.NewSightings(rec.MaxIndicators)
	for _, k := range addressKeys {
		for _, p := range pairs {
			if p.key == k && strings.TrimSpace(p.value) != "" {
				seen.Add(k, p.value)
			}
		}
	}
	if err := seen.Finish(in, addressFields); err != nil {
		return nil, err
	}
	return in, nil
}

// eventID names the event after what the device wrote, so that act's and parking's per-event
// deduplication sees one log as one event: FortiGate's logid and eventtime (a log type and a
// nanosecond time; devid in front when present, as two devices' clocks may agree), Check
// Point's loguid (one per log, kept by its updates), else the session; "" when none.
func eventID(get func(string) string) string {
	dev := get("devid")
	prefix := ""
	if dev != "" {
		prefix = dev + ":"
	}
	if logid, at := get("logid"), get("eventtime"); logid != "" && at != "" {
		return prefix + logid + ":" + at
	}
	if uid := get("loguid"); uid != "" {
		return uid
	}
	if sid := get("sessionid"); sid != "" {
		return prefix + "session:" + sid
	}
	return ""
}

// observedAt is FortiGate's eventtime, else its date and time (in tz when given, else UTC),
// else Check Point's epoch time, else the syslog header's, else fallback; each that is present
// but does not parse is a warning.
func observedAt(in *event.Input, get func(string) string, header string, fallback time.Time) time.Time {
	if v := get("eventtime"); v != "" {
		if t, ok := linefmt.Epoch(v); ok {
			return t
		}
		in.Warnings = append(in.Warnings, fmt.Sprintf("eventtime %q is not an epoch time", linefmt.Truncate(v, 64)))
	}
	date, clock := get("date"), get("time")
	if date != "" && clock != "" {
		tz := get("tz")
		layout, v := "2006-01-02 15:04:05", date+" "+clock
		if tz != "" {
			layout, v = layout+" -0700", v+" "+tz
		}
		if t, err := time.Parse(layout, v); err == nil {
			return t
		}
		in.Warnings = append(in.Warnings, fmt.Sprintf("date and time %q are not yyyy-mm-dd hh:mm:ss [±hhmm]", linefmt.Truncate(v, 64)))
	} else if clock != "" {
		if t, ok := linefmt.Epoch(clock); ok {
			return t
		}
		in.Warnings = append(in.Warnings, fmt.Sprintf("time %q is not an epoch time", linefmt.Truncate(clock, 64)))
	}
	if t, ok := linefmt.SyslogTime(header, fallback); ok {
		return t
	}
	return fallback.UTC()
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
