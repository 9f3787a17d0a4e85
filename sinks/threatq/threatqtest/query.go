package threatqtest

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// timeLayout is ThreatQ's time spelling, UTC.
const timeLayout = "2006-01-02 15:04:05"

// withs are the relations an answer can embed (?with=attributes,sources,score,type in Cortex
// XSOAR ThreatQ v2; tags and status likewise).
var withs = []string{"attributes", "sources", "score", "type", "status", "tags"}

func parseWith(q url.Values) ([]string, string) {
	if len(q["with"]) > 1 {
		return nil, "with is given more than once"
	}
	raw := q.Get("with")
	if raw == "" {
		return nil, ""
	}
	out := strings.Split(raw, ",")
	for _, w := range out {
		if !slices.Contains(withs, w) {
			return nil, fmt.Sprintf("%q is not a relation of indicators", w)
		}
	}
	return out, ""
}

// render is an indicator as the API answers it (fields of Elastic ti_threatq's recorded
// answers), with the relations asked for.
func render(ind *Indicator, with []string) map[string]any {
	m := map[string]any{
		"id": ind.ID, "value": ind.Value, "class": "network",
		"type_id": types[ind.Type], "status_id": statuses[ind.Status],
		"created_at": ind.CreatedAt.Format(timeLayout), "updated_at": ind.UpdatedAt.Format(timeLayout),
		"touched_at": ind.UpdatedAt.Format(timeLayout),
	}
	for _, w := range with {
		switch w {
		case "attributes":
			attrs := make([]any, 0, len(ind.Attributes))
			for _, a := range ind.Attributes {
				attrs = append(attrs, renderAttr(ind, a))
			}
			m["attributes"] = attrs
		case "sources":
			srcs := make([]any, 0, len(ind.Sources))
			for i, name := range ind.Sources {
				srcs = append(srcs, map[string]any{"id": i + 1, "name": name, "indicator_id": ind.ID, "source_type": "other_sources"})
			}
			m["sources"] = srcs
		case "score":
			m["score"] = map[string]any{"indicator_id": ind.ID, "generated_score": "0.00", "manual_score": nil}
		case "type":
			m["type"] = map[string]any{"id": types[ind.Type], "name": ind.Type, "class": "network"}
		case "status":
			m["status"] = map[string]any{"id": statuses[ind.Status], "name": ind.Status}
		case "tags":
			m["tags"] = renderTags(ind)
		}
	}
	return m
}

func renderAttr(ind *Indicator, a Attribute) map[string]any {
	return map[string]any{
		"id": a.ID, "indicator_id": ind.ID, "attribute_id": 1, "name": a.Name, "value": a.Value,
		"created_at": ind.CreatedAt.Format(timeLayout), "updated_at": ind.UpdatedAt.Format(timeLayout),
	}
}

func renderTags(ind *Indicator) []any {
	out := make([]any, 0, len(ind.Tags))
	for i, t := range ind.Tags {
		out = append(out, map[string]any{"id": i + 1, "name": t})
	}
	return out
}

// queryBody is POST /api/indicators/query's body: {"criteria": {...}, "filters": {...}} and
// optionally "fields" (ThreatQuotient's ThreatLibrary helper; Cortex XSOAR ThreatQ v2).
type queryBody struct {
	Criteria map[string]any `json:"criteria"`
	Filters  map[string]any `json:"filters"`
	Fields   []string       `json:"fields"`
}

// query pages through the indicators matching criteria and filters: limit and offset in
// the query, sorted on sort (comma-separated fields, "-" for descending; default id), the
// answer {"total", "offset", "limit", "data"}.
func (s *Server) query(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		if !slices.Contains([]string{"limit", "offset", "sort", "with"}, k) {
			writeInvalid(w, k, "Unknown query parameter.")
			return
		}
	}
	limit, lerr := intParam(q, "limit", 25)
	offset, oerr := intParam(q, "offset", 0)
	switch {
	case lerr != nil || limit < 1 || limit > s.opts.MaxLimit:
		writeInvalid(w, "limit", fmt.Sprintf("The limit must be between 1 and %d.", s.opts.MaxLimit))
		return
	case oerr != nil || offset < 0:
		writeInvalid(w, "offset", "The offset must be at least 0.")
		return
	}
	less, bad := sorter(q.Get("sort"))
	if bad != "" {
		writeInvalid(w, "sort", bad)
		return
	}
	with, bad := parseWith(q)
	if bad != "" {
		writeInvalid(w, "with", bad)
		return
	}
	var b queryBody
	if field, msg := decodeStrict(r, &b); field != "" {
		writeInvalid(w, field, msg)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var hits []*Indicator
	for _, ind := range s.indicators {
		okC, errC := match(ind, b.Criteria)
		okF, errF := match(ind, b.Filters)
		if errC != "" || errF != "" {
			writeInvalid(w, "filters", errC+errF)
			return
		}
		if okC && okF {
			hits = append(hits, ind)
		}
	}
	slices.SortStableFunc(hits, less)
	data := []any{}
	for _, ind := range hits[min(offset, len(hits)):min(offset+limit, len(hits))] {
		data = append(data, render(ind, with))
	}
	writeJSON(w, http.StatusOK, map[string]any{"total": len(hits), "offset": offset, "limit": limit, "data": data})
}

