package docs_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"

	"github.com/threatpipe/threatpipe/docs"
	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/event"
	formats "github.com/threatpipe/threatpipe/pipeline/format/all"
	"github.com/threatpipe/threatpipe/pipeline/format/eve"
	"github.com/threatpipe/threatpipe/pipeline/format/zeek"
	"github.com/threatpipe/threatpipe/pipeline/gate"
)

func newValidator(t *testing.T) *docs.Validator {
	t.Helper()
	v, err := docs.NewValidator()
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}
	return v
}

// schemaDoc returns an embedded schema as generic JSON.
func schemaDoc(t *testing.T, name string) map[string]any {
	t.Helper()
	raw, err := docs.Schemas.ReadFile("schemas/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

// at walks a schema along object keys.
func at(t *testing.T, m map[string]any, keys ...string) any {
	t.Helper()
	var cur any = m
	for _, k := range keys {
		obj, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("%s: not an object before %q", strings.Join(keys, "."), k)
		}
		if cur, ok = obj[k]; !ok {
			t.Fatalf("%s: no %q", strings.Join(keys, "."), k)
		}
	}
	return cur
}

func strings_(t *testing.T, v any) []string {
	t.Helper()
	list, ok := v.([]any)
	if !ok {
		t.Fatalf("%v is not an array", v)
	}
	out := make([]string, len(list))
	for i, x := range list {
		if out[i], ok = x.(string); !ok {
			t.Fatalf("%v is not a string", x)
		}
	}
	return out
}

func keys(t *testing.T, v any) []string {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%v is not an object", v)
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// violations lists every error in a validation error as "<JSON pointer> <keyword>", e.g.
// "/score maximum" or " required" (a required property missing from the document itself).
func violations(err error) []string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	var out []string
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		p := ""
		for _, s := range e.InstanceLocation {
			p += "/" + s
		}
		if kw := e.ErrorKind.KeywordPath(); len(kw) > 0 {
			out = append(out, p+" "+kw[len(kw)-1])
		} else if _, ok := e.ErrorKind.(*kind.Not); ok { // kind.Not reports no keyword path
			out = append(out, p+" not")
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return out
}

func TestSchemasCompile(t *testing.T) {
	v := newValidator(t)
	files, err := fs.Glob(docs.Schemas, "schemas/*.json")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range files {
		want = append(want, filepath.Base(f))
	}
	if got := v.Names(); !slices.Equal(got, sorted(want)) {
		t.Fatalf("compiled %v, embedded %v", got, want)
	}
	for _, name := range []string{docs.IndicatorEventSchema, docs.ECSEventSchema, docs.ScoredEventSchema, docs.DeadLetterSchema} {
		if !slices.Contains(want, name) {
			t.Errorf("schema %s is not embedded", name)
		}
	}
	idRE := regexp.MustCompile(`^https://threatpipe\.dev/schemas/([a-z-]+)/([0-9]+)\.json$`)
	for _, name := range want {
		m := schemaDoc(t, name)
		if got := m["$schema"]; got != "https://json-schema.org/draft/2020-12/schema" {
			t.Errorf("%s: $schema %v", name, got)
		}
		id, _ := m["$id"].(string)
		sm := idRE.FindStringSubmatch(id)
		if sm == nil || sm[1]+".schema.json" != name || sm[2] != event.SchemaVersion {
			t.Errorf("%s: $id %q does not match the file name and schema version %s", name, id, event.SchemaVersion)
		}
		if m["x-schema-version"] != event.SchemaVersion {
			t.Errorf("%s: x-schema-version %v, want %q", name, m["x-schema-version"], event.SchemaVersion)
		}
		for _, k := range []string{"title", "description"} {
			if s, _ := m[k].(string); s == "" {
				t.Errorf("%s: no %s", name, k)
			}
		}
	}
}

func TestValidateNames(t *testing.T) {
	v := newValidator(t)
	doc := []byte(`{"event_id":"e","indicator":{"type":"ipv4-addr","value":"192.0.2.1"}}`)
	for _, name := range []string{"indicator-event.schema.json", "indicator-event"} {
		if err := v.Validate(name, doc); err != nil {
			t.Errorf("Validate(%q): %v", name, err)
		}
	}
	if err := v.Validate("nope", doc); err == nil || !strings.Contains(err.Error(), "unknown schema") {
		t.Errorf("unknown schema: %v", err)
	}
	if err := v.Validate(docs.IndicatorEventSchema, []byte(`{"event_id":`)); err == nil {
		t.Error("truncated JSON validated")
	}
	if err := docs.Validate(docs.IndicatorEventSchema, doc); err != nil {
		t.Errorf("docs.Validate: %v", err)
	}
	if err := docs.Validate(docs.IndicatorEventSchema, []byte(`{}`)); err == nil {
		t.Error("docs.Validate accepted an empty object")
	}
}

// invalidAt names, for every invalid example under testdata/, the violation that makes it
// invalid: "<JSON pointer> <keyword>" ("" is the document itself).
var invalidAt = map[string]string{
	"indicator-event/invalid-missing-event-id.json":      " required",
	"indicator-event/invalid-indicator-type-domain.json": "/indicator/type enum",
	"indicator-event/invalid-observed-at.json":           "/observed_at format",
	"indicator-event/invalid-context-not-object.json":    "/context type",
	"ecs-event/invalid-no-ip.json":                       " anyOf",
	"ecs-event/invalid-has-indicator.json":               " not",
	"scored-event/invalid-score-101.json":                "/score maximum",
	"scored-event/invalid-severity-severe.json":          "/severity enum",
	"scored-event/invalid-origin-offset-negative.json":   "/origin/offset minimum",
	"scored-event/invalid-severity-not-bucket.json":      "/severity const",
	"scored-event/invalid-indicator-extra-field.json":    "/indicator additionalProperties",
	"scored-event/invalid-indicator-type-mismatch.json":  "/indicator/value format",
	"scored-event/invalid-gate-reason.json":              "/gate/reason enum",
	"scored-event/invalid-score-float.json":              "/score type",
	"scored-event/invalid-missing-tags.json":             " required",
	"scored-event/invalid-schema-version.json":           "/schema_version const",
	"scored-event/invalid-processed-at.json":             "/processed_at format",
	"scored-event/invalid-ecs-field.json":                "/ecs_fields/0 enum",
	"dead-letter/invalid-partition-not-digits.json":      "/x-threatpipe-original-partition pattern",
	"dead-letter/invalid-error-class.json":               "/x-threatpipe-error-class enum",
	"dead-letter/invalid-missing-offset.json":            " required",
	"dead-letter/invalid-header-not-string.json":         "/x-threatpipe-original-offset type",
}

// testdataFiles returns testdata/<schema stem>/<valid|invalid>-*.json, relative to testdata/.
func testdataFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/*/*.json")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		rel, _ := filepath.Rel("testdata", f)
		out = append(out, filepath.ToSlash(rel))
	}
	return out
}

func TestTestdata(t *testing.T) {
	v := newValidator(t)
	files := testdataFiles(t)
	seen := map[string]int{}
	for _, rel := range files {
		schema := strings.Split(rel, "/")[0]
		base := filepath.Base(rel)
		t.Run(rel, func(t *testing.T) {
			doc, err := os.ReadFile(filepath.Join("testdata", rel))
			if err != nil {
				t.Fatal(err)
			}
			err = v.Validate(schema, doc)
			switch {
			case strings.HasPrefix(base, "valid-"):
				seen[schema+"/valid"]++
				if err != nil {
					t.Errorf("want valid, got %v", err)
				}
			case strings.HasPrefix(base, "invalid-"):
				seen[schema+"/invalid"]++
				want, ok := invalidAt[rel]
				if !ok {
					t.Fatalf("add %s to invalidAt", rel)
				}
				if err == nil {
					t.Fatalf("want invalid at %q, it validated", want)
				}
				if got := violations(err); !slices.Contains(got, want) {
					t.Errorf("want the violation %q, got %q:\n%v", want, got, err)
				}
			default:
				t.Errorf("name must start with valid- or invalid-")
			}
		})
	}
	for rel := range invalidAt {
		if !slices.Contains(files, rel) {
			t.Errorf("invalidAt names %s, which does not exist", rel)
		}
	}
	for _, stem := range []string{"indicator-event", "ecs-event", "scored-event", "dead-letter"} {
		if seen[stem+"/valid"] == 0 || seen[stem+"/invalid"] == 0 {
			t.Errorf("testdata/%s needs valid and invalid examples (have %d, %d)", stem, seen[stem+"/valid"], seen[stem+"/invalid"])
		}
	}
}

// decodeClass is what the real decoder makes of each invalid input example.
var decodeClass = map[string]event.ErrorClass{
	"indicator-event/invalid-missing-event-id.json":      event.ClassMissingField,
	"indicator-event/invalid-indicator-type-domain.json": event.ClassUnsupportedIndicator,
	"indicator-event/invalid-observed-at.json":           event.ClassInvalidField,
	"indicator-event/invalid-context-not-object.json":    event.ClassInvalidField,
	"ecs-event/invalid-no-ip.json":                       event.ClassNoIndicator,
	// A top-level "indicator" makes the message a native event, which then lacks event_id.
	"ecs-event/invalid-has-indicator.json": event.ClassMissingField,
}

var (
	testKafkaTime = time.Date(2026, 3, 14, 9, 27, 1, 350_000_000, time.UTC)
	testNow       = time.Date(2026, 3, 14, 9, 27, 1, 412_837_114, time.UTC)
	testOrigin    = event.Origin{Topic: "indicators", Partition: 3, Offset: 1048585}
)

// scoreLikeEngine builds the scored events the engine publishes for a decoded input before
// enrichment: gate verdicts applied, score clamped, severity derived.
func scoreLikeEngine(in *event.Input, origin event.Origin) []*event.Scored {
	g := gate.New(nil, nil)
	var out []*event.Scored
	for _, s := range in.Sightings {
		ev := event.NewScored(in, s, origin, testNow)
		if v, gated := g.Check(s.Indicator.Addr); gated {
			ev.Gate = &event.Gate{Reason: v.Reason, Prefix: v.Prefix.String()}
			ev.Reasons = append(ev.Reasons, event.Reason{Source: "gate", Detail: fmt.Sprintf("%s range %s: no lookup", v.Reason, v.Prefix), Points: 0})
		}
		ev.Severity = event.SeverityOf(ev.Score)
		out = append(out, ev)
	}
	return out
}

// TestTestdataDecoder checks the input examples against the real decoder: valid ones decode and
// their scored events validate; invalid ones are dead-lettered with the expected class.
func TestTestdataDecoder(t *testing.T) {
	v := newValidator(t)
	dec := event.NewDecoder(1<<20, 32)
	for _, rel := range testdataFiles(t) {
		schema := strings.Split(rel, "/")[0]
		if schema != "indicator-event" && schema != "ecs-event" {
			continue
		}
		t.Run(rel, func(t *testing.T) {
			doc, err := os.ReadFile(filepath.Join("testdata", rel))
			if err != nil {
				t.Fatal(err)
			}
			in, err := dec.Decode(doc, testKafkaTime, "indicators-3-1048585")
			if strings.HasPrefix(filepath.Base(rel), "invalid-") {
				want, ok := decodeClass[rel]
				if !ok {
					t.Fatalf("add %s to decodeClass", rel)
				}
				if got := event.ClassOf(err); got != want {
					t.Fatalf("decoder class %q (%v), want %q", got, err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("decoder rejected a valid example: %v", err)
			}
			if len(in.Sightings) == 0 {
				t.Fatal("no indicators")
			}
			for _, ev := range scoreLikeEngine(in, testOrigin) {
				if err := v.ValidateValue(docs.ScoredEventSchema, ev); err != nil {
					t.Errorf("scored event for %s: %v", ev.Indicator.Value, err)
				}
			}
		})
	}
}

// example is one ```json block of events.md.
type example struct {
	line         int
	schema, name string
	body         []byte
}

var markerRE = regexp.MustCompile(`^<!--\s*schema:\s*([a-z0-9-]+)(?:\s+name:\s*([a-z0-9-]+))?\s*-->$`)

// docExamples extracts every ```json block of events.md with the schema named in the
// <!-- schema: NAME [name: ID] --> comment on the last non-blank line before it.
func docExamples(t *testing.T) []example {
	t.Helper()
	f, err := os.Open("events.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out      []example
		lastLine string // last non-blank line outside a fence
		cur      *example
		inFence  bool
		n        int
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case inFence && trimmed == "```":
			inFence = false
			if cur != nil {
				out = append(out, *cur)
				cur = nil
			}
		case inFence:
			if cur != nil {
				cur.body = append(append(cur.body, line...), '\n')
			}
		case strings.HasPrefix(trimmed, "```"):
			inFence = true
			if trimmed == "```json" {
				m := markerRE.FindStringSubmatch(lastLine)
				if m == nil {
					t.Errorf("events.md:%d: a ```json block must follow a <!-- schema: NAME --> comment", n)
					m = []string{"", "", ""}
				}
				cur = &example{line: n, schema: m[1], name: m[2]}
			}
		case trimmed != "":
			lastLine = trimmed
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if inFence {
		t.Fatal("events.md: unterminated code fence")
	}
	return out
}

func TestDocExamples(t *testing.T) {
	v := newValidator(t)
	examples := docExamples(t)
	covered := map[string]bool{}
	names := map[string]bool{}
	for _, ex := range examples {
		if ex.schema == "" {
			continue // reported by docExamples
		}
		covered[ex.schema] = true
		if ex.name != "" {
			if names[ex.name] {
				t.Errorf("events.md:%d: duplicate example name %q", ex.line, ex.name)
			}
			names[ex.name] = true
		}
		if err := v.Validate(ex.schema, ex.body); err != nil {
			t.Errorf("events.md:%d: example does not validate against %s:\n%v", ex.line, ex.schema, err)
		}
	}
	for _, stem := range []string{"indicator-event", "ecs-event", "scored-event", "dead-letter"} {
		if !covered[stem] {
			t.Errorf("events.md has no example for %s", stem)
		}
	}
}

func docExample(t *testing.T, name string) []byte {
	t.Helper()
	for _, ex := range docExamples(t) {
		if ex.name == name {
			return ex.body
		}
	}
	t.Fatalf("events.md has no example named %q", name)
	return nil
}

func generic(t *testing.T, doc []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDocExamplesMatchDecoder feeds the input examples of events.md through the real decoder and
// gate and compares the result with the scored examples, so the documented outputs are what the
// code produces for the documented inputs. Fields that enrichment fills in are taken from the
// documented example.
func TestDocExamplesMatchDecoder(t *testing.T) {
	dec := event.NewDecoder(1<<20, 32)
	cases := []struct {
		input, scored string
		indicator     string
		enriched      []string // fields filled in by providers, not by the decoder or gate
	}{
		{"native-input", "scored-public", "185.220.101.45", []string{"score", "severity", "confidence", "validated_by", "tags", "reasons", "providers", "as", "geo", "isp", "fields"}},
		{"ecs-input", "scored-gated", "10.20.0.15", nil},
	}
	for _, c := range cases {
		t.Run(c.scored, func(t *testing.T) {
			want := generic(t, docExample(t, c.scored))
			var origin event.Origin
			raw, _ := json.Marshal(want["origin"])
			if err := json.Unmarshal(raw, &origin); err != nil {
				t.Fatal(err)
			}
			in, err := dec.Decode(docExample(t, c.input), testKafkaTime, "unused")
			if err != nil {
				t.Fatalf("decode %s: %v", c.input, err)
			}
			var got map[string]any
			for _, ev := range scoreLikeEngine(in, origin) {
				if ev.Indicator.Value == c.indicator {
					b, err := json.Marshal(ev)
					if err != nil {
						t.Fatal(err)
					}
					got = generic(t, b)
				}
			}
			if got == nil {
				t.Fatalf("%s does not name %s", c.input, c.indicator)
			}
			for _, k := range append([]string{"processed_at"}, c.enriched...) {
				got[k] = want[k]
			}
			if !reflect.DeepEqual(got, want) {
				g, _ := json.MarshalIndent(got, "", "  ")
				w, _ := json.MarshalIndent(want, "", "  ")
				t.Errorf("the code produces\n%s\nevents.md documents\n%s", g, w)
			}
		})
	}
}

// TestRealScoredValidates marshals event.Scored values as the engine builds them.
func TestRealScoredValidates(t *testing.T) {
	v := newValidator(t)
	mustIP := func(s string) event.Indicator {
		ind, err := event.ParseIP(s)
		if err != nil {
			t.Fatal(err)
		}
		return ind
	}
	native := &event.Input{
		Format: event.FormatNative, EventID: "evt-42", ObservedAt: testKafkaTime.In(time.FixedZone("CET", 3600)),
		Source: "sensor", Context: json.RawMessage(`{"rule":"r1"}`),
		Extra:    map[string]json.RawMessage{"tenant": json.RawMessage(`"acme"`)},
		Warnings: []string{"observed_at missing: used the Kafka message time"},
	}
	ecs := &event.Input{Format: event.FormatECS, EventID: "indicators-0-7", ObservedAt: testKafkaTime, Source: "ecs",
		Context: json.RawMessage(`{"source":{"ip":"2a01:4f8::1"}}`)}

	gated := event.NewScored(native, event.Sighting{Indicator: mustIP("::ffff:10.1.2.3")}, event.Origin{Topic: "indicators", Partition: 0, Offset: 0}, testNow)
	gated.Gate = &event.Gate{Reason: gate.ReasonPrivate, Prefix: "10.0.0.0/8"}
	gated.Reasons = append(gated.Reasons, event.Reason{Source: "gate", Detail: "private range 10.0.0.0/8: no lookup", Points: 0})

	public := event.NewScored(ecs, event.Sighting{Indicator: mustIP("[2A01:4F8::1%eth0]"), Fields: []string{"source.ip", "related.ip"}}, testOrigin, testNow)
	public.Score = 73
	public.Severity = event.SeverityOf(public.Score)
	public.Tags = append(public.Tags, "hosting", "scanner")
	public.Reasons = append(public.Reasons, event.Reason{Source: "criminalip", Detail: "scanner", Points: 50}, event.Reason{Source: "feed", Detail: "hosting", Points: 23})

	bare := event.NewScored(&event.Input{Format: event.FormatNative, EventID: "x", Source: "unknown"},
		event.Sighting{Indicator: mustIP("8.8.8.8")}, testOrigin, time.Now())

	// A document over the carried-context bound, and a scored event over the size limit.
	bigDoc := `{"source":{"ip":"8.8.8.8"},"message":"` + strings.Repeat("m", 20000) + `"}`
	bigIn, err := event.NewDecoder(1<<20, 32).Decode([]byte(bigDoc), testKafkaTime, "indicators-0-8")
	if err != nil {
		t.Fatal(err)
	}
	truncated := event.NewScored(bigIn, bigIn.Sightings[0], testOrigin, testNow)
	if truncated.ContextTruncated == nil {
		t.Fatal("a 20 KB document was not truncated")
	}
	dropped := event.NewScored(native, event.Sighting{Indicator: mustIP("8.8.4.4")}, testOrigin, testNow)
	dropped.DropCarried("the scored event exceeded the size limit")

	for name, ev := range map[string]*event.Scored{"gated": gated, "public": public, "bare": bare, "truncated": truncated, "dropped": dropped} {
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Validate(docs.ScoredEventSchema, b); err != nil {
			t.Errorf("%s: %v\n%s", name, err, b)
		}
	}

	// The schema's severity rule agrees with event.SeverityOf for every score.
	for score := 0; score <= 100; score++ {
		ev := *bare
		ev.Score = score
		for _, sev := range []event.Severity{event.SeverityInfo, event.SeverityLow, event.SeverityMedium, event.SeverityHigh, event.SeverityCritical} {
			ev.Severity = sev
			err := v.ValidateValue(docs.ScoredEventSchema, &ev)
			if want := sev == event.SeverityOf(score); want != (err == nil) {
				t.Errorf("score %d severity %s: schema says valid=%v, event.SeverityOf says %s", score, sev, err == nil, event.SeverityOf(score))
			}
		}
	}
}

func TestEnumsMatchCode(t *testing.T) {
	scored := schemaDoc(t, docs.ScoredEventSchema)
	input := schemaDoc(t, docs.IndicatorEventSchema)
	dl := schemaDoc(t, docs.DeadLetterSchema)
	ecs := schemaDoc(t, docs.ECSEventSchema)

	eq := func(what string, got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s: schema has %q, code has %q", what, got, want)
		}
	}
	eq("severity", strings_(t, at(t, scored, "properties", "severity", "enum")), []string{
		string(event.SeverityInfo), string(event.SeverityLow), string(event.SeverityMedium),
		string(event.SeverityHigh), string(event.SeverityCritical),
	})
	eq("gate.reason", sorted(strings_(t, at(t, scored, "properties", "gate", "properties", "reason", "enum"))), sorted([]string{
		gate.ReasonPrivate, gate.ReasonLoopback, gate.ReasonLinkLocal, gate.ReasonCGNAT, gate.ReasonMulticast,
		gate.ReasonReserved, gate.ReasonDocumentation, gate.ReasonOwnRange, gate.ReasonAllowlist,
	}))
	// Every format threatpipe reads: native, ECS and the registered ones (not "auto").
	eq("input_format", strings_(t, at(t, scored, "properties", "input_format", "enum")), slices.DeleteFunc(formats.Names(),
		func(n string) bool { return n == string(event.AutoFormat) }))
	types := []string{string(event.IPv4), string(event.IPv6)}
	eq("scored indicator.type", strings_(t, at(t, scored, "properties", "indicator", "properties", "type", "enum")), types)
	eq("input indicator.type", strings_(t, at(t, input, "properties", "indicator", "properties", "type", "enum")), types)
	eq("ecs_fields", strings_(t, at(t, scored, "properties", "ecs_fields", "items", "enum")), slices.Concat(
		event.ECSIPFields[:], eve.AddressFields[:], zeek.AddressFields[:]))
	eq("schema_version", []string{at(t, scored, "properties", "schema_version", "const").(string)}, []string{event.SchemaVersion})
	eq("dead-letter schema version", []string{at(t, dl, "properties", pipeline.HeaderSchemaVersion, "const").(string)}, []string{event.SchemaVersion})

	var classes []string
	for _, c := range event.ErrorClasses {
		classes = append(classes, string(c))
	}
	eq("error classes", strings_(t, at(t, dl, "properties", pipeline.HeaderErrorClass, "enum")), classes)
	always := []string{
		pipeline.HeaderErrorClass, pipeline.HeaderErrorMessage, pipeline.HeaderOriginalTopic,
		pipeline.HeaderOriginalPartition, pipeline.HeaderOriginalOffset, pipeline.HeaderOriginalTimestamp,
		pipeline.HeaderFailedAt, pipeline.HeaderSchemaVersion,
	}
	eq("dead-letter headers", keys(t, at(t, dl, "properties")), sorted(append(slices.Clone(always), pipeline.HeaderTruncated)))
	eq("dead-letter required headers", sorted(strings_(t, at(t, dl, "required"))), sorted(always))

	// The ECS schema describes exactly the decoder's IP fields, nested and dotted.
	var ecsProps []string
	for _, f := range event.ECSIPFields {
		obj, _, _ := strings.Cut(f, ".")
		ecsProps = append(ecsProps, obj, f)
		if at(t, ecs, "properties", obj, "$ref") != "#/$defs/ipObject" || at(t, ecs, "properties", f, "$ref") != "#/$defs/ipValue" {
			t.Errorf("ecs-event: %s and %s must refer to the IP definitions", obj, f)
		}
	}
	if got := len(at(t, ecs, "anyOf").([]any)); got != len(ecsProps) {
		t.Errorf("ecs-event anyOf has %d branches, want one per nested and dotted IP field (%d)", got, len(ecsProps))
	}
}

// jsonFields returns the JSON names of a struct's fields and which are always present.
func jsonFields(typ reflect.Type) (all, required []string) {
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		all = append(all, name)
		if !slices.Contains(strings.Split(opts, ","), "omitempty") {
			required = append(required, name)
		}
	}
	return sorted(all), sorted(required)
}

// TestScoredSchemaMatchesStruct checks the scored-event schema against event.Scored's JSON tags:
// the same property names, and required exactly where the field has no omitempty.
func TestScoredSchemaMatchesStruct(t *testing.T) {
	scored := schemaDoc(t, docs.ScoredEventSchema)
	cases := []struct {
		typ  reflect.Type
		path []string
	}{
		{reflect.TypeFor[event.Scored](), nil},
		{reflect.TypeFor[event.Indicator](), []string{"properties", "indicator"}},
		{reflect.TypeFor[event.Reason](), []string{"properties", "reasons", "items"}},
		{reflect.TypeFor[event.Gate](), []string{"properties", "gate"}},
		{reflect.TypeFor[event.Origin](), []string{"properties", "origin"}},
	}
	for _, c := range cases {
		all, required := jsonFields(c.typ)
		node := any(scored)
		if c.path != nil {
			node = at(t, scored, c.path...)
		}
		obj := node.(map[string]any)
		if got := keys(t, obj["properties"]); !slices.Equal(got, all) {
			t.Errorf("%s: schema properties %q, struct fields %q", c.typ, got, all)
		}
		if got := sorted(strings_(t, obj["required"])); !slices.Equal(got, required) {
			t.Errorf("%s: schema requires %q, struct always writes %q", c.typ, got, required)
		}
		wantAdditional := c.path == nil // open at the top level, closed inside
		if got := obj["additionalProperties"]; got != wantAdditional {
			t.Errorf("%s: additionalProperties %v, want %v", c.typ, got, wantAdditional)
		}
	}
}

// TestValidatorConcurrent exercises the shared Validator from many goroutines (run with -race).
func TestValidatorConcurrent(t *testing.T) {
	v := newValidator(t)
	doc, err := os.ReadFile("testdata/scored-event/valid-public.json")
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 16)
	for range 16 {
		go func() {
			var err error
			for range 50 {
				if err = v.Validate(docs.ScoredEventSchema, bytes.Clone(doc)); err != nil {
					break
				}
			}
			errs <- err
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestDocNormalisationTable checks every row of the "IP address normalisation" table of
// events.md against event.ParseIP.
func TestDocNormalisationTable(t *testing.T) {
	raw, err := os.ReadFile("events.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## IP address normalisation\n")
	if !ok {
		t.Fatal("events.md has no IP address normalisation section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	code := regexp.MustCompile("`([^`]*)`")
	rows := 0
	for line := range strings.SplitSeq(section, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		if len(cells) != 2 {
			t.Fatalf("row %q: want two cells", line)
		}
		result := strings.TrimSpace(cells[1])
		for _, m := range code.FindAllStringSubmatch(cells[0], -1) {
			in := m[1]
			if in == `""` {
				in = ""
			}
			rows++
			ind, err := event.ParseIP(in)
			if strings.HasPrefix(result, "rejected") {
				if err == nil {
					t.Errorf("%q: documented as rejected, parsed as %s", in, ind.Value)
				}
				continue
			}
			want := code.FindStringSubmatch(result)
			if err != nil || want == nil || ind.Value != want[1] {
				t.Errorf("%q: documented as %q, got %q (%v)", in, result, ind.Value, err)
			}
			if typ := string(ind.Type); strings.Contains(result, "type `") && !strings.Contains(result, "type `"+typ+"`") {
				t.Errorf("%q: documented as %q, got type %s", in, result, typ)
			}
		}
	}
	if rows < 10 {
		t.Errorf("only %d addresses in the normalisation table", rows)
	}
}
