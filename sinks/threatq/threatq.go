// Package threatq is the ThreatQ intel sink: it writes a scored verdict back to the ThreatQ
// threat library as the indicator's attributes and tags. Its Client (OAuth2 tokens, retries)
// is shared with the ingest poller (ingest/threatq).
//
// The API shapes follow the public integrations that drive ThreatQ's REST API, each call
// citing its source: Cortex XSOAR's ThreatQ v2 (demisto/content
// Packs/ThreatQ/Integrations/ThreatQ_v2/ThreatQ_v2.py), Polarity's ThreatQuotient IOC
// submission (polarityio/threatquotient-ioc-submission src/submitItems.js), Elastic's
// ti_threatq package (elastic/integrations packages/ti_threatq) and ThreatQuotient's own
// ThreatLibrary search helper. One Do is:
//
//   - find: POST /api/indicators/query?limit=&offset=0&sort=id with {"criteria": {"value": v},
//     "filters": {"type_name": "IP Address"}}, then GET /api/indicators/{id}?with=attributes,tags
//     (XSOAR make_indicator_reputation_request);
//   - when absent, create: POST /api/indicators with {"type", "status", "value", "sources":
//     [{"name"}], "attributes": [{"name", "value"}]} (XSOAR create_indicator_command), answered
//     {"data": [indicator]};
//   - when present, for each attribute: PUT /api/indicators/{id}/attributes/{attribute id}
//     with {"value"} when its value changed (XSOAR modify_attribute_command), POST
//     /api/indicators/{id}/attributes with {"name", "value"} when it has none of that name
//     (XSOAR add_attribute_command);
//   - each tag the indicator lacks: POST /api/indicators/{id}/tags with {"name"} (Polarity
//     createTags).
//
// Repeats therefore update, never duplicate: one indicator per address, one attribute per
// name. Two replicas creating the same new indicator at the same instant is the one race left;
// ThreatQ keys indicators on (value, type), and the next Do updates whichever it finds first.
package threatq

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/threatpipe/threatpipe/sinks"
)

// Name is the sink's stable identifier.
const Name = "threatq"

// API paths.
const (
	IndicatorsPath = "/api/indicators"
	QueryPath      = "/api/indicators/query"
)

// ParamStatus is the step param that overrides THREATPIPE_SINK_THREATQ_STATUS for the
// indicators the step creates.
const ParamStatus = "status"

// findLimit bounds the lookup by value: one (value, type) is one indicator in ThreatQ, a few
// more only guard against a value spelled in two cases.
const findLimit = 10

// Sink writes verdicts to ThreatQ. It is safe for concurrent use.
type Sink struct {
	cfg    Config
	client *Client
}

var (
	_ sinks.Sink           = (*Sink)(nil)
	_ sinks.Finder         = (*Sink)(nil)
	_ sinks.ParamValidator = (*Sink)(nil)
)

// New builds the sink from a configured Config. hc may be nil.
func New(cfg *Config, hc *http.Client) (*Sink, error) {
	if cfg == nil {
		return nil, errors.New("threatq: nil config")
	}
	c := *cfg
	if err := c.Resolve(); err != nil {
		return nil, err
	}
	if !c.Configured() {
		return nil, fmt.Errorf("%sURL is not set", EnvPrefix)
	}
	client, err := NewClient(Name, c.Auth, hc, c.Policy())
	if err != nil {
		return nil, err
	}
	return &Sink{cfg: c, client: client}, nil
}

// Name implements sinks.Sink.
func (s *Sink) Name() string { return Name }

// Kind implements sinks.Sink.
func (s *Sink) Kind() sinks.Kind { return sinks.KindIntel }

// ValidateParams implements sinks.ParamValidator: status (a status name); any other key is an
// error.
func (s *Sink) ValidateParams(params map[string]string) error {
	_, err := s.status(params)
	return err
}

func (s *Sink) status(params map[string]string) (string, error) {
	st := s.cfg.Status
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(params)) {
		switch k {
		case ParamStatus:
			if err := checkLabel(params[k]); err != nil {
				errs = append(errs, fmt.Errorf("threatq: param %q: %w", k, err))
			}
			st = params[k]
		default:
			errs = append(errs, fmt.Errorf("threatq: param %q: unknown (want status)", k))
		}
	}
	return st, errors.Join(errs...)
}

// Do implements sinks.Sink: the indicator a.Target is created with the verdict's attributes
// and tags, or, when ThreatQ has it already, its attributes are updated and missing tags added.
func (s *Sink) Do(ctx context.Context, a *sinks.Action) (sinks.Result, error) {
	if a == nil || a.Target == "" {
		return sinks.Result{}, errors.New("threatq: action has no target")
	}
	status, err := s.status(a.Params)
	if err != nil {
		return sinks.Result{}, err
	}
	ind, found, err := s.find(ctx, a.Target)
	if err != nil {
		return sinks.Result{}, fmt.Errorf("threatq: find indicator %s: %w", a.Target, err)
	}
	if !found {
		return s.create(ctx, a, status)
	}
	return s.update(ctx, a, ind)
}

// Find implements sinks.Finder: the id of the indicator a.Target, which any earlier Do left.
func (s *Sink) Find(ctx context.Context, a *sinks.Action) (string, bool, error) {
	if a == nil || a.Target == "" {
		return "", false, errors.New("threatq: find: action has no target")
	}
	ind, found, err := s.lookup(ctx, a.Target)
	if err != nil || !found {
		if err != nil {
			err = fmt.Errorf("threatq: find indicator %s: %w", a.Target, err)
		}
		return "", false, err
	}
	return id(ind.ID), true, nil
}

