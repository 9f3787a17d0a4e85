package event

import (
	"bytes"
	"testing"
	"time"
)

// fakeFormat claims messages starting with its prefix and yields the address after it.
type fakeFormat struct {
	name   Format
	json   bool
	prefix string
}

func (f fakeFormat) Name() Format            { return f.name }
func (f fakeFormat) JSON() bool              { return f.json }
func (f fakeFormat) Sniff(value []byte) bool { return bytes.HasPrefix(value, []byte(f.prefix)) }
func (f fakeFormat) Decode(value []byte, rec Record) (*Input, error) {
	in := &Input{Format: f.name, EventID: rec.ID(), ObservedAt: rec.Time, Source: string(f.name)}
	s := NewSightings(rec.MaxIndicators)
	addr, _, _ := bytes.Cut(value[len(f.prefix):], []byte(`"`))
	s.Add("addr", string(addr))
	return in, s.Finish(in, "addr")
}

func TestFormatDispatch(t *testing.T) {
	line := fakeFormat{name: "line", prefix: "LINE|"}
	obj := fakeFormat{name: "obj", json: true, prefix: `{"obj":"`}
	base := NewDecoder(1<<20, 32)
	auto, err := base.WithFormats(AutoFormat, line, obj)
	if err != nil {
		t.Fatal(err)
	}
	onlyLine, err := base.WithFormats("line", line, obj)
	if err != nil {
		t.Fatal(err)
	}
	onlyNative, err := base.WithFormats(FormatNative, line, obj)
	if err != nil {
		t.Fatal(err)
	}
	native := []byte(`{"event_id":"e","indicator":{"type":"ipv4-addr","value":"8.8.8.8"}}`)
	deep := []byte(`{"obj":"8.8.8.8","x":` + string(bytes.Repeat([]byte("["), 100)) + string(bytes.Repeat([]byte("]"), 100)) + `}`)
	cases := []struct {
		name   string
		dec    *Decoder
		value  []byte
		format Format
		class  ErrorClass
	}{
		{"auto: native", auto, native, FormatNative, ""},
		{"auto: a line format", auto, []byte("LINE|9.9.9.9"), "line", ""},
		{"auto: a JSON format after native and ECS", auto, []byte(`{"obj":"1.1.1.1"}`), "obj", ""},
		{"auto: a JSON format a shipper added @timestamp to", auto, []byte(`{"obj":"1.1.1.1","@timestamp":"2026-03-14T09:26:53Z"}`), "obj", ""},
		{"auto: ECS address fields win", auto, []byte(`{"obj":"1.1.1.1","source":{"ip":"8.8.8.8"}}`), FormatECS, ""},
		{"auto: JSON formats get the depth check", auto, deep, "", ClassTooDeep},
		{"auto: nothing claims it", auto, []byte("hello"), "", ClassMalformedJSON},
		{"auto: an object nothing claims", auto, []byte(`{"a":1}`), "", ClassUnknownFormat},
		{"one format: another's message", onlyLine, native, "", ClassNoIndicator},
		{"one format: its message", onlyLine, []byte("LINE|9.9.9.9"), "line", ""},
		{"native only: ECS is refused", onlyNative, []byte(`{"source":{"ip":"8.8.8.8"}}`), "", ClassMissingField},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in, err := c.dec.Decode(c.value, time.Now(), "t/0/1")
			if c.class != "" {
				if ClassOf(err) != c.class {
					t.Fatalf("Decode = %v, %v; want class %s", in, err, c.class)
				}
				return
			}
			if err != nil || in.Format != c.format {
				t.Fatalf("Decode = %+v, %v; want format %s", in, err, c.format)
			}
		})
	}
	if _, err := base.WithFormats("syslog", line); err == nil {
		t.Error("an unknown format name was accepted")
	}
}

// BenchmarkAutoOtherJSONFormat: a JSON message of another format (an EVE alert's shape), sniffed
// and handed over in auto mode.
func BenchmarkAutoOtherJSONFormat(b *testing.B) {
	obj := fakeFormat{name: "obj", json: true, prefix: `{"obj":"`}
	dec, err := NewDecoder(1<<20, 32).WithFormats(AutoFormat, obj)
	if err != nil {
		b.Fatal(err)
	}
	value := []byte(`{"obj":"185.220.101.7","timestamp":"2017-04-07T22:24:37.251547+0100","flow_id":586497171462735,` +
		`"in_iface":"eth0","event_type":"alert","src_port":22,"dest_ip":"192.168.2.14","dest_port":39745,"proto":"TCP",` +
		`"alert":{"action":"allowed","gid":1,"signature_id":2018358,"rev":2,"signature":"ET HUNTING GENERIC SUSPICIOUS POST",` +
		`"category":"Potentially Bad Traffic","severity":2},"http":{"hostname":"209.53.113.5","url":"/api/v1/fakefile.php",` +
		`"http_user_agent":"Mozilla/5.0","http_method":"POST","protocol":"HTTP/1.1","status":200,"length":0},"app_proto":"http"}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(value)))
	for b.Loop() {
		if _, err := dec.Decode(value, time.Time{}, "t/0/1"); err != nil {
			b.Fatal(err)
		}
	}
}
