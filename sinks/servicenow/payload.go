package servicenow

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinktext"
)

// Field limits of the incident table (task.short_description is 160 characters,
// task.description and journal entries 4,000 in a default dictionary) and the correlation
// fields (100).
const (
	maxShortDescription = 160
	maxDescription      = 4000
	maxWorkNotes        = 4000
	maxCorrelation      = 100
	maxReasons          = 30
	maxLine             = 300
)

// CorrelationDisplay names threatpipe as the incidents' correlating system.
const CorrelationDisplay = "threatpipe"

// incident is the body of POST /api/now/table/incident. Values are actual (not display)
// values; urgency and impact are the choice values "1" (high) to "3" (low).
type incident struct {
	ShortDescription   string `json:"short_description"`
	Description        string `json:"description"`
	Urgency            string `json:"urgency"`
	Impact             string `json:"impact"`
	Category           string `json:"category"`
	AssignmentGroup    string `json:"assignment_group,omitempty"`
	CallerID           string `json:"caller_id,omitempty"`
	CorrelationID      string `json:"correlation_id"`
	CorrelationDisplay string `json:"correlation_display"`
}

// workNote is the body of PATCH /api/now/table/incident/{sys_id}.
type workNote struct {
	WorkNotes string `json:"work_notes"`
}

// urgencyImpact maps a severity to urgency and impact so that the default priority lookup
// gives critical P1, high P2, medium P3, low P4 and anything else P5.
func urgencyImpact(s event.Severity) (urgency, impact string) {
	switch s {
	case event.SeverityCritical:
		return "1", "1"
	case event.SeverityHigh:
		return "1", "2"
	case event.SeverityMedium:
		return "2", "2"
	case event.SeverityLow:
		return "2", "3"
	}
	return "3", "3"
}

// buildIncident is the new incident for a.
func buildIncident(a *sinks.Action, o options) incident {
	urg, imp := urgencyImpact(a.Severity)
	if o.urgency != "" {
		urg = o.urgency
	}
	if o.impact != "" {
		imp = o.impact
	}
	return incident{
		ShortDescription:   sinktext.Title(a, maxShortDescription),
		Description:        description(a),
		Urgency:            urg,
		Impact:             imp,
		Category:           o.category,
		AssignmentGroup:    o.assignmentGroup,
		CallerID:           o.callerID,
		CorrelationID:      correlationID(a.Key),
		CorrelationDisplay: CorrelationDisplay,
	}
}

// correlationID ties an incident to the Action.Key that opened it, so that Find can tell whether
// an action happened: 128 bits of the key's SHA-256 keep it well inside the field whatever the
// key's form.
func correlationID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "threatpipe:" + hex.EncodeToString(sum[:16])
}

// description is the incident's plain-text description.
func description(a *sinks.Action) string {
	var b strings.Builder
	fmt.Fprintf(&b, "threatpipe scored %s at %d (%s).\n\n", sinktext.OneLine(a.Target, maxLine), a.Score, a.SeverityLabel())
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

// buildWorkNote is the work note for a repeat: seen again at, new score, reasons.
func buildWorkNote(a *sinks.Action, at time.Time) workNote {
	var b strings.Builder
	fmt.Fprintf(&b, "threatpipe: %s seen again at %s, scored %d (%s).\n", sinktext.OneLine(a.Target, maxLine),
		at.UTC().Format(time.RFC3339), a.Score, a.SeverityLabel())
	writeField(&b, "Playbook", a.StepLabel())
	writeField(&b, "Tags", strings.Join(a.Tags, ", "))
	writeReasons(&b, a.Reasons)
	writeView(&b, a.ViewURL)
	return workNote{WorkNotes: sinktext.Truncate(strings.TrimRight(b.String(), "\n"), maxWorkNotes)}
}

func writeField(b *strings.Builder, label, value string) {
	if v := sinktext.OneLine(value, maxLine); v != "" {
		fmt.Fprintf(b, "%s: %s\n", label, v)
	}
}

func writeReasons(b *strings.Builder, reasons []event.Reason) {
	if len(reasons) == 0 {
		return
	}
	b.WriteString("\nReasons:\n")
	for _, line := range sinktext.ReasonLines(reasons, maxReasons) {
		fmt.Fprintf(b, "- %s\n", sinktext.OneLine(line, maxLine))
	}
}

func writeView(b *strings.Builder, raw string) {
	if u := sinktext.WebURL(raw); u != "" {
		fmt.Fprintf(b, "\nView: %s\n", u)
	}
}
