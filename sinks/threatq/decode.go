package threatq

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TimeLayout is how ThreatQ spells times, in UTC: "2021-10-01 18:36:03" (created_at,
// updated_at in Elastic ti_threatq's recorded answers; the same in date filters, per
// ThreatQuotient's own ThreatLibrary helper).
const TimeLayout = "2006-01-02 15:04:05"

// ParseTime reads a ThreatQ time.
func ParseTime(s string) (time.Time, error) { return time.ParseInLocation(TimeLayout, s, time.UTC) }

// FormatTime spells t as ThreatQ does.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// token is POST /api/token's answer.
type token struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// decodeToken reads a token answer; the token must be fit for an Authorization header.
func decodeToken(body []byte) (token, error) {
	var t token
	if err := json.Unmarshal(body, &t); err != nil {
		return token{}, fmt.Errorf("unreadable token answer: %w", err)
	}
	switch {
	case t.AccessToken == "":
		return token{}, errors.New("token answer has no access_token")
	case len(t.AccessToken) > 8192 || strings.ContainsFunc(t.AccessToken, func(r rune) bool { return r <= ' ' || r >= 0x7f }):
		return token{}, errors.New("access_token is not a bearer token")
	case t.TokenType != "" && !strings.EqualFold(t.TokenType, "bearer"):
		return token{}, fmt.Errorf("token_type %.40q is not Bearer", t.TokenType)
	}
	return t, nil
}

// Named is a type or status object ({"id": 15, "name": "IP Address"}).
type Named struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// Attribute is one of an indicator's attributes ({"id", "attribute_id", "name", "value"}).
type Attribute struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Value Text   `json:"value"`
}

// Tag is one of an indicator's tags ({"id", "name"}).
type Tag struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// Indicator is the part of a ThreatQ indicator object threatpipe reads. Field names are the
// API's (Elastic ti_threatq's recorded answers; Cortex XSOAR ThreatQ v2's
// indicator_data_to_demisto_format). Type, Status, Attributes and Tags are present when the
// request asked for them with with=.
type Indicator struct {
	ID         int64           `json:"id"`
	Value      string          `json:"value"`
	TypeID     int64           `json:"type_id"`
	Type       *Named          `json:"type"`
	StatusID   int64           `json:"status_id"`
	Status     *Named          `json:"status"`
	UpdatedAt  string          `json:"updated_at"`
	Score      json.RawMessage `json:"score"`
	Attributes []Attribute     `json:"attributes"`
	Tags       []Tag           `json:"tags"`
}

// Page is one answer of POST /api/indicators/query: {"total": N, "data": [...]}
// (ThreatQuotient's ThreatLibrary.execute pages on total with limit and offset).
type Page struct {
	Total int64       `json:"total"`
	Data  []Indicator `json:"data"`
}

// DecodePage reads a query answer. Every indicator must have an id and a value: an entry
// without them is not what the query asked for, so the whole answer is refused.
func DecodePage(body []byte) (Page, error) {
	var p Page
	if err := json.Unmarshal(body, &p); err != nil {
		return Page{}, fmt.Errorf("unreadable indicator list: %w", err)
	}
	for i := range p.Data {
		if err := p.Data[i].check(); err != nil {
			return Page{}, fmt.Errorf("indicator list: %w", err)
		}
	}
	return p, nil
}

// decodeIndicator reads GET /api/indicators/{id}: {"data": {...}}.
func decodeIndicator(body []byte) (Indicator, error) {
	var r struct {
		Data *Indicator `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return Indicator{}, fmt.Errorf("unreadable indicator: %w", err)
	}
	if r.Data == nil {
		return Indicator{}, errors.New("answer has no data")
	}
	return *r.Data, r.Data.check()
}

// decodeCreated reads POST /api/indicators: {"data": [{...}]}, a list of one ("only while
// creating an indicator, the response data is a list of dicts with size 1", Cortex XSOAR
// ThreatQ v2). A single object is accepted too.
func decodeCreated(body []byte) (Indicator, error) {
	var r struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return Indicator{}, fmt.Errorf("unreadable created indicator: %w", err)
	}
	var list []Indicator
	if bytes.HasPrefix(bytes.TrimSpace(r.Data), []byte("{")) {
		list = make([]Indicator, 1)
		if err := json.Unmarshal(r.Data, &list[0]); err != nil {
			return Indicator{}, fmt.Errorf("unreadable created indicator: %w", err)
		}
	} else if err := json.Unmarshal(r.Data, &list); err != nil {
		return Indicator{}, fmt.Errorf("unreadable created indicator: %w", err)
	}
	if len(list) != 1 {
		return Indicator{}, fmt.Errorf("created %d indicators, want 1", len(list))
	}
	return list[0], list[0].check()
}

func (ind *Indicator) check() error {
	switch {
	case ind.ID <= 0:
		return errors.New("indicator has no id")
	case ind.Value == "" || len(ind.Value) > 4096:
		return fmt.Errorf("indicator %d has no usable value", ind.ID)
	}
	for _, a := range ind.Attributes {
		if a.ID <= 0 {
			return fmt.Errorf("indicator %d has an attribute without id", ind.ID)
		}
	}
	return nil
}

// TypeName is the indicator's type name ("IP Address"), "" when the answer did not carry it.
func (ind *Indicator) TypeName() string {
	if ind.Type == nil {
		return ""
	}
	return ind.Type.Name
}

// ScoreText is the indicator's ThreatQ score as text: a number, or the manual score over the
// generated one when the API answers the score object (Cortex XSOAR ThreatQ v2,
// get_tq_score_from_response). "" when absent or unreadable.
func (ind *Indicator) ScoreText() string {
	var n json.Number
	if json.Unmarshal(ind.Score, &n) == nil {
		return n.String()
	}
	var o struct {
		Generated json.Number `json:"generated_score"`
		Manual    json.Number `json:"manual_score"`
	}
	if json.Unmarshal(ind.Score, &o) != nil {
		return ""
	}
	if m, err := o.Manual.Float64(); err == nil && m != 0 {
		return o.Manual.String()
	}
	return o.Generated.String()
}

// Text is an attribute value: ThreatQ answers strings ("9000"), but a number is read as its
// text rather than refused.
type Text string

// UnmarshalJSON implements json.Unmarshaler.
func (t *Text) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*t = Text(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("attribute value is neither text nor a number")
	}
	*t = Text(n.String())
	return nil
}

// id is an indicator or attribute id as a path segment.
func id(n int64) string { return strconv.FormatInt(n, 10) }
