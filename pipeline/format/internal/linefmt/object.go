package linefmt

import (
	"encoding/json"

	"github.com/threatpipe/threatpipe/pipeline/event"
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

// AppendString appends s as a JSON string, escaping as encoding/json does except for '<', '>'
// and '&', which JSON does not require and which SOC readers of the context should see as
// written; invalid UTF-8 becomes U+FFFD.
func AppendString(b []byte, s string) []byte { return event.AppendJSONString(b, s, false) }
