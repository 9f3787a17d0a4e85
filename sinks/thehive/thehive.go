// Package thehive is the TheHive 5 alert sink, following TheHive's v1 API (the one thehive4py
// 2.x drives):
//
//   - POST /api/v1/alert creates an alert (201, the alert object); Result.Ref is its _id
//     ("~123456"). The alert's type and source are "threatpipe" and its sourceRef is derived
//     from Action.Key, so one (action, target, window) maps to one alert.
//   - POST /api/v1/alert/{id}/comment with {"message": ...} (201) records a repeat when the
//     action carries the Prior _id of an alert this sink opened for the same target within the
//     playbook's window. TheHive answers 404 (NotFoundError) for a deleted alert; the sink then
//     opens a new alert.
//
// TheHive refuses a second alert with the same type, source and sourceRef in an organisation
// (a CreateError "... already exist in organisation ..."): that is a create repeated after its
// answer was lost. The sink then looks the alert up with POST /api/v1/query (listAlert
// filtered on type, source and sourceRef) and returns it, so Do stays idempotent for one
// Action.Key; if the lookup finds nothing, Do fails with an error saying so. Find is the same
// lookup. A comment leaves no trace Find can see; a repeated comment action comments again.
//
// Requests carry Authorization: Bearer <API key>, X-Organisation when configured, and Accept
// and Content-Type application/json. Errors are {"type": "AuthenticationError", "message":
// ...} and the like; sinkhttp retries 429 (honouring Retry-After) and 5xx within the retry
// budget and fails at once on other statuses.
package thehive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
	"github.com/threatpipe/threatpipe/sinks/sinktext"
	"github.com/threatpipe/threatpipe/sinks/sinkticket"
)

// Name is the sink's stable identifier.
const Name = "thehive"

// Endpoint paths.
const (
	AlertPath = "/api/v1/alert"
	QueryPath = "/api/v1/query"
)

// Param keys a playbook step may set.
const (
	ParamTLP  = "tlp"
	ParamPAP  = "pap"
	ParamTags = "tags"
)

const userAgent = "threatpipe"

// queryName labels the lookup in TheHive's logs (the query endpoint's optional name).
var queryName = url.Values{"name": {"threatpipe-alert-by-source-ref"}}.Encode()

// alertIDRE matches TheHive alert ids: "~" and digits in TheHive 5, word characters before.
var alertIDRE = regexp.MustCompile(`^~?[A-Za-z0-9_-]{1,128}$`)

// Sink opens and comments on TheHive alerts. It is safe for concurrent use.
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
// client, which refuses redirects so that the key never follows one).
func New(cfg *Config, hc *http.Client) (*Sink, error) {
	if cfg == nil {
		return nil, errors.New("thehive: nil config")
	}
	c := *cfg
	if err := c.Resolve(); err != nil {
		return nil, err
	}
	if !c.Configured() {
		return nil, fmt.Errorf("%sBASE_URL is not set", EnvPrefix)
	}
	return &Sink{
		cfg:    c,
		base:   c.BaseURL,
		auth:   "Bearer " + c.APIKey.Reveal(),
		client: &sinkhttp.Client{Sink: Name, HTTP: hc, Policy: c.Policy(), Secrets: []string{c.APIKey.Reveal()}},
		now:    time.Now,
	}, nil
}

// Name implements sinks.Sink.
func (s *Sink) Name() string { return Name }

// Kind implements sinks.Sink.
func (s *Sink) Kind() sinks.Kind { return sinks.KindTicket }

// options are one action's settings: the configuration overridden by the step's params.
type options struct {
	tlp, pap int
	tags     []string
}

// ValidateParams implements sinks.ParamValidator: tlp (0-4), pap (0-3) and tags
// (comma-separated); any other key is an error.
func (s *Sink) ValidateParams(params map[string]string) error {
	_, err := s.options(params)
	return err
}

func (s *Sink) options(params map[string]string) (options, error) {
	o := options{tlp: s.cfg.TLP, pap: s.cfg.PAP}
	var errs []error
	bad := func(key string, err error) { errs = append(errs, fmt.Errorf("thehive: param %q: %w", key, err)) }
	level := func(key, v string, maxLevel int) int {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxLevel {
			bad(key, fmt.Errorf("%q is not 0 to %d", v, maxLevel))
		}
		return n
	}
	for _, k := range slices.Sorted(maps.Keys(params)) {
		v := params[k]
		switch k {
		case ParamTLP:
			o.tlp = level(k, v, maxTLP)
		case ParamPAP:
			o.pap = level(k, v, maxPAP)
		case ParamTags:
			for t := range strings.SplitSeq(v, ",") {
				t = strings.TrimSpace(t)
				switch {
				case t == "":
					bad(k, errors.New("has an empty tag"))
				case sinktext.OneLine(t, maxTag) != t:
					bad(k, fmt.Errorf("tag %q has control characters, runs of spaces or more than %d characters", t, maxTag))
				default:
					o.tags = append(o.tags, t)
				}
			}
		default:
			bad(k, errors.New("unknown (want tlp, pap or tags)"))
		}
	}
	return o, errors.Join(errs...)
}

