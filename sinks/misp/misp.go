// Package misp is the MISP write-back sink (kind intel): it records a scored verdict on an
// attribute of a MISP event, following MISP's REST API as PyMISP drives it (api.go names the
// source of every request and answer shape):
//
//   - The event is THREATPIPE_SINK_MISP_EVENT_ID when set, else one per playbook and UTC day
//     (of the indicator's sighting), found by its info "threatpipe: <playbook> <YYYY-MM-DD>"
//     with POST /events/index and created with POST /events/add when absent.
//   - The attribute is found by value and type in that event (POST /attributes/restSearch),
//     added when absent (POST /attributes/add/{eventId}: category "Network activity", to_ids
//     from the score, a comment with the score and reasons) and else edited (POST
//     /attributes/edit/{id}): a repeat updates the one attribute, never duplicates it. Two
//     writers racing to add it meet MISP's duplicate check; the loser edits the winner's.
//   - Machine tags are attached to the attribute (POST /tags/attachTagToObject):
//     <prefix>:score="92" and <prefix>:severity="critical", the previous ones removed (POST
//     /tags/removeTagFromObject) so that they never accumulate; <prefix>:validated-by="<source>"
//     per agreeing source; the action's own tags.
//   - A sighting (POST /sightings/add, source "threatpipe", timestamp the indicator's
//     observation) is added once per observation: a redelivered action finds its sighting
//     (POST /sightings/restSearch/attribute) and adds none.
//
// Result.Ref is the attribute's uuid; Find looks the attribute up the same way.
package misp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinktext"
)

// Name is the sink's stable identifier.
const Name = "misp"

// SightingSource is the source of the sightings the sink adds.
const SightingSource = "threatpipe"

// Attribute types a step may ask for.
const (
	TypeIPDst = "ip-dst"
	TypeIPSrc = "ip-src"
)

// Param keys a playbook step may set.
const (
	ParamAttributeType = "attribute_type"
	ParamToIDS         = "to_ids"
	ParamTags          = "tags"
)

const (
	userAgent  = "threatpipe"
	maxTag     = 255 // MISP's Tag.name column
	maxTags    = 50
	maxReasons = 20
	maxComment = 4000
	maxInfo    = 200
)

// Sink writes verdicts to MISP. It is safe for concurrent use.
type Sink struct {
	cfg    Config
	client *Client
	now    func() time.Time
	// eventMu serialises finding-or-creating the day's event, so that two actions of one
	// replica never create it twice. Replicas racing may; the lowest id then wins.
	eventMu sync.Mutex
}

var (
	_ sinks.Sink           = (*Sink)(nil)
	_ sinks.ParamValidator = (*Sink)(nil)
	_ sinks.Finder         = (*Sink)(nil)
)

// New builds the sink from a resolved, configured Config. hc may be nil (sinkhttp's default
// client, which refuses redirects so that the key never follows one).
func New(cfg *Config, hc *http.Client) (*Sink, error) {
	if cfg == nil {
		return nil, errors.New("misp: nil config")
	}
	c := *cfg
	if err := c.Resolve(); err != nil {
		return nil, err
	}
	if !c.Configured() {
		return nil, fmt.Errorf("%sURL is not set", EnvPrefix)
	}
	return &Sink{
		cfg:    c,
		client: NewClient(Name, c.URL, c.Key.Reveal(), hc, c.Policy()),
		now:    time.Now,
	}, nil
}

// Name implements sinks.Sink.
func (s *Sink) Name() string { return Name }

// Kind implements sinks.Sink.
func (s *Sink) Kind() sinks.Kind { return sinks.KindIntel }

// options are one action's settings: the configuration overridden by the step's params.
type options struct {
	attrType string
	toIDS    *bool
	tags     []string
}

// ValidateParams implements sinks.ParamValidator: attribute_type (ip-dst, ip-src), to_ids
// (true, false) and tags (comma-separated); any other key is an error.
func (s *Sink) ValidateParams(params map[string]string) error {
	_, err := parseOptions(params)
	return err
}

