package misp

import "testing"

// The decoders of MISP's answers never panic, and what they accept has ids and uuids safe to
// put in a URL path or a request. Seeds are MISP answers in the shapes of its OpenAPI spec.

func checkAttr(t *testing.T, a Attribute) {
	if !idRE.MatchString(a.ID) || !uuidRE.MatchString(a.UUID) || a.Type == "" || a.Timestamp < 0 {
		t.Fatalf("accepted %+v", a)
	}
}

const seedAttribute = `{"id":"12","event_id":"3","object_id":"0","category":"Network activity","type":"ip-dst","value":"203.0.113.7",` +
	`"to_ids":true,"uuid":"5e6f2b1a-3c4d-4e5f-8a9b-0c1d2e3f4a5b","timestamp":"1740830400","comment":"x","deleted":false,` +
	`"Tag":[{"id":"1","name":"threatpipe:score=\"92\""}]}`

func FuzzDecodeAttributeList(f *testing.F) {
	f.Add([]byte(`{"response":{"Attribute":[` + seedAttribute + `]}}`))
	f.Add([]byte(`{"response":[]}`))
	f.Add([]byte(`{"response":{"Attribute":[{"id":12,"uuid":"5E6F2B1A-3C4D-4E5F-8A9B-0C1D2E3F4A5B","type":"ip-src","timestamp":1,"to_ids":"1"}]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		list, err := decodeAttributeList(body)
		if err != nil && list != nil {
			t.Fatal("list with an error")
		}
		for _, a := range list {
			checkAttr(t, a)
		}
	})
}

func FuzzDecodeAttribute(f *testing.F) {
	f.Add([]byte(`{"Attribute":` + seedAttribute + `}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if a, err := decodeAttribute(body); err == nil {
			checkAttr(t, a)
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"Event":{"id":"3","info":"threatpipe: pb1 2025-03-01","uuid":"5e6f2b1a-3c4d-4e5f-8a9b-0c1d2e3f4a5b"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if e, err := decodeEvent(body); err == nil && !idRE.MatchString(e.ID) {
			t.Fatalf("accepted %+v", e)
		}
	})
}

func FuzzDecodeEventIndex(f *testing.F) {
	f.Add([]byte(`[{"id":"3","info":"threatpipe: pb1 2025-03-01"},{"id":4,"info":"x"}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		list, err := decodeEventIndex(body)
		for _, e := range list {
			if err != nil || !idRE.MatchString(e.ID) {
				t.Fatalf("accepted %+v (err %v)", e, err)
			}
		}
	})
}

func FuzzDecodeSightingCount(f *testing.F) {
	f.Add([]byte(`{"response":[{"Sighting":{"id":"1","attribute_id":"12","date_sighting":"1740830400","source":"threatpipe","type":"0"}}]}`))
	f.Add([]byte(`{"response":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if n, err := decodeSightingCount(body); n < 0 || (err != nil && n != 0) {
			t.Fatalf("n %d err %v", n, err)
		}
	})
}

func FuzzDecodeAPIError(f *testing.F) {
	f.Add([]byte(`{"name":"Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header.","message":"Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header.","url":"\/events\/index"}`))
	f.Add([]byte(`{"saved":false,"name":"Could not add Attribute","message":"Could not add Attribute","url":"\/attributes\/add","errors":{"value":["A similar attribute already exists for this event."]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, ok := decodeAPIError(body)
		if !ok && (e.Name != "" || e.Message != "") {
			t.Fatalf("values without ok: %+v", e)
		}
		_ = e.summary()
	})
}
