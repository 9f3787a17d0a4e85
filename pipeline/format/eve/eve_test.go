package eve

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/format/formattest"
	"github.com/threatpipe/threatpipe/pipeline/format/internal/fmttest"
)

const fixtures = "testdata/eve.jsonl"

func load(t testing.TB) []formattest.Fixture { return fmttest.Fixtures(t, fixtures) }

func TestContract(t *testing.T) {
	formattest.Run(t, New(), load(t), formattest.Options{Others: fmttest.Others(t, string(Name))})
}

var rec = event.Record{
	Time:          time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC),
	ID:            func() string { return "eve/0/42" },
	MaxIndicators: 32,
}

// TestFields checks what each kind of sample gives besides its addresses: the event id, the
// time, the source and the warnings.
func TestFields(t *testing.T) {
	fmttest.CheckDocuments(t, New(), load(t), rec, []fmttest.Want{
		{Fixture: "guide alert http", ID: "586497171462735:alert:2017-04-07T22:24:37.251547+0100:tx4:1:2018358",
			At: "2017-04-07T21:24:37.251547Z", Source: "suricata"},
		{Fixture: "guide 6.0 alert redacted dest", ID: "eve/0/42", At: "2009-11-24T21:27:09.534255Z", Source: "suricata",
			Warnings: []string{`has no UTC offset: read as UTC`, `dest_ip: invalid IP address "x.x.250.50"`}},
		{Fixture: "guide anomaly decode", ID: "eve/0/42", At: "1970-01-01T00:04:21Z", Source: "suricata"},
		{Fixture: "guide anomaly applayer parser", ID: "201217772575257:anomaly:2016-01-11T05:10:52.828802-0800:tx0",
			At: "2016-01-11T13:10:52.828802Z", Source: "suricata"},
		{Fixture: "ctu dns query", ID: "2247896271051770:dns:2011-08-12T14:55:22.154618+0200", At: "2011-08-12T12:55:22.154618Z", Source: "suricata"},
		{Fixture: "guide flow wrapped", ID: "1651367081587315:flow:2019-05-28T23:35:28.071281+0200", At: "2019-05-28T21:35:28.071281Z", Source: "suricata-edge-01"},
		{Fixture: "ips drop", ID: "1138947565416003:drop:2026-03-14T09:26:53.123456+0000", At: "2026-03-14T09:26:53.123456Z", Source: "suricata"},
		{Fixture: "same address twice", ID: "eve/0/42", At: "2026-03-14T09:26:53Z", Source: "suricata",
			Fields: map[string]string{"203.0.113.9": "src_ip,dest_ip"}},
		{Fixture: "only dest_ip, no time, no flow_id", ID: "eve/0/42", At: "2026-03-14T09:26:53Z", Source: "suricata"},
		{Fixture: "wrong types", ID: "eve/0/42", At: "2026-03-14T09:26:53Z", Source: "suricata",
			Warnings: []string{`src_ip: invalid IP address "3232235777"`, `flow_id {"a":1} is not a number or string`, `timestamp "1710408413" is not an ISO 8601 time`}},
		{Fixture: "bracketed ipv6", ID: "eve/0/42", At: "2026-03-14T09:26:53Z", Source: "suricata",
			Warnings: []string{`timestamp "not a time" is not an ISO 8601 time: used the Kafka message time`},
			Fields:   map[string]string{"2001:db8::7": "src_ip,dest_ip"}},
	})
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
		in, err := fmttest.CheckDecoded(t, d, value, limited)
		if err != nil {
			if sniffed && event.ClassOf(err) == event.ClassMalformedJSON {
				t.Fatalf("Sniff claims a message that is not a JSON object: %v", err)
			}
			return
		}
		if string(in.Context) != string(value) {
			t.Fatalf("context is not the whole document: %s", in.Context)
		}
	})
}
