package event

import (
	"bytes"
	"errors"
	"strconv"
)

// Limits bound what one input message may cost the enricher and what its scored events carry.
// Each is configurable (THREATPIPE_PIPELINE_*, docs/configuration.md) and documented with its
// dead-letter class in docs/events.md.
type Limits struct {
	// MaxBytes: larger message values are dead-lettered as too_large.
	MaxBytes int
	// MaxIndicators: distinct indicators taken from one ECS event; an event naming more has
	// these scored and is dead-lettered as too_many_indicators for the rest.
	MaxIndicators int
	// MaxDepth: a message nesting objects and arrays deeper (the message itself is level 1) is
	// dead-lettered as too_deep before it is parsed. 0 means DefaultMaxDepth.
	MaxDepth int
	// MaxContextBytes: carried context (a native event's context and unknown fields, an ECS
	// event's whole document) larger than this is cut to fit (see Truncation). 0 means
	// DefaultMaxContextBytes.
	MaxContextBytes int
}

// Defaults of the limits that have one here; the size and indicator limits always come from the
// configuration.
const (
	// DefaultMaxDepth is far below what the standard parsers refuse (Python's json about 1,000
	// levels, Go's encoding/json 10,000) and far above any SIEM event's shape: ECS documents
	// nest 3 to 5 levels.
	DefaultMaxDepth = 64
	// DefaultMaxContextBytes keeps whole ECS documents of the usual few KiB and bounds one
	// input's scored events (up to MaxIndicators of them) to MaxIndicators times this.
	DefaultMaxContextBytes = 16 << 10
)

func (l Limits) withDefaults() Limits {
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxContextBytes <= 0 {
		l.MaxContextBytes = DefaultMaxContextBytes
	}
	return l
}

// checkStructure rejects, before any parser sees it, a message that nests deeper than maxDepth
// or holds a number no 64-bit float can hold (1e999999, a 5,000-digit integer): Go's
// encoding/json refuses both when it decodes into generic values and Python's json refuses
// integers of more than 4,300 digits, so a scored event carrying them would poison consumers.
// Malformed JSON passes: the parser reports it with a better message.
func checkStructure(data []byte, maxDepth int) error {
	depth := 0
	for i := 0; i < len(data); {
		switch c := data[i]; {
		case c == '"':
			end := stringEnd(data, i)
			if end < 0 {
				return nil // unterminated: malformed
			}
			i = end
		case c == '{' || c == '[':
			depth++
			if depth > maxDepth {
				return decodeErr(ClassTooDeep, "JSON nests deeper than the limit of %d levels (at byte %d)", maxDepth, i)
			}
			i++
		case c == '}' || c == ']':
			depth--
			i++
		case c == '-' || (c >= '0' && c <= '9'):
			end := numberEnd(data, i)
			if err := checkNumber(data[i:end], i); err != nil {
				return err
			}
			i = end
		default:
			i++
		}
	}
	return nil
}

// stringEnd returns the index just past the string that opens at data[start] (a quote), or -1
// if it is not terminated.
func stringEnd(data []byte, start int) int {
	for i := start + 1; ; {
		q := bytes.IndexByte(data[i:], '"')
		if q < 0 {
			return -1
		}
		q += i
		backslashes := 0
		for j := q - 1; j > start && data[j] == '\\'; j-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return q + 1
		}
		i = q + 1
	}
}

// numberEnd returns the index just past the number-like token at data[start].
func numberEnd(data []byte, start int) int {
	i := start
	for i < len(data) {
		switch c := data[i]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			i++
		default:
			return i
		}
	}
	return i
}

// maxFloatDigits is the longest run of digits that cannot exceed a float64 without an exponent:
// the largest float64 has 309 integer digits.
const maxFloatDigits = 308

// checkNumber rejects a number token beyond the range of a float64. Only tokens with an exponent
// or more than maxFloatDigits characters can be, so the others cost nothing.
func checkNumber(tok []byte, at int) error {
	if len(tok) <= maxFloatDigits && bytes.IndexAny(tok, "eE") < 0 {
		return nil
	}
	_, err := strconv.ParseFloat(string(tok), 64)
	if errors.Is(err, strconv.ErrRange) {
		return decodeErr(ClassNumberOutOfRange, "number %s at byte %d is beyond the range of a 64-bit float, which standard JSON parsers refuse",
			truncate(string(tok), 32), at)
	}
	return nil // in range, or not a number (malformed: the parser says so)
}
