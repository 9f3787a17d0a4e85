package view

import (
	"errors"
	"net/url"
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestParseFilter(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  Filter
	}{
		{"", Filter{Limit: 50}},
		{"severity=critical&severity=high,critical&tag=+tor+&country=de&isp=Hosting&since=7d&q=185.220.&limit=500&offset=20",
			Filter{Severity: []string{"high", "critical"}, Tag: "tor", Country: "DE", ISP: "Hosting", Since: 7 * 24 * time.Hour, Query: "185.220.", Limit: 500, Offset: 20}},
		{"severity=&tag=&country=&isp=&since=all&q=", Filter{Limit: 50}},
		{"since=15m", Filter{Since: 15 * time.Minute, Limit: 50}},
		{"since=1h30m", Filter{Since: 90 * time.Minute, Limit: 50}},
		{"q=2001:DB8::", Filter{Query: "2001:db8::", Limit: 50}},
		{"q=10.1.2.3/8", Filter{Query: "10.0.0.0/8", Limit: 50}},
		{"severity=INFO", Filter{Severity: []string{"info"}, Limit: 50}},
	} {
		q, _ := url.ParseQuery(tc.query)
		got, err := ParseFilter(q)
		if err != nil {
			t.Errorf("%q: %v", tc.query, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %+v, want %+v", tc.query, got, tc.want)
		}
	}
}

func TestParseFilterErrorsNameTheParameter(t *testing.T) {
	for query, param := range map[string]string{
		"severity=urgent":                 "severity",
		"tag=a&tag=b":                     "tag",
		"tag=" + string(make([]byte, 65)): "tag",
		"isp=a%00b":                       "isp",
		"isp=%ff":                         "isp",
		"country=DEU":                     "country",
		"country=1a":                      "country",
		"since=yesterday":                 "since",
		"since=0s":                        "since",
		"since=-1h":                       "since",
		"since=99999d":                    "since",
		"q=example.com":                   "q",
		"q=10.0.0.0/40":                   "q",
		"q=1.2.3.4/x":                     "q",
		"limit=0":                         "limit",
		"limit=501":                       "limit",
		"limit=ten":                       "limit",
		"offset=-1":                       "offset",
		"offset=99999999999":              "offset",
		"sort=score":                      "sort",
	} {
		q, _ := url.ParseQuery(query)
		_, err := ParseFilter(q)
		var pe *ParamError
		if !errors.As(err, &pe) || pe.Param != param {
			t.Errorf("%q: %v, want an error naming %s", query, err, param)
		}
	}
}

func TestFilterValuesRoundTrip(t *testing.T) {
	f := Filter{Severity: []string{"medium", "critical"}, Tag: "tor", Country: "NL", ISP: "a & b", Since: 24 * time.Hour, Query: "10.0.0.0/8", Limit: 20, Offset: 40}
	back, err := ParseFilter(f.Values())
	if err != nil || !reflect.DeepEqual(back, f) {
		t.Errorf("%+v -> %q -> %+v (%v)", f, f.Values().Encode(), back, err)
	}
	if got := (Filter{Limit: 50}).Values().Encode(); got != "" {
		t.Errorf("defaults encode as %q", got)
	}
}

func TestFormatSince(t *testing.T) {
	for d, want := range map[time.Duration]string{
		15 * time.Minute: "15m", time.Hour: "1h", 24 * time.Hour: "24h", 7 * 24 * time.Hour: "7d",
		90 * time.Minute: "1h30m", 90 * time.Second: "1m30s",
	} {
		if got := FormatSince(d); got != want {
			t.Errorf("%s: %q, want %q", d, got, want)
		}
	}
}

func TestFilterMatch(t *testing.T) {
	now := time.Now()
	r := Row{IP: "2001:db8::5", Severity: "high", Tags: []string{"Tor"}, Country: "DE", ISP: "Example Hosting", LastSeen: now.Add(-2 * time.Hour)}
	for _, tc := range []struct {
		f    Filter
		want bool
	}{
		{Filter{}, true},
		{Filter{Severity: []string{"low", "high"}}, true},
		{Filter{Severity: []string{"critical"}}, false},
		{Filter{Tag: "tor"}, true},
		{Filter{Tag: "to"}, false},
		{Filter{Country: "de"}, true},
		{Filter{ISP: "HOSTING"}, true},
		{Filter{Since: time.Hour}, false},
		{Filter{Since: 3 * time.Hour}, true},
		{Filter{Query: "2001:db8:"}, true},
		{Filter{Query: "2001:db8::/32"}, true},
		{Filter{Query: "10.0.0.0/8"}, false},
		{Filter{Query: "2001:db9"}, false},
	} {
		if got := tc.f.Match(r, now); got != tc.want {
			t.Errorf("%+v: %v, want %v", tc.f, got, tc.want)
		}
	}
}

// FuzzParseFilter: any query string either fails with an error naming a parameter or yields a
// bounded filter that survives a round trip through Values.
func FuzzParseFilter(f *testing.F) {
	for _, seed := range []string{
		"", "severity=high,critical&tag=tor", "since=7d", "since=1.5h", "q=10.0.0.1/8", "q=2001:DB8::", "country=de",
		"limit=500&offset=10", "severity=urgent", "since=-1h", "%zz", "isp=%e2%80%ae", "tag=+a+&tag=b", "since=99999.99999999s",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		flt, err := ParseFilter(q)
		if err != nil {
			var pe *ParamError
			if !errors.As(err, &pe) || pe.Param == "" {
				t.Fatalf("error without a parameter: %v", err)
			}
			return
		}
		if flt.Limit < 1 || flt.Limit > MaxLimit || flt.Offset < 0 || flt.Offset > maxOffset || flt.Since < 0 {
			t.Fatalf("unbounded filter %+v", flt)
		}
		for _, s := range flt.Severity {
			if !slices.Contains(Severities, s) {
				t.Fatalf("severity %q", s)
			}
		}
		back, err := ParseFilter(flt.Values())
		if err != nil || !reflect.DeepEqual(back, flt) {
			t.Fatalf("round trip: %+v -> %q -> %+v (%v)", flt, flt.Values().Encode(), back, err)
		}
		flt.Match(Row{IP: "192.0.2.1", Tags: []string{"tor"}}, time.Now())
	})
}

func FuzzParseSince(f *testing.F) {
	for _, seed := range []string{"", "all", "15m", "7d", "3660d", "3661d", "+1d", "1h30m", "-5m", "0", "1e9h", "9223372036854775807ns"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseSince(s)
		if err != nil {
			return
		}
		if d < 0 || d > maxSince {
			t.Fatalf("%q -> %s", s, d)
		}
		if d > 0 {
			back, err := ParseSince(FormatSince(d))
			if err != nil || back != d {
				t.Fatalf("%q -> %s -> %q -> %s (%v)", s, d, FormatSince(d), back, err)
			}
		}
	})
}