// lookup finds the indicator of value target by query; the answer carries no attributes.
func (s *Sink) lookup(ctx context.Context, target string) (Indicator, bool, error) {
	q := url.Values{"limit": {fmt.Sprint(findLimit)}, "offset": {"0"}, "sort": {"id"}}
	body := map[string]any{
		"criteria": map[string]string{"value": target},
		"filters":  map[string]string{"type_name": TypeOf(target)},
	}
	raw, err := s.client.Do(ctx, http.MethodPost, QueryPath, q, body)
	if err != nil {
		return Indicator{}, false, err
	}
	page, err := DecodePage(raw)
	if err != nil {
		return Indicator{}, false, err
	}
	for _, ind := range page.Data {
		if strings.EqualFold(ind.Value, target) {
			return ind, true, nil
		}
	}
	return Indicator{}, false, nil
}

// find is lookup followed by a read of the indicator's attributes and tags.
func (s *Sink) find(ctx context.Context, target string) (Indicator, bool, error) {
	ind, found, err := s.lookup(ctx, target)
	if err != nil || !found {
		return Indicator{}, false, err
	}
	raw, err := s.client.Do(ctx, http.MethodGet, IndicatorsPath+"/"+id(ind.ID), url.Values{"with": {"attributes,tags"}}, nil)
	if err != nil {
		return Indicator{}, false, err
	}
	full, err := decodeIndicator(raw)
	if err != nil {
		return Indicator{}, false, err
	}
	return full, true, nil
}

func (s *Sink) create(ctx context.Context, a *sinks.Action, status string) (sinks.Result, error) {
	attrs := attributes(a)
	body := map[string]any{
		"type":       TypeOf(a.Target),
		"status":     status,
		"value":      a.Target,
		"sources":    []map[string]string{{"name": s.cfg.Source}},
		"attributes": attrs,
	}
	raw, err := s.client.Do(ctx, http.MethodPost, IndicatorsPath, nil, body)
	if err != nil {
		return sinks.Result{}, fmt.Errorf("threatq: create indicator %s: %w", a.Target, err)
	}
	ind, err := decodeCreated(raw)
	if err != nil {
		return sinks.Result{}, fmt.Errorf("threatq: create indicator %s: %w", a.Target, err)
	}
	added, err := s.addTags(ctx, ind, tags(a))
	ref := id(ind.ID)
	if err != nil {
		return sinks.Result{}, fmt.Errorf("threatq: created indicator %s but tagging it failed: %w", ref, err)
	}
	return sinks.Result{Ref: ref, Detail: fmt.Sprintf("created indicator %s (%s, %s, %d attributes, %d tags)",
		ref, a.Target, TypeOf(a.Target), len(attrs), added)}, nil
}

func (s *Sink) update(ctx context.Context, a *sinks.Action, ind Indicator) (sinks.Result, error) {
	ref := id(ind.ID)
	changed, added, err := s.writeAttributes(ctx, ind, attributes(a))
	if err != nil {
		return sinks.Result{}, fmt.Errorf("threatq: update indicator %s: %w", ref, err)
	}
	tagged, err := s.addTags(ctx, ind, tags(a))
	if err != nil {
		return sinks.Result{}, fmt.Errorf("threatq: update indicator %s: %w", ref, err)
	}
	detail := fmt.Sprintf("updated indicator %s (%s): %d attributes changed, %d added, %d tags added", ref, a.Target, changed, added, tagged)
	if changed+added+tagged == 0 {
		detail = fmt.Sprintf("updated indicator %s (%s): already up to date", ref, a.Target)
	}
	return sinks.Result{Ref: ref, Detail: detail}, nil
}

// writeAttributes makes each of want the value of the indicator's attribute of that name:
// PUT where it has one with another value, POST where it has none.
func (s *Sink) writeAttributes(ctx context.Context, ind Indicator, want []attr) (changed, added int, err error) {
	base := IndicatorsPath + "/" + id(ind.ID) + "/attributes"
	for _, w := range want {
		i := slices.IndexFunc(ind.Attributes, func(x Attribute) bool { return x.Name == w.Name })
		switch {
		case i < 0:
			if _, err := s.client.Do(ctx, http.MethodPost, base, nil, w); err != nil {
				return changed, added, fmt.Errorf("add attribute %q: %w", w.Name, err)
			}
			added++
		case string(ind.Attributes[i].Value) != w.Value:
			path := base + "/" + id(ind.Attributes[i].ID)
			if _, err := s.client.Do(ctx, http.MethodPut, path, nil, map[string]string{"value": w.Value}); err != nil {
				return changed, added, fmt.Errorf("update attribute %q: %w", w.Name, err)
			}
			changed++
		}
	}
	return changed, added, nil
}

// addTags adds the tags the indicator lacks (ThreatQ tag names are case-insensitive labels).
func (s *Sink) addTags(ctx context.Context, ind Indicator, want []string) (int, error) {
	added := 0
	for _, t := range want {
		if slices.ContainsFunc(ind.Tags, func(x Tag) bool { return strings.EqualFold(x.Name, t) }) {
			continue
		}
		if _, err := s.client.Do(ctx, http.MethodPost, IndicatorsPath+"/"+id(ind.ID)+"/tags", nil, map[string]string{"name": t}); err != nil {
			return added, fmt.Errorf("add tag %q: %w", t, err)
		}
		added++
	}
	return added, nil
}