func intParam(q url.Values, name string, def int) (int, error) {
	if !q.Has(name) {
		return def, nil
	}
	return strconv.Atoi(q.Get(name))
}

// sorter orders on comma-separated fields of id, value, created_at and updated_at.
func sorter(spec string) (func(a, b *Indicator) int, string) {
	if spec == "" {
		spec = "id"
	}
	var keys []func(a, b *Indicator) int
	for f := range strings.SplitSeq(spec, ",") {
		name, desc := strings.CutPrefix(f, "-")
		var key func(a, b *Indicator) int
		switch name {
		case "id":
			key = func(a, b *Indicator) int { return cmp.Compare(a.ID, b.ID) }
		case "value":
			key = func(a, b *Indicator) int { return strings.Compare(a.Value, b.Value) }
		case "created_at":
			key = func(a, b *Indicator) int { return a.CreatedAt.Compare(b.CreatedAt) }
		case "updated_at":
			key = func(a, b *Indicator) int { return a.UpdatedAt.Compare(b.UpdatedAt) }
		default:
			return nil, fmt.Sprintf("%q is not a sortable field", f)
		}
		if desc {
			asc := key
			key = func(a, b *Indicator) int { return -asc(a, b) }
		}
		keys = append(keys, key)
	}
	return func(a, b *Indicator) int {
		for _, k := range keys {
			if c := k(a, b); c != 0 {
				return c
			}
		}
		return 0
	}, ""
}

// match evaluates the subset of ThreatQ's filter grammar the clients use: "+and" and "+or"
// lists of nodes, equality on value, type_name and status_name, and comparisons ("+gt",
// "+gte", "+lt", "+lte") on created_at and updated_at. Anything else is an error, so that
// a client is never told a filter it misspelt matched.
func match(ind *Indicator, node map[string]any) (bool, string) {
	for k, v := range node {
		ok, bad := matchKey(ind, k, v)
		if bad != "" || !ok {
			return false, bad
		}
	}
	return true, ""
}

func matchKey(ind *Indicator, k string, v any) (bool, string) {
	switch k {
	case "+and", "+or":
		list, ok := v.([]any)
		if !ok {
			return false, k + " must be a list"
		}
		anyHit := false
		for _, item := range list {
			m, ok := item.(map[string]any)
			if !ok {
				return false, k + " must list objects"
			}
			hit, bad := match(ind, m)
			if bad != "" {
				return false, bad
			}
			if k == "+and" && !hit {
				return false, ""
			}
			anyHit = anyHit || hit
		}
		return k == "+and" || anyHit, ""
	case "value", "type_name", "status_name":
		s, ok := v.(string)
		if !ok {
			return false, k + " must be a string"
		}
		field := map[string]string{"value": ind.Value, "type_name": ind.Type, "status_name": ind.Status}[k]
		return field == s, ""
	case "created_at", "updated_at":
		t := ind.UpdatedAt
		if k == "created_at" {
			t = ind.CreatedAt
		}
		return compareTime(t, k, v)
	}
	return false, fmt.Sprintf("%q is not a filter of indicators", k)
}

func compareTime(t time.Time, k string, v any) (bool, string) {
	ops, ok := v.(map[string]any)
	if !ok {
		return false, k + " must be an object of comparisons"
	}
	for op, raw := range ops {
		s, _ := raw.(string)
		ref, err := time.ParseInLocation(timeLayout, s, time.UTC)
		if err != nil {
			return false, fmt.Sprintf("%s %s: %q is not a date (%s)", k, op, s, timeLayout)
		}
		var hit bool
		switch op {
		case "+gt":
			hit = t.After(ref)
		case "+gte":
			hit = !t.Before(ref)
		case "+lt":
			hit = t.Before(ref)
		case "+lte":
			hit = !t.After(ref)
		default:
			return false, fmt.Sprintf("%q is not a comparison", op)
		}
		if !hit {
			return false, ""
		}
	}
	return true, ""
}
