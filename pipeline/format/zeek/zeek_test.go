package zeek

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/format/formattest"
	"github.com/threatpipe/threatpipe/pipeline/format/internal/fmttest"
)

const fixtures = "testdata/zeek.jsonl"

func load(t testing.TB) []formattest.Fixture { return fmttest.Fixtures(t, fixtures) }

func TestContract(t *testing.T) {
	formattest.Run(t, New(), load(t), formattest.Options{Others: fmttest.Others(t, string(Name))})
}

var rec = event.Record{
	Time:          time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC),
	ID:            func() string { return "zeek/0/42" },
	MaxIndicators: 32,
}

// TestFields checks what each kind of sample gives besides its addresses: the event id, the
// time, the source, the warnings and the fields each address was found in.
func TestFields(t *testing.T) {
	fmttest.CheckDocuments(t, New(), load(t), rec, []fmttest.Want{
		{Fixture: "docs conn dns", ID: "CMdzit1AMNsmfAIiQc:1591367999.305988", At: "2020-06-05T14:39:59.305988Z", Source: "zeek",
			Fields: map[string]string{"192.168.4.76": "id.orig_h", "192.168.4.1": "id.resp_h"}},
		{Fixture: "docs dns aaaa", ID: "CMdzit1AMNsmfAIiQc:1591367999.306059", At: "2020-06-05T14:39:59.306059Z", Source: "zeek"},
		{Fixture: "docs files", ID: "FEEsZS1w0Z0VJIb5x4:1591367999.604", At: "2020-06-05T14:39:59.604Z", Source: "zeek",
			Fields: map[string]string{"31.3.245.133": "tx_hosts", "192.168.4.76": "rx_hosts"}},
		{Fixture: "tenzir conn iso", ID: "Cx3bf12iVwo5m7Gkd1:2020-02-26T03:40:03.724911Z", At: "2020-02-26T03:40:03.724911Z", Source: "zeek"},
		{Fixture: "tenzir conn nested id", ID: "Cx3bf12iVwo5m7Gkd1:2020-02-26T03:40:03.724911", At: "2020-02-26T03:40:03.724911Z", Source: "zeek",
			Warnings: []string{`timestamp "2020-02-26T03:40:03.724911" has no UTC offset: read as UTC`},
			Fields:   map[string]string{"193.10.255.99": "id.orig_h", "141.9.40.50": "id.resp_h"}},
		{Fixture: "tenzir notice long connection", ID: "_0_0_2:Cpk0Nl33Zb5ZWLP1tc:2020-02-11T03:48:57.477193Z", At: "2020-02-11T03:48:57.477193Z", Source: "_0_0_2",
			Fields: map[string]string{"185.100.59.59": "id.orig_h,src", "141.9.255.157": "id.resp_h,dst"}},
		{Fixture: "zed notice invalid cert", ID: "notice:CxdbSa2KGTlMl3PPB2:FtEE2txjFBxLDbffi:2020-09-23T00:24:36.395445Z", At: "2020-09-23T00:24:36.395445Z", Source: "notice"},
		{Fixture: "scan notice src only", ID: "zeek/0/42", At: "2020-06-05T14:43:20.112233Z", Source: "zeek",
			Warnings: []string{`dst: invalid IP address "192.168.4.76x"`}},
		{Fixture: "conn ipv6 with system name", ID: "conn:C4J4Th3PJpwUYZZ6gc:1710408413.5", At: "2024-03-14T09:26:53.5Z", Source: "zeek-sensor-3"},
		{Fixture: "milliseconds", ID: "CmS1:1591367999306", At: "2020-06-05T14:39:59.306Z", Source: "zeek"},
		{Fixture: "epoch as a string", ID: "CstrTs:1704067200.0", At: "2024-01-01T00:00:00Z", Source: "zeek"},
		{Fixture: "missing ts and uid", ID: "zeek/0/42", At: "2026-03-14T09:26:53Z", Source: "zeek"},
		{Fixture: "wrong types", ID: "zeek/0/42", At: "2026-03-14T09:26:53Z", Source: "zeek", Warnings: []string{
			`id.orig_h: invalid IP address "3232235777"`, `src: invalid IP address "{\"a\":1}"`,
			`tx_hosts: invalid IP address "not an array"`, `ts "true" is neither epoch seconds nor an ISO 8601 time`}},
		{Fixture: "files hosts with non-strings and nulls", ID: "Fx1:1591367999.604", At: "2020-06-05T14:39:59.604Z", Source: "zeek",
			Warnings: []string{`tx_hosts: invalid IP address "17"`, `tx_hosts: invalid IP address "bogus"`},
			Fields:   map[string]string{"192.0.2.70": "tx_hosts,rx_hosts"}},
	})
}

// TestLogsOfOneConnectionHaveTheirOwnIDs: the documentation's dns.log holds two records of one
// connection (one uid); consumers de-duplicate on event_id and indicator.
func TestLogsOfOneConnectionHaveTheirOwnIDs(t *testing.T) {
	byName := map[string][]byte{}
	for _, f := range load(t) {
		byName[f.Name] = f.Value
	}
	ids := map[string]bool{}
	for _, name := range []string{"docs dns aaaa", "docs dns a"} {
		in, err := New().Decode(byName[name], rec)
		if err != nil {
			t.Fatal(err)
		}
		ids[in.EventID] = true
	}
	if len(ids) != 2 {
		t.Fatalf("event ids %v: two records share one", ids)
	}
}

func TestHugeArrays(t *testing.T) {
	var list []string
	for i := range 5000 {
		list = append(list, fmt.Sprintf(`"10.0.%d.%d"`, i>>8&255, i&255))
	}
	value := []byte(`{"ts":1591367999.604,"fuid":"Fbig","tx_hosts":[` + strings.Join(list, ",") + `],"rx_hosts":["192.0.2.1"]}`)
	formattest.CheckLimit(t, New(), value, 32)
	in, err := New().Decode(value, event.Record{Time: time.Now(), ID: func() string { return "t/0/1" }, MaxIndicators: 32})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(in.Partial.Msg, "names 5001 distinct addresses") {
		t.Errorf("partial %q does not count every address", in.Partial.Msg)
	}
}

func TestSniff(t *testing.T) {
	d := New()
	for _, tt := range []struct {
		value string
		want  bool
	}{
		{`{"id.orig_h":"192.0.2.1"}`, true},
		{`{"id.resp_h":"192.0.2.1"}`, true},
		{`{"ts":1,"uid":"C1","x":1}`, true},
		{`{"ts":1,"fuid":"F1","tx_hosts":[]}`, true},
		{`{"ts":1,"note":"Scan::Port_Scan","src":"192.0.2.1"}`, true},
		{`{"id":{"orig_h":"192.0.2.1","resp_h":"192.0.2.2"}}`, true},
		{`{"id":"C1","orig_h":"192.0.2.1"}`, false},
		{`{"uid":"C1"}`, false},
		{`{"ts":1,"note":"x","indicator":{"type":"ipv4-addr","value":"8.8.8.8"}}`, false},
		{`{"x":{"id.orig_h":"192.0.2.1"}}`, false},
		{`{"event_type":"alert","src_ip":"192.0.2.1","dest_ip":"192.0.2.2"}`, false},
		{`{"id.orig_h":"192.0.2.1"`, false},
		{`srcip=192.0.2.1 "id.orig_h" uid ts`, false},
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
	limited.MaxIndicators = 2
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
