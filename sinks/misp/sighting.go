package misp

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// sight adds a sighting of at at the observation time seen, unless one from this sink at that
// second is there already: a redelivered action carries the same observation and adds none,
// a new observation (a new event) adds one. added says whether it did.
func (s *Sink) sight(ctx context.Context, at Attribute, seen time.Time) (bool, error) {
	ts := seen.Unix()
	id, err := strconv.ParseInt(at.ID, 10, 64)
	if err != nil {
		return false, fmt.Errorf("attribute id %q: %w", at.ID, err)
	}
	body, err := s.client.Post(ctx, SightingsSearchPath, sightingQuery{
		ReturnFormat: returnFormatJSON, ID: id, From: ts, To: ts, Source: SightingSource,
	})
	if err != nil {
		return false, err
	}
	n, err := decodeSightingCount(body)
	if err != nil {
		return false, fmt.Errorf("%s: %w", SightingsSearchPath, err)
	}
	if n > 0 {
		return false, nil
	}
	_, err = s.client.Post(ctx, SightingsAddPath, newSighting{
		UUID: at.UUID, Type: sightingTypeSighting, Source: SightingSource, Timestamp: ts,
	})
	return err == nil, err
}
