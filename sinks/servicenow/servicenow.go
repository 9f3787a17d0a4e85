// Package servicenow is the ServiceNow incident sink, following the Table API at its default
// (unversioned, latest) URL /api/now/table, as documented for the Xanadu to Australia releases:
//
//   - POST /api/now/table/incident creates an incident (201 {"result":{...}}); Result.Ref is
//     its sys_id and Result.Detail names its number (INC0010001).
//   - PATCH /api/now/table/incident/{sys_id} with {"work_notes": ...} (200) records a repeat
//     when the action carries the Prior sys_id of an incident this sink opened for the same
//     target within the playbook's window. The instance answers 404 for a record that was
//     deleted (or that an ACL now hides); the sink then opens a new incident.
//   - GET /api/now/table/incident?sysparm_query=correlation_id=<id>^ORDERBYsys_created_on
//     &sysparm_fields=sys_id,number&sysparm_limit=1 (200 {"result":[{"sys_id","number"}]}) is
//     Find: the incident an earlier Do with the same Action.Key opened, if any.
//
// Every call asks for sysparm_fields=sys_id,number: the answer would otherwise carry the whole
// record. Requests use Basic auth (integration user) or an OAuth access token as a Bearer
// token, with Accept application/json (and Content-Type application/json with a body). Errors
// are {"error":{"message","detail"},"status":"failure"}; sinkhttp retries 429 (honouring
// Retry-After) and 5xx within the retry budget and fails at once on other statuses.
//
// Incidents carry correlation_id "threatpipe:" + 32 hex digits of SHA-256(Action.Key) and
// correlation_display "threatpipe"; the indicator is in the short description and description.
// The Table API has no idempotency key: a create whose answer is lost (a timeout or a 5xx
// after the insert) is retried and may leave a second incident with the same correlation_id.
// Find guards the repeat after a crash; an incident an ACL hides from the integration user
// looks absent to it. A work note leaves no trace Find can see; a repeated note action notes
// again.
package servicenow

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"time"

	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
	"github.com/threatpipe/threatpipe/sinks/sinkticket"
)

// Name is the sink's stable identifier.
const Name = "servicenow"

// IncidentPath is the Table API resource of the incident table.
const IncidentPath = "/api/now/table/incident"

// Param keys a playbook step may set.
const (
	ParamAssignmentGroup = "assignment_group"
	ParamCategory        = "category"
	ParamUrgency         = "urgency"
	ParamImpact          = "impact"
)

const userAgent = "threatpipe"

// fieldsQuery limits the answer to what the sink reads.
var fieldsQuery = url.Values{"sysparm_fields": {"sys_id,number"}}.Encode()

// findQuery is the query string of Find for one correlation id.
func findQuery(correlationID string) string {
	return url.Values{
		"sysparm_query":  {"correlation_id=" + correlationID + "^ORDERBYsys_created_on"},
		"sysparm_fields": {"sys_id,number"},
		"sysparm_limit":  {"1"},
	}.Encode()
}

var sysIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// Sink opens incidents and adds work notes to them. It is safe for concurrent use.
type Sink struct {
	cfg    Config
	base   string
	auth   string
	client *sinkhttp.Client
	now    func() time.Time
}

var (
	_ sinks.Sink           = (*Sink)(nil)
	_ sinks.ParamValidator = (*Sink)(nil)
	_ sinks.Finder         = (*Sink)(nil)
)

// New builds the sink from a resolved, configured Config. hc may be nil (sinkhttp's default
// client, which refuses redirects so that credentials never follow one).
func New(cfg *Config, hc *http.Client) (*Sink, error) {
	if cfg == nil {
		return nil, errors.New("servicenow: nil config")
	}
	c := *cfg
	if err := c.Resolve(); err != nil {
		return nil, err
	}
	if !c.Configured() {
		return nil, fmt.Errorf("%sINSTANCE_URL is not set", EnvPrefix)
	}
	s := &Sink{
		cfg:    c,
		base:   c.InstanceURL,
		client: &sinkhttp.Client{Sink: Name, HTTP: hc, Policy: c.Policy()},
		now:    time.Now,
	}
	if c.Token != "" {
		s.auth = "Bearer " + c.Token.Reveal()
		s.client.Secrets = []string{c.Token.Reveal()}
	} else {
		cred := base64.StdEncoding.EncodeToString([]byte(c.Username + ":" + c.Password.Reveal()))
		s.auth = "Basic " + cred
		s.client.Secrets = []string{c.Password.Reveal(), cred}
	}
	return s, nil
}

// Name implements sinks.Sink.
func (s *Sink) Name() string { return Name }

// Kind implements sinks.Sink.
func (s *Sink) Kind() sinks.Kind { return sinks.KindTicket }

// options are one action's settings: the configuration overridden by the step's params.
// Empty urgency and impact follow the severity.
type options struct {
	category, assignmentGroup, callerID, urgency, impact string
}

// ValidateParams implements sinks.ParamValidator: assignment_group, category, urgency and
// impact ("1" to "3"); any other key is an error.
func (s *Sink) ValidateParams(params map[string]string) error {
	_, err := s.options(params)
	return err
}

