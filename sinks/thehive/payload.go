package thehive

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/sinks"
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
	title := oneLine(a.Title, maxTitle)
	if title == "" {
		title = oneLine(fmt.Sprintf("threatpipe: %s scored %d (%s)", a.Target, a.Score, severity(a)), maxTitle)
	}
	al := alert{
		Type:         AlertType,
		Source:       AlertSource,
		SourceRef:    sourceRef(a.Key),
		Title:        title,
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
	fmt.Fprintf(&b, "**threatpipe** scored %s at **%d** (%s).\n\n", md(a.Target), a.Score, severity(a))
	writeField(&b, "Score", fmt.Sprint(a.Score))
	writeField(&b, "Severity", severity(a))
	writeField(&b, "Tags", strings.Join(a.Tags, ", "))
	writeField(&b, "ISP", a.ISP)
	writeField(&b, "Country", a.Country)
	writeField(&b, "Playbook", stepName(a))
	writeReasons(&b, a.Reasons)
	writeView(&b, a.ViewURL)
	return truncate(strings.TrimRight(b.String(), "\n"), maxDescription)
}

// buildComment is the comment for a repeat: seen again at, new score, reasons.
func buildComment(a *sinks.Action, at time.Time) comment {
	var b strings.Builder
	fmt.Fprintf(&b, "**threatpipe**: %s seen again at %s, scored **%d** (%s).\n\n", md(a.Target),
		at.UTC().Format(time.RFC3339), a.Score, severity(a))
	writeField(&b, "Playbook", stepName(a))
	writeField(&b, "Tags", strings.Join(a.Tags, ", "))
	writeReasons(&b, a.Reasons)
	writeView(&b, a.ViewURL)
	return comment{Message: truncate(strings.TrimRight(b.String(), "\n"), maxDescription)}
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
	for i, r := range reasons {
		if i == maxReasons {
			fmt.Fprintf(b, "- … and %d more\n", len(reasons)-maxReasons)
			break
		}
		fmt.Fprintf(b, "- %s\n", md(fmt.Sprintf("%s (%+d): %s", r.Source, r.Points, r.Detail)))
	}
}

func writeView(b *strings.Builder, raw string) {
	if u := safeURL(raw); u != "" {
		fmt.Fprintf(b, "\n[Open in threatpipe](<%s>)\n", u)
	}
}

// safeURL is raw when it is an absolute http(s) URL that can sit in a markdown link
// destination, else "".
func safeURL(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	s := u.String()
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
func md(s string) string { return mdEscaper.Replace(oneLine(s, maxLine)) }

// tags sanitises tags: one line, at most 128 characters, deduplicated, order kept.
func tags(in []string) []string {
	var out []string
	for _, t := range in {
		t = oneLine(t, maxTag)
		if t != "" && !slices.Contains(out, t) && len(out) < maxTags {
			out = append(out, t)
		}
	}
	return out
}

func severity(a *sinks.Action) string {
	if a.Severity == "" {
		return "unknown"
	}
	return string(a.Severity)
}

func stepName(a *sinks.Action) string {
	switch {
	case a.Playbook == "":
		return a.Step
	case a.Step == "":
		return a.Playbook
	}
	return a.Playbook + " / " + a.Step
}

// oneLine folds control characters and line breaks into single spaces and truncates to max
// characters, marking a cut with "…".
func oneLine(s string, max int) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError
	}), " ")
	return truncate(s, max)
}

func truncate(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
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
