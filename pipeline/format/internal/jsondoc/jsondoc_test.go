package jsondoc

import (
	"testing"
	"time"
)

func TestParseEpoch(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string // "" when it must not parse
	}{
		{"1591367999.305988", "2020-06-05T14:39:59.305988Z"},
		{"1591367999", "2020-06-05T14:39:59Z"},
		{"1591367999306", "2020-06-05T14:39:59.306Z"}, // JSON::TS_MILLIS
		{"1591367999.1234567891", "2020-06-05T14:39:59.123456789Z"},
		{"1.591367999e9", "2020-06-05T14:39:59Z"},
		{"0", "1970-01-01T00:00:00Z"},
		{"-1", ""},
		{"253402300800", "checked below"}, // year 10000 in seconds, read as milliseconds: 1978
		{"253402300800.5", ""},
		{"1e300", ""},
		{"1.", "1970-01-01T00:00:01Z"}, // strconv.ParseFloat reads it
		{".5", "1970-01-01T00:00:00.5Z"},
		{"abc", ""},
		{"", ""},
	} {
		got, ok := ParseEpoch(tt.in)
		switch {
		case tt.in == "253402300800":
			if !ok || got.Year() != 1978 {
				t.Errorf("ParseEpoch(%q) = %v, %v; want milliseconds", tt.in, got, ok)
			}
		case tt.want == "" && ok:
			t.Errorf("ParseEpoch(%q) = %v; want no time", tt.in, got)
		case tt.want != "" && (!ok || got.Format(time.RFC3339Nano) != tt.want):
			t.Errorf("ParseEpoch(%q) = %v, %v; want %s", tt.in, got.Format(time.RFC3339Nano), ok, tt.want)
		}
	}
}

func TestParseISO(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		warns    bool
	}{
		{"2026-03-14T09:26:53.123456+0000", "2026-03-14T09:26:53.123456Z", false},
		{"2017-04-07T22:24:37.251547+0100", "2017-04-07T21:24:37.251547Z", false},
		{"2016-01-11T05:10:54.612110-0800", "2016-01-11T13:10:54.61211Z", false},
		{"2020-09-23T00:24:36.395445Z", "2020-09-23T00:24:36.395445Z", false},
		{"2020-09-23T02:24:36+02:00", "2020-09-23T00:24:36Z", false},
		{"2009-11-24T21:27:09.534255", "2009-11-24T21:27:09.534255Z", true},
		{"0000-01-01T00:00:00+0100", "", false},
		{"yesterday", "", false},
	} {
		got, warn, ok := ParseISO(tt.in)
		if tt.want == "" {
			if ok {
				t.Errorf("ParseISO(%q) = %v; want no time", tt.in, got)
			}
			continue
		}
		if !ok || got.UTC().Format(time.RFC3339Nano) != tt.want || (warn != "") != tt.warns {
			t.Errorf("ParseISO(%q) = %v, %q, %v; want %s", tt.in, got.UTC().Format(time.RFC3339Nano), warn, ok, tt.want)
		}
	}
}

func TestText(t *testing.T) {
	for _, tt := range []struct {
		raw, text string
		isString  bool
	}{
		{`"192.0.2.1"`, "192.0.2.1", true},
		{`"a\"b"`, `a"b`, true},
		{`"\u0031.2.3.4"`, "1.2.3.4", true},
		{`17`, "17", false},
		{`{"a":1}`, `{"a":1}`, false},
		{`null`, "", false},
		{``, "", false},
	} {
		text, isString := Text([]byte(tt.raw))
		if text != tt.text || isString != tt.isString {
			t.Errorf("Text(%s) = %q, %v; want %q, %v", tt.raw, text, isString, tt.text, tt.isString)
		}
	}
}
