package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fixed fallbacks for the fixture cases: the Kafka message time and the fallback event ID.
var (
	fixtureFallbackTime = time.Date(2024, 5, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	fixtureFallbackID   = "fallback-topic-3-42"
)

// decodeCase is one testdata/decode/*.json file. It names a message under
// testdata/decode/messages/ and either the error class or the decoded Input expected.
type decodeCase struct {
	Message       string      `json:"message"`
	MaxBytes      int         `json:"max_bytes"`      // default 64 KiB
	MaxIndicators int         `json:"max_indicators"` // default 32
	Error         ErrorClass  `json:"error"`
	ErrorContains []string    `json:"error_contains"`
	Want          *decodeWant `json:"want"`
}

type decodeWant struct {
	Format          Format                     `json:"format"`
	EventID         string                     `json:"event_id"`
	Source          string                     `json:"source"`
	ObservedAt      time.Time                  `json:"observed_at"`
	Warnings        int                        `json:"warnings"`
	WarningsContain []string                   `json:"warnings_contain"`
	Indicators      []wantIndicator            `json:"indicators"`
	Extra           map[string]json.RawMessage `json:"extra"`
	Context         json.RawMessage            `json:"context"`
	// ContextIsMessage expects Context to be the whole message (ECS).
	ContextIsMessage bool `json:"context_is_message"`
}

type wantIndicator struct {
	Value  string        `json:"value"`
	Type   IndicatorType `json:"type"`
	Fields []string      `json:"fields"`
}

func loadDecodeCases(t *testing.T) map[string]decodeCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "decode", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 40 {
		t.Fatalf("found only %d decode cases", len(files))
	}
	cases := make(map[string]decodeCase, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		var c decodeCase
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if (c.Error == "") == (c.Want == nil) {
			t.Fatalf("%s: a case needs exactly one of error and want", f)
		}
		cases[strings.TrimSuffix(filepath.Base(f), ".json")] = c
	}
	return cases
}

func TestDecodeFixtures(t *testing.T) {
	cases := loadDecodeCases(t)
	used := make(map[string]bool)
	names := make([]string, 0, len(cases))
	for name := range cases {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		c := cases[name]
		used[c.Message] = true
		t.Run(name, func(t *testing.T) {
			msg, err := os.ReadFile(filepath.Join("testdata", "decode", "messages", c.Message))
			if err != nil {
				t.Fatal(err)
			}
			maxBytes, maxInd := 64<<10, 32
			if c.MaxBytes != 0 {
				maxBytes = c.MaxBytes
			}
			if c.MaxIndicators != 0 {
				maxInd = c.MaxIndicators
			}
			orig := bytes.Clone(msg)
			in, err := NewDecoder(maxBytes, maxInd).Decode(msg, fixtureFallbackTime, fixtureFallbackID)
			if !bytes.Equal(msg, orig) {
				t.Fatal("Decode modified the message bytes")
			}
			if c.Error != "" {
				checkDecodeError(t, in, err, c.Error, c.ErrorContains...)
				return
			}
			if err != nil {
				t.Fatalf("Decode error: %v", err)
			}
			checkInput(t, in, c.Want, msg)
		})
	}
	// Every message fixture is used by a case.
	msgs, _ := filepath.Glob(filepath.Join("testdata", "decode", "messages", "*"))
	for _, m := range msgs {
		if !used[filepath.Base(m)] {
			t.Errorf("message fixture %s is not used by any case", m)
		}
	}
}

func checkDecodeError(t *testing.T, in *Input, err error, class ErrorClass, contains ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Decode succeeded (%+v), want %s error", in, class)
	}
	if in != nil {
		t.Errorf("Decode returned an Input along with error %v", err)
	}
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %T %v is not a *DecodeError", err, err)
	}
	if de.Class != class || ClassOf(err) != class {
		t.Fatalf("error class = %q (%v), want %q", de.Class, err, class)
	}
	if de.Msg == "" {
		t.Errorf("error %v has an empty message", err)
	}
	if !strings.HasPrefix(err.Error(), string(class)+": ") {
		t.Errorf("Error() = %q, want prefix %q", err.Error(), class+": ")
	}
	for _, s := range contains {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}

