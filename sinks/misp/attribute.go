package misp

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinktext"
)

// findAttribute is the attribute of type typ and value value in event ev.
func (s *Sink) findAttribute(ctx context.Context, ev, value, typ string) (Attribute, bool, error) {
	attrs, err := s.client.SearchAttributes(ctx, AttributeQuery{
		ReturnFormat: returnFormatJSON, EventID: ev, Value: value, Type: []string{typ}, Limit: 10, Page: 1,
	})
	if err != nil {
		return Attribute{}, false, err
	}
	for _, at := range attrs {
		if at.Value == value && at.Type == typ && (at.EventID == "" || at.EventID == ev) {
			return at, true, nil
		}
	}
	return Attribute{}, false, nil
}

// upsertAttribute adds the attribute for value to event ev, or edits the one there; verb says
// which ("added", "updated").
func (s *Sink) upsertAttribute(ctx context.Context, ev, value string, a *sinks.Action, o options) (Attribute, string, error) {
	toIDS := a.Score >= s.cfg.ToIDSScore
	if o.toIDS != nil {
		toIDS = *o.toIDS
	}
	comment := s.comment(a)
	at, found, err := s.findAttribute(ctx, ev, value, o.attrType)
	if err != nil {
		return Attribute{}, "", err
	}
	if !found {
		at, err = s.addAttribute(ctx, ev, newAttribute{
			Type: o.attrType, Category: categoryNetworkActivity, Value: value, ToIDS: toIDS, Comment: comment,
		})
		if err == nil {
			return at, "added", nil
		}
		if !isDuplicateAttribute(err) {
			return Attribute{}, "", err
		}
		// Another writer added it since the search: update theirs.
		if at, found, err = s.findAttribute(ctx, ev, value, o.attrType); err != nil || !found {
			return Attribute{}, "", fmt.Errorf("MISP has it already but the search does not find it: %w", err)
		}
	}
	if at.ToIDS == toIDS && at.Comment == comment {
		return at, "unchanged", nil
	}
	body, err := s.client.Post(ctx, AttributesEditPath+at.ID, attributeEdit{ToIDS: toIDS, Comment: comment})
	if err != nil {
		return Attribute{}, "", err
	}
	edited, err := decodeAttribute(body)
	if err != nil {
		return Attribute{}, "", fmt.Errorf("%s%s: %w", AttributesEditPath, at.ID, err)
	}
	// The edit answer may omit the tags: keep those the search found.
	edited.Tags = at.Tags
	return edited, "updated", nil
}

func (s *Sink) addAttribute(ctx context.Context, ev string, in newAttribute) (Attribute, error) {
	body, err := s.client.Post(ctx, AttributesAddPath+ev, in)
	if err != nil {
		return Attribute{}, err
	}
	at, err := decodeAttribute(body)
	if err != nil {
		return Attribute{}, fmt.Errorf("%s%s: %w", AttributesAddPath, ev, err)
	}
	return at, nil
}

// comment is the attribute's comment: score, severity, when, and why. It carries no time of
// its own beyond the sighting's, so that a redelivery leaves it unchanged.
func (s *Sink) comment(a *sinks.Action) string {
	var b strings.Builder
	fmt.Fprintf(&b, "threatpipe: scored %d (%s) at %s", a.Score, a.SeverityLabel(), a.SeenAt(s.now()).UTC().Format(time.RFC3339))
	if st := a.StepLabel(); st != "" {
		fmt.Fprintf(&b, " by %s", sinktext.OneLine(st, 200))
	}
	if lines := sinktext.ReasonLines(a.Reasons, maxReasons); len(lines) > 0 {
		b.WriteString(". Reasons: ")
		for i, l := range lines {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(sinktext.OneLine(l, 300))
		}
	}
	return sinktext.Truncate(b.String(), maxComment)
}

// SearchAttributes runs POST /attributes/restSearch with q and returns the attributes
// answered, in MISP's order.
func (c *Client) SearchAttributes(ctx context.Context, q AttributeQuery) ([]Attribute, error) {
	if q.ReturnFormat == "" {
		q.ReturnFormat = returnFormatJSON
	}
	body, err := c.Post(ctx, AttributesSearchPath, q)
	if err != nil {
		return nil, err
	}
	attrs, err := decodeAttributeList(body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", AttributesSearchPath, err)
	}
	return attrs, nil
}
