package threatq

import (
	"strings"
	"testing"
)

// The decoders of ThreatQ's answers never panic, and what they accept is usable: a token fit
// for a header, indicators with ids and values, attributes with ids. Seeds are recorded-shape
// answers (Elastic ti_threatq's sample; Cortex XSOAR ThreatQ v2's create answer).

func FuzzDecodeToken(f *testing.F) {
	f.Add([]byte(`{"access_token":"testaccess","token_type":"Bearer","expires_in":172799,"refresh_token":"testrefresh"}`))
	f.Add([]byte(`{"access_token":"a b","token_type":"mac"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		tok, err := decodeToken(body)
		if err != nil {
			return
		}
		if tok.AccessToken == "" || strings.ContainsAny(tok.AccessToken, " \r\n\t") {
			t.Fatalf("accepted token %q", tok.AccessToken)
		}
		_ = refreshAfter(tok.ExpiresIn)
	})
}

const sampleIndicator = `{"class":"network","score":4,"value":"89.160.20.156","id":338,"updated_at":"2020-11-15 00:00:02",` +
	`"status":{"id":2,"name":"Expired"},"type":{"class":"network","id":15,"name":"IP Address"},"type_id":15,` +
	`"attributes":[{"attribute_id":4,"id":1890,"indicator_id":338,"name":"Country","value":"US"}],"tags":[{"id":1,"name":"tor"}]}`

func checkIndicator(t *testing.T, ind Indicator) {
	t.Helper()
	if ind.ID <= 0 || ind.Value == "" {
		t.Fatalf("accepted %+v", ind)
	}
	for _, a := range ind.Attributes {
		if a.ID <= 0 {
			t.Fatalf("accepted attribute %+v", a)
		}
	}
	_, _ = ind.ScoreText(), ind.TypeName()
}

func FuzzDecodePage(f *testing.F) {
	f.Add([]byte(`{"total":4090,"data":[` + sampleIndicator + `]}`))
	f.Add([]byte(`{"total":0,"data":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := DecodePage(body)
		if err != nil {
			if p.Data != nil {
				t.Fatal("data with an error")
			}
			return
		}
		for _, ind := range p.Data {
			checkIndicator(t, ind)
		}
	})
}

func FuzzDecodeIndicator(f *testing.F) {
	f.Add([]byte(`{"data":` + sampleIndicator + `}`))
	f.Add([]byte(`{"data":{"id":1,"value":"x","score":{"generated_score":"2.00","manual_score":7}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if ind, err := decodeIndicator(body); err == nil {
			checkIndicator(t, ind)
		}
	})
}

func FuzzDecodeCreated(f *testing.F) {
	f.Add([]byte(`{"data":[` + sampleIndicator + `]}`))
	f.Add([]byte(`{"data":{"id":5,"value":"192.0.2.1"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if ind, err := decodeCreated(body); err == nil {
			checkIndicator(t, ind)
		}
	})
}