func (s *Sink) options(params map[string]string) (options, error) {
	o := options{category: s.cfg.Category, assignmentGroup: s.cfg.AssignmentGroup, callerID: s.cfg.CallerID}
	var errs []error
	bad := func(key string, err error) { errs = append(errs, fmt.Errorf("servicenow: param %q: %w", key, err)) }
	for _, k := range slices.Sorted(maps.Keys(params)) {
		v := params[k]
		switch k {
		case ParamAssignmentGroup:
			if err := checkValue(v, maxReference); err != nil {
				bad(k, err)
			}
			o.assignmentGroup = v
		case ParamCategory:
			if err := checkValue(v, maxChoice); err != nil {
				bad(k, err)
			}
			o.category = v
		case ParamUrgency, ParamImpact:
			if v != "1" && v != "2" && v != "3" {
				bad(k, fmt.Errorf("%q is not 1 (high), 2 (medium) or 3 (low)", v))
			}
			if k == ParamUrgency {
				o.urgency = v
			} else {
				o.impact = v
			}
		default:
			bad(k, errors.New("unknown (want assignment_group, category, urgency or impact)"))
		}
	}
	return o, errors.Join(errs...)
}

// Do implements sinks.Sink: a work note on a.Prior when set, else (or when the instance says
// that incident no longer exists) a new incident. The action must have a Key: the
// correlation_id, and so Find, derives from it.
func (s *Sink) Do(ctx context.Context, a *sinks.Action) (sinks.Result, error) {
	return sinkticket.Do(ctx, a, sinkticket.Flow[options]{
		Sink:     Name,
		Options:  s.options,
		IsRef:    sysIDRE.MatchString,
		RefIs:    "a sys_id",
		Create:   s.create,
		Comment:  s.note,
		GoneNoun: "incident",
	})
}

func (s *Sink) create(ctx context.Context, a *sinks.Action, o options) (sinks.Result, error) {
	const op = "create incident"
	body, err := json.Marshal(buildIncident(a, o))
	if err != nil {
		return sinks.Result{}, fmt.Errorf("servicenow: %s: %w", op, err)
	}
	resp, err := s.client.Do(ctx, s.request(http.MethodPost, IncidentPath, fieldsQuery, body))
	if err != nil {
		return sinks.Result{}, fmt.Errorf("%s: %w", op, err)
	}
	sysID, number, err := decodeResult(resp.Body)
	if err != nil {
		return sinks.Result{}, fmt.Errorf("servicenow: %s: HTTP %d: %w", op, resp.Status, err)
	}
	if number == "" {
		number = sysID
	}
	return sinks.Result{Ref: sysID, Detail: "created " + number}, nil
}

// note adds a work note to a.Prior; the Detail it returns names the incident's number when the
// answer has it.
func (s *Sink) note(ctx context.Context, a *sinks.Action) (string, error) {
	op := "add work note to " + a.Prior
	body, err := json.Marshal(buildWorkNote(a, a.SeenAt(s.now())))
	if err != nil {
		return "", fmt.Errorf("servicenow: %s: %w", op, err)
	}
	resp, err := s.client.Do(ctx, s.request(http.MethodPatch, IncidentPath+"/"+a.Prior, fieldsQuery, body))
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	// The note is recorded once the instance answers 2xx; the body only adds the number.
	detail := "commented on " + a.Prior
	if _, number, _ := decodeResult(resp.Body); number != "" {
		detail += " (" + number + ")"
	}
	return detail, nil
}

// Find implements sinks.Finder: the sys_id of the incident an earlier Do with a.Key opened (the
// oldest, should there be several), found by its correlation_id.
func (s *Sink) Find(ctx context.Context, a *sinks.Action) (string, bool, error) {
	if a == nil || a.Key == "" {
		return "", false, errors.New("servicenow: find: action has no Key")
	}
	const op = "query incidents by correlation_id"
	resp, err := s.client.Do(ctx, s.request(http.MethodGet, IncidentPath, findQuery(correlationID(a.Key)), nil))
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", op, err)
	}
	sysID, found, err := decodeList(resp.Body)
	if err != nil {
		return "", false, fmt.Errorf("servicenow: %s: HTTP %d: %w", op, resp.Status, err)
	}
	return sysID, found, nil
}

// request builds one attempt's request; a body (nil for none) is re-read on every attempt.
func (s *Sink) request(method, path, query string, body []byte) func(context.Context) (*http.Request, error) {
	u := s.base + path + "?" + query
	return func(ctx context.Context) (*http.Request, error) {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, u, rd)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", s.auth)
		req.Header.Set("Accept", "application/json")
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("User-Agent", userAgent)
		return req, nil
	}
}

var numberRE = regexp.MustCompile(`^[A-Za-z]{2,8}[0-9]{4,16}$`)

// decodeResult reads {"result":{"sys_id","number"}}, the Table API's answer to POST and PATCH.
// The sys_id must be one; a number that does not look like one (INC0010001) is dropped.
func decodeResult(body []byte) (sysID, number string, err error) {
	var r struct {
		Result *struct {
			SysID  string `json:"sys_id"`
			Number string `json:"number"`
		} `json:"result"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return "", "", fmt.Errorf("unreadable response: %w", err)
	}
	if r.Result == nil || !sysIDRE.MatchString(r.Result.SysID) {
		return "", "", errors.New("response has no result.sys_id")
	}
	if numberRE.MatchString(r.Result.Number) {
		number = r.Result.Number
	}
	return r.Result.SysID, number, nil
}

// decodeList reads the first record of {"result":[{"sys_id","number"},...]}, the Table API's
// answer to a GET on a table. An empty result is "not found"; an answer without a result array,
// or whose first record has no sys_id, is an error.
func decodeList(body []byte) (sysID string, found bool, err error) {
	var r struct {
		Result *[]struct {
			SysID string `json:"sys_id"`
		} `json:"result"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return "", false, fmt.Errorf("unreadable response: %w", err)
	}
	switch {
	case r.Result == nil:
		return "", false, errors.New("response has no result array")
	case len(*r.Result) == 0:
		return "", false, nil
	case !sysIDRE.MatchString((*r.Result)[0].SysID):
		return "", false, errors.New("response has a record without sys_id")
	}
	return (*r.Result)[0].SysID, true, nil
}
