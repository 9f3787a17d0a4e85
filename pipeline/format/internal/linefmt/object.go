package linefmt

import (
	"encoding/json"
	"unicode/utf8"
)

// Object builds a flat JSON object of string members, in the order they are added. The line
// formats carry their fields to the scored event this way: written by hand rather than by
// encoding/json over a map, so that the fields keep the order the device wrote them in and no
// map is built per message. The output is always valid JSON, whatever the bytes: invalid UTF-8
// becomes U+FFFD as encoding/json writes it.
//
// A key added twice keeps its first value: a JSON object with duplicate names is legal but
// strict consumers reject it, and a device that repeats a key (Check Point does) rarely means
// the later one more.
type Object struct {
	buf  []byte
	keys map[string]struct{}
}

// NewObject returns an empty object with room for about size bytes.
func NewObject(size int) *Object {
	o := &Object{buf: make([]byte, 1, size+2)}
	o.buf[0] = '{'
	return o
}

// Add appends key with value unless key is already there.
func (o *Object) Add(key, value string) {
	if o.keys == nil {
		o.keys = make(map[string]struct{}, 16)
	}
	if _, dup := o.keys[key]; dup {
		return
	}
	o.keys[key] = struct{}{}
	if len(o.buf) > 1 {
		o.buf = append(o.buf, ',')
	}
	o.buf = AppendString(o.buf, key)
	o.buf = append(o.buf, ':')
	o.buf = AppendString(o.buf, value)
}

// Has reports whether key was added.
func (o *Object) Has(key string) bool {
	_, ok := o.keys[key]
	return ok
}

// JSON returns the object; the Object must not be used after.
func (o *Object) JSON() json.RawMessage {
	return append(o.buf, '}')
}

const hex = "0123456789abcdef"

// AppendString appends s as a JSON string, escaping as encoding/json does except for '<', '>'
// and '&', which JSON does not require and which SOC readers of the context should see as
// written; invalid UTF-8 becomes U+FFFD.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
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
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
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
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
