package kv

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/format/cef"
	"github.com/threatpipe/threatpipe/pipeline/format/formattest"
	"github.com/threatpipe/threatpipe/pipeline/format/internal/fmttest"
)

var rec = event.Record{
	Time:          time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC),
	ID:            func() string { return "topic/0/42" },
	MaxIndicators: 32,
}

func TestContract(t *testing.T) {
	formattest.Run(t, New(), fmttest.Fixtures(t, "testdata/kv.txt"), formattest.Options{
		Others: fmttest.Others(t, "kv"),
	})
}

// TestCEFIsNotClaimed: CEF extensions are key=value too, with src= and dst=.
func TestCEFIsNotClaimed(t *testing.T) {
	for _, line := range fmttest.Messages(t, "cef") {
		if New().Sniff(line) {
			t.Errorf("Sniff claims the CEF line %.80q", line)
		}
	}
}

func TestLimit(t *testing.T) {
	line := "srcip=192.0.2.1 src=192.0.2.2 dstip=192.0.2.3 dst=192.0.2.4 remip=192.0.2.5 transip=192.0.2.6 tranip=192.0.2.7"
	formattest.CheckLimit(t, New(), []byte(line), 3)
}

func TestFields(t *testing.T) {
	tests := []struct {
		name, line string
		id, source string
		at         time.Time
		warnings   int
		warningHas string
	}{
		{"FortiGate eventtime in nanoseconds, devid, logid",
			`date=2019-05-10 time=11:37:47 devname="FGT" devid="FGT1" logid="0000000013" eventtime=1557513467369913239 srcip=8.8.8.8`,
			"FGT1:0000000013:1557513467369913239", "FGT", time.Unix(0, 1557513467369913239).UTC(), 0, ""},
		{"eventtime in microseconds",
			`logid="13" eventtime=1557513467369913 srcip=8.8.8.8`,
			"13:1557513467369913", "kv", time.UnixMicro(1557513467369913).UTC(), 0, ""},
		{"eventtime in seconds",
			`logid="13" eventtime=1545938887 srcip=8.8.8.8`,
			"13:1545938887", "kv", time.Unix(1545938887, 0).UTC(), 0, ""},
		{"date and time in tz",
			`date=2026-03-14 time=09:26:53 tz="-0500" sessionid=77 srcip=8.8.8.8`,
			"session:77", "kv", time.Date(2026, 3, 14, 14, 26, 53, 0, time.UTC), 0, ""},
		{"date and time without tz: UTC",
			`date=2026-03-14 time=09:26:53 srcip=8.8.8.8 dstip=1.1.1.1`,
			"topic/0/42", "kv", time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC), 0, ""},
		{"Check Point epoch time, loguid, origin",
			`[time:"1677727689"; loguid:"{0x1,0x2}"; origin:"192.168.178.40"; src:"10.0.0.3"]`,
			"{0x1,0x2}", "192.168.178.40", time.Unix(1677727689, 0).UTC(), 0, ""},
		{"bad eventtime, then date and time",
			`eventtime=soon date=2026-03-14 time=09:26:53 srcip=8.8.8.8`,
			"topic/0/42", "kv", time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC), 1, "eventtime \"soon\""},
		{"syslog header time when the pairs carry none",
			`<134>Mar 14 09:26:53 gw hostname=gw7 src=8.8.8.8 dst=1.1.1.1`,
			"topic/0/42", "gw7", time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC), 0, ""},
		{"bad date: the record's time",
			`date=14/03/2026 time=09:26:53 srcip=8.8.8.8`,
			"topic/0/42", "kv", rec.Time, 1, "are not yyyy-mm-dd"},
		{"an id over 256 bytes: the record's, with a warning",
			`loguid="` + strings.Repeat("u", 300) + `" srcip=8.8.8.8`,
			"topic/0/42", "kv", rec.Time, 1, "event id is 300 bytes (limit 256): replaced by topic/0/42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := New().Decode([]byte(tt.line), rec)
			if err != nil {
				t.Fatal(err)
			}
			if in.EventID != tt.id || in.Source != tt.source || !in.ObservedAt.Equal(tt.at) {
				t.Errorf("id %q source %q at %v; want %q %q %v", in.EventID, in.Source, in.ObservedAt, tt.id, tt.source, tt.at)
			}
			if len(in.Warnings) != tt.warnings || tt.warningHas != "" && !strings.Contains(strings.Join(in.Warnings, "; "), tt.warningHas) {
				t.Errorf("warnings %q; want %d with %q", in.Warnings, tt.warnings, tt.warningHas)
			}
		})
	}
}

