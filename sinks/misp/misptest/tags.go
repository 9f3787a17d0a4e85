package misptest

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// attachTag is POST /tags/attachTagToObject (TagsController::attachTagToObject, as PyMISP's
// tag sends it: uuid, tag, local): attaching a tag the attribute has is a success that
// changes nothing. Events' tags are out of the fake's scope.
func (s *Server) attachTag(_ string, body []byte) (any, *httpError) {
	f, herr := decode(body, map[string]kind{"uuid": kString, "tag": kStrings, "local": kBool, "relationship_type": kString})
	if herr != nil {
		return nil, herr
	}
	a, herr := s.tagTarget(f)
	if herr != nil {
		return nil, herr
	}
	var msgs []string
	for _, t := range f.strs("tag") {
		t = strings.TrimSpace(t)
		if t == "" || len(t) > 255 {
			return nil, saveFail("Could not attach Tag", "Invalid tag")
		}
		id := s.st.tagID(t)
		if slices.Contains(a.Tags, t) {
			msgs = append(msgs, fmt.Sprintf("Attribute already has the requested tag attached, no changes had to be made for tag %s.", t))
			continue
		}
		a.Tags = append(a.Tags, t)
		a.Timestamp = max(s.now().Unix(), a.Timestamp) // MispAttribute::touch
		msgs = append(msgs, fmt.Sprintf("Global tag %s(%d) successfully attached to Attribute(%s).", t, id, a.ID))
	}
	msg := strings.Join(msgs, " ")
	return map[string]any{"saved": true, "success": true, "name": msg, "message": msg, "url": "/tags/attachTagToObject"}, nil
}

// removeTag is POST /tags/removeTagFromObject (TagsController::removeTagFromObject; PyMISP
// untag: uuid, tag).
func (s *Server) removeTag(_ string, body []byte) (any, *httpError) {
	f, herr := decode(body, map[string]kind{"uuid": kString, "tag": kString})
	if herr != nil {
		return nil, herr
	}
	a, herr := s.tagTarget(f)
	if herr != nil {
		return nil, herr
	}
	t := strings.TrimSpace(f.str("tag"))
	if _, ok := s.st.tagIDs[t]; !ok {
		return nil, fail(http.StatusMethodNotAllowed, "Invalid Tag.")
	}
	i := slices.Index(a.Tags, t)
	if i < 0 {
		return nil, fail(http.StatusNotFound, "Could not remove tag as it is not attached to the target Attribute")
	}
	a.Tags = slices.Delete(a.Tags, i, i+1)
	msg := fmt.Sprintf("Global tag %s (%d) successfully removed from Attribute(%s).", t, s.st.tagIDs[t], a.ID)
	return map[string]any{"saved": true, "success": true, "name": msg, "message": msg, "url": "/tags/removeTagFromObject"}, nil
}

func (s *Server) tagTarget(f fields) (*Attribute, *httpError) {
	uuid := f.str("uuid")
	switch {
	case uuid == "":
		return nil, fail(http.StatusMethodNotAllowed, "Invalid object uuid")
	case !uuidRE.MatchString(uuid):
		return nil, fail(http.StatusBadRequest, "Invalid UUID")
	case !f.has("tag") || len(f.strs("tag")) == 0:
		return nil, fail(http.StatusMethodNotAllowed, "Invalid tag")
	}
	a := s.st.attribute(func(a *Attribute) bool { return a.UUID == uuid })
	if a == nil {
		return nil, fail(http.StatusNotFound, "Invalid object.")
	}
	return a, nil
}

// addSighting is POST /sightings/add for one attribute (SightingsController::add: uuid or
// id, type, source, timestamp): {"Sighting": {...}}.
func (s *Server) addSighting(_ string, body []byte) (any, *httpError) {
	f, herr := decode(body, map[string]kind{"uuid": kString, "id": kDigits, "type": kDigits, "source": kString, "timestamp": kDigits})
	if herr != nil {
		return nil, herr
	}
	if f.has("type") && f.num("type") > 2 {
		return nil, saveFail("Could not add Sighting", "Invalid type.")
	}
	a := s.st.attribute(func(a *Attribute) bool {
		return (f.has("uuid") && a.UUID == f.str("uuid")) || (f.has("id") && a.ID == strconv.FormatInt(f.num("id"), 10))
	})
	if a == nil {
		return nil, fail(http.StatusNotFound, "Could not add the Sighting. Reason: No valid attributes found.")
	}
	ts := s.now().Unix()
	if f.has("timestamp") {
		ts = f.num("timestamp")
	}
	typ := "0"
	if f.has("type") {
		typ = strconv.FormatInt(f.num("type"), 10)
	}
	x := &Sighting{ID: s.st.id(), AttributeID: a.ID, AttributeUUID: a.UUID, EventID: a.EventID, UUID: newUUID(),
		Source: strings.TrimSpace(f.str("source")), Type: typ, Timestamp: ts}
	s.st.sightings = append(s.st.sightings, x)
	return map[string]any{"Sighting": sightingJSON(x)}, nil
}

func sightingJSON(x *Sighting) map[string]any {
	return map[string]any{"id": x.ID, "attribute_id": x.AttributeID, "event_id": x.EventID, "org_id": "1",
		"date_sighting": strconv.FormatInt(x.Timestamp, 10), "uuid": x.UUID, "source": x.Source, "type": x.Type}
}

// searchSightings is POST /sightings/restSearch/attribute (Sighting::restSearch with context
// attribute: id a JSON integer, from/to timestamps, source, type): {"response": [...]}.
func (s *Server) searchSightings(_ string, body []byte) (any, *httpError) {
	f, herr := decode(body, map[string]kind{
		"returnFormat": kString, "id": kInt, "from": kDigits, "to": kDigits, "source": kString, "type": kDigits,
	})
	if herr != nil {
		return nil, herr
	}
	if f.str("returnFormat") != "json" {
		return nil, fail(http.StatusNotFound, "Invalid output format.")
	}
	if !f.has("id") {
		return nil, fail(http.StatusBadRequest, "An ID or UUID must be provided if the context is set.")
	}
	id := strconv.FormatInt(f.num("id"), 10)
	out := []map[string]any{}
	for _, x := range s.st.sightings {
		switch {
		case x.AttributeID != id,
			f.has("from") && x.Timestamp < f.num("from"),
			f.has("to") && x.Timestamp > f.num("to"),
			f.has("source") && x.Source != f.str("source"),
			f.has("type") && x.Type != strconv.FormatInt(f.num("type"), 10):
			continue
		}
		out = append(out, map[string]any{"Sighting": sightingJSON(x)})
	}
	return map[string]any{"response": out}, nil
}
