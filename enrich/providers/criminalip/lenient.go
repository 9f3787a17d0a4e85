package criminalip

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	fastjson "github.com/segmentio/encoding/json"
)

// Criminal IP writes the same field as a number, a string or a level name depending on the
// endpoint and the plan: these types read every spelling it is known to use.

// Level is a Criminal IP score level. The zero value is "unknown".
type Level int

// Levels, from harmless to worst.
const (
	LevelUnknown Level = iota
	LevelSafe
	LevelLow
	LevelModerate
	LevelDangerous
	LevelCritical
)

var levelNames = [...]string{"", "Safe", "Low", "Moderate", "Dangerous", "Critical"}

// levelScores is OpenCTI's table (internal-enrichment/criminalip _convert_score_to_confidence).
var levelScores = [...]int{0, 10, 35, 65, 85, 95}

// String is the canonical capitalised name, or "" when unknown.
func (l Level) String() string {
	if l < LevelUnknown || l > LevelCritical {
		return ""
	}
	return levelNames[l]
}

// Score maps the level to 0-100: Critical 95, Dangerous 85, Moderate 65, Low 35, Safe 10,
// unknown 0.
func (l Level) Score() int {
	if l < LevelUnknown || l > LevelCritical {
		return 0
	}
	return levelScores[l]
}

// ParseLevel reads a level name in any case ("Critical", "dangerous") or a legacy number
// ("4"). Anything else is LevelUnknown.
func ParseLevel(s string) Level {
	s = strings.TrimSpace(s)
	for i := LevelSafe; i <= LevelCritical; i++ {
		if strings.EqualFold(s, levelNames[i]) {
			return i
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return levelFromNumber(f)
	}
	return LevelUnknown
}

// levelFromNumber maps the legacy /v1/ip/data integers: 0 and 1 Safe, 2 Low, 3 Moderate,
// 4 Dangerous, 5 Critical.
func levelFromNumber(f float64) Level {
	switch f {
	case 0, 1:
		return LevelSafe
	case 2:
		return LevelLow
	case 3:
		return LevelModerate
	case 4:
		return LevelDangerous
	case 5:
		return LevelCritical
	}
	return LevelUnknown
}

// UnmarshalJSON accepts a level string in any case or a legacy integer; any other value is
// unknown, never an error (one odd field must not discard a whole report).
func (l *Level) UnmarshalJSON(b []byte) error {
	*l = LevelUnknown
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	switch {
	case b[0] == '"':
		if s, ok := unquote(b); ok {
			*l = ParseLevel(s)
		}
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		var f float64
		if json.Unmarshal(b, &f) == nil {
			*l = levelFromNumber(f)
		}
	}
	return nil
}

// unquote reads a JSON string. Most report strings are plain ASCII without escapes and are
// sliced directly; the rest go through the JSON decoder.
func unquote(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	inner := b[1 : len(b)-1]
	plain := true
	for _, c := range inner {
		if c < 0x20 || c >= utf8.RuneSelf || c == '\\' || c == '"' {
			plain = false
			break
		}
	}
	if plain {
		return string(inner), true
	}
	var s string
	if fastjson.Unmarshal(b, &s) != nil {
		return "", false
	}
	return s, true
}

// flexInt is an integer sent as a number or a string ("15169", "AS15169"); OK says it was
// present and readable.
type flexInt struct {
	V  int64
	OK bool
}

func (n *flexInt) UnmarshalJSON(b []byte) error {
	*n = flexInt{}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	var s string
	if b[0] == '"' {
		var ok bool
		if s, ok = unquote(b); !ok {
			return nil
		}
		s = strings.TrimSpace(s)
		if len(s) > 2 && strings.EqualFold(s[:2], "AS") {
			s = s[2:]
		}
	} else {
		s = string(b)
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		*n = flexInt{v, true}
		return nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		*n = flexInt{int64(f), true}
	}
	return nil
}

// flexFloat is a finite number sent as a number or a numeric string.
type flexFloat struct {
	V  float64
	OK bool
}

func (n *flexFloat) UnmarshalJSON(b []byte) error {
	*n = flexFloat{}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	s := string(b)
	if b[0] == '"' {
		var ok bool
		if s, ok = unquote(b); !ok {
			return nil
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
		*n = flexFloat{f, true}
	}
	return nil
}

// flexString is a string, or a number or bool spelled as one; other values are empty.
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	*s = ""
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	switch {
	case b[0] == '"':
		if v, ok := unquote(b); ok {
			*s = flexString(v)
		}
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'), string(b) == "true", string(b) == "false":
		*s = flexString(b)
	}
	return nil
}

// flags is an object of booleans (issues.is_*, or the legacy top-level tags). Values may be
// JSON booleans, "true"/"True"/"1" strings or numbers; anything that is not an object is empty.
type flags map[string]bool

func (f *flags) UnmarshalJSON(b []byte) error {
	*f = nil
	var raw map[string]json.RawMessage
	if unmarshalLenient(b, &raw) != nil {
		return nil
	}
	out := make(flags, len(raw))
	for k, v := range raw {
		out[strings.ToLower(strings.TrimSpace(k))] = truthy(v)
	}
	*f = out
	return nil
}

func truthy(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return false
	}
	switch v[0] {
	case 't':
		return string(v) == "true"
	case '"':
		s, ok := unquote(v)
		if !ok {
			return false
		}
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true", "yes", "y", "1":
			return true
		}
		return false
	}
	if f, err := strconv.ParseFloat(string(v), 64); err == nil {
		return f != 0
	}
	return false
}
