package rules

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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
