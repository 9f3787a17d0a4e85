package rules

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

var known = []string{"criminalip", "abuseipdb", "virustotal", "greynoise", "otx", "internetdb", "geoip"}

func TestDefaultRulesCompile(t *testing.T) {
	f, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Compile(known)
	if err != nil {
		t.Fatal(err)
	}
	want := "lists,geoip,internetdb,greynoise,otx,criminalip,abuseipdb,virustotal"
	if got := strings.Join(c.Sources(), ","); got != want {
		t.Errorf("cascade %s, want offline, free, then paid: %s", got, want)
	}
	if vt := c.stages[3].sources[0]; vt.Name != "virustotal" || vt.when == nil ||
		vt.when.Holds(&enrich.Facts{Score: 90, ValidatedBy: []string{"a", "b"}}) || !vt.when.Holds(&enrich.Facts{Score: 66, ValidatedBy: []string{"a"}}) {
		t.Errorf("VirusTotal breaks ties only: %+v", vt)
	}
	if len(c.stop) != 2 || c.stop[0].String() != "block_listed" || c.stop[1].String() != "benign_service" {
		t.Errorf("stop_when %v", c.stop)
	}
	if c.Model().BenignCap != 39 || c.Model().Weights["criminalip"] != 1 {
		t.Errorf("scoring defaults not applied: %+v", c.Model())
	}
	if c.SourceOptions("otx").Fields == nil || c.SourceOptions("geoip").Fields != nil {
		t.Error("field extractors: otx maps fields, geoip none")
	}
}

