package thehive

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinktext"
)

// AlertType and AlertSource are the alerts' type and source. TheHive refuses a second alert
// with the same type, source and sourceRef in an organisation.
const (
	AlertType   = "threatpipe"
	AlertSource = "threatpipe"
)

// Bounds of what one alert or comment carries.
const (
	maxTitle       = 512
	maxTag         = 128
	maxTags        = 50
	maxReasons     = 50
	maxLine        = 300
	maxDescription = 64 << 10
)

// alert is the body of POST /api/v1/alert.
type alert struct {
	Type         string       `json:"type"`
	Source       string       `json:"source"`
	SourceRef    string       `json:"sourceRef"`
	Title        string       `json:"title"`
	Description  string       `json:"description"`
	Severity     int          `json:"severity"`
	TLP          int          `json:"tlp"`
	PAP          int          `json:"pap"`
	Tags         []string     `json:"tags"`
	ExternalLink string       `json:"externalLink,omitempty"`
	Observables  []observable `json:"observables,omitempty"`
}

type observable struct {
	DataType string   `json:"dataType"`
	Data     string   `json:"data"`
	Tags     []string `json:"tags,omitempty"`
}

// comment is the body of POST /api/v1/alert/{id}/comment.
type comment struct {
	Message string `json:"message"`
}

// sourceRef is the alert's reference for a.Key, the idempotency key of (action, target,
// window): a repeat of one action maps to one alert. 32 hex digits of its SHA-256 keep it
// short whatever the key's form.
func sourceRef(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "tp-" + hex.EncodeToString(sum[:16])
}

// severityOf maps a severity to TheHive's 1 low, 2 medium, 3 high, 4 critical.
func severityOf(s event.Severity) int {
	switch s {
	case event.SeverityCritical:
		return 4
	case event.SeverityHigh:
		return 3
	case event.SeverityMedium:
		return 2
	}
	return 1
}

// buildAlert is the new alert for a.
func buildAlert(a *sinks.Action, o options) alert {
	al := alert{
		Type:         AlertType,
		Source:       AlertSource,
		SourceRef:    sourceRef(a.Key),
		Title:        sinktext.Title(a, maxTitle),
		Description:  description(a),
		Severity:     severityOf(a.Severity),
		TLP:          o.tlp,
		PAP:          o.pap,
		Tags:         tags(append([]string{"threatpipe"}, slices.Concat(a.Tags, o.tags)...)),
		ExternalLink: safeURL(a.ViewURL),
	}
	if ip, err := netip.ParseAddr(a.Target); err == nil && ip.Zone() == "" {
		al.Observables = []observable{{DataType: "ip", Data: ip.Unmap().String(), Tags: tags(a.Tags)}}
	}
	return al
}

// description is the alert's markdown description: what scored, why, and where to look.
func description(a *sinks.Action) string {
	var b strings.Builder
	fmt.Fprintf(&b, "**threatpipe** scored %s at **%d** (%s).\n\n", md(a.Target), a.Score, a.SeverityLabel())
	writeField(&b, "Score", fmt.Sprint(a.Score))
	writeField(&b, "Severity", a.SeverityLabel())
	writeField(&b, "Tags", strings.Join(a.Tags, ", "))
	writeField(&b, "ISP", a.ISP)
	writeField(&b, "Country", a.Country)
	writeField(&b, "Playbook", a.StepLabel())
	writeReasons(&b, a.Reasons)
	writeView(&b, a.ViewURL)
	return sinktext.Truncate(strings.TrimRight(b.String(), "\n"), maxDescription)
}

// buildComment is the comment for a repeat: seen again at, new score, reasons.
func buildComment(a *sinks.Action, at time.Time) comment {
	var b strings.Builder
	fmt.Fprintf(&b, "**threatpipe**: %s seen again at %s, scored **%d** (%s).\n\n", md(a.Target),
		at.UTC().Format(time.RFC3339), a.Score, a.SeverityLabel())
	writeField(&b, "Playbook", a.StepLabel())
	writeField(&b, "Tags", strings.Join(a.Tags, ", "))
	writeReasons(&b, a.Reasons)
	writeView(&b, a.ViewURL)
	return comment{Message: sinktext.Truncate(strings.TrimRight(b.String(), "\n"), maxDescription)}
}

func writeField(b *strings.Builder, label, value string) {
	if v := md(value); v != "" {
		fmt.Fprintf(b, "- **%s:** %s\n", label, v)
	}
}

func writeReasons(b *strings.Builder, reasons []event.Reason) {
	if len(reasons) == 0 {
		return
	}
	b.WriteString("\n**Reasons**\n\n")
	for _, line := range sinktext.ReasonLines(reasons, maxReasons) {
		fmt.Fprintf(b, "- %s\n", md(line))
	}
}

func writeView(b *strings.Builder, raw string) {
	if u := safeURL(raw); u != "" {
		fmt.Fprintf(b, "\n[Open in threatpipe](<%s>)\n", u)
	}
}

// safeURL is sinktext.WebURL(raw) when that can also sit in a markdown link destination, else
// "".
func safeURL(raw string) string {
	s := sinktext.WebURL(raw)
	if strings.ContainsAny(s, "<> \n") {
		return ""
	}
	return s
}

// mdEscaper escapes the markdown that outside text (ISP names, reason details) could use to
// inject links, images, HTML or formatting.
var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "`", "\\`", `*`, `\*`, `_`, `\_`, `[`, `\[`, `]`, `\]`, `<`, `\<`, `>`, `\>`,
	`#`, `\#`, `|`, `\|`, `~`, `\~`, `!`, `\!`,
)

// md is s on one line, bounded, with markdown escaped.
func md(s string) string { return mdEscaper.Replace(sinktext.OneLine(s, maxLine)) }

// tags sanitises tags: one line, at most 128 characters, deduplicated, order kept.
func tags(in []string) []string {
	var out []string
	for _, t := range in {
		t = sinktext.OneLine(t, maxTag)
		if t != "" && !slices.Contains(out, t) && len(out) < maxTags {
			out = append(out, t)
		}
	}
	return out
}

// lookup is the body of POST /api/v1/query that finds this sink's alert with sourceRef ref:
// listAlert, a filter of field equalities, and the first page of one, in the form thehive4py
// 2.x sends (its Eq filters joined with _and, its Paginate page).
type lookup struct {
	Query []map[string]any `json:"query"`
}

func buildLookup(ref string) lookup {
	eq := func(field, value string) map[string]string {
		return map[string]string{"_field": field, "_value": value}
	}
	return lookup{Query: []map[string]any{
		{"_name": "listAlert"},
		{"_name": "filter", "_and": []map[string]string{eq("type", AlertType), eq("source", AlertSource), eq("sourceRef", ref)}},
		{"_name": "page", "from": 0, "to": 1, "extraData": []string{}},
	}}
}
