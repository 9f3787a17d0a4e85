package misp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// uuidRE matches the UUIDs MISP gives events, attributes and sightings (OpenAPI UUID).
var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// idRE matches MISP's numeric ids (OpenAPI EventId, AttributeId: digits, at most 10).
var idRE = regexp.MustCompile(`^[0-9]{1,10}$`)

// Attribute is one attribute as MISP answers it: OpenAPI Attribute (ids and timestamps are
// strings of digits, to_ids a boolean), with its tags folded into Tag as MISP's JsonExport
// does for restSearch.
type Attribute struct {
	ID        string
	EventID   string
	UUID      string
	Type      string
	Category  string
	Value     string
	Comment   string
	ToIDS     bool
	Timestamp int64
	Tags      []string
}

// flexString takes a JSON string or number: MISP releases differ in which they send for ids
// and timestamps.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		err := json.Unmarshal(b, &s)
		*f = flexString(s)
		return err
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*f = flexString(n.String())
	return nil
}

// flexBool takes true/false, 0/1 or "0"/"1" (to_ids in older MISP answers).
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	switch strings.Trim(string(b), `"`) {
	case "true", "1":
		*f = true
	case "false", "0", "null", "":
		*f = false
	default:
		return fmt.Errorf("%s is not a boolean", b)
	}
	return nil
}

type wireAttribute struct {
	ID        flexString `json:"id"`
	EventID   flexString `json:"event_id"`
	UUID      string     `json:"uuid"`
	Type      string     `json:"type"`
	Category  string     `json:"category"`
	Value     string     `json:"value"`
	Comment   string     `json:"comment"`
	ToIDS     flexBool   `json:"to_ids"`
	Timestamp flexString `json:"timestamp"`
	Tag       []struct {
		Name string `json:"name"`
	} `json:"Tag"`
}

func (w wireAttribute) check() (Attribute, error) {
	ts, err := strconv.ParseInt(string(w.Timestamp), 10, 64)
	switch {
	case !idRE.MatchString(string(w.ID)):
		return Attribute{}, errors.New("attribute without a numeric id")
	case !uuidRE.MatchString(w.UUID):
		return Attribute{}, fmt.Errorf("attribute %s without a uuid", w.ID)
	case w.Type == "":
		return Attribute{}, fmt.Errorf("attribute %s without a type", w.ID)
	case err != nil || ts < 0:
		return Attribute{}, fmt.Errorf("attribute %s without a timestamp", w.ID)
	}
	a := Attribute{
		ID: string(w.ID), EventID: string(w.EventID), UUID: strings.ToLower(w.UUID), Type: w.Type, Category: w.Category,
		Value: w.Value, Comment: w.Comment, ToIDS: bool(w.ToIDS), Timestamp: ts,
	}
	for _, t := range w.Tag {
		if t.Name != "" {
			a.Tags = append(a.Tags, t.Name)
		}
	}
	return a, nil
}

// decodeAttributeList reads POST /attributes/restSearch's answer (OpenAPI
// AttributesRestSearchResponse: {"response": {"Attribute": [...]}}). An attribute without a
// usable id, uuid, type or timestamp is an error rather than skipped: the answer is then not
// what the search asked for.
func decodeAttributeList(body []byte) ([]Attribute, error) {
	var r struct {
		Response json.RawMessage `json:"response"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("unreadable attribute search answer: %w", err)
	}
	// Some MISP releases answer an empty search with {"response": []}.
	if t := bytes.TrimSpace(r.Response); len(t) == 0 || bytes.Equal(t, []byte("[]")) {
		return nil, nil
	}
	var in struct {
		Attribute []wireAttribute `json:"Attribute"`
	}
	if err := json.Unmarshal(r.Response, &in); err != nil {
		return nil, fmt.Errorf("unreadable attribute search answer: %w", err)
	}
	out := make([]Attribute, 0, len(in.Attribute))
	for _, w := range in.Attribute {
		a, err := w.check()
		if err != nil {
			return nil, fmt.Errorf("attribute search answer: %w", err)
		}
		out = append(out, a)
	}
	return out, nil
}

// decodeAttribute reads the answer of POST /attributes/add and /attributes/edit (OpenAPI
// AttributeResponse: {"Attribute": {...}}).
func decodeAttribute(body []byte) (Attribute, error) {
	var r struct {
		Attribute *wireAttribute `json:"Attribute"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return Attribute{}, fmt.Errorf("unreadable attribute: %w", err)
	}
	if r.Attribute == nil {
		return Attribute{}, errors.New("answer has no Attribute")
	}
	return r.Attribute.check()
}