func parseOptions(params map[string]string) (options, error) {
	o := options{attrType: TypeIPDst}
	var errs []error
	bad := func(key string, err error) { errs = append(errs, fmt.Errorf("misp: param %q: %w", key, err)) }
	for _, k := range slices.Sorted(maps.Keys(params)) {
		v := params[k]
		switch k {
		case ParamAttributeType:
			if v != TypeIPDst && v != TypeIPSrc {
				bad(k, fmt.Errorf("%q is not %s or %s", v, TypeIPDst, TypeIPSrc))
			}
			o.attrType = v
		case ParamToIDS:
			b, err := strconv.ParseBool(v)
			if err != nil {
				bad(k, fmt.Errorf("%q is not true or false", v))
			}
			o.toIDS = &b
		case ParamTags:
			for t := range strings.SplitSeq(v, ",") {
				t = strings.TrimSpace(t)
				if t == "" || sinktext.OneLine(t, maxTag) != t {
					bad(k, fmt.Errorf("tag %q is empty, has control characters or more than %d characters", t, maxTag))
					continue
				}
				o.tags = append(o.tags, t)
			}
		default:
			bad(k, errors.New("unknown (want attribute_type, to_ids or tags)"))
		}
	}
	return o, errors.Join(errs...)
}

// target is a.Target as MISP should hold it: an IP address, IPv4-mapped ones unmapped.
func target(a *sinks.Action) (string, error) {
	if a == nil {
		return "", errors.New("misp: nil action")
	}
	ip, err := netip.ParseAddr(a.Target)
	if err != nil || ip.Zone() != "" {
		return "", fmt.Errorf("misp: target %q is not an IP address", a.Target)
	}
	return ip.Unmap().String(), nil
}

// Do implements sinks.Sink: find or create the event, add or edit the attribute, set its
// tags, add a sighting for a new observation.
func (s *Sink) Do(ctx context.Context, a *sinks.Action) (sinks.Result, error) {
	value, err := target(a)
	if err != nil {
		return sinks.Result{}, err
	}
	o, err := parseOptions(a.Params)
	if err != nil {
		return sinks.Result{}, err
	}
	ev, _, err := s.event(ctx, a, true)
	if err != nil {
		return sinks.Result{}, fmt.Errorf("misp: event: %w", err)
	}
	attr, verb, err := s.upsertAttribute(ctx, ev, value, a, o)
	if err != nil {
		return sinks.Result{}, fmt.Errorf("misp: attribute %s in event %s: %w", value, ev, err)
	}
	if err := s.syncTags(ctx, attr, s.wantTags(a, o)); err != nil {
		return sinks.Result{}, fmt.Errorf("misp: tags of attribute %s: %w", attr.UUID, err)
	}
	sighted, err := s.sight(ctx, attr, a.SeenAt(s.now()))
	if err != nil {
		return sinks.Result{}, fmt.Errorf("misp: sighting of attribute %s: %w", attr.UUID, err)
	}
	detail := fmt.Sprintf("%s %s %s in event %s (attribute %s)", verb, o.attrType, value, ev, attr.UUID)
	if sighted {
		detail += ", sighting added"
	}
	return sinks.Result{Ref: attr.UUID, Detail: detail}, nil
}

// Find implements sinks.Finder: the uuid of the attribute for a.Target in the event Do would
// write to. A missing event is not found, never created.
func (s *Sink) Find(ctx context.Context, a *sinks.Action) (string, bool, error) {
	value, err := target(a)
	if err != nil {
		return "", false, err
	}
	o, err := parseOptions(a.Params)
	if err != nil {
		return "", false, err
	}
	ev, found, err := s.event(ctx, a, false)
	if err != nil || !found {
		return "", false, wrapIf("misp: find event", err)
	}
	attr, found, err := s.findAttribute(ctx, ev, value, o.attrType)
	if err != nil || !found {
		return "", false, wrapIf("misp: find attribute", err)
	}
	return attr.UUID, true, nil
}

func wrapIf(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}
