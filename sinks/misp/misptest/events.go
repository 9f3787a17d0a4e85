package misptest

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

var dateRE = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)

// eventJSON is an event as MISP answers it: OpenAPI Event, ids and levels as strings.
func (s *Server) eventJSON(e *Event) map[string]any {
	n := 0
	for _, a := range s.st.attrs {
		if a.EventID == e.ID && !a.Deleted {
			n++
		}
	}
	return map[string]any{
		"id": e.ID, "org_id": "1", "orgc_id": "1", "uuid": e.UUID, "info": e.Info, "date": e.Date,
		"distribution": e.Distribution, "threat_level_id": e.ThreatLevel, "analysis": e.Analysis,
		"published": false, "attribute_count": strconv.Itoa(n), "timestamp": strconv.FormatInt(s.now().Unix(), 10),
		"publish_timestamp": "0", "sharing_group_id": "0", "proposal_email_lock": false, "locked": false,
		"disable_correlation": false, "extends_uuid": "",
	}
}

// addEvent is POST /events/add (OpenAPI addEvent: EventNoId, flat or wrapped in "Event"):
// {"Event": {...}}.
func (s *Server) addEvent(_ string, body []byte) (any, *httpError) {
	if wrapped(body, "Event") {
		var err *httpError
		if body, err = unwrap(body, "Event"); err != nil {
			return nil, err
		}
	}
	f, herr := decode(body, map[string]kind{
		"info": kString, "date": kString, "distribution": kDigits, "threat_level_id": kDigits, "analysis": kDigits,
		"published": kBool, "uuid": kString,
	})
	if herr != nil {
		return nil, herr
	}
	if f.str("info") == "" {
		return nil, saveFail("Could not add Event", map[string][]string{"info": {"Info cannot be empty."}})
	}
	if f.has("date") && !dateRE.MatchString(f.str("date")) {
		return nil, saveFail("Could not add Event", map[string][]string{"date": {"Expected date format: YYYY-MM-DD"}})
	}
	for _, c := range []struct {
		k      string
		lo, hi int64
	}{{"distribution", 0, 4}, {"threat_level_id", 1, 4}, {"analysis", 0, 2}} {
		if err := f.inRange(c.k, c.lo, c.hi); err != nil {
			return nil, err
		}
	}
	e := &Event{ID: s.st.id(), UUID: newUUID(), Info: f.str("info"), Date: f.str("date"),
		Distribution: level(f, "distribution", "0"), ThreatLevel: level(f, "threat_level_id", "4"), Analysis: level(f, "analysis", "0")}
	if e.Date == "" {
		e.Date = s.now().UTC().Format(time.DateOnly)
	}
	s.st.events = append(s.st.events, e)
	return map[string]any{"Event": s.eventJSON(e)}, nil
}

func level(f fields, k, def string) string {
	if !f.has(k) {
		return def
	}
	return strconv.FormatInt(f.num(k), 10)
}

// indexEvents is POST /events/index (OpenAPI searchEvents): a flat list of events whose info
// contains eventinfo (SQL LIKE, case-insensitive), paginated.
func (s *Server) indexEvents(_ string, body []byte) (any, *httpError) {
	f, herr := decode(body, map[string]kind{
		"eventinfo": kString, "limit": kDigits, "page": kDigits, "minimal": kBool, "sort": kString, "direction": kString,
	})
	if herr != nil {
		return nil, herr
	}
	want := strings.ToLower(f.str("eventinfo"))
	out := []map[string]any{}
	for _, e := range s.st.events {
		if strings.Contains(strings.ToLower(e.Info), want) {
			out = append(out, s.eventJSON(e))
		}
	}
	return paginate(out, f), nil
}

// paginate applies page (from 1) and limit, as MISP's paginated finds do.
func paginate[T any](list []T, f fields) []T {
	limit := int(f.num("limit"))
	if limit <= 0 {
		return list
	}
	page := max(int(f.num("page")), 1)
	start := min((page-1)*limit, len(list))
	return list[start:min(start+limit, len(list))]
}