// eventMeta is what the sink reads of an event.
type eventMeta struct {
	ID   string
	Info string
}

type wireEvent struct {
	ID   flexString `json:"id"`
	Info string     `json:"info"`
}

func (w wireEvent) check() (eventMeta, error) {
	if !idRE.MatchString(string(w.ID)) {
		return eventMeta{}, errors.New("event without a numeric id")
	}
	return eventMeta{ID: string(w.ID), Info: w.Info}, nil
}

// decodeEvent reads POST /events/add's answer (OpenAPI AddEventResponse, EditedEvent:
// {"Event": {...}}).
func decodeEvent(body []byte) (eventMeta, error) {
	var r struct {
		Event *wireEvent `json:"Event"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return eventMeta{}, fmt.Errorf("unreadable event: %w", err)
	}
	if r.Event == nil {
		return eventMeta{}, errors.New("answer has no Event")
	}
	return r.Event.check()
}

// decodeEventIndex reads POST /events/index's answer (OpenAPI ExtendedEventList: a flat
// array of events, no "Event" wrapper).
func decodeEventIndex(body []byte) ([]eventMeta, error) {
	var list []wireEvent
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("unreadable event index: %w", err)
	}
	out := make([]eventMeta, 0, len(list))
	for _, w := range list {
		e, err := w.check()
		if err != nil {
			return nil, fmt.Errorf("event index: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}

// decodeSightingCount reads how many sightings POST /sightings/restSearch answered with
// (JsonExport for the Sighting scope: {"response": [...]}).
func decodeSightingCount(body []byte) (int, error) {
	var r struct {
		Response *[]json.RawMessage `json:"response"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, fmt.Errorf("unreadable sighting search answer: %w", err)
	}
	if r.Response == nil {
		return 0, errors.New("sighting search answer has no response")
	}
	return len(*r.Response), nil
}

// apiError is MISP's error body (OpenAPI ApiError: name, message, url; saveFailResponse adds
// saved false and errors, an object, list or string of reasons).
type apiError struct {
	Name    string          `json:"name"`
	Message string          `json:"message"`
	URL     string          `json:"url"`
	Errors  json.RawMessage `json:"errors"`
}

// decodeAPIError reads MISP's error body; ok is false when the body is not one.
func decodeAPIError(body []byte) (apiError, bool) {
	var e apiError
	if json.Unmarshal(body, &e) != nil || (e.Name == "" && e.Message == "") {
		return apiError{}, false
	}
	return e, true
}

// isAuthFailure: MISP's AppController throws "Authentication failed. ..." for a missing,
// wrong or disabled key.
func (e apiError) isAuthFailure() bool {
	return strings.HasPrefix(e.Message, "Authentication failed") || strings.HasPrefix(e.Name, "Authentication failed")
}

// summary is the message with its reasons, when MISP gave any.
func (e apiError) summary() string {
	msg := e.Message
	if t := bytes.TrimSpace(e.Errors); len(t) > 0 && !bytes.Equal(t, []byte("null")) {
		msg += ": " + string(t)
	}
	return msg
}

// isDuplicateAttribute reports MISP refusing a second attribute of one type and value in one
// event (MispAttribute's validation: "A similar attribute already exists for this event.").
func isDuplicateAttribute(err error) bool {
	return err != nil && strings.Contains(err.Error(), "A similar attribute already exists")
}
