package slack

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinktext"
)

// Block Kit limits, in characters (docs.slack.dev/reference/block-kit: header block, section
// block, button element). Slack rejects a message that exceeds any of them with
// "invalid_blocks", so every text is cut to fit. The fields section has six fields, under the
// limit of ten, and the button's label is a constant under its limit of 75.
const (
	maxHeaderText  = 150
	maxSectionText = 3000
	maxFieldText   = 2000
	maxButtonURL   = 3000
	// maxFallbackText bounds the top-level text. Slack accepts far more, but it is the
	// notification line: a long one helps nobody.
	maxFallbackText = 3000
	// maxReasonLine keeps one verbose reason from crowding out the others.
	maxReasonLine = 300
	ellipsis      = sinktext.Ellipsis
)

// message is an incoming-webhook payload: the top-level text is the notification and
// accessibility fallback, the blocks are what the channel shows.
type message struct {
	Text   string  `json:"text"`
	Blocks []block `json:"blocks"`
}

// block is the union of the block types used: header and section (text, fields) and actions
// (elements).
type block struct {
	Type     string    `json:"type"`
	Text     *textObj  `json:"text,omitempty"`
	Fields   []textObj `json:"fields,omitempty"`
	Elements []button  `json:"elements,omitempty"`
}

type textObj struct {
	Type string `json:"type"` // "plain_text" or "mrkdwn"
	Text string `json:"text"`
}

type button struct {
	Type     string  `json:"type"` // "button"
	Text     textObj `json:"text"` // plain_text only
	URL      string  `json:"url"`
	ActionID string  `json:"action_id"`
}

// buildMessage renders an action as Block Kit. Everything that comes from the event (ISP
// names, provider details, tags) is escaped for mrkdwn so that it cannot mention people or
// forge links; only the operator's channel note is passed through as written.
func buildMessage(a *sinks.Action) message {
	title := sinktext.SpaceControls(a.Title)
	if strings.TrimSpace(title) == "" {
		title = fmt.Sprintf("threatpipe: %s scored %d (%s)", sinktext.SpaceControls(a.Target), a.Score, a.Severity)
	}
	note := noteMentions(a.Params[ParamChannelNote])

	fallback := fit(title, maxFallbackText, true)
	if note != "" {
		fallback = note + " " + fit(title, maxFallbackText-utf8.RuneCountInString(note)-1, true)
	}
	m := message{Text: fallback}
	if note != "" {
		m.Blocks = append(m.Blocks, block{Type: "section", Text: &textObj{Type: "mrkdwn", Text: note}})
	}
	m.Blocks = append(m.Blocks,
		block{Type: "header", Text: &textObj{Type: "plain_text", Text: fit(title, maxHeaderText, false)}},
		block{Type: "section", Fields: fields(a)},
	)
	if r := reasonsText(a); r != "" {
		m.Blocks = append(m.Blocks, block{Type: "section", Text: &textObj{Type: "mrkdwn", Text: r}})
	}
	if viewURL(a.ViewURL) {
		m.Blocks = append(m.Blocks, block{Type: "actions", Elements: []button{{
			Type:     "button",
			Text:     textObj{Type: "plain_text", Text: "View in threatpipe"},
			URL:      a.ViewURL,
			ActionID: "threatpipe_view",
		}}})
	}
	return m
}

func fields(a *sinks.Action) []textObj {
	type kv struct{ label, value string }
	list := []kv{
		{"Score", fmt.Sprintf("%d (%s)", a.Score, a.Severity)},
		{"Indicator", a.Target},
		{"ISP", a.ISP},
		{"Country", a.Country},
		{"Tags", strings.Join(a.Tags, ", ")},
		{"Playbook", a.StepLabel()},
	}
	out := make([]textObj, 0, len(list))
	for _, f := range list {
		v := strings.TrimSpace(sinktext.SpaceControls(f.value))
		if v == "" {
			continue // Slack rejects empty text objects
		}
		label := "*" + f.label + "*\n"
		out = append(out, textObj{Type: "mrkdwn", Text: label + fit(v, maxFieldText-utf8.RuneCountInString(label), true)})
	}
	return out
}

// reasonsText lists the score's reasons, as many as fit in one section.
func reasonsText(a *sinks.Action) string {
	if len(a.Reasons) == 0 {
		return ""
	}
	const head = "*Reasons*"
	var b strings.Builder
	b.WriteString(head)
	n := utf8.RuneCountInString(head)
	for i, r := range a.Reasons {
		line := "\n• *" + fit(sinktext.SpaceControls(r.Source), 64, true) + "* (" + fmt.Sprintf("%+d", r.Points) + ")"
		if d := sinktext.SpaceControls(r.Detail); strings.TrimSpace(d) != "" {
			line += " " + fit(d, maxReasonLine, true)
		}
		left := len(a.Reasons) - i - 1
		more := ""
		if left > 0 {
			more = fmt.Sprintf("\n…and %d more", left)
		}
		w := utf8.RuneCountInString(line)
		// Keep room for the "and N more" line that would follow a cut.
		if n+w+utf8.RuneCountInString(more) > maxSectionText {
			b.WriteString(fmt.Sprintf("\n…and %d more", left+1))
			return b.String()
		}
		b.WriteString(line)
		n += w
	}
	return b.String()
}

// viewURL reports whether u can be a button's link.
func viewURL(u string) bool {
	if u == "" || utf8.RuneCountInString(u) > maxButtonURL {
		return false
	}
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "https" || p.Scheme == "http") && p.Host != ""
}

// specialMention matches the @here/@channel/@everyone an operator writes in a channel note;
// Slack only notifies for its own <!here> syntax.
var specialMention = regexp.MustCompile(`(^|\s)@(here|channel|everyone)\b`)

func noteMentions(note string) string {
	note = strings.TrimSpace(note)
	return specialMention.ReplaceAllString(note, "$1<!$2>")
}

var mrkdwnEscapes = map[rune]string{'&': "&amp;", '<': "&lt;", '>': "&gt;"}

// fit returns s, mrkdwn-escaped when esc, in at most limit characters: a cut ends in "…" and
// never splits an escape sequence.
func fit(s string, limit int, esc bool) string {
	if limit < 1 {
		return ""
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	n, cut := 0, -1
	for _, r := range s {
		piece := string(r)
		if e, ok := mrkdwnEscapes[r]; ok && esc {
			piece = e
		}
		w := utf8.RuneCountInString(piece)
		if cut < 0 && n+w > limit-1 {
			cut = b.Len() // where to stop if the rest does not fit
		}
		if n+w > limit {
			return b.String()[:cut] + ellipsis
		}
		b.WriteString(piece)
		n += w
	}
	return b.String()
}
