package jira

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinktext"
)

// Limits of what one issue or comment carries. Jira Cloud caps the summary at 255 characters
// and a rich-text field at 32,767; the caps below keep a noisy event well inside them.
const (
	maxSummary    = 255
	maxLabel      = 255
	maxLabels     = 50
	maxReasons    = 50
	maxReasonText = 300
	maxFieldText  = 200
)

// adfDoc is an Atlassian Document Format document (version 1).
type adfDoc struct {
	Type    string    `json:"type"`
	Version int       `json:"version"`
	Content []adfNode `json:"content"`
}

// adfNode is a block or inline ADF node. Text nodes must not be empty: Jira rejects them.
type adfNode struct {
	Type    string    `json:"type"`
	Text    string    `json:"text,omitempty"`
	Marks   []adfMark `json:"marks,omitempty"`
	Content []adfNode `json:"content,omitempty"`
}

type adfMark struct {
	Type  string            `json:"type"`
	Attrs map[string]string `json:"attrs,omitempty"`
}

func doc(blocks ...adfNode) adfDoc {
	return adfDoc{Type: "doc", Version: 1, Content: slices.DeleteFunc(blocks, isEmptyNode)}
}

func isEmptyNode(n adfNode) bool { return n.Type == "" }

func text(s string, marks ...adfMark) adfNode {
	if s == "" {
		return adfNode{}
	}
	return adfNode{Type: "text", Text: s, Marks: marks}
}

func paragraph(inline ...adfNode) adfNode {
	inline = slices.DeleteFunc(inline, isEmptyNode)
	if len(inline) == 0 {
		return adfNode{}
	}
	return adfNode{Type: "paragraph", Content: inline}
}

// bulletList makes one list item per non-empty line; no lines, no list.
func bulletList(items ...[]adfNode) adfNode {
	var lis []adfNode
	for _, it := range items {
		if p := paragraph(it...); p.Type != "" {
			lis = append(lis, adfNode{Type: "listItem", Content: []adfNode{p}})
		}
	}
	if len(lis) == 0 {
		return adfNode{}
	}
	return adfNode{Type: "bulletList", Content: lis}
}

var strong = adfMark{Type: "strong"}
var code = adfMark{Type: "code"}

func link(href string) adfMark {
	return adfMark{Type: "link", Attrs: map[string]string{"href": href}}
}

// field is a "Label: value" list item, nil when the value is empty.
func field(label, value string) []adfNode {
	value = sinktext.OneLine(value, maxFieldText)
	if value == "" {
		return nil
	}
	return []adfNode{text(label+": ", strong), text(value)}
}

// issueFields is the "fields" object of POST /rest/api/3/issue.
type issueFields struct {
	Project     keyRef   `json:"project"`
	IssueType   nameRef  `json:"issuetype"`
	Summary     string   `json:"summary"`
	Description adfDoc   `json:"description"`
	Labels      []string `json:"labels"`
	Priority    *nameRef `json:"priority,omitempty"`
}

type keyRef struct {
	Key string `json:"key"`
}

type nameRef struct {
	Name string `json:"name"`
}

type createRequest struct {
	Fields issueFields `json:"fields"`
}

type commentRequest struct {
	Body adfDoc `json:"body"`
}

// searchRequest is the body of POST /rest/api/3/search/jql.
type searchRequest struct {
	JQL        string   `json:"jql"`
	Fields     []string `json:"fields"`
	MaxResults int      `json:"maxResults"`
}

// buildSearch asks for the oldest issue carrying label, and only its key.
func buildSearch(label string) searchRequest {
	return searchRequest{
		JQL:        "labels = " + jqlString(label) + " ORDER BY created ASC",
		Fields:     []string{"key"},
		MaxResults: 1,
	}
}

// jqlString quotes s as a JQL string literal: inside double quotes, a backslash and a double
// quote are escaped with a backslash, and line breaks and tabs with their escapes.
func jqlString(s string) string {
	return `"` + jqlEscaper.Replace(s) + `"`
}

var jqlEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`)

// buildCreate is the body of POST /rest/api/3/issue for a.
func buildCreate(a *sinks.Action, o options) createRequest {
	f := issueFields{
		Project:     keyRef{Key: o.project},
		IssueType:   nameRef{Name: o.issueType},
		Summary:     summary(a),
		Description: description(a),
		Labels:      labels(keyLabel(a.Key), a.Tags, o.labels),
	}
	if o.priority != "" {
		f.Priority = &nameRef{Name: o.priority}
	}
	return createRequest{Fields: f}
}

// buildComment is the body of POST /rest/api/3/issue/{key}/comment: the indicator was seen
// again at, with its new score and reasons.
func buildComment(a *sinks.Action, at time.Time) commentRequest {
	r := reasonsBlock(a)
	return commentRequest{Body: doc(
		paragraph(
			text("threatpipe: "), text(sinktext.OneLine(a.Target, maxFieldText), code),
			text(fmt.Sprintf(" seen again at %s, scored %d (%s).", at.UTC().Format(time.RFC3339), a.Score, a.SeverityLabel())),
		),
		bulletList(
			field("Playbook", a.StepLabel()),
			field("Tags", strings.Join(a.Tags, ", ")),
		),
		r[0], r[1],
		viewLink(a.ViewURL),
	)}
}

// description is the issue's ADF description: what scored, why, and where to look.
func description(a *sinks.Action) adfDoc {
	r := reasonsBlock(a)
	return doc(
		paragraph(
			text("threatpipe scored "), text(sinktext.OneLine(a.Target, maxFieldText), code),
			text(fmt.Sprintf(" at %d (%s).", a.Score, a.SeverityLabel())),
		),
		bulletList(
			field("Score", fmt.Sprint(a.Score)),
			field("Severity", a.SeverityLabel()),
			field("Tags", strings.Join(a.Tags, ", ")),
			field("ISP", a.ISP),
			field("Country", a.Country),
			field("Playbook", a.StepLabel()),
		),
		r[0], r[1],
		viewLink(a.ViewURL),
	)
}

// reasonsBlock is a "Reasons" heading paragraph and its list, both empty without reasons.
func reasonsBlock(a *sinks.Action) [2]adfNode {
	var items [][]adfNode
	for _, line := range sinktext.ReasonLines(a.Reasons, maxReasons) {
		items = append(items, []adfNode{text(sinktext.OneLine(line, maxReasonText))})
	}
	list := bulletList(items...)
	if list.Type == "" {
		return [2]adfNode{}
	}
	return [2]adfNode{paragraph(text("Reasons", strong)), list}
}

// viewLink links to the prioritised view; only absolute http(s) URLs become links.
func viewLink(raw string) adfNode {
	href := sinktext.WebURL(raw)
	if href == "" {
		return adfNode{}
	}
	return paragraph(text("Open in threatpipe", link(href)))
}

// summary is the action's one-line title, at most 255 characters and without line breaks.
func summary(a *sinks.Action) string { return sinktext.Title(a, maxSummary) }

// labels are "threatpipe" and the action's key label, then the indicator's tags and the step's
// labels, each with runs of whitespace turned into "-" (Jira labels cannot hold spaces),
// deduplicated, order kept.
func labels(key string, tags, extra []string) []string {
	out := []string{"threatpipe", key}
	for _, t := range slices.Concat(tags, extra) {
		l := sanitizeLabel(t)
		if l != "" && !slices.Contains(out, l) && len(out) < maxLabels {
			out = append(out, l)
		}
	}
	return out
}

// sanitizeLabel turns runs of white space and control characters into "-" and bounds the
// label's length.
func sanitizeLabel(s string) string {
	return sinktext.Truncate(strings.Join(sinktext.Words(s), "-"), maxLabel)
}
