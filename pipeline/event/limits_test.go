package event

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func nested(open, close string, n int, leaf string) string {
	return strings.Repeat(open, n) + leaf + strings.Repeat(close, n)
}

func TestCheckStructure(t *testing.T) {
	tests := []struct {
		name, msg string
		max       int
		want      ErrorClass // "" accepted
	}{
		{"flat", `{"a":1}`, 1, ""},
		{"at the limit", nested(`{"a":`, `}`, 4, `1`), 4, ""},
		{"over the limit", nested(`{"a":`, `}`, 5, `1`), 4, ClassTooDeep},
		{"arrays count", `{"a":` + nested("[", "]", 3, "") + `}`, 4, ""},
		{"arrays over", `{"a":` + nested("[", "]", 4, "") + `}`, 4, ClassTooDeep},
		{"siblings do not add up", `{"a":[[1]],"b":[[2]],"c":{"d":{}}}`, 3, ""},
		{"brackets in strings", `{"a":"[[[[{{{{","b":"]]]]"}`, 1, ""},
		{"escaped quote keeps the string open", `{"a":"\"[[[[","b":1}`, 1, ""},
		{"escaped backslash closes it", `{"a":"\\","b":[[1]]}`, 2, ClassTooDeep},
		{"brackets in keys", `{"[[[[":1}`, 1, ""},
		{"100,000 deep", nested(`{"a":`, `}`, 100_000, `1`), 64, ClassTooDeep},
		{"unterminated string", `{"a":"[[[[[`, 1, ""},
		{"malformed but shallow", `{"a":]]]]}`, 2, ""},
		{"exponent overflow", `{"a":1e999999}`, 64, ClassNumberOutOfRange},
		{"negative overflow", `{"a":[-1.8e308]}`, 64, ClassNumberOutOfRange},
		{"upper-case exponent", `{"a":2E+400}`, 64, ClassNumberOutOfRange},
		{"309 digits over the largest float", `{"a":` + strings.Repeat("9", 309) + `}`, 64, ClassNumberOutOfRange},
		{"5,000 digits", `{"a":` + strings.Repeat("1", 5000) + `}`, 64, ClassNumberOutOfRange},
		{"308 digits", `{"a":` + strings.Repeat("9", 308) + `}`, 64, ""},
		{"largest float", `{"a":1.7976931348623157e308}`, 64, ""},
		{"underflow is zero", `{"a":1e-999999}`, 64, ""},
		{"long fraction", `{"a":0.` + strings.Repeat("3", 5000) + `}`, 64, ""},
		{"top-level number", `1e400`, 64, ClassNumberOutOfRange},
		{"numbers in strings", `{"a":"1e999999"}`, 64, ""},
		{"not a number", `{"a":1e}`, 64, ""},
		{"literals", `{"a":true,"b":false,"c":null,"e":-0.5e-3}`, 64, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkStructure([]byte(tt.msg), tt.max)
			if got := ClassOf(err); got != tt.want {
				t.Fatalf("class %q (%v), want %q", got, err, tt.want)
			}
		})
	}
}

func TestDecoderLimits(t *testing.T) {
	native := func(ctx string) string {
		return `{"event_id":"e","indicator":{"type":"ipv4-addr","value":"8.8.8.8"},"context":` + ctx + `}`
	}
	tests := []struct {
		name   string
		limits Limits
		msg    string
		want   ErrorClass
		msgHas string
	}{
		{"default depth: 64 levels", Limits{}, native(nested(`{"a":`, `}`, 63, "1")), "", ""},
		{"default depth: 65 levels", Limits{}, native(nested(`{"a":`, `}`, 64, "1")), ClassTooDeep, "deeper than the limit of 64 levels"},
		{"configured depth", Limits{MaxDepth: 2}, native(`{"a":{"b":1}}`), ClassTooDeep, "limit of 2 levels"},
		{"deep unknown field", Limits{}, `{"event_id":"e","indicator":{"type":"ipv4-addr","value":"8.8.8.8"},"x":` + nested("[", "]", 64, "") + `}`, ClassTooDeep, ""},
		{"deep ECS field", Limits{}, `{"source":{"ip":"8.8.8.8","geo":` + nested(`{"a":`, `}`, 63, "1") + `}}`, ClassTooDeep, ""},
		{"size before depth", Limits{MaxBytes: 100}, native(nested("[", "]", 100, "")), ClassTooLarge, ""},
		{"encoding before depth", Limits{}, native("\"\xff" + nested("[", "]", 100, "") + `"`), ClassInvalidEncoding, ""},
		{"number", Limits{}, native(`{"n":1e400}`), ClassNumberOutOfRange, "1e400 at byte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.limits
			if l.MaxBytes == 0 {
				l.MaxBytes = 1 << 20
			}
			l.MaxIndicators = 32
			_, err := NewLimitedDecoder(l).Decode([]byte(tt.msg), time.Unix(0, 0), "fb")
			if got := ClassOf(err); got != tt.want {
				t.Fatalf("class %q (%v), want %q", got, err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), tt.msgHas) {
				t.Errorf("error %q lacks %q", err, tt.msgHas)
			}
		})
	}
}

func TestTooManyIndicatorsIsPartial(t *testing.T) {
	ips := make([]string, 40)
	for i := range ips {
		ips[i] = `"8.8.8.` + strconv.Itoa(i) + `"`
	}
	doc := `{"source":{"ip":"1.1.1.1"},"related":{"ip":["1.1.1.1",` + strings.Join(ips, ",") + `,"8.8.8.39"]}}`
	in, err := NewDecoder(1<<20, 8).Decode([]byte(doc), time.Unix(0, 0), "fb")
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Sightings) != 8 || in.Sightings[0].Indicator.Value != "1.1.1.1" || len(in.Sightings[0].Fields) != 2 {
		t.Fatalf("sightings %+v", in.Sightings)
	}
	if in.Partial == nil || in.Partial.Class != ClassTooManyIndicators {
		t.Fatalf("Partial = %v, want too_many_indicators", in.Partial)
	}
	// 41 distinct: 1.1.1.1 and 8.8.8.0-39; the repeated 8.8.8.39 is one of them.
	for _, want := range []string{"names 41 distinct addresses, over the limit of 8", "the first 8 were scored", "8.8.8.7, 8.8.8.8,", "8.8.8.39"} {
		if !strings.Contains(in.Partial.Msg, want) {
			t.Errorf("Partial message %q lacks %q", in.Partial.Msg, want)
		}
	}
	in, err = NewDecoder(1<<20, 41).Decode([]byte(doc), time.Unix(0, 0), "fb")
	if err != nil || in.Partial != nil || len(in.Sightings) != 41 {
		t.Fatalf("at the limit: %v, Partial %v, %d sightings", err, in.Partial, len(in.Sightings))
	}
}

func TestTruncateCutsOnRuneBoundary(t *testing.T) {
	if got := truncate("ab€cd", 3); got != "ab…" {
		t.Errorf("truncate = %q, want %q", got, "ab…")
	}
}

func BenchmarkCheckStructure(b *testing.B) {
	for _, c := range []struct {
		name string
		msg  []byte
	}{{"native", benchNative}, {"ecs", benchECS}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.msg)))
			for b.Loop() {
				if err := checkStructure(c.msg, DefaultMaxDepth); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