// TestContextValues decodes the context with encoding/json and checks values come back as the
// device meant them in each of the three separator modes.
func TestContextValues(t *testing.T) {
	tests := []struct {
		line string
		want map[string]string
	}{
		{`srcip=1.2.3.4 msg="say \"hi\" \\ C:\dir" empty="" path=C:\Windows`,
			map[string]string{"msg": `say "hi" \ C:\dir`, "empty": "", "path": `C:\Windows`}},
		{`src=1.2.3.4|name=a\=b\|c|dst=5.6.7.8|`,
			map[string]string{"name": "a=b|c", "dst": "5.6.7.8"}},
		{`<134>1 - h CheckPoint 1 - [src:"1.2.3.4"; tag:"x[y\]"; q:"a\"b"; sys_message::"m"]`,
			map[string]string{"tag": "x[y]", "q": `a"b`, "sys_message": "m"}},
		{`srcip=1.2.3.4 srcip=5.6.7.8 note="<&>"`,
			map[string]string{"srcip": "1.2.3.4", "note": "<&>"}}, // a repeated key keeps its first value
	}
	for _, tt := range tests {
		in, err := New().Decode([]byte(tt.line), rec)
		if err != nil {
			t.Fatalf("%s: %v", tt.line, err)
		}
		var m map[string]string
		if err := json.Unmarshal(in.Context, &m); err != nil {
			t.Fatalf("context %s: %v", in.Context, err)
		}
		for k, v := range tt.want {
			if m[k] != v {
				t.Errorf("%s: %s = %q, want %q", tt.line, k, m[k], v)
			}
		}
	}
}

func TestSniff(t *testing.T) {
	for _, tt := range []struct {
		line string
		want bool
	}{
		{"srcip=1.2.3.4 dstip=5.6.7.8", true},
		{"src=1.2.3.4", false},                               // one pair
		{"user=bob action=deny", false},                      // no address key
		{`srcip="" user=bob`, false},                         // an empty address
		{`{"srcip":"1.2.3.4","x":"a=b"}`, false},             // JSON
		{` {"src=1.2.3.4 dst=5.6.7.8"}`, false},              // JSON after white space
		{"CEF:0|V|P|1|2|n|4|src=1.2.3.4 dst=5.6.7.8", false}, // CEF
		{`<134>1 2026-03-14T09:26:53Z h CheckPoint 1 - [action:"Drop"; src:"1.2.3.4"]`, true},
		{"a=1|src=1.2.3.4|", true},
		{"hello world", false},
	} {
		if got := New().Sniff([]byte(tt.line)); got != tt.want {
			t.Errorf("Sniff(%q) = %v, want %v", tt.line, got, tt.want)
		}
	}
}

// TestLongLine: 60 KB of pairs before the address, read in linear time.
func TestLongLine(t *testing.T) {
	line := strings.Repeat(`k="v v = v" `, 60<<10/12) + "srcip=8.8.8.8"
	start := time.Now()
	in, err := New().Decode([]byte(line), rec)
	if err != nil || len(in.Sightings) != 1 {
		t.Fatalf("Decode = %v, %v", in, err)
	}
	if !New().Sniff([]byte(line)) {
		t.Error("not sniffed")
	}
	unquoted := "srcip=8.8.8.8 msg=" + strings.Repeat("w = ", 60<<10/4)
	if _, err := New().Decode([]byte(unquoted), rec); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("two 60 KB lines took %v", d)
	}
}

func FuzzDecode(f *testing.F) {
	for _, line := range fmttest.Messages(f, "kv") {
		f.Add(line)
	}
	d := New()
	f.Fuzz(func(t *testing.T, value []byte) {
		sniffed := d.Sniff(value)
		if _, err := fmttest.CheckDecoded(t, d, value, rec); err != nil {
			return
		}
		if sniffed && cef.New().Sniff(value) {
			t.Fatalf("both kv and CEF claim %q", value)
		}
	})
}

// BenchmarkDecode: Fortinet's published forward-traffic line and Check Point's Anti-Malware
// line (address at the end), sniffed and decoded.
func BenchmarkDecode(b *testing.B) {
	lines := fmttest.Messages(b, "kv")
	for _, bc := range []struct {
		name string
		line []byte
	}{{"fortigate", lines[0]}, {"checkpoint", lines[5]}} {
		b.Run(bc.name, func(b *testing.B) {
			d := New()
			b.ReportAllocs()
			for b.Loop() {
				if !d.Sniff(bc.line) {
					b.Fatal("not sniffed")
				}
				if _, err := d.Decode(bc.line, rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
