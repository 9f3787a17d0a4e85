package eve

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/format/fixture"
	"github.com/threatpipe/threatpipe/pipeline/format/formattest"
)

const fixtures = "testdata/eve.jsonl"

func load(t testing.TB) []formattest.Fixture {
	t.Helper()
	fs, err := fixture.Load(fixtures)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestContract(t *testing.T) {
	others, err := fixture.Others("..", "../../event/testdata/decode/messages", "eve")
	if err != nil {
		t.Fatal(err)
	}
	if len(others) < 20 {
		t.Fatalf("only %d messages of other formats", len(others))
	}
	formattest.Run(t, New(), load(t), formattest.Options{Others: others})
}

var rec = event.Record{
	Time:          time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC),
	ID:            func() string { return "eve/0/42" },
	MaxIndicators: 32,
}

// TestFields checks what each kind of sample gives besides its addresses: the event id, the
// time, the source and the warnings.
func TestFields(t *testing.T) {
	byName := map[string][]byte{}
	for _, f := range load(t) {
		byName[f.Name] = f.Value
	}
	tests := []struct {
		fixture  string
		id       string
		at       string
		source   string
		warnings []string
		fields   map[string]string // address: the fields it was found in
	}{
		{fixture: "guide alert http", id: "586497171462735:alert:2017-04-07T22:24:37.251547+0100:tx4:1:2018358",
			at: "2017-04-07T21:24:37.251547Z", source: "suricata"},
		{fixture: "guide 6.0 alert redacted dest", id: "eve/0/42", at: "2009-11-24T21:27:09.534255Z", source: "suricata",
			warnings: []string{`has no UTC offset: read as UTC`, `dest_ip: invalid IP address "x.x.250.50"`}},
		{fixture: "guide anomaly decode", id: "eve/0/42", at: "1970-01-01T00:04:21Z", source: "suricata"},
		{fixture: "guide anomaly applayer parser", id: "201217772575257:anomaly:2016-01-11T05:10:52.828802-0800:tx0",
			at: "2016-01-11T13:10:52.828802Z", source: "suricata"},
		{fixture: "ctu dns query", id: "2247896271051770:dns:2011-08-12T14:55:22.154618+0200", at: "2011-08-12T12:55:22.154618Z", source: "suricata"},
		{fixture: "guide flow wrapped", id: "1651367081587315:flow:2019-05-28T23:35:28.071281+0200", at: "2019-05-28T21:35:28.071281Z", source: "suricata-edge-01"},
		{fixture: "ips drop", id: "1138947565416003:drop:2026-03-14T09:26:53.123456+0000", at: "2026-03-14T09:26:53.123456Z", source: "suricata"},
		{fixture: "same address twice", id: "eve/0/42", at: "2026-03-14T09:26:53Z", source: "suricata",
			fields: map[string]string{"203.0.113.9": "src_ip,dest_ip"}},
		{fixture: "only dest_ip, no time, no flow_id", id: "eve/0/42", at: "2026-03-14T09:26:53Z", source: "suricata"},
		{fixture: "wrong types", id: "eve/0/42", at: "2026-03-14T09:26:53Z", source: "suricata",
			warnings: []string{`src_ip: invalid IP address "3232235777"`, `flow_id {"a":1} is not a number or string`, `timestamp "1710408413" is not an ISO 8601 time`}},
		{fixture: "bracketed ipv6", id: "eve/0/42", at: "2026-03-14T09:26:53Z", source: "suricata",
			warnings: []string{`timestamp "not a time" is not an ISO 8601 time: used the Kafka message time`},
			fields:   map[string]string{"2001:db8::7": "src_ip,dest_ip"}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			value, ok := byName[tt.fixture]
			if !ok {
				t.Fatalf("no fixture %q", tt.fixture)
			}
			in, err := New().Decode(value, rec)
			if err != nil {
				t.Fatal(err)
			}
			if in.EventID != tt.id || in.ObservedAt.UTC().Format(time.RFC3339Nano) != tt.at || in.Source != tt.source {
				t.Errorf("id %q, at %s, source %q; want %q, %s, %q", in.EventID, in.ObservedAt.UTC().Format(time.RFC3339Nano), in.Source, tt.id, tt.at, tt.source)
			}
			if len(in.Warnings) != len(tt.warnings) {
				t.Errorf("warnings %q, want %d", in.Warnings, len(tt.warnings))
			}
			for _, w := range tt.warnings {
				if !strings.Contains(strings.Join(in.Warnings, "\n"), w) {
					t.Errorf("warnings %q lack %q", in.Warnings, w)
				}
			}
			for _, s := range in.Sightings {
				if want, ok := tt.fields[s.Indicator.Value]; ok && strings.Join(s.Fields, ",") != want {
					t.Errorf("%s found in %v, want %s", s.Indicator.Value, s.Fields, want)
				}
			}
			if string(in.Context) != string(value) {
				t.Error("context is not the whole document")
			}
		})
	}
}

