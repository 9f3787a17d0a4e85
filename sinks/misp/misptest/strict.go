package misptest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// kind is the JSON type a field must have.
type kind int

const (
	kString  kind = iota // a string
	kBool                // true/false (MISP also takes 0/1)
	kDigits              // an integer, or a string of digits (ids, levels, timestamps)
	kInt                 // a JSON integer only (Sighting::restSearch's id)
	kStrings             // a string or a list of strings
)

var (
	digitsRE = regexp.MustCompile(`^[0-9]{1,20}$`)
	uuidRE   = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

func isID(s string) bool { return len(s) <= 10 && digitsRE.MatchString(s) }

// fields is a request body checked against a spec.
type fields map[string]json.RawMessage

// decode reads body as a JSON object whose keys are all in spec (case included: Go's decoder
// would match case-insensitively, MISP does not) and whose values have the spec's types.
func decode(body []byte, spec map[string]kind) (fields, *httpError) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var f fields
	if err := dec.Decode(&f); err != nil || f == nil {
		return nil, fail(http.StatusBadRequest, "Invalid JSON: expecting an object")
	}
	if dec.More() {
		return nil, fail(http.StatusBadRequest, "Invalid JSON: trailing data")
	}
	for _, k := range slices.Sorted(maps.Keys(f)) {
		want, ok := spec[k]
		if !ok {
			return nil, fail(http.StatusBadRequest, fmt.Sprintf("Unknown field %q", k))
		}
		if !typeOK(f[k], want) {
			return nil, fail(http.StatusBadRequest, fmt.Sprintf("Field %q has the wrong type", k))
		}
	}
	return f, nil
}

func typeOK(raw json.RawMessage, want kind) bool {
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if d.Decode(&v) != nil {
		return false
	}
	switch want {
	case kString:
		_, ok := v.(string)
		return ok
	case kBool:
		switch x := v.(type) {
		case bool:
			return true
		case json.Number:
			return x == "0" || x == "1"
		}
		return false
	case kDigits:
		switch x := v.(type) {
		case string:
			return digitsRE.MatchString(x)
		case json.Number:
			return digitsRE.MatchString(string(x))
		}
		return false
	case kInt:
		x, ok := v.(json.Number)
		return ok && digitsRE.MatchString(string(x))
	case kStrings:
		switch x := v.(type) {
		case string:
			return true
		case []any:
			for _, e := range x {
				if _, ok := e.(string); !ok {
					return false
				}
			}
			return true
		}
	}
	return false
}

func (f fields) has(k string) bool { _, ok := f[k]; return ok }

func (f fields) str(k string) string {
	var s string
	_ = json.Unmarshal(f[k], &s)
	return s
}

func (f fields) boolean(k string) bool {
	s := strings.Trim(string(f[k]), `"`)
	return s == "true" || s == "1"
}

func (f fields) num(k string) int64 {
	n, _ := strconv.ParseInt(strings.Trim(string(f[k]), `"`), 10, 64)
	return n
}

func (f fields) strs(k string) []string {
	raw, ok := f[k]
	if !ok {
		return nil
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return list
	}
	return []string{f.str(k)}
}

// inRange checks an optional level field (distribution, threat_level_id, analysis).
func (f fields) inRange(k string, lo, hi int64) *httpError {
	if f.has(k) && (f.num(k) < lo || f.num(k) > hi) {
		return saveFail("Could not add Event", map[string][]string{k: {"Options: " + strconv.FormatInt(lo, 10) + "-" + strconv.FormatInt(hi, 10)}})
	}
	return nil
}

// unwrap is the object under key in body ({"Event": {...}} -> {...}).
func unwrap(body []byte, key string) ([]byte, *httpError) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || len(m) != 1 || m[key] == nil {
		return nil, fail(http.StatusBadRequest, "Invalid JSON: expecting {\""+key+"\": {...}} alone")
	}
	return m[key], nil
}

// wrapped reports whether body is an object with the key key.
func wrapped(body []byte, key string) bool {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(body, &m)
	_, ok := m[key]
	return ok
}
