package misptest

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// categories maps the attribute types the fake knows to the categories MISP allows for them
// (describeTypes.json, abridged).
var categories = map[string][]string{
	"ip-src":    {"Network activity", "Payload delivery", "External analysis"},
	"ip-dst":    {"Network activity", "Payload delivery", "External analysis", "Artifacts dropped", "Payload installation", "Persistence mechanism"},
	"domain":    {"Network activity", "Payload delivery", "External analysis", "Attribution"},
	"hostname":  {"Network activity", "Payload delivery", "External analysis"},
	"url":       {"Network activity", "Payload delivery", "External analysis"},
	"md5":       {"Payload delivery", "Artifacts dropped", "Payload installation", "External analysis"},
	"sha256":    {"Payload delivery", "Artifacts dropped", "Payload installation", "External analysis"},
	"email-src": {"Payload delivery", "Social network"},
}

// attributeJSON is an attribute as MISP answers it: OpenAPI Attribute (ids and timestamp as
// strings, to_ids a boolean), its tags under "Tag" as JsonExport folds them.
func (s *Server) attributeJSON(a *Attribute, withEvent bool) map[string]any {
	m := map[string]any{
		"id": a.ID, "event_id": a.EventID, "object_id": "0", "object_relation": nil, "category": a.Category,
		"type": a.Type, "value": a.Value, "to_ids": a.ToIDS, "uuid": a.UUID, "timestamp": strconv.FormatInt(a.Timestamp, 10),
		"distribution": "5", "sharing_group_id": "0", "comment": a.Comment, "deleted": a.Deleted,
		"disable_correlation": false, "first_seen": nil, "last_seen": nil,
	}
	if withEvent {
		if e := s.st.event(a.EventID); e != nil {
			m["Event"] = map[string]any{"org_id": "1", "distribution": e.Distribution, "id": e.ID, "info": e.Info, "orgc_id": "1", "uuid": e.UUID}
		}
	}
	if len(a.Tags) > 0 {
		tags := make([]map[string]any, 0, len(a.Tags))
		for _, t := range a.Tags {
			tags = append(tags, map[string]any{"id": strconv.Itoa(s.st.tagID(t)), "name": t, "colour": "#0088cc", "exportable": true,
				"user_id": "0", "hide_tag": false, "numerical_value": nil, "is_galaxy": false, "is_custom_galaxy": false, "local_only": false, "local": 0})
		}
		m["Tag"] = tags
	}
	return m
}

// addAttribute is POST /attributes/add/{eventId} (OpenAPI addAttribute: AttributeNoId):
// {"Attribute": {...}}; a second attribute of one type, category and value in an event is
// refused as MISP's validation does.
func (s *Server) addAttribute(eventID string, body []byte) (any, *httpError) {
	f, herr := decode(body, map[string]kind{
		"type": kString, "category": kString, "value": kString, "to_ids": kBool, "comment": kString,
		"distribution": kDigits, "uuid": kString, "disable_correlation": kBool,
	})
	if herr != nil {
		return nil, herr
	}
	if s.st.event(eventID) == nil {
		return nil, fail(http.StatusNotFound, "Invalid event")
	}
	typ, cat, value := f.str("type"), f.str("category"), strings.TrimSpace(f.str("value"))
	cats, ok := categories[typ]
	switch {
	case !ok:
		return nil, saveFail("Could not add Attribute", map[string][]string{"type": {"Options depend on the selected category."}})
	case cat == "":
		cat = cats[0]
	case !slices.Contains(cats, cat):
		return nil, saveFail("Could not add Attribute", map[string][]string{"category": {"Options depend on the selected type."}})
	}
	if value == "" {
		return nil, saveFail("Could not add Attribute", map[string][]string{"value": {"Value cannot be empty."}})
	}
	if s.st.attribute(func(a *Attribute) bool {
		return a.EventID == eventID && a.Type == typ && a.Category == cat && a.Value == value
	}) != nil {
		return nil, saveFail("Could not add Attribute", map[string][]string{"value": {"A similar attribute already exists for this event."}})
	}
	a := &Attribute{ID: s.st.id(), EventID: eventID, UUID: newUUID(), Type: typ, Category: cat, Value: value,
		Comment: f.str("comment"), ToIDS: f.boolean("to_ids"), Timestamp: s.now().Unix()}
	s.st.attrs = append(s.st.attrs, a)
	return map[string]any{"Attribute": s.attributeJSON(a, false)}, nil
}

