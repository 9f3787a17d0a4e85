package event

import (
	"fmt"
	"slices"
	"strings"
)

// Sightings collects the distinct addresses one message names, in reading order and with the
// fields each was found in, up to a limit: every format decoder reads its address fields
// through one, so that limits, warnings and dead-letter classes are the same for all formats.
// The zero value is not usable; use NewSightings.
type Sightings struct {
	max      int
	list     []Sighting
	index    map[string]int // -1: skipped, over the limit
	rejected []string       // warnings: unparsable values and skipped addresses
	skipped  []string
}

// NewSightings returns a collector of at most max distinct addresses.
func NewSightings(max int) *Sightings {
	return &Sightings{max: max, index: make(map[string]int, 4)}
}

// Add reads raw, found in field, as an address. A value that is not an address becomes a
// warning; one already seen adds field to its sighting; one over the limit is skipped and
// reported (Finish sets Input.Partial).
func (s *Sightings) Add(field, raw string) {
	ind, err := ParseIP(raw)
	if err != nil {
		s.rejected = append(s.rejected, fmt.Sprintf("%s: %v", field, err))
		return
	}
	if i, seen := s.index[ind.Value]; seen {
		if i >= 0 && !slices.Contains(s.list[i].Fields, field) {
			s.list[i].Fields = append(s.list[i].Fields, field)
		}
		return
	}
	if len(s.list) >= s.max {
		s.index[ind.Value] = -1
		s.skipped = append(s.skipped, ind.Value)
		s.rejected = append(s.rejected, fmt.Sprintf("%s: %s skipped, the event already names %d indicators", field, ind.Value, s.max))
		return
	}
	s.index[ind.Value] = len(s.list)
	s.list = append(s.list, Sighting{Indicator: ind, Fields: []string{field}})
}

// Finish stores the sightings and their warnings in in. With no valid address it returns a
// no_indicator error naming where it looked (fields, e.g. "src_ip or dest_ip"); over the limit
// it sets in.Partial.
func (s *Sightings) Finish(in *Input, fields string) error {
	if len(s.list) == 0 {
		if len(s.rejected) > 0 {
			return decodeErr(ClassNoIndicator, "no valid IP in %s (%s)", fields, strings.Join(limit(s.rejected, 5), "; "))
		}
		return decodeErr(ClassNoIndicator, "no IP in %s", fields)
	}
	if len(s.skipped) > 0 {
		in.Partial = &DecodeError{Class: ClassTooManyIndicators, Msg: fmt.Sprintf(
			"the event names %d distinct addresses, over the limit of %d: the first %d were scored, these were not: %s",
			len(s.list)+len(s.skipped), s.max, len(s.list), strings.Join(limit(s.skipped, 40), ", "))}
	}
	in.Sightings = s.list
	in.Warnings = append(in.Warnings, limit(s.rejected, 16)...)
	return nil
}

// NewDecodeError returns a *DecodeError of class, for format decoders.
func NewDecodeError(class ErrorClass, format string, args ...any) error {
	return decodeErr(class, format, args...)
}