// TestAlertsOnOnePacketHaveTheirOwnIDs: two signatures matching one packet give two events of
// one flow, one type and one time; consumers de-duplicate on event_id and indicator.
func TestAlertsOnOnePacketHaveTheirOwnIDs(t *testing.T) {
	ids := map[string]bool{}
	for _, sid := range []int{2018358, 2019401} {
		v := fmt.Sprintf(`{"timestamp":"2026-03-14T09:26:53.123456+0000","flow_id":7,"event_type":"alert","src_ip":"192.0.2.1","dest_ip":"198.51.100.1","alert":{"gid":1,"signature_id":%d}}`, sid)
		in, err := New().Decode([]byte(v), rec)
		if err != nil {
			t.Fatal(err)
		}
		ids[in.EventID] = true
	}
	if len(ids) != 2 {
		t.Fatalf("event ids %v: two alerts share one", ids)
	}
}

func TestHugeArrays(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"timestamp":"2026-03-14T09:26:53.123456+0000","event_type":"alert","src_ip":"192.0.2.1","metadata":{"flowbits":[`)
	for i := range 100_000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"10.%d.%d.%d"`, i>>16&255, i>>8&255, i&255)
	}
	b.WriteString(`]},"dest_ip":"198.51.100.1"}`)
	in, err := New().Decode([]byte(b.String()), rec)
	if err != nil || len(in.Sightings) != 2 {
		t.Fatalf("Decode = %v, %v; want the two tuple addresses only", in, err)
	}

	// EVE writes one address per field; an array (a converter's) is read, within the limit.
	var list []string
	for i := range 40 {
		list = append(list, fmt.Sprintf(`"192.0.2.%d"`, i+1))
	}
	formattest.CheckLimit(t, New(), []byte(`{"event_type":"flow","src_ip":[`+strings.Join(list, ",")+`]}`), 32)
}

func TestSniff(t *testing.T) {
	d := New()
	for _, tt := range []struct {
		value string
		want  bool
	}{
		{`{"event_type":"alert","src_ip":"192.0.2.1"}`, true},
		{`{"event_type":"flow","dest_ip":"192.0.2.1"}`, true},
		{`{"event_type":"stats","stats":{}}`, false},
		{`{"src_ip":"192.0.2.1","dest_ip":"192.0.2.2"}`, false},
		{`{"x":{"event_type":"alert","src_ip":"192.0.2.1"}}`, false},
		{`{"event_id":"e","indicator":{"type":"ipv4-addr","value":"8.8.8.8"},"event_type":"alert","src_ip":"1.1.1.1"}`, false},
		{`{"event_type":"alert","src_ip":"192.0.2.1"`, false},
		{`CEF:0|x|y|1|100|"event_type" "src_ip"|5|src=1.1.1.1`, false},
	} {
		if got := d.Sniff([]byte(tt.value)); got != tt.want {
			t.Errorf("Sniff(%s) = %v, want %v", tt.value, got, tt.want)
		}
	}
}

// FuzzDecode checks that no input panics the decoder, that every rejection is a classed
// *event.DecodeError and that every accepted event is complete and within its limits.
func FuzzDecode(f *testing.F) {
	for _, fx := range load(f) {
		f.Add(fx.Value)
	}
	d := New()
	limited := rec
	limited.MaxIndicators = 1
	f.Fuzz(func(t *testing.T, value []byte) {
		sniffed := d.Sniff(value)
		in, err := d.Decode(value, limited)
		if err != nil {
			var de *event.DecodeError
			if !errors.As(err, &de) || de.Class == "" || de.Msg == "" {
				t.Fatalf("error %#v is not a classed DecodeError", err)
			}
			if sniffed && de.Class == event.ClassMalformedJSON {
				t.Fatalf("Sniff claims a message that is not a JSON object: %v", err)
			}
			return
		}
		if len(in.Sightings) == 0 || len(in.Sightings) > 1 || in.EventID == "" || len(in.EventID) > 256 ||
			in.Source == "" || in.ObservedAt.IsZero() || in.Format != Name || string(in.Context) != string(value) {
			t.Fatalf("incomplete input %+v", in)
		}
		if y := in.ObservedAt.UTC().Year(); y < 1970 || y > 9999 {
			t.Fatalf("observed at %v", in.ObservedAt)
		}
	})
}