func checkInput(t *testing.T, in *Input, w *decodeWant, msg []byte) {
	t.Helper()
	if in.Format != w.Format {
		t.Errorf("Format = %q, want %q", in.Format, w.Format)
	}
	if in.EventID != w.EventID {
		t.Errorf("EventID = %q, want %q", in.EventID, w.EventID)
	}
	if in.Source != w.Source {
		t.Errorf("Source = %q, want %q", in.Source, w.Source)
	}
	if !in.ObservedAt.Equal(w.ObservedAt) {
		t.Errorf("ObservedAt = %v, want %v", in.ObservedAt, w.ObservedAt)
	}
	if len(in.Warnings) != w.Warnings {
		t.Errorf("Warnings = %q, want %d of them", in.Warnings, w.Warnings)
	}
	all := strings.Join(in.Warnings, "\n")
	for _, s := range w.WarningsContain {
		if !strings.Contains(all, s) {
			t.Errorf("Warnings %q do not mention %q", in.Warnings, s)
		}
	}
	got := make([]wantIndicator, len(in.Sightings))
	for i, s := range in.Sightings {
		got[i] = wantIndicator{Value: s.Indicator.Value, Type: s.Indicator.Type, Fields: s.Fields}
		if s.Indicator.Addr.String() != s.Indicator.Value {
			t.Errorf("sighting %d: Addr %v does not match Value %q", i, s.Indicator.Addr, s.Indicator.Value)
		}
	}
	if !reflect.DeepEqual(got, w.Indicators) {
		t.Errorf("indicators =\n  %+v\nwant\n  %+v", got, w.Indicators)
	}

	switch {
	case w.ContextIsMessage:
		if !bytes.Equal(in.Context, msg) {
			t.Errorf("Context is not the whole message:\n%s", in.Context)
		}
	case w.Context == nil:
		if in.Context != nil {
			t.Errorf("Context = %s, want none", in.Context)
		}
	default:
		if !jsonEqual(t, in.Context, w.Context) {
			t.Errorf("Context = %s, want %s", in.Context, w.Context)
		}
	}

	if len(in.Extra) != len(w.Extra) {
		t.Errorf("Extra keys = %v, want %v", keys(in.Extra), keys(w.Extra))
	}
	for k, v := range w.Extra {
		gv, ok := in.Extra[k]
		if !ok {
			t.Errorf("Extra lacks %q", k)
			continue
		}
		if !jsonEqual(t, gv, v) {
			t.Errorf("Extra[%q] = %s, want %s", k, gv, v)
		}
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Errorf("invalid JSON %q: %v", a, err)
		return false
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Errorf("invalid JSON %q: %v", b, err)
		return false
	}
	return reflect.DeepEqual(x, y)
}

func keys(m map[string]json.RawMessage) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestDecodeTooLargeIsCheckedFirst(t *testing.T) {
	d := NewDecoder(1<<20, 32)
	// A syntactically valid but huge native event.
	huge := fmt.Sprintf(`{"event_id":"e","indicator":{"type":"ipv4-addr","value":"8.8.8.8"},"context":{"pad":%q}}`,
		strings.Repeat("x", 1<<20))
	in, err := d.Decode([]byte(huge), fixtureFallbackTime, "fb")
	checkDecodeError(t, in, err, ClassTooLarge, fmt.Sprintf("%d bytes", len(huge)), "limit is 1048576")

	// Size wins over encoding and syntax.
	bad := append(bytes.Repeat([]byte{0xff}, 1<<20), '{')
	in, err = d.Decode(bad, fixtureFallbackTime, "fb")
	checkDecodeError(t, in, err, ClassTooLarge)
}

func TestDecodeNonUTF8Variants(t *testing.T) {
	d := NewDecoder(1<<16, 32)
	for name, b := range map[string][]byte{
		"latin1 in value":     []byte(`{"event_id":"caf` + "\xe9" + `","indicator":{"type":"ipv4-addr","value":"8.8.8.8"}}`),
		"lone continuation":   []byte("{\"a\":\"\x80\"}"),
		"surrogate encoded":   []byte("{\"source\":{\"ip\":\"\xed\xa0\x80\"}}"),
		"truncated multibyte": []byte("{\"source\":{\"ip\":\"8.8.8.8\"},\"m\":\"\xe2\x82\"}"),
	} {
		t.Run(name, func(t *testing.T) {
			in, err := d.Decode(b, fixtureFallbackTime, "fb")
			checkDecodeError(t, in, err, ClassInvalidEncoding)
		})
	}
}

func TestDecodeECSWarningsAreLimited(t *testing.T) {
	bad := make([]string, 30)
	for i := range bad {
		bad[i] = fmt.Sprintf("bad-%d", i)
	}
	doc, _ := json.Marshal(map[string]any{
		"@timestamp": "2024-06-12T08:15:30Z",
		"source":     map[string]any{"ip": "8.8.8.8"},
		"related":    map[string]any{"ip": bad},
	})
	in, err := NewDecoder(1<<16, 32).Decode(doc, fixtureFallbackTime, "fb")
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Warnings) != 17 {
		t.Fatalf("got %d warnings, want 16 plus a summary: %q", len(in.Warnings), in.Warnings)
	}
	if in.Warnings[0] != `related.ip: invalid IP address "bad-0"` {
		t.Errorf("first warning = %q", in.Warnings[0])
	}
	if last := in.Warnings[16]; last != "and 14 more" {
		t.Errorf("last warning = %q, want %q", last, "and 14 more")
	}

	// Without a valid IP, the no_indicator error names at most five reasons.
	doc, _ = json.Marshal(map[string]any{"related": map[string]any{"ip": bad}})
	in, err = NewDecoder(1<<16, 32).Decode(doc, fixtureFallbackTime, "fb")
	checkDecodeError(t, in, err, ClassNoIndicator, `"bad-4"`, "and 25 more")
	if strings.Contains(err.Error(), `"bad-5"`) {
		t.Errorf("error names more than five reasons: %v", err)
	}
}

func TestDecodeECSLongEventIDUsesFallback(t *testing.T) {
	d := NewDecoder(1<<16, 32)
	for _, tc := range []struct {
		id, want string
	}{
		{strings.Repeat("i", 256), strings.Repeat("i", 256)},
		{strings.Repeat("i", 257), "fb-id"},
		{"", "fb-id"},
	} {
		doc, _ := json.Marshal(map[string]any{"event": map[string]any{"id": tc.id}, "source": map[string]any{"ip": "8.8.8.8"}})
		in, err := d.Decode(doc, fixtureFallbackTime, "fb-id")
		if err != nil {
			t.Fatal(err)
		}
		if in.EventID != tc.want {
			t.Errorf("event.id of %d bytes: EventID = %.20q (len %d), want %.20q", len(tc.id), in.EventID, len(in.EventID), tc.want)
		}
	}
}

func TestDecodeECSSourceFallbackOrder(t *testing.T) {
	d := NewDecoder(1<<16, 32)
	base := map[string]any{"source": map[string]any{"ip": "8.8.8.8"}}
	steps := []struct {
		key, sub, val string
	}{
		{"event", "dataset", "ds"},
		{"host", "name", "hostname-h"},
		{"agent", "name", "agent-a"},
		{"observer", "hostname", "obs-host"},
		{"observer", "name", "obs-name"},
	}
	// Each step adds a field that outranks all the earlier ones.
	doc := map[string]any{}
	for k, v := range base {
		doc[k] = v
	}
	check := func(want string) {
		t.Helper()
		b, _ := json.Marshal(doc)
		in, err := d.Decode(b, fixtureFallbackTime, "fb")
		if err != nil {
			t.Fatal(err)
		}
		if in.Source != want {
			t.Errorf("Source = %q, want %q (doc %s)", in.Source, want, b)
		}
	}
	check("ecs")
	for _, s := range steps {
		m, _ := doc[s.key].(map[string]any)
		if m == nil {
			m = map[string]any{}
			doc[s.key] = m
		}
		m[s.sub] = s.val
		check(s.val)
	}
}

func TestDecodeConcurrent(t *testing.T) {
	cases := loadDecodeCases(t)
	d := NewDecoder(64<<10, 32)
	var msgs [][]byte
	for _, c := range cases {
		if c.MaxBytes != 0 || c.MaxIndicators != 0 {
			continue
		}
		b, err := os.ReadFile(filepath.Join("testdata", "decode", "messages", c.Message))
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, b)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				for _, m := range msgs {
					_, _ = d.Decode(m, fixtureFallbackTime, "fb")
				}
			}
		}()
	}
	wg.Wait()
}

func TestClassOf(t *testing.T) {
	_, err := NewDecoder(10, 1).Decode([]byte(`{"source":{"ip":"8.8.8.8"}}`), time.Time{}, "x")
	if ClassOf(err) != ClassTooLarge {
		t.Fatalf("ClassOf(%v) = %q", err, ClassOf(err))
	}
	wrapped := fmt.Errorf("partition 3: %w", err)
	if ClassOf(wrapped) != ClassTooLarge {
		t.Errorf("ClassOf(wrapped) = %q, want %q", ClassOf(wrapped), ClassTooLarge)
	}
	if c := ClassOf(errors.New("plain")); c != "" {
		t.Errorf("ClassOf(plain) = %q, want empty", c)
	}
	if c := ClassOf(nil); c != "" {
		t.Errorf("ClassOf(nil) = %q, want empty", c)
	}
	e := &DecodeError{Class: ClassNoIndicator, Msg: "m"}
	if e.Error() != "no_indicator: m" {
		t.Errorf("Error() = %q", e.Error())
	}
}

func TestECSIPFields(t *testing.T) {
	want := []string{"source.ip", "destination.ip", "client.ip", "server.ip", "related.ip"}
	if !slices.Equal(ECSIPFields[:], want) {
		t.Fatalf("ECSIPFields = %v, want %v", ECSIPFields, want)
	}
}
