package pagerduty

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinktext"
)

// Events API v2 limits.
const (
	maxSummary  = 1024 // characters
	maxDedupKey = 255
)

// Events API v2 event actions.
const (
	actionTrigger = "trigger"
	actionResolve = "resolve"
)

// pdEvent is an Events API v2 alert event. Payload, client and links are for triggers only.
type pdEvent struct {
	RoutingKey  string   `json:"routing_key"`
	EventAction string   `json:"event_action"`
	DedupKey    string   `json:"dedup_key"`
	Payload     *payload `json:"payload,omitempty"`
	Client      string   `json:"client,omitempty"`
	Links       []link   `json:"links,omitempty"`
}

type payload struct {
	Summary       string  `json:"summary"`
	Source        string  `json:"source"`
	Severity      string  `json:"severity"`
	Timestamp     string  `json:"timestamp"`
	Component     string  `json:"component"`
	Group         string  `json:"group,omitempty"`
	Class         string  `json:"class"`
	CustomDetails details `json:"custom_details"`
}

// details is custom_details: what a responder needs without opening threatpipe.
type details struct {
	Indicator  string            `json:"indicator"`
	Score      int               `json:"score"`
	Severity   event.Severity    `json:"severity"`
	Tags       []string          `json:"tags"`
	Reasons    []event.Reason    `json:"reasons"`
	ISP        string            `json:"isp,omitempty"`
	Country    string            `json:"country,omitempty"`
	Providers  map[string]string `json:"providers,omitempty"`
	Playbook   string            `json:"playbook,omitempty"`
	Step       string            `json:"step,omitempty"`
	EventID    string            `json:"event_id,omitempty"`
	ObservedAt string            `json:"observed_at,omitempty"`
	ViewURL    string            `json:"view_url,omitempty"`
}

type link struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

// dedupKey is the alert's key: one per indicator, so that repeated triggers for an address
// update its open alert instead of paging again, and a resolve finds it.
func dedupKey(target string) (string, error) {
	if target == "" {
		return "", errors.New("action has no target")
	}
	k := "threatpipe:" + target
	if len(k) > maxDedupKey {
		return "", fmt.Errorf("dedup key of %d bytes exceeds %d", len(k), maxDedupKey)
	}
	return k, nil
}

// severityOf maps threatpipe's five severities onto PagerDuty's four.
func severityOf(s event.Severity) string {
	switch s {
	case event.SeverityCritical:
		return "critical"
	case event.SeverityHigh:
		return "error"
	case event.SeverityMedium:
		return "warning"
	default:
		return "info"
	}
}

// triggerEvent builds the trigger for a. severity is the PagerDuty severity (a param's
// override or severityOf); now stamps events that carry no processing time.
func triggerEvent(routingKey, dedup, severity string, a *sinks.Action, now time.Time) pdEvent {
	summary := oneLine(a.Title)
	if strings.TrimSpace(summary) == "" {
		summary = fmt.Sprintf("threatpipe: %s scored %d (%s)", a.Target, a.Score, a.Severity)
	}
	source := a.Target
	if source == "" {
		source = "threatpipe"
	}
	ts := now
	d := details{
		Indicator: a.Target, Score: a.Score, Severity: a.Severity,
		Tags: nonNil(a.Tags), Reasons: a.Reasons,
		ISP: a.ISP, Country: a.Country,
		Playbook: a.Playbook, Step: a.Step, ViewURL: a.ViewURL,
	}
	if d.Reasons == nil {
		d.Reasons = []event.Reason{}
	}
	if e := a.Event; e != nil {
		if !e.ProcessedAt.IsZero() {
			ts = e.ProcessedAt
		}
		if !e.ObservedAt.IsZero() {
			d.ObservedAt = e.ObservedAt.UTC().Format(time.RFC3339)
		}
		d.EventID = e.EventID
		d.Providers = providerSummary(e.Providers)
	}
	ev := pdEvent{
		RoutingKey:  routingKey,
		EventAction: actionTrigger,
		DedupKey:    dedup,
		Payload: &payload{
			Summary:       sinktext.Truncate(summary, maxSummary),
			Source:        source,
			Severity:      severity,
			Timestamp:     ts.UTC().Format(time.RFC3339),
			Component:     "threatpipe",
			Group:         a.Playbook,
			Class:         "threat-intel",
			CustomDetails: d,
		},
		Client: "threatpipe",
	}
	if a.ViewURL != "" {
		ev.Links = []link{{Href: a.ViewURL, Text: "View " + a.Target + " in threatpipe"}}
	}
	return ev
}

// resolveEvent resolves the alert with dedup; PagerDuty needs no payload for it.
func resolveEvent(routingKey, dedup string) pdEvent {
	return pdEvent{RoutingKey: routingKey, EventAction: actionResolve, DedupKey: dedup}
}

// providerSummary condenses each provider's outcome to one line ("malicious, score 95" or
// "quota_exhausted").
func providerSummary(ps map[string]*event.ProviderOutcome) map[string]string {
	if len(ps) == 0 {
		return nil
	}
	out := make(map[string]string, len(ps))
	for name, p := range ps {
		if p == nil {
			continue
		}
		s := string(p.Status)
		if p.Result != nil {
			s = fmt.Sprintf("%s, score %d", p.Result.Verdict, p.Result.Score)
		}
		out[name] = s
	}
	return out
}

// accepted is the Events API's answer to an enqueued event.
type accepted struct {
	Status   string `json:"status"`
	Message  string `json:"message"`
	DedupKey string `json:"dedup_key"`
}

// decodeAccepted reads a 2xx answer: status "success" and the alert's dedup key. Anything else
// is an error, since a 2xx from something that is not the Events API must not count as a page.
func decodeAccepted(body []byte) (string, error) {
	var a accepted
	if err := json.Unmarshal(body, &a); err != nil {
		return "", errors.New("answer is not the Events API's JSON: is the URL the enqueue endpoint?")
	}
	if a.Status != "success" {
		return "", fmt.Errorf("answer has status %q, want \"success\"", sinktext.Truncate(oneLine(a.Status), 100))
	}
	if len(a.DedupKey) > maxDedupKey || !utf8.ValidString(a.DedupKey) {
		return "", errors.New("answer has an invalid dedup_key")
	}
	return a.DedupKey, nil
}

// apiError is the Events API's error body.
type apiError struct {
	Status  string   `json:"status"`
	Message string   `json:"message"`
	Errors  []string `json:"errors"`
}

// describeError condenses an error body to one line ("invalid event: Event object is invalid:
// Length of 'routing_key' is incorrect"), or returns body unchanged if it is not the API's JSON.
func describeError(body string) string {
	var e apiError
	if json.Unmarshal([]byte(body), &e) != nil || (e.Status == "" && e.Message == "") {
		return body
	}
	parts := []string{e.Status, e.Message, strings.Join(e.Errors, "; ")}
	var kept []string
	for _, p := range parts {
		if p = strings.TrimSpace(oneLine(p)); p != "" {
			kept = append(kept, p)
		}
	}
	return sinktext.Truncate(strings.Join(kept, ": "), 300)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// oneLine replaces control characters with spaces, after each run of invalid UTF-8 with one
// U+FFFD.
func oneLine(s string) string {
	return sinktext.SpaceControls(strings.ToValidUTF8(s, "\uFFFD"))
}