// TestInvalidRules: every file in testdata/invalid fails with the line and reason its
// "# want:" comments name.
func TestInvalidRules(t *testing.T) {
	files, _ := filepath.Glob("testdata/invalid/*.yaml")
	if len(files) < 10 {
		t.Fatalf("%d invalid cases", len(files))
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var wants []string
			for _, line := range strings.Split(string(raw), "\n") {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					wants = append(wants, w)
				}
			}
			f, err := Parse("bad.yaml", raw)
			if err == nil {
				_, err = f.Compile(known)
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestConditionsSeeFacts(t *testing.T) {
	f, err := Parse("r.yaml", []byte(`version: 1
stages:
  - sources: [lists]
  - sources:
      - {name: criminalip, when: 'score >= 40 || "scanner" in tags'}
stop_when:
  - benign_service || (block_listed && len(validated_by) >= 1)
`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Compile(known)
	if err != nil {
		t.Fatal(err)
	}
	when := c.stages[1].sources[0].when
	for _, tc := range []struct {
		score int
		tags  []string
		want  bool
	}{{10, nil, false}, {40, nil, true}, {0, []string{"scanner"}, true}} {
		if got := when.Holds(&enrich.Facts{Score: tc.score, Tags: tc.tags}); got != tc.want {
			t.Errorf("score %d tags %v: %v", tc.score, tc.tags, got)
		}
	}
}

func TestFieldsExtractAndMerge(t *testing.T) {
	f, err := Parse("r.yaml", []byte(`version: 1
stages: [{sources: [otx, criminalip, abuseipdb]}]
fields:
  - name: families
    merge: union
    from:
      - {source: otx, path: "pulse_info.related.alienvault.malware_families[]"}
      - {source: otx, path: "pulse_info.pulses[].malware_families[].display_name"}
      - {source: criminalip, path: "ip_category.data[].type"}
  - name: usage
    from:
      - {source: abuseipdb, path: data.usageType}
      - {source: criminalip, path: "whois.data[0].org_name"}
  - name: reports
    from: [{source: abuseipdb, path: data.totalReports}]
`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Compile(known)
	if err != nil {
		t.Fatal(err)
	}
	otx := c.SourceOptions("otx").Fields.Extract([]byte(`{"pulse_info":{"related":{"alienvault":{"malware_families":["Mirai","Gafgyt"]}},
		"pulses":[{"malware_families":[{"display_name":"Mirai"},{"display_name":"Mozi\n"}]},{"malware_families":null}]}}`))
	cip := c.SourceOptions("criminalip").Fields.Extract([]byte(`{"ip_category":{"data":[{"type":"scanner"},{"type":7},{"type":null}]},
		"whois":{"data":[{"org_name":"Example Hosting"},{"org_name":"second"}]}}`))
	abuse := c.SourceOptions("abuseipdb").Fields.Extract([]byte(`{"data":{"usageType":null,"totalReports":37}}`))
	if got := string(otx["families"]); got != `["Mirai","Gafgyt","Mozi"]` {
		t.Errorf("otx families %s", got)
	}
	if got := string(cip["families"]); got != `["scanner",7]` {
		t.Errorf("criminalip families %s", got)
	}
	if got := string(cip["usage"]); got != `"Example Hosting"` {
		t.Errorf("indexed path %s", got)
	}
	if _, ok := abuse["usage"]; ok || string(abuse["reports"]) != `37` {
		t.Errorf("abuseipdb %v", abuse)
	}
	plan, _ := c.Plan(nil)
	merged := plan.Fields.Merge(map[string]*event.ProviderOutcome{
		"otx": {Fields: otx}, "criminalip": {Fields: cip}, "abuseipdb": {Fields: abuse},
	})
	want := map[string]string{"families": `["Mirai","Gafgyt","Mozi","scanner",7]`, "usage": `"Example Hosting"`, "reports": `37`}
	for k, v := range want {
		if string(merged[k]) != v {
			t.Errorf("merged %s = %s, want %s", k, merged[k], v)
		}
	}
	if out, _ := json.Marshal(merged); !json.Valid(out) {
		t.Errorf("merged fields are not JSON: %s", out)
	}
}

// FuzzExtract: a vendor's body is outside input; extraction must never panic and always yield
// valid JSON within the limits.
func FuzzExtract(f *testing.F) {
	for _, s := range []string{`{"a":{"b":[{"c":"x"},{"c":1}]}}`, `[1,2]`, `{"a":null}`, `"s"`, `{"a":{"b":[[1]]}}`, `{`} {
		f.Add([]byte(s))
	}
	var paths []path
	for _, src := range []string{"a.b[].c", "a.b[0]", "a", "a.b[].c[]", "a.b"} {
		p, err := parsePath(src)
		if err != nil {
			f.Fatal(err)
		}
		paths = append(paths, p)
	}
	x := &extractor{fields: []field{{name: "f", from: []fieldFrom{{source: "s", path: paths[0]}, {source: "s", path: paths[3]}}},
		{name: "g", from: []fieldFrom{{source: "s", path: paths[1]}}}, {name: "h", from: []fieldFrom{{source: "s", path: paths[2]}}},
		{name: "i", from: []fieldFrom{{source: "s", path: paths[4]}}}}}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for name, v := range x.Extract(raw) {
			if !json.Valid(v) {
				t.Fatalf("%s: invalid JSON %q", name, v)
			}
			var arr []any
			if json.Unmarshal(v, &arr) == nil && len(arr) > maxFieldValues {
				t.Fatalf("%s: %d values", name, len(arr))
			}
		}
	})
}

// TestPathKeysAreLiteral: characters gjson reads as syntax are plain key characters in a path.
func TestPathKeysAreLiteral(t *testing.T) {
	for src, want := range map[string]string{
		"rate-limit":      `"100-lookups/day"`,
		"odd#key*?":       `true`,
		"list[1]":         `"b"`,
		"list[]":          `["a","b"]`,
		"nested[].v[]":    `[1,2,3]`,
		"nested[0].v[1]":  `2`,
		"missing.deeper":  ``,
		"list[7]":         ``,
		"nested[].absent": ``,
	} {
		p, err := parsePath(src)
		if err != nil {
			t.Fatal(err)
		}
		x := &extractor{fields: []field{{name: "f", from: []fieldFrom{{source: "s", path: p}}}}}
		got := x.Extract([]byte(`{"rate-limit":"100-lookups/day","odd#key*?":true,"list":["a","b"],"nested":[{"v":[1,2]},{"v":[3]}]}`))
		if string(got["f"]) != want {
			t.Errorf("%s: %s, want %s", src, got["f"], want)
		}
	}
}

func TestMergeValuesUnionIsBounded(t *testing.T) {
	var parts []json.RawMessage
	for i := range 3 {
		var vals []string
		for j := range 20 {
			vals = append(vals, fmt.Sprintf(`"v%d"`, i*20+j))
		}
		parts = append(parts, json.RawMessage("["+strings.Join(vals, ",")+"]"))
	}
	var got []string
	if err := json.Unmarshal(mergeValues(parts, true), &got); err != nil || len(got) != maxFieldValues || got[0] != "v0" {
		t.Fatalf("%d values (%v), want the first %d", len(got), err, maxFieldValues)
	}
	if v := mergeValues([]json.RawMessage{json.RawMessage(`"a"`), json.RawMessage(`["a","b"]`)}, true); string(v) != `["a","b"]` {
		t.Errorf("union %s", v)
	}
}

// TestMergeSharesOneSourcesMap: when every merged field is one source's value as it is and the
// source has no other, Merge returns that source's own map; otherwise a new map with the same
// values as ever (a union of one scalar becomes an array, a missing field is left out).
func TestMergeSharesOneSourcesMap(t *testing.T) {
	f, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Compile(known)
	if err != nil {
		t.Fatal(err)
	}
	plan, _ := c.Plan(nil)
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	cip := map[string]json.RawMessage{"threat_type": raw(`["scanner","hosting"]`), "cves": raw(`["CVE-2024-1"]`)}
	abuse := map[string]json.RawMessage{"usage_type": raw(`"Data Center"`), "abuse_reports": raw(`12`)}
	for _, tt := range []struct {
		name     string
		outcomes map[string]*event.ProviderOutcome
		want     map[string]string
		shares   bool // Merge returns a source's own map
	}{
		{"one source", map[string]*event.ProviderOutcome{"criminalip": {Fields: cip}},
			map[string]string{"threat_type": `["scanner","hosting"]`, "cves": `["CVE-2024-1"]`}, true},
		{"first-wins fields of one source", map[string]*event.ProviderOutcome{"abuseipdb": {Fields: abuse}, "criminalip": {}},
			map[string]string{"usage_type": `"Data Center"`, "abuse_reports": `12`}, true},
		{"two sources", map[string]*event.ProviderOutcome{"criminalip": {Fields: cip}, "abuseipdb": {Fields: abuse}},
			map[string]string{"threat_type": `["scanner","hosting"]`, "cves": `["CVE-2024-1"]`, "usage_type": `"Data Center"`, "abuse_reports": `12`}, false},
		{"a union of one scalar", map[string]*event.ProviderOutcome{"greynoise": {Fields: map[string]json.RawMessage{"threat_type": raw(`"malicious"`)}}},
			map[string]string{"threat_type": `["malicious"]`}, false},
		{"a field the rules do not map", map[string]*event.ProviderOutcome{"criminalip": {Fields: map[string]json.RawMessage{"cves": raw(`["CVE-1"]`), "gone": raw(`1`)}}},
			map[string]string{"cves": `["CVE-1"]`}, false},
		{"none", map[string]*event.ProviderOutcome{"criminalip": {}}, nil, false},
	} {
		got := plan.Fields.Merge(tt.outcomes)
		if len(got) != len(tt.want) {
			t.Errorf("%s: %d fields %v, want %d", tt.name, len(got), got, len(tt.want))
		}
		for k, v := range tt.want {
			if string(got[k]) != v {
				t.Errorf("%s: %s = %s, want %s", tt.name, k, got[k], v)
			}
		}
		if shared := sharesMap(got, tt.outcomes); shared != tt.shares {
			t.Errorf("%s: returns a source's own map: %v, want %v", tt.name, shared, tt.shares)
		}
	}
}

// sharesMap reports whether m is one of the outcomes' own Fields maps.
func sharesMap(m map[string]json.RawMessage, outcomes map[string]*event.ProviderOutcome) bool {
	for _, o := range outcomes {
		if m != nil && o.Fields != nil && reflect.ValueOf(m).Pointer() == reflect.ValueOf(o.Fields).Pointer() {
			return true
		}
	}
	return false
}
