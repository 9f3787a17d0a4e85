package misp

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinktext"
)

// Machine-tag predicates, as in a MISP taxonomy <namespace>:<predicate>="<value>".
const (
	predScore       = "score"
	predSeverity    = "severity"
	predValidatedBy = "validated-by"
)

// machineTag is <prefix>:<pred>="<value>"; quotes and control characters are dropped from
// value so that the tag parses as a taxonomy tag.
func (s *Sink) machineTag(pred, value string) string {
	value = strings.ReplaceAll(sinktext.OneLine(value, 100), `"`, "")
	return s.cfg.TagPrefix + ":" + pred + `="` + value + `"`
}

// replaced reports whether tag is one of the sink's single-valued tags (score, severity),
// which a new value replaces rather than joins.
func (s *Sink) replaced(tag string) bool {
	return strings.HasPrefix(tag, s.cfg.TagPrefix+":"+predScore+"=") ||
		strings.HasPrefix(tag, s.cfg.TagPrefix+":"+predSeverity+"=")
}

// wantTags are the tags the attribute should carry for a: score, severity, one validated-by
// per agreeing source (the event's, else the sources of positive reasons), the action's and
// the step's tags.
func (s *Sink) wantTags(a *sinks.Action, o options) []string {
	out := []string{s.machineTag(predSeverity, a.SeverityLabel()), s.machineTag(predScore, strconv.Itoa(a.Score))}
	var sources []string
	if a.Event != nil {
		sources = a.Event.ValidatedBy
	} else {
		for _, r := range a.Reasons {
			if r.Points > 0 {
				sources = append(sources, r.Source)
			}
		}
	}
	for _, src := range sources {
		if src != "" {
			out = append(out, s.machineTag(predValidatedBy, src))
		}
	}
	for _, t := range slices.Concat(a.Tags, o.tags) {
		out = append(out, sinktext.OneLine(t, maxTag))
	}
	var uniq []string
	for _, t := range out {
		if t != "" && !slices.Contains(uniq, t) && len(uniq) < maxTags {
			uniq = append(uniq, t)
		}
	}
	return uniq
}

// syncTags attaches the wanted tags the attribute lacks, then removes its score and severity
// tags that are no longer wanted: attaching first so that it always has one.
func (s *Sink) syncTags(ctx context.Context, at Attribute, want []string) error {
	local := false
	for _, t := range want {
		if slices.Contains(at.Tags, t) {
			continue
		}
		if _, err := s.client.Post(ctx, TagsAttachPath, tagRequest{UUID: at.UUID, Tag: t, Local: &local}); err != nil {
			return fmt.Errorf("attach %q: %w", t, err)
		}
	}
	for _, t := range at.Tags {
		if s.replaced(t) && !slices.Contains(want, t) {
			if _, err := s.client.Post(ctx, TagsRemovePath, tagRequest{UUID: at.UUID, Tag: t}); err != nil {
				return fmt.Errorf("remove %q: %w", t, err)
			}
		}
	}
	return nil
}