// editAttribute is POST (or PUT) /attributes/edit/{attributeId} (OpenAPI editAttribute):
// the fields given change, the timestamp becomes now; {"Attribute": {...}}.
func (s *Server) editAttribute(id string, body []byte) (any, *httpError) {
	f, herr := decode(body, map[string]kind{"to_ids": kBool, "comment": kString, "category": kString, "distribution": kDigits})
	if herr != nil {
		return nil, herr
	}
	a := s.st.attribute(func(a *Attribute) bool { return a.ID == id })
	if a == nil {
		return nil, fail(http.StatusNotFound, "Invalid attribute")
	}
	if f.has("category") {
		if !slices.Contains(categories[a.Type], f.str("category")) {
			return nil, saveFail("Could not edit Attribute", map[string][]string{"category": {"Options depend on the selected type."}})
		}
		a.Category = f.str("category")
	}
	if f.has("to_ids") {
		a.ToIDS = f.boolean("to_ids")
	}
	if f.has("comment") {
		a.Comment = f.str("comment")
	}
	a.Timestamp = max(s.now().Unix(), a.Timestamp)
	return map[string]any{"Attribute": s.attributeJSON(a, false)}, nil
}

// searchAttributes is POST /attributes/restSearch (OpenAPI restSearchAttributes):
// {"response": {"Attribute": [...]}}, filtered by value, type, eventid, tags and timestamp
// (>=), deleted ones left out, ordered by the order rules (default: id), paginated.
func (s *Server) searchAttributes(_ string, body []byte) (any, *httpError) {
	f, herr := decode(body, map[string]kind{
		"returnFormat": kString, "value": kString, "type": kStrings, "eventid": kDigits, "tags": kStrings,
		"timestamp": kDigits, "order": kStrings, "page": kDigits, "limit": kDigits, "includeEventUuid": kBool,
		"includeEventTags": kBool, "deleted": kBool,
	})
	if herr != nil {
		return nil, herr
	}
	if f.str("returnFormat") != "json" {
		return nil, fail(http.StatusNotFound, "Invalid output format.")
	}
	var hits []*Attribute
	for _, a := range s.st.attrs {
		if !a.Deleted && matches(a, f) {
			hits = append(hits, a)
		}
	}
	less, herr := orderBy(f.strs("order"))
	if herr != nil {
		return nil, herr
	}
	slices.SortStableFunc(hits, less)
	out := []map[string]any{}
	for _, a := range paginate(hits, f) {
		out = append(out, s.attributeJSON(a, true))
	}
	return map[string]any{"response": map[string]any{"Attribute": out}}, nil
}

func matches(a *Attribute, f fields) bool {
	switch {
	case f.has("value") && a.Value != f.str("value"):
		return false
	case f.has("type") && !slices.Contains(f.strs("type"), a.Type):
		return false
	case f.has("eventid") && a.EventID != strconv.FormatInt(f.num("eventid"), 10):
		return false
	case f.has("timestamp") && a.Timestamp < f.num("timestamp"):
		return false
	}
	if tags := f.strs("tags"); len(tags) > 0 {
		return slices.ContainsFunc(tags, func(t string) bool { return slices.Contains(a.Tags, t) })
	}
	return true
}

// orderBy reads MISP's order rules ("Attribute.timestamp ASC", "id desc"; AppModel::
// findOrder), for the fields the fake supports: id and timestamp. Without rules: id.
func orderBy(rules []string) (func(a, b *Attribute) int, *httpError) {
	if len(rules) == 0 {
		rules = []string{"Attribute.id ASC"}
	}
	var keys []func(a, b *Attribute) int
	for _, r := range rules {
		field, dir, _ := strings.Cut(strings.TrimSpace(r), " ")
		field = strings.ToLower(strings.TrimPrefix(field, "Attribute."))
		sign := 1
		switch strings.ToLower(dir) {
		case "", "asc":
		case "desc":
			sign = -1
		default:
			return nil, fail(http.StatusBadRequest, "Invalid order "+r)
		}
		switch field {
		case "id":
			keys = append(keys, func(a, b *Attribute) int { return sign * cmp.Compare(atoi(a.ID), atoi(b.ID)) })
		case "timestamp":
			keys = append(keys, func(a, b *Attribute) int { return sign * cmp.Compare(a.Timestamp, b.Timestamp) })
		default:
			return nil, fail(http.StatusBadRequest, "Unsupported order field "+field)
		}
	}
	return func(a, b *Attribute) int {
		for _, k := range keys {
			if c := k(a, b); c != 0 {
				return c
			}
		}
		return 0
	}, nil
}

func atoi(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }
