package taxii

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/threatpipe/threatpipe/ingest"
)

// maxEnvelopeBytes bounds one response: a page of 10,000 indicators of a few hundred bytes each
// is well under it, and a server streaming without end is cut there.
const maxEnvelopeBytes = 64 << 20

// envelope is the TAXII 2.1 envelope resource (section 3.7): the Get Objects answer.
type envelope struct {
	More    bool              `json:"more"`
	Next    string            `json:"next"`
	Objects []json.RawMessage `json:"objects"`
}

// stixObject is what the source reads of a STIX 2.1 object; other types are skipped by type.
type stixObject struct {
	Type           string   `json:"type"`
	ID             string   `json:"id"`
	Created        string   `json:"created"`
	Modified       string   `json:"modified"`
	Name           string   `json:"name"`
	Pattern        string   `json:"pattern"`
	PatternType    string   `json:"pattern_type"`
	ValidUntil     string   `json:"valid_until"`
	Revoked        bool     `json:"revoked"`
	Labels         []string `json:"labels"`
	IndicatorTypes []string `json:"indicator_types"`
	Confidence     *int     `json:"confidence"`
}

// decodeEnvelope reads one envelope from r, at most maxEnvelopeBytes of it.
func decodeEnvelope(r io.Reader) (envelope, error) {
	var env envelope
	lr := &io.LimitedReader{R: r, N: maxEnvelopeBytes + 1}
	dec := json.NewDecoder(lr)
	if err := dec.Decode(&env); err != nil {
		if lr.N <= 0 {
			return envelope{}, fmt.Errorf("envelope larger than %d bytes", maxEnvelopeBytes)
		}
		return envelope{}, fmt.Errorf("decode envelope: %w", err)
	}
	if env.More && env.Next == "" && len(env.Objects) == 0 {
		return envelope{}, errors.New("envelope says more but holds no objects and no next")
	}
	return env, nil
}

// indicators turns the envelope's indicator objects into ingest indicators: one per address a
// pattern names, and one per other thing it names (spelt as the comparison, so the runner counts
// it as not an IP address and skips it). Other object types, revoked indicators and non-STIX
// patterns name no address and are left out.
func indicators(env envelope, collection string) []ingest.Indicator {
	var out []ingest.Indicator
	for _, raw := range env.Objects {
		var o stixObject
		if err := json.Unmarshal(raw, &o); err != nil || o.Type != "indicator" || o.Revoked {
			continue
		}
		if o.PatternType != "" && o.PatternType != "stix" {
			continue
		}
		base := ingest.Indicator{Ref: o.ID, Modified: modified(o), Tags: tags(o), Context: objectContext(o, collection)}
		ips, others, err := Addresses(o.Pattern)
		if err != nil {
			others = []string{"unparsed pattern: " + err.Error()}
		}
		for _, v := range append(ips, others...) {
			ind := base
			ind.Value = v
			out = append(out, ind)
		}
	}
	return out
}

func modified(o stixObject) time.Time {
	for _, s := range []string{o.Modified, o.Created} {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

func tags(o stixObject) []string {
	out := make([]string, 0, len(o.Labels)+len(o.IndicatorTypes))
	out = append(out, o.Labels...)
	return append(out, o.IndicatorTypes...)
}

func objectContext(o stixObject, collection string) map[string]string {
	c := map[string]string{"collection": collection}
	if o.Name != "" {
		c["indicator_name"] = o.Name
	}
	if o.ValidUntil != "" {
		c["valid_until"] = o.ValidUntil
	}
	if o.Confidence != nil {
		c["confidence"] = strconv.Itoa(*o.Confidence)
	}
	return c
}
