package cef

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/format/formattest"
	"github.com/threatpipe/threatpipe/pipeline/format/internal/fmttest"
)

var rec = event.Record{
	Time:          time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC),
	ID:            func() string { return "topic/0/42" },
	MaxIndicators: 32,
}

func TestContract(t *testing.T) {
	formattest.Run(t, New(), fmttest.Fixtures(t, "testdata/cef.txt"), formattest.Options{
		Others: fmttest.Others(t, "cef"),
	})
}

// TestLimit: a line naming all six address keys, each a different address, with a limit of 2.
func TestLimit(t *testing.T) {
	line := "CEF:0|Acme|FW|1|2|n|4|src=192.0.2.1 dst=192.0.2.2 c6a2=2001:db8::1 c6a3=2001:db8::2 " +
		"sourceTranslatedAddress=192.0.2.3 destinationTranslatedAddress=192.0.2.4"
	formattest.CheckLimit(t, New(), []byte(line), 2)
	in, err := New().Decode([]byte(line), rec)
	if err != nil || len(in.Sightings) != 6 {
		t.Fatalf("Decode = %v, %v; want 6 sightings", in, err)
	}
	for i, want := range addressKeys {
		if got := in.Sightings[i].Fields; len(got) != 1 || got[0] != want {
			t.Errorf("sighting %d fields %v, want [%s]", i, got, want)
		}
	}
}

func TestFields(t *testing.T) {
	tests := []struct {
		name, line   string
		id, source   string
		at           time.Time
		warnings     int
		warningHas   string
		contextLacks string
	}{
		{"externalId, dvchost, rt in epoch milliseconds",
			"CEF:0|V|P|1|2|n|4|src=8.8.8.8 externalId=ev-1 dvchost=fw7 rt=1773480413003",
			"ev-1", "fw7", time.UnixMilli(1773480413003).UTC(), 0, "", ""},
		{"no id, host nor time: the record's, vendor and product",
			"CEF:0|Acme Corp|Fire Wall|1|2|n|4|src=8.8.8.8",
			"topic/0/42", "Acme Corp Fire Wall", rec.Time, 0, "", ""},
		{"rt in the spec's date form",
			"CEF:0|V|P|1|2|n|4|src=8.8.8.8 rt=Mar 14 2026 09:26:53",
			"topic/0/42", "V P", time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC), 0, "", ""},
		{"rt with milliseconds and zone",
			"CEF:0|V|P|1|2|n|4|src=8.8.8.8 rt=Mar 14 2026 09:26:53.250 UTC",
			"topic/0/42", "V P", time.Date(2026, 3, 14, 9, 26, 53, 250e6, time.UTC), 0, "", ""},
		{"bad rt, then end",
			"CEF:0|V|P|1|2|n|4|src=8.8.8.8 rt=yesterday end=1773480000000",
			"topic/0/42", "V P", time.UnixMilli(1773480000000).UTC(), 1, "rt \"yesterday\"", ""},
		{"start when no rt nor end",
			"CEF:0|V|P|1|2|n|4|src=8.8.8.8 start=Mar 14 2026 08:00:00",
			"topic/0/42", "V P", time.Date(2026, 3, 14, 8, 0, 0, 0, time.UTC), 0, "", ""},
		{"RFC 3164 header time, year from the record",
			"<134>Mar 14 09:26:53 host CEF:0|V|P|1|2|n|4|src=8.8.8.8",
			"topic/0/42", "V P", time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC), 0, "", ""},
		{"RFC 3164 header in December read in March: last year",
			"Dec 31 23:59:59 host CEF:0|V|P|1|2|n|4|src=8.8.8.8",
			"topic/0/42", "V P", time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC), 0, "", ""},
		{"RFC 5424 header time",
			"<134>1 2026-03-14T09:26:53.5+01:00 host app - - - CEF:0|V|P|1|2|n|4|src=8.8.8.8",
			"topic/0/42", "V P", time.Date(2026, 3, 14, 8, 26, 53, 5e8, time.UTC), 0, "", ""},
		{"externalId too long",
			"CEF:0|V|P|1|2|n|4|src=8.8.8.8 externalId=" + strings.Repeat("x", 300),
			"topic/0/42", "V P", rec.Time, 1, "externalId is 300 bytes", ""},
		{"bad severity and an address warning",
			"CEF:0|V|P|1|2|n|urgent|src=8.8.8.8 dst=1.2.3",
			"topic/0/42", "V P", rec.Time, 2, "severity \"urgent\"", "severity_level"},
		{"text before the first key",
			"CEF:0|V|P|1|2|n|4|garbage src=8.8.8.8",
			"topic/0/42", "V P", rec.Time, 1, "garbage", ""},
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
			if tt.contextLacks != "" && strings.Contains(string(in.Context), tt.contextLacks) {
				t.Errorf("context %s has %q", in.Context, tt.contextLacks)
			}
		})
	}
}

