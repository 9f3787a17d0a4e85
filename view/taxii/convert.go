package taxii

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/view"
)

// Convert settings: the view's retention (valid_until) and history cap (how far back the
// history can tell when the score last changed).
type Convert struct {
	Retention  time.Duration
	HistoryCap int
}

// Published says whether an indicator is published at all: info severity (nothing found) and
// gated addresses (private, own, allowlisted: never looked up) are not threat indicators.
func Published(r *view.Row) bool {
	if r.Gate != "" {
		return false
	}
	switch r.Severity {
	case event.SeverityCritical, event.SeverityHigh, event.SeverityMedium, event.SeverityLow:
		return true
	}
	return false
}

// Objects returns the indicator, sighting and (when there are reasons) note of ind, in that
// order, or nil when ind is not published or its address cannot make a pattern.
func (c Convert) Objects(ind *view.Indicator) []Object {
	pattern, ok := patternOf(ind.IP)
	if !ok || !Published(&ind.Row) {
		return nil
	}
	ids := IDsOf(ind.IP)
	created := Timestamp(ind.FirstSeen)
	out := []Object{c.indicator(ind, ids, pattern), &Sighting{
		Common:      Common{Type: "sighting", SpecVersion: SpecVersion, ID: ids.Sighting, Created: created, Modified: Timestamp(ind.LastSeen), CreatedByRef: IdentityID},
		Description: fmt.Sprintf("Sightings of %s in the events threatpipe enriched.", ind.IP),
		FirstSeen:   created, LastSeen: Timestamp(ind.LastSeen),
		Count: min(max(ind.Sightings, 0), 999999999), SightingOfRef: ids.Indicator,
	}}
	if content := reasons(ind); content != "" {
		out = append(out, &Note{
			Common:     Common{Type: "note", SpecVersion: SpecVersion, ID: ids.Note, Created: created, Modified: Timestamp(ind.LastSeen), CreatedByRef: IdentityID},
			Abstract:   fmt.Sprintf("Why threatpipe scored %s %d/100", ind.IP, ind.Score),
			Content:    content,
			ObjectRefs: []string{ids.Indicator},
		})
	}
	return out
}

func (c Convert) indicator(ind *view.Indicator, ids IDs, pattern string) *Indicator {
	validUntil := ind.LastSeen.Add(c.Retention)
	if !validUntil.After(ind.FirstSeen) { // valid_until must follow valid_from
		validUntil = ind.FirstSeen.Add(time.Millisecond)
	}
	return &Indicator{
		Common: Common{Type: "indicator", SpecVersion: SpecVersion, ID: ids.Indicator,
			Created: Timestamp(ind.FirstSeen), Modified: Timestamp(c.scoreSince(ind)), CreatedByRef: IdentityID},
		Name:           fmt.Sprintf("%s %s (threatpipe score %d)", ind.IP, ind.Severity, ind.Score),
		Description:    description(ind),
		IndicatorTypes: []string{indicatorType(ind.Severity)},
		Pattern:        pattern, PatternType: "stix",
		ValidFrom: Timestamp(ind.FirstSeen), ValidUntil: Timestamp(validUntil),
		Labels:             labels(ind),
		Confidence:         min(max(ind.Confidence, 0), 100),
		ExternalReferences: references(ind),
	}
}

// scoreSince is when the current score was stored: the oldest of the newest run of history
// entries with the current score. When that run is the whole history and the history was never
// trimmed, the score has not changed since the first sighting. A trimmed history makes the time
// move forward (a new version with the same content), never backward.
func (c Convert) scoreSince(ind *view.Indicator) time.Time {
	since, i := ind.LastSeen, 0
	for ; i < len(ind.History) && ind.History[i].Score == ind.Score; i++ {
		since = ind.History[i].At
	}
	if i == len(ind.History) && len(ind.History) < c.HistoryCap {
		since = ind.FirstSeen
	}
	if since.Before(ind.FirstSeen) {
		since = ind.FirstSeen
	}
	if since.After(ind.LastSeen) {
		since = ind.LastSeen
	}
	return since
}

// indicatorType maps a severity onto STIX's indicator-type vocabulary.
func indicatorType(s event.Severity) string {
	if s == event.SeverityCritical || s == event.SeverityHigh {
		return "malicious-activity"
	}
	return "anomalous-activity"
}

func labels(ind *view.Indicator) []string {
	out := make([]string, 0, len(ind.Tags)+1)
	out = append(out, "severity:"+string(ind.Severity))
	return append(out, ind.Tags...)
}

func description(ind *view.Indicator) string {
	var b strings.Builder
	fmt.Fprintf(&b, "threatpipe scored %s %d/100 (%s), confidence %d, from %d sighting(s) between %s and %s.",
		ind.IP, ind.Score, ind.Severity, ind.Confidence, ind.Sightings, Timestamp(ind.FirstSeen), Timestamp(ind.LastSeen))
	if len(ind.ValidatedBy) > 0 {
		fmt.Fprintf(&b, " Rated malicious by %s.", strings.Join(ind.ValidatedBy, ", "))
	}
	if ind.ASN > 0 || ind.Country != "" {
		fmt.Fprintf(&b, " AS%d %s, %s.", ind.ASN, ind.ASOrg, ind.Country)
	}
	return b.String()
}

// reasons is the note's content: one line per reason of the latest verdict.
func reasons(ind *view.Indicator) string {
	if ind.Latest == nil {
		return ""
	}
	lines := make([]string, 0, len(ind.Latest.Reasons))
	for _, r := range ind.Latest.Reasons {
		lines = append(lines, fmt.Sprintf("%s: %s (%+d)", r.Source, r.Detail, r.Points))
	}
	return strings.Join(lines, "\n")
}

// references names every source that rated the address: the providers that answered the latest
// lookup and the sources that validated it as malicious.
func references(ind *view.Indicator) []ExternalReference {
	desc := map[string]string{}
	if ind.Latest != nil {
		for name, o := range ind.Latest.Providers {
			if o != nil && o.Status == event.StatusOK && o.Result != nil {
				desc[name] = fmt.Sprintf("verdict %s, score %d", o.Result.Verdict, o.Result.Score)
			}
		}
	}
	for _, name := range ind.ValidatedBy {
		if desc[name] == "" {
			desc[name] = "rated malicious"
		}
	}
	out := make([]ExternalReference, 0, len(desc))
	for name, d := range desc {
		if name == "" {
			continue
		}
		// No url: a source's report page changes, so it cannot carry the hash STIX asks a url
		// to have (the validator's check 302).
		out = append(out, ExternalReference{SourceName: name, Description: d})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SourceName < out[j].SourceName })
	return out
}
