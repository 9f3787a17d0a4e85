package nftables

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"
)

// listing is one set as `nft -j list set` prints it (libnftables-json(5), json_schema_version 1):
//
//	{"nftables": [{"metainfo": {...}}, {"set": {"family": "inet", "name": "blocklist_v4",
//	  "table": "threatpipe", "type": "ipv4_addr", "handle": 1, "flags": ["timeout"],
//	  "elem": [{"elem": {"val": "192.0.2.1", "timeout": 86400, "expires": 86396}}, "203.0.113.9"]}}]}
//
// An element is a bare value when it has no timeout, expiry or comment, and an {"elem": ...}
// object otherwise; "elem" is absent for an empty set. Timeouts are in seconds.
type listing struct {
	family, table, name string
	typ                 string
	flags               []string
	elems               []element
}

// element is one address of a set. expires is the time left; permanent elements have none.
type element struct {
	addr      netip.Addr
	expires   time.Duration
	permanent bool
}

func (l *listing) hasFlag(f string) bool { return slices.Contains(l.flags, f) }

// maxSeconds bounds the timeouts accepted from nft: past it a value is not a real timeout.
const maxSeconds = 100 * 365 * 24 * 3600

// errListing marks output the decoder does not understand.
var errListing = errors.New("unexpected nft -j output")

func listingError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errListing, fmt.Sprintf(format, args...))
}

// decodeListing parses the output of `nft -j list set FAMILY TABLE SET`. It accepts only sets of
// plain addresses: intervals, concatenations and maps are refused, since the sink could neither
// compare nor delete their elements.
func decodeListing(b []byte) (*listing, error) {
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := strictUnmarshal(b, &doc); err != nil {
		return nil, listingError("%v", err)
	}
	var raw json.RawMessage
	for _, obj := range doc.Nftables {
		for k, v := range obj {
			switch k {
			case "metainfo":
			case "set":
				if raw != nil {
					return nil, listingError("more than one set")
				}
				raw = v
			default:
				return nil, listingError("unexpected %q object", k)
			}
		}
	}
	if raw == nil {
		return nil, listingError("no set")
	}
	var s struct {
		Family string          `json:"family"`
		Table  string          `json:"table"`
		Name   string          `json:"name"`
		Type   json.RawMessage `json:"type"`
		Map    json.RawMessage `json:"map"`
		Flags  json.RawMessage `json:"flags"`
		Elem   json.RawMessage `json:"elem"`
	}
	if err := strictUnmarshal(raw, &s); err != nil {
		return nil, listingError("set: %v", err)
	}
	l := &listing{family: s.Family, table: s.Table, name: s.Name}
	if s.Map != nil {
		return nil, listingError("set %s is a map", s.Name)
	}
	if err := json.Unmarshal(s.Type, &l.typ); err != nil {
		return nil, listingError("set %s: type %s is not a single data type", s.Name, clip(s.Type))
	}
	flags, err := oneOrMany(s.Flags)
	if err != nil {
		return nil, listingError("set %s: flags: %v", s.Name, err)
	}
	for _, f := range flags {
		var name string
		if err := json.Unmarshal(f, &name); err != nil {
			return nil, listingError("set %s: flag %s is not a string", s.Name, clip(f))
		}
		l.flags = append(l.flags, name)
	}
	elems, err := oneOrMany(s.Elem)
	if err != nil {
		return nil, listingError("set %s: elem: %v", s.Name, err)
	}
	for _, e := range elems {
		el, err := decodeElement(e)
		if err != nil {
			return nil, listingError("set %s: %v", s.Name, err)
		}
		l.elems = append(l.elems, el)
	}
	return l, nil
}

func decodeElement(raw json.RawMessage) (element, error) {
	var el element
	var val json.RawMessage
	hasTimer := false
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' {
		var wrap map[string]json.RawMessage
		if err := strictUnmarshal(t, &wrap); err != nil {
			return el, err
		}
		inner, ok := wrap["elem"]
		if !ok || len(wrap) != 1 {
			return el, fmt.Errorf("element %s is not an address", clip(raw))
		}
		var e struct {
			Val     json.RawMessage `json:"val"`
			Timeout *json.Number    `json:"timeout"`
			Expires *json.Number    `json:"expires"`
		}
		if err := strictUnmarshal(inner, &e); err != nil {
			return el, fmt.Errorf("element %s: %v", clip(raw), err)
		}
		val = e.Val
		if e.Timeout != nil {
			d, err := seconds(*e.Timeout)
			if err != nil {
				return el, fmt.Errorf("element %s: timeout: %v", clip(raw), err)
			}
			el.expires, hasTimer = d, true
		}
		if e.Expires != nil {
			d, err := seconds(*e.Expires)
			if err != nil {
				return el, fmt.Errorf("element %s: expires: %v", clip(raw), err)
			}
			el.expires, hasTimer = d, true
		}
	} else {
		val = raw
	}
	var s string
	if err := json.Unmarshal(val, &s); err != nil {
		return el, fmt.Errorf("element %s is not an address", clip(raw))
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return el, fmt.Errorf("element %q is not an address", s)
	}
	el.addr = a
	el.permanent = !hasTimer
	return el, nil
}

// oneOrMany accepts a JSON value or an array of them (libnftables prints a single flag or element
// either way, depending on the version); absent or null is none.
func oneOrMany(raw json.RawMessage) ([]json.RawMessage, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil, nil
	}
	if t[0] == '[' {
		var out []json.RawMessage
		if err := json.Unmarshal(t, &out); err != nil {
			return nil, err
		}
		return out, nil
	}
	return []json.RawMessage{t}, nil
}

// seconds converts a JSON number of seconds to a duration.
func seconds(n json.Number) (time.Duration, error) {
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f < 0 || f > maxSeconds {
		return 0, fmt.Errorf("%q is not a number of seconds", n.String())
	}
	return time.Duration(f * float64(time.Second)), nil
}

// strictUnmarshal decodes one JSON value, keeping numbers exact and refusing trailing data.
func strictUnmarshal(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// clip shortens raw JSON for an error message.
func clip(b []byte) string {
	const n = 80
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
