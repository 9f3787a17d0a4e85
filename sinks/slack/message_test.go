package slack

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/sinks"
)

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// blockTexts returns every text of a built message, by block type.
func blockTexts(m message) map[string][]string {
	out := make(map[string][]string)
	for _, b := range m.Blocks {
		if b.Text != nil {
			out[b.Type] = append(out[b.Type], b.Text.Text)
		}
		for _, f := range b.Fields {
			out["field"] = append(out["field"], f.Text)
		}
		for _, e := range b.Elements {
			out["button"] = append(out["button"], e.Text.Text+" -> "+e.URL)
		}
	}
	return out
}

func TestBuildMessage(t *testing.T) {
	many := make([]event.Reason, 40)
	for i := range many {
		many[i] = event.Reason{Source: fmt.Sprintf("p%d", i), Detail: strings.Repeat("d", 400), Points: i}
	}
	for _, tt := range []struct {
		name  string
		edit  func(a *sinks.Action)
		check func(t *testing.T, m message, texts map[string][]string)
	}{
		{"full", func(*sinks.Action) {}, func(t *testing.T, m message, texts map[string][]string) {
			want := []string{"*Score*\n92 (critical)", "*Indicator*\n203.0.113.7", "*ISP*\nExample &lt;!channel&gt; &amp; Co",
				"*Country*\nNL", "*Tags*\nbotnet, scanner", "*Playbook*\ncritical-ips / notify-soc"}
			if strings.Join(texts["field"], "|") != strings.Join(want, "|") {
				t.Fatalf("fields %q", texts["field"])
			}
			if texts["button"][0] != "View in threatpipe -> https://threatpipe.example.com/indicators/203.0.113.7" {
				t.Fatalf("button %q", texts["button"])
			}
			if texts["section"][0] != "<!here> please triage" {
				t.Fatalf("note %q", texts["section"][0])
			}
		}},
		{"no note, no view URL, no reasons, sparse event", func(a *sinks.Action) {
			a.Params, a.ViewURL, a.Reasons, a.ISP, a.Country, a.Tags, a.Step = nil, "", nil, "", "", nil, ""
		}, func(t *testing.T, m message, texts map[string][]string) {
			if len(m.Blocks) != 2 || m.Blocks[0].Type != "header" || m.Blocks[1].Type != "section" {
				t.Fatalf("blocks %s", mustJSON(t, m.Blocks))
			}
			if len(texts["field"]) != 3 || texts["field"][2] != "*Playbook*\ncritical-ips" {
				t.Fatalf("fields %q", texts["field"])
			}
			if m.Text != "threatpipe: 203.0.113.7 scored 92 (critical)" {
				t.Fatalf("text %q", m.Text)
			}
		}},
		{"no title", func(a *sinks.Action) { a.Title = "  " }, func(t *testing.T, m message, texts map[string][]string) {
			if texts["header"][0] != "threatpipe: 203.0.113.7 scored 92 (critical)" {
				t.Fatalf("header %q", texts["header"])
			}
		}},
		{"long title is cut", func(a *sinks.Action) { a.Title = strings.Repeat("é", 400) }, func(t *testing.T, m message, texts map[string][]string) {
			h := texts["header"][0]
			if utf8.RuneCountInString(h) != maxHeaderText || !strings.HasSuffix(h, ellipsis) {
				t.Fatalf("header of %d characters: %q", utf8.RuneCountInString(h), h)
			}
		}},
		{"many long reasons", func(a *sinks.Action) { a.Reasons = many }, func(t *testing.T, m message, texts map[string][]string) {
			r := texts["section"][1] // [0] is the channel note
			if n := utf8.RuneCountInString(r); n > maxSectionText {
				t.Fatalf("reasons of %d characters", n)
			}
			if !strings.Contains(r, "more") || !strings.HasPrefix(r, "*Reasons*\n• *p0* (+0) ddd") {
				t.Fatalf("reasons %q", r)
			}
			// Every reason is either listed or counted.
			listed := strings.Count(r, "\n• ")
			var more int
			_, _ = fmt.Sscanf(r[strings.LastIndex(r, "…and ")+len("…and "):], "%d", &more)
			if listed+more != len(many) {
				t.Fatalf("%d listed + %d more != %d", listed, more, len(many))
			}
		}},
		{"huge field values", func(a *sinks.Action) {
			a.ISP = strings.Repeat("<", 3000)
			a.Tags = []string{strings.Repeat("t", 5000)}
		}, func(t *testing.T, m message, texts map[string][]string) {
			for _, f := range texts["field"] {
				if n := utf8.RuneCountInString(f); n > maxFieldText {
					t.Fatalf("field of %d characters", n)
				}
			}
			if !strings.HasSuffix(texts["field"][2], "&lt;…") {
				t.Fatalf("escape split: %q", texts["field"][2][len(texts["field"][2])-20:])
			}
		}},
		{"control characters", func(a *sinks.Action) { a.ISP = "Evil\nISP\t\x00" }, func(t *testing.T, m message, texts map[string][]string) {
			if texts["field"][2] != "*ISP*\nEvil ISP" {
				t.Fatalf("ISP field %q", texts["field"][2])
			}
		}},
		{"unusable view URL", func(a *sinks.Action) { a.ViewURL = "javascript:alert(1)" }, func(t *testing.T, m message, texts map[string][]string) {
			if len(texts["button"]) != 0 {
				t.Fatalf("button %q", texts["button"])
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := testAction()
			tt.edit(a)
			m := buildMessage(a)
			tt.check(t, m, blockTexts(m))
			if status, code, _ := validatePayload([]byte(mustJSON(t, m))); status != http.StatusOK {
				t.Fatalf("Slack would reject it: %s", code)
			}
		})
	}
}

func TestFit(t *testing.T) {
	for _, tt := range []struct {
		in    string
		limit int
		esc   bool
		want  string
	}{
		{"short", 10, false, "short"},
		{"exactly10!", 10, false, "exactly10!"},
		{"eleven char", 10, false, "eleven ch…"},
		{"a<b", 10, true, "a&lt;b"},
		{"a&b", 7, true, "a&amp;b"},
		{"a&bc", 6, true, "a…"},
		{"a&bc", 7, true, "a&amp;…"},
		{"ab&c", 6, true, "ab…"}, // never "ab&am…"
		{"héllo wörld", 5, false, "héll…"},
		{"bad\xffbyte", 20, false, "bad\uFFFDbyte"},
		{"x", 0, false, ""},
	} {
		if got := fit(tt.in, tt.limit, tt.esc); got != tt.want {
			t.Errorf("fit(%q, %d, %v) = %q, want %q", tt.in, tt.limit, tt.esc, got, tt.want)
		}
		if got := fit(tt.in, tt.limit, tt.esc); utf8.RuneCountInString(got) > tt.limit {
			t.Errorf("fit(%q, %d) is %d characters", tt.in, tt.limit, utf8.RuneCountInString(got))
		}
	}
}

func TestNoteMentions(t *testing.T) {
	for in, want := range map[string]string{
		"@here":                  "<!here>",
		"@channel please look":   "<!channel> please look",
		"cc @everyone":           "cc <!everyone>",
		"mail soc@here.example":  "mail soc@here.example",
		"@heretic":               "@heretic",
		" <!subteam^S0123ABCD> ": "<!subteam^S0123ABCD>",
		"@here: new critical IP": "<!here>: new critical IP",
		"":                       "",
	} {
		if got := noteMentions(in); got != want {
			t.Errorf("noteMentions(%q) = %q, want %q", in, got, want)
		}
	}
}
