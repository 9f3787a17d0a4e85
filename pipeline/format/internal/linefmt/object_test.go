package linefmt

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzObject: whatever the bytes, the object parses with encoding/json and gives back each
// valid UTF-8 value unchanged.
func FuzzObject(f *testing.F) {
	for _, s := range []string{"", "plain", `q"uo\te`, "ctl\x00\x1f\n\r\t\b\f", "<&>", "é\u2028\u2029", "bad\xff\xfe"} {
		f.Add("k", s)
	}
	f.Fuzz(func(t *testing.T, k, v string) {
		o := NewObject(0)
		o.Add(k, v)
		o.Add(k, "second") // a repeated key keeps the first value
		o.Add("other", v)
		raw := o.JSON()
		var m map[string]string
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		want, wantKey := viaStd(t, v), viaStd(t, k)
		if wantKey != "other" && m[wantKey] != want || m["other"] != want {
			t.Fatalf("%s: got %q, want %q", raw, m[wantKey], want)
		}
	})
}

// viaStd is what encoding/json makes of s (invalid UTF-8 replaced).
func viaStd(t *testing.T, s string) string {
	var out string
	std, _ := json.Marshal(s)
	if err := json.Unmarshal(std, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSyslogTime(t *testing.T) {
	ref := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		header string
		want   time.Time
		ok     bool
	}{
		{"<134>Mar  4 09:26:53 host ", time.Date(2025, 3, 4, 9, 26, 53, 0, time.UTC), true},
		{"Jan  1 23:00:00 host ", time.Date(2026, 1, 1, 23, 0, 0, 0, time.UTC), true},
		{"Jan  2 12:00:00 host ", time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC), true},
		{"<13>Mar 14 2024 09:26:53 host ", time.Date(2024, 3, 14, 9, 26, 53, 0, time.UTC), true},
		{"<134>1 2026-03-14T09:26:53.003Z h a - - - ", time.Date(2026, 3, 14, 9, 26, 53, 3e6, time.UTC), true},
		{"<134>1 - h a - - - ", time.Time{}, false},
		{"<85>1 2023-01-13T10:10:16--5:00 h ", time.Time{}, false},
		{"", time.Time{}, false},
		{"<999999>", time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := SyslogTime(tt.header, ref)
		if ok != tt.ok || !got.Equal(tt.want) {
			t.Errorf("SyslogTime(%q) = %v, %v; want %v, %v", tt.header, got, ok, tt.want, tt.ok)
		}
	}
}

func TestEpoch(t *testing.T) {
	for s, want := range map[string]time.Time{
		"1545938887":          time.Unix(1545938887, 0),
		"1773480413003":       time.UnixMilli(1773480413003),
		"1557513467369913":    time.UnixMicro(1557513467369913),
		"1557513467369913239": time.Unix(0, 1557513467369913239),
	} {
		if got, ok := Epoch(s); !ok || !got.Equal(want) {
			t.Errorf("Epoch(%s) = %v, %v; want %v", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "12a", "-1", "99999999999999999999"} {
		if _, ok := Epoch(s); ok {
			t.Errorf("Epoch(%q) parsed", s)
		}
	}
}
