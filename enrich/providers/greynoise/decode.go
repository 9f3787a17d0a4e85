package greynoise

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Scores of the GreyNoise verdicts.
const (
	ScoreMalicious = 80
	ScoreNoise     = 40 // scanning, classification unknown
)

// Service fallbacks when GreyNoise names no actor.
const (
	defaultRIOTService   = "known business service"
	defaultBenignService = "known benign actor"
)

// community is the part of a GET /v3/community/{ip} body that is kept (the 200 and the 404
// share it). Pointers tell a missing field from a false one.
type community struct {
	Noise          *bool  `json:"noise"`
	RIOT           *bool  `json:"riot"`
	Classification string `json:"classification"`
	Name           string `json:"name"`
	LastSeen       string `json:"last_seen"`
	Message        string `json:"message"`
}

// errorBody is GreyNoise's error shape: {"message": ...}, and on 429 also "plan" and
// "rate-limit" (hyphenated in the API).
type errorBody struct {
	Message   string `json:"message"`
	Plan      string `json:"plan"`
	RateLimit string `json:"rate-limit"`
}

// malformedError is a 2xx body that is not GreyNoise's answer.
type malformedError struct {
	what string
	err  error // the JSON error, if any
}

func (e *malformedError) Error() string {
	if e.err != nil {
		return e.what + ": " + e.err.Error()
	}
	return e.what
}

func (e *malformedError) Unwrap() error { return e.err }

// unmarshalLenient decodes JSON and tolerates values of the wrong type (encoding/json skips
// such a field and fills the rest); only syntax errors fail. One odd field must not discard a
// whole answer.
func unmarshalLenient(body []byte, v any) error {
	err := json.Unmarshal(body, v)
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return nil
	}
	return err
}

// decodeBody reads a community body and reports whether it is GreyNoise's: a JSON object
// with a noise or riot field.
func decodeBody(body []byte) (*community, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, &malformedError{what: "empty body"}
	}
	var c community
	if err := unmarshalLenient(body, &c); err != nil {
		return nil, &malformedError{what: "not JSON", err: err}
	}
	if c.Noise == nil && c.RIOT == nil {
		return nil, &malformedError{what: "no noise or riot field"}
	}
	return &c, nil
}

// decodeCommunity turns the body of a 200 from GET /v3/community/{ip} into a Result. A body
// that is not a JSON object with noise or riot is a *malformedError.
//
// Normalisation, first rule that holds:
//   - riot true (a business service: a resolver, a CDN, a SaaS): benign, score 0, Service =
//     the cleaned name ("known business service" when empty);
//   - classification "malicious": malicious, score 80;
//   - classification "benign" (a benign actor such as Shodan.io's scanners): benign, score 0,
//     Service = the cleaned name ("known benign actor" when empty or "unknown");
//   - noise true with classification "unknown" (or anything else): suspicious, score 40;
//   - otherwise (neither scanning nor in RIOT): unrated, score 0.
//
// Tags: noise true gives "scanner". Classification is compared without regard to case.
//
// LastSeen, the evidence's date (old sightings decay in the fused score), is last_seen
// ("YYYY-MM-DD", UTC midnight; a full timestamp is read too) for a noise or malicious answer
// when it is a sane date: from 2000 on and at most a day in the future. RIOT and quiet answers
// have none.
func decodeCommunity(body []byte) (*enrich.Result, error) {
	c, err := decodeBody(body)
	if err != nil {
		return nil, err
	}
	return normalise(c), nil
}

func normalise(c *community) *enrich.Result {
	noise, riot := c.Noise != nil && *c.Noise, c.RIOT != nil && *c.RIOT
	class := strings.ToLower(providerhttp.Clean(c.Classification, 32))
	name := providerhttp.Clean(c.Name, 128)
	if strings.EqualFold(name, "unknown") {
		name = ""
	}
	res := &enrich.Result{}
	if noise {
		res.Tags = []string{"scanner"}
	}
	seen := parseLastSeen(c.LastSeen)
	if noise || class == "malicious" {
		res.LastSeen = seen
	}
	switch {
	case riot:
		res.Verdict, res.Service = enrich.VerdictBenign, or(name, defaultRIOTService)
		res.Detail = fmt.Sprintf("GreyNoise: RIOT known business service %q", res.Service)
		return res
	case class == "malicious":
		res.Verdict, res.Score = enrich.VerdictMalicious, ScoreMalicious
	case class == "benign":
		res.Verdict, res.Service = enrich.VerdictBenign, or(name, defaultBenignService)
	case noise:
		res.Verdict, res.Score = enrich.VerdictSuspicious, ScoreNoise
	default:
		res.Verdict = event.VerdictUnrated
	}
	res.Detail = activity(noise, or(class, "unknown"), name, seen)
	return res
}

// lastSeenLayouts are the spellings of last_seen read: Community's date, and timestamps.
var lastSeenLayouts = []string{time.DateOnly, time.RFC3339Nano, "2006-01-02T15:04:05.999999999", time.DateTime}

// parseLastSeen reads last_seen (no zone: UTC); nil when it is absent, unreadable or not sane
// (before 2000, or more than a day in the future).
func parseLastSeen(s string) *time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	for _, l := range lastSeenLayouts {
		if t, err := time.Parse(l, s); err == nil {
			t = t.UTC()
			if t.Year() < 2000 || t.After(time.Now().Add(24*time.Hour)) {
				return nil
			}
			return &t
		}
	}
	return nil
}

// activity is the detail of a non-RIOT answer, e.g.
// `GreyNoise: scanning the internet, classification benign, actor "Shodan.io", last seen 2024-05-01`.
func activity(noise bool, class, name string, lastSeen *time.Time) string {
	var b strings.Builder
	b.WriteString("GreyNoise: ")
	if noise {
		b.WriteString("scanning the internet")
	} else {
		b.WriteString("not seen scanning, not in RIOT")
	}
	b.WriteString(", classification " + class)
	if name != "" {
		fmt.Fprintf(&b, ", actor %q", name)
	}
	// Only a real date is repeated: the field is free text to the decoder.
	if lastSeen != nil {
		b.WriteString(", last seen " + lastSeen.Format(time.DateOnly))
	}
	return b.String()
}

// notFound is the answer for GreyNoise's 404 (the address is neither scanning nor in RIOT)
// and for IPv6, which Community does not take.
func notFound(detail string) *enrich.Result {
	return &enrich.Result{Verdict: enrich.VerdictNotFound, Detail: detail}
}

// Details of the not-found answers.
const (
	detailNotObserved = "GreyNoise: not observed scanning, not in RIOT"
	detailIPv6        = "GreyNoise Community: IPv6 not supported"
)

// errorMessage is the message of an error body, with the plan and limit of a 429 first (the
// message is long and is truncated in errors): "plan unauthenticated, 100-lookups/day: You have
// hit your daily rate limit...". "" when the body is not a JSON object.
func errorMessage(body []byte) string {
	var e errorBody
	if unmarshalLenient(body, &e) != nil {
		return ""
	}
	var limits []string
	if p := providerhttp.Clean(e.Plan, 32); p != "" {
		limits = append(limits, "plan "+p)
	}
	if l := providerhttp.Clean(e.RateLimit, 32); l != "" {
		limits = append(limits, l)
	}
	msg := providerhttp.Clean(e.Message, providerhttp.MaxMessageRunes)
	switch {
	case len(limits) == 0:
		return msg
	case msg == "":
		return strings.Join(limits, ", ")
	}
	return strings.Join(limits, ", ") + ": " + msg
}

func or(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}
