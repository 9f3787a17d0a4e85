package thehive

import (
	"encoding/json"
	"errors"
	"fmt"
)

// decodeAlert reads the _id of the alert object TheHive answers POST /api/v1/alert with.
func decodeAlert(body []byte) (string, error) {
	var r struct {
		ID string `json:"_id"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return "", fmt.Errorf("unreadable alert: %w", err)
	}
	if !alertIDRE.MatchString(r.ID) {
		return "", errors.New("alert has no _id")
	}
	return r.ID, nil
}

// decodeAlertList reads the ids of the alerts a query answers with (a JSON array of alert
// objects); an entry without a usable _id is an error rather than skipped, since the answer
// is then not what the query asked for.
func decodeAlertList(body []byte) ([]string, error) {
	var list []struct {
		ID string `json:"_id"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("unreadable query answer: %w", err)
	}
	ids := make([]string, 0, len(list))
	for _, a := range list {
		if !alertIDRE.MatchString(a.ID) {
			return nil, errors.New("query answer has an alert without _id")
		}
		ids = append(ids, a.ID)
	}
	return ids, nil
}

// decodeError reads TheHive's error body {"type": "...", "message": "..."}; ok is false when
// the body is not one.
func decodeError(body []byte) (typ, message string, ok bool) {
	var r struct {
		Type    *string `json:"type"`
		Message string  `json:"message"`
	}
	if json.Unmarshal(body, &r) != nil || r.Type == nil {
		return "", "", false
	}
	return *r.Type, r.Message, true
}
