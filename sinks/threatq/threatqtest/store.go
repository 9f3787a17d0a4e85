package threatqtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Indicator types and statuses the fake knows, with ThreatQ's ids where a recorded answer
// shows them (IP Address 15, Active 1, Expired 2: Elastic ti_threatq's sample).
var (
	types    = map[string]int64{"IP Address": 15, "IPv6 Address": 16, "FQDN": 9, "URL": 18, "MD5": 11, "SHA-256": 13}
	statuses = map[string]int64{"Active": 1, "Expired": 2, "Indirect": 3, "Review": 4, "Whitelisted": 5}
)

// Indicator is a stored indicator, for assertions.
type Indicator struct {
	ID         int64
	Value      string
	Type       string
	Status     string
	Sources    []string
	Attributes []Attribute
	Tags       []string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Attribute is a stored attribute.
type Attribute struct {
	ID    int64
	Name  string
	Value string
}

// AttributeValues are the values of the indicator's attributes named name, in order: more
// than one means a duplicate.
func (ind Indicator) AttributeValues(name string) []string {
	var out []string
	for _, a := range ind.Attributes {
		if a.Name == name {
			out = append(out, a.Value)
		}
	}
	return out
}

// Seed is an indicator put in the store before the test, as if another feed added it.
type Seed struct {
	Value string
	// Type defaults to "IP Address"; Status to "Active"; UpdatedAt to now.
	Type       string
	Status     string
	UpdatedAt  time.Time
	Tags       []string
	Attributes map[string]string
}

type store struct {
	indicators []*Indicator // in id order
	nextID     int64
	nextAttrID int64
}

func newStore() store { return store{nextID: 1000, nextAttrID: 5000} }

// Seed stores indicators; it returns their ids. Times are kept to the second, as ThreatQ does.
func (s *Server) Seed(seeds ...Seed) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int64, 0, len(seeds))
	for _, sd := range seeds {
		ind := &Indicator{Value: sd.Value, Type: or(sd.Type, "IP Address"), Status: or(sd.Status, "Active"), Tags: slices.Clone(sd.Tags)}
		t := sd.UpdatedAt
		if t.IsZero() {
			t = time.Now()
		}
		s.add(ind, t.UTC().Truncate(time.Second))
		for _, k := range sortedKeys(sd.Attributes) {
			s.nextAttrID++
			ind.Attributes = append(ind.Attributes, Attribute{s.nextAttrID, k, sd.Attributes[k]})
		}
		ids = append(ids, ind.ID)
	}
	return ids
}

func (st *store) add(ind *Indicator, now time.Time) {
	st.nextID++
	ind.ID, ind.CreatedAt, ind.UpdatedAt = st.nextID, now, now
	st.indicators = append(st.indicators, ind)
}

// Indicators returns copies of the stored indicators, in id order.
func (s *Server) Indicators() []Indicator {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Indicator, 0, len(s.indicators))
	for _, ind := range s.indicators {
		out = append(out, ind.clone())
	}
	return out
}

// Indicator returns a copy of the indicator of value (any type).
func (s *Server) Indicator(value string) (Indicator, bool) {
	for _, ind := range s.Indicators() {
		if ind.Value == value {
			return ind, true
		}
	}
	return Indicator{}, false
}

func (ind *Indicator) clone() Indicator {
	c := *ind
	c.Sources, c.Attributes, c.Tags = slices.Clone(ind.Sources), slices.Clone(ind.Attributes), slices.Clone(ind.Tags)
	return c
}

// byID finds an indicator; the caller holds s.mu.
func (st *store) byID(raw string) *Indicator {
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return nil
	}
	i := slices.IndexFunc(st.indicators, func(ind *Indicator) bool { return ind.ID == n })
	if i < 0 {
		return nil
	}
	return st.indicators[i]
}

// createBody is POST /api/indicators (Cortex XSOAR ThreatQ v2, create_indicator_command).
type createBody struct {
	Type        *string `json:"type"`
	Status      *string `json:"status"`
	Value       *string `json:"value"`
	Description *string `json:"description"`
	Sources     []struct {
		Name *string `json:"name"`
	} `json:"sources"`
	Attributes []attrBody `json:"attributes"`
}