// TestContextIsStrictJSON decodes the context of every fixture with encoding/json and checks
// the header fields and extension values come back unescaped.
func TestContextIsStrictJSON(t *testing.T) {
	for _, line := range fmttest.Messages(t, "cef") {
		in, err := New().Decode(line, rec)
		if err != nil {
			continue
		}
		var m map[string]string
		if err := json.Unmarshal(in.Context, &m); err != nil {
			t.Fatalf("context %s: %v", in.Context, err)
		}
		if m["vendor"] == "" || m["severity"] == "" {
			t.Errorf("context %s lacks the header", in.Context)
		}
	}
	in, err := New().Decode([]byte(`CEF:0|V|P|1|2|n|4|src=8.8.8.8 msg=a\\b \=c\r\nd "quoted" <tag> é cs1=x\|y`), rec)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(in.Context, &m); err != nil {
		t.Fatal(err)
	}
	if want := "a\\b =c\r\nd \"quoted\" <tag> é"; m["msg"] != want {
		t.Errorf("msg %q, want %q", m["msg"], want)
	}
	if m["cs1"] != `x\|y` { // not one of the extension's escapes: kept as written
		t.Errorf("cs1 %q", m["cs1"])
	}
}

func TestSniff(t *testing.T) {
	d := New()
	for _, tt := range []struct {
		line string
		want bool
	}{
		{"CEF:0|a|b|c|d|e|f|", true},
		{"<134>1 2026-03-14T09:26:53Z " + strings.Repeat("h", 150) + " app - - - CEF:0|a|", true},
		{strings.Repeat("x", sniffWindow) + "CEF:0|a|", false},
		{"CEF:x|a|", false},
		{"CEF:", false},
		{"msg=CEF: mentioned CEF:0 here src=1.2.3.4", false},
		{"date=2026-03-14 srcip=1.2.3.4 dstip=5.6.7.8", false},
		{`{"message":"CEF:0|a|b"}`, true}, // never offered: the decoder sends JSON objects to JSON formats
	} {
		if got := d.Sniff([]byte(tt.line)); got != tt.want {
			t.Errorf("Sniff(%.60q) = %v, want %v", tt.line, got, tt.want)
		}
	}
}

// TestLongLine: a 60 KB value between two addresses is read whole, in linear time.
func TestLongLine(t *testing.T) {
	long := strings.Repeat("word = ", 60<<10/7)
	line := "CEF:0|V|P|1|2|n|4|src=8.8.8.8 msg=" + long + " dst=9.9.9.9"
	start := time.Now()
	in, err := New().Decode([]byte(line), rec)
	if err != nil || len(in.Sightings) != 2 {
		t.Fatalf("Decode = %v, %v", in, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a 60 KB line took %v", d)
	}
}

func FuzzDecode(f *testing.F) {
	for _, line := range fmttest.Messages(f, "cef") {
		f.Add(line)
	}
	d := New()
	f.Fuzz(func(t *testing.T, value []byte) {
		if _, err := fmttest.CheckDecoded(t, d, value, rec); err != nil {
			return
		}
		if utf8.Valid(value) && !d.Sniff(value) {
			t.Fatalf("decoded but not sniffed: %q", value)
		}
	})
}

// BenchmarkDecode: Fortinet's published CEF traffic line, sniffed and decoded.
func BenchmarkDecode(b *testing.B) {
	line := fmttest.Messages(b, "cef")[4]
	d := New()
	b.ReportAllocs()
	for b.Loop() {
		if !d.Sniff(line) {
			b.Fatal("not sniffed")
		}
		if _, err := d.Decode(line, rec); err != nil {
			b.Fatal(err)
		}
	}
}
