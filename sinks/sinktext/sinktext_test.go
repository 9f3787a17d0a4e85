package sinktext

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/sinks"
)

func TestWords(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" \t\r\n", nil},
		{"a b", []string{"a", "b"}},
		{"  a\r\n\tb  ", []string{"a", "b"}},
		{"a\x00b\x7fc\u0085d", []string{"a", "b", "c", "d"}},
		{"a\xffb\ufffdc", []string{"a", "b", "c"}},
		{"a\u00a0b\u2028c", []string{"a", "b", "c"}},
		{"Zürich-1", []string{"Zürich-1"}},
	} {
		if got := Words(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("Words(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	for _, tt := range []struct {
		in   string
		max  int
		want string
	}{
		{"", 0, ""},
		{"", 3, ""},
		{"abc", 3, "abc"},
		{"abcd", 3, "ab…"},
		{"abcd", 1, "…"},
		{"abcd", 0, ""},
		{"abcd", -1, ""},
		{"ééééé", 4, "ééé…"},
		{"日本語テキスト", 7, "日本語テキスト"},
		{"日本語テキスト", 6, "日本語テキ…"},
		{"a…b…", 3, "a……"},
	} {
		got := Truncate(tt.in, tt.max)
		if got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
		if n := utf8.RuneCountInString(got); n > max(tt.max, 0) {
			t.Errorf("Truncate(%q, %d) has %d characters", tt.in, tt.max, n)
		}
	}
}

func TestOneLine(t *testing.T) {
	for _, tt := range []struct {
		in   string
		max  int
		want string
	}{
		{"", 10, ""},
		{" \n\t ", 10, ""},
		{"plain", 10, "plain"},
		{"  line one\r\nline\ttwo  ", 100, "line one line two"},
		{"ctl\x00\x1b[31mred", 100, "ctl [31mred"},
		{"bad\xff\xfebytes", 100, "bad bytes"},
		{"a very long line indeed", 10, "a very lo…"},
		{"é\né\né\né", 5, "é é …"},
	} {
		if got := OneLine(tt.in, tt.max); got != tt.want {
			t.Errorf("OneLine(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

func TestSpaceControls(t *testing.T) {
	for _, tt := range []struct {
		in, want string
	}{
		{"", ""},
		{"plain  text", "plain  text"},
		{"a\nb\r\nc\td", "a b  c d"},
		{"\x00\x1f\x7f\u0085", "    "},
		{"keep\u2028this", "keep\u2028this"},
		{"bad\xff\xfe", "bad\ufffd\ufffd"},
	} {
		if got := SpaceControls(tt.in); got != tt.want {
			t.Errorf("SpaceControls(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTitle(t *testing.T) {
	for _, tt := range []struct {
		name string
		a    sinks.Action
		max  int
		want string
	}{
		{"title", sinks.Action{Title: "  threatpipe:\n203.0.113.7 scored 92 (critical) ", Target: "x"}, 100,
			"threatpipe: 203.0.113.7 scored 92 (critical)"},
		{"title cut", sinks.Action{Title: "abcdefghij"}, 5, "abcd…"},
		{"no title", sinks.Action{Target: "203.0.113.7", Score: 92, Severity: event.SeverityCritical}, 100,
			"threatpipe: 203.0.113.7 scored 92 (critical)"},
		{"blank title, no severity", sinks.Action{Title: " \r\n", Target: "2001:db8::1", Score: 40}, 100,
			"threatpipe: 2001:db8::1 scored 40 (unknown)"},
		{"default cut", sinks.Action{Target: "203.0.113.7", Score: 92, Severity: event.SeverityHigh}, 20,
			"threatpipe: 203.0.1…"},
	} {
		if got := Title(&tt.a, tt.max); got != tt.want {
			t.Errorf("%s: Title = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestReasonLines(t *testing.T) {
	rs := []event.Reason{
		{Source: "abuseipdb", Points: 40, Detail: "confidence 100"},
		{Source: "tor", Points: -5, Detail: "exit node"},
		{Source: "x", Points: 0, Detail: ""},
	}
	for _, tt := range []struct {
		name    string
		reasons []event.Reason
		max     int
		want    []string
	}{
		{"none", nil, 5, nil},
		{"all", rs, 5, []string{"abuseipdb (+40): confidence 100", "tor (-5): exit node", "x (+0): "}},
		{"exactly max", rs, 3, []string{"abuseipdb (+40): confidence 100", "tor (-5): exit node", "x (+0): "}},
		{"more", rs, 1, []string{"abuseipdb (+40): confidence 100", "… and 2 more"}},
		{"unfolded", []event.Reason{{Source: "a\nb", Points: 1, Detail: "c\td"}}, 5, []string{"a\nb (+1): c\td"}},
	} {
		if got := ReasonLines(tt.reasons, tt.max); !slices.Equal(got, tt.want) {
			t.Errorf("%s: ReasonLines = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestWebURL(t *testing.T) {
	for _, tt := range []struct {
		in, want string
	}{
		{"", ""},
		{"https://view.example.com/i/203.0.113.7", "https://view.example.com/i/203.0.113.7"},
		{"  http://view.example.com/x?a=1 \n", "http://view.example.com/x?a=1"},
		{"https://view.example.com/a b", "https://view.example.com/a%20b"},
		{"javascript:alert(1)", ""},
		{"ftp://view.example.com/", ""},
		{"/relative/path", ""},
		{"https:///no-host", ""},
		{"https://exa\nmple.com/", ""},
		{"http://[::1", ""},
	} {
		if got := WebURL(tt.in); got != tt.want {
			t.Errorf("WebURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzOneLine checks that OneLine gives one line of valid UTF-8 in at most max characters,
// without leading, trailing or doubled spaces.
func FuzzOneLine(f *testing.F) {
	f.Add("  a\r\nb\tc  ", 5)
	f.Add("bad\xff\xfe\u2028é", 3)
	f.Fuzz(func(t *testing.T, s string, n int) {
		n = n%512 + 1
		if n < 1 {
			n += 512
		}
		got := OneLine(s, n)
		if utf8.RuneCountInString(got) > n || !utf8.ValidString(got) || strings.ContainsAny(got, "\r\n\t") ||
			strings.Contains(got, "  ") || strings.TrimSpace(got) != got {
			t.Fatalf("OneLine(%q, %d) = %q", s, n, got)
		}
	})
}