type attrBody struct {
	Name  *string `json:"name"`
	Value *string `json:"value"`
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	var b createBody
	if field, msg := decodeStrict(r, &b); field != "" {
		writeInvalid(w, field, msg)
		return
	}
	switch {
	case b.Value == nil || *b.Value == "":
		writeInvalid(w, "value", "The value field is required.")
		return
	case b.Type == nil || types[*b.Type] == 0:
		writeInvalid(w, "type", "The selected type is invalid.")
		return
	case b.Status != nil && statuses[*b.Status] == 0:
		writeInvalid(w, "status", "The selected status is invalid.")
		return
	}
	for _, src := range b.Sources {
		if src.Name == nil || *src.Name == "" {
			writeInvalid(w, "sources.name", "The sources.name field is required.")
			return
		}
	}
	if field := checkAttrs(b.Attributes); field != "" {
		writeInvalid(w, field, "The "+field+" field is required.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UTC().Truncate(time.Second)
	i := slices.IndexFunc(s.indicators, func(ind *Indicator) bool { return ind.Value == *b.Value && ind.Type == *b.Type })
	var ind *Indicator
	if i >= 0 {
		// ThreatQ keys indicators on (value, type): a second create returns the first, with
		// the new attributes added to it (duplicates included, as a careless client would get).
		ind = s.indicators[i]
		ind.UpdatedAt = now
	} else {
		ind = &Indicator{Value: *b.Value, Type: *b.Type, Status: "Review"}
		if b.Status != nil {
			ind.Status = *b.Status
		}
		s.add(ind, now)
	}
	for _, src := range b.Sources {
		if !slices.Contains(ind.Sources, *src.Name) {
			ind.Sources = append(ind.Sources, *src.Name)
		}
	}
	for _, a := range b.Attributes {
		s.nextAttrID++
		ind.Attributes = append(ind.Attributes, Attribute{s.nextAttrID, *a.Name, *a.Value})
	}
	writeJSON(w, http.StatusCreated, map[string]any{"data": []any{render(ind, []string{"attributes", "sources"})}})
}

func checkAttrs(attrs []attrBody) string {
	for _, a := range attrs {
		if a.Name == nil || *a.Name == "" {
			return "attributes.name"
		}
		if a.Value == nil {
			return "attributes.value"
		}
	}
	return ""
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	with, bad := parseWith(r.URL.Query())
	if bad != "" {
		writeInvalid(w, "with", bad)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ind := s.byID(r.PathValue("id"))
	if ind == nil {
		writeErrors(w, http.StatusNotFound, "Object does not exist.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": render(ind, with)})
}

// addAttribute is POST /api/indicators/{id}/attributes with {"name", "value"} (Cortex XSOAR
// ThreatQ v2, add_attribute_command).
func (s *Server) addAttribute(w http.ResponseWriter, r *http.Request) {
	var b attrBody
	if field, msg := decodeStrict(r, &b); field != "" {
		writeInvalid(w, field, msg)
		return
	}
	if field := checkAttrs([]attrBody{b}); field != "" {
		writeInvalid(w, strings.TrimPrefix(field, "attributes."), "The field is required.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ind := s.byID(r.PathValue("id"))
	if ind == nil {
		writeErrors(w, http.StatusNotFound, "Object does not exist.")
		return
	}
	s.nextAttrID++
	a := Attribute{s.nextAttrID, *b.Name, *b.Value}
	ind.Attributes = append(ind.Attributes, a)
	ind.UpdatedAt = time.Now().UTC().Truncate(time.Second)
	writeJSON(w, http.StatusCreated, map[string]any{"data": renderAttr(ind, a)})
}

// putAttribute is PUT /api/indicators/{id}/attributes/{aid} with {"value"} (Cortex XSOAR
// ThreatQ v2, modify_attribute_command).
func (s *Server) putAttribute(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Value *string `json:"value"`
	}
	if field, msg := decodeStrict(r, &b); field != "" {
		writeInvalid(w, field, msg)
		return
	}
	if b.Value == nil {
		writeInvalid(w, "value", "The value field is required.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ind := s.byID(r.PathValue("id"))
	aid, _ := strconv.ParseInt(r.PathValue("aid"), 10, 64)
	i := -1
	if ind != nil {
		i = slices.IndexFunc(ind.Attributes, func(a Attribute) bool { return a.ID == aid })
	}
	if i < 0 {
		writeErrors(w, http.StatusNotFound, "Object does not exist.")
		return
	}
	ind.Attributes[i].Value = *b.Value
	ind.UpdatedAt = time.Now().UTC().Truncate(time.Second)
	writeJSON(w, http.StatusOK, map[string]any{"data": renderAttr(ind, ind.Attributes[i])})
}

// addTag is POST /api/indicators/{id}/tags with {"name"} (Polarity ThreatQuotient IOC
// submission, createTags). A tag the indicator has is not added twice.
func (s *Server) addTag(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Name *string `json:"name"`
	}
	if field, msg := decodeStrict(r, &b); field != "" {
		writeInvalid(w, field, msg)
		return
	}
	if b.Name == nil || strings.TrimSpace(*b.Name) == "" {
		writeInvalid(w, "name", "The name field is required.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ind := s.byID(r.PathValue("id"))
	if ind == nil {
		writeErrors(w, http.StatusNotFound, "Object does not exist.")
		return
	}
	if !slices.ContainsFunc(ind.Tags, func(t string) bool { return strings.EqualFold(t, *b.Name) }) {
		ind.Tags = append(ind.Tags, *b.Name)
		ind.UpdatedAt = time.Now().UTC().Truncate(time.Second)
	}
	writeJSON(w, http.StatusCreated, map[string]any{"data": renderTags(ind)})
}

// decodeStrict reads a JSON body into v, refusing unknown fields and trailing data; field is
// the offending field ("body" for the body as a whole), "" when the body is good.
func decodeStrict(r *http.Request, v any) (field, msg string) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r.Body); err != nil {
		return "body", "unreadable body"
	}
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return strings.Trim(f, `"`), "The field is not allowed."
		}
		return "body", fmt.Sprintf("The body is not valid JSON of the expected shape: %v", err)
	}
	if dec.More() {
		return "body", "The body has trailing data."
	}
	return "", ""
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