// Do implements sinks.Sink: a comment on a.Prior when set, else (or when TheHive says that
// alert no longer exists) a new alert. The action must have a Key: the sourceRef, and so
// TheHive's deduplication, derives from it.
func (s *Sink) Do(ctx context.Context, a *sinks.Action) (sinks.Result, error) {
	return sinkticket.Do(ctx, a, sinkticket.Flow[options]{
		Sink:    Name,
		Options: s.options,
		IsRef:   alertIDRE.MatchString,
		RefIs:   "an alert id",
		Create:  s.create,
		Comment: s.comment,
	})
}

func (s *Sink) create(ctx context.Context, a *sinks.Action, o options) (sinks.Result, error) {
	const op = "create alert"
	al := buildAlert(a, o)
	body, err := json.Marshal(al)
	if err != nil {
		return sinks.Result{}, fmt.Errorf("thehive: %s: %w", op, err)
	}
	resp, err := s.client.Do(ctx, s.request(http.MethodPost, AlertPath, "", body))
	if err != nil {
		if !isDuplicate(err) {
			return sinks.Result{}, fmt.Errorf("%s: %w", op, err)
		}
		id, found, ferr := s.findBySourceRef(ctx, al.SourceRef)
		if ferr == nil && !found {
			ferr = errors.New("no such alert is visible to this API key")
		}
		if ferr != nil {
			return sinks.Result{}, fmt.Errorf("thehive: %s: TheHive already has an alert with sourceRef %s but looking it up failed: %w",
				op, al.SourceRef, ferr)
		}
		return sinks.Result{Ref: id, Detail: "found existing alert " + id + " (sourceRef " + al.SourceRef + ")"}, nil
	}
	id, err := decodeAlert(resp.Body)
	if err != nil {
		return sinks.Result{}, fmt.Errorf("thehive: %s: HTTP %d: %w", op, resp.Status, err)
	}
	return sinks.Result{Ref: id, Detail: "created alert " + id}, nil
}

// comment adds a comment to the alert a.Prior.
func (s *Sink) comment(ctx context.Context, a *sinks.Action) (string, error) {
	body, err := json.Marshal(buildComment(a, a.SeenAt(s.now())))
	if err != nil {
		return "", fmt.Errorf("thehive: comment on %s: %w", a.Prior, err)
	}
	path := AlertPath + "/" + url.PathEscape(a.Prior) + "/comment"
	if _, err := s.client.Do(ctx, s.request(http.MethodPost, path, "", body)); err != nil {
		return "", fmt.Errorf("comment on alert %s: %w", a.Prior, err)
	}
	return "commented on " + a.Prior, nil
}

// Find implements sinks.Finder: the id of the alert an earlier Do with a.Key opened, found by
// its sourceRef. An alert in an organisation the API key cannot see looks absent.
func (s *Sink) Find(ctx context.Context, a *sinks.Action) (string, bool, error) {
	if a == nil || a.Key == "" {
		return "", false, errors.New("thehive: find: action has no Key")
	}
	id, found, err := s.findBySourceRef(ctx, sourceRef(a.Key))
	if err != nil {
		return "", false, fmt.Errorf("thehive: find alert: %w", err)
	}
	return id, found, nil
}

// findBySourceRef returns the id of this sink's alert with sourceRef ref, through the query
// API: listAlert, filtered on type, source and sourceRef, first page of one.
func (s *Sink) findBySourceRef(ctx context.Context, ref string) (string, bool, error) {
	body, err := json.Marshal(buildLookup(ref))
	if err != nil {
		return "", false, err
	}
	resp, err := s.client.Do(ctx, s.request(http.MethodPost, QueryPath, queryName, body))
	if err != nil {
		return "", false, fmt.Errorf("query alerts: %w", err)
	}
	ids, err := decodeAlertList(resp.Body)
	if err != nil || len(ids) == 0 {
		return "", false, err
	}
	return ids[0], true, nil
}

// request builds one attempt's request; the body is re-read on every attempt.
func (s *Sink) request(method, path, query string, body []byte) func(context.Context) (*http.Request, error) {
	u := s.base + path
	if query != "" {
		u += "?" + query
	}
	return func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", s.auth)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", userAgent)
		if s.cfg.Organisation != "" {
			req.Header.Set("X-Organisation", s.cfg.Organisation)
		}
		return req, nil
	}
}

// isDuplicate reports TheHive's refusal of a second alert with the same type, source and
// sourceRef. TheHive 4 and 5 answer it as a CreateError; older releases sent it as a 500.
func isDuplicate(err error) bool {
	var se *sinkhttp.StatusError
	if !errors.As(err, &se) || se.Status < 400 {
		return false
	}
	typ, msg, ok := decodeError([]byte(se.Body))
	if !ok {
		// sinkhttp may have cut a long body: fall back to the raw text.
		typ, msg = se.Body, se.Body
	}
	return strings.Contains(typ, "CreateError") && strings.Contains(msg, "already exist")
}
