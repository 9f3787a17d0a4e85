// Package jira is the Jira Cloud ticket sink, following the Jira Cloud platform REST API v3:
//
//   - POST /rest/api/3/issue creates an issue (201 {"id","key","self"}); Result.Ref is the key.
//   - POST /rest/api/3/issue/{issueIdOrKey}/comment adds a comment (201) when the action carries
//     the Prior key of an issue this sink opened for the same target within the playbook's
//     window. Jira answers 404 for an issue that was deleted (or that the account may no longer
//     see); the sink then opens a new issue and returns its key.
//
// Requests use Basic auth (account email and API token), Accept and Content-Type
// application/json, and rich text in Atlassian Document Format (ADF, version 1). Errors are
// Jira's {"errorMessages":[...],"errors":{...}}; sinkhttp retries 429 (honouring Retry-After)
// and 5xx within the retry budget, and fails at once on other statuses.
//
// Jira has no idempotency key for issue creation: a create whose answer is lost (a timeout or
// a 5xx after Jira committed) is retried and may leave a second issue.
package jira

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

// Name is the sink's stable identifier.
const Name = "jira"

// Endpoint paths.
const (
	IssuePath   = "/rest/api/3/issue"
	commentPath = "/comment"
)

// Param keys a playbook step may set.
const (
	ParamProject   = "project"
	ParamIssueType = "issue_type"
	ParamPriority  = "priority"
	ParamLabels    = "labels"
)

const userAgent = "threatpipe"

var (
	issueKeyRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]*-[1-9][0-9]{0,17}$`)
	issueIDRE  = regexp.MustCompile(`^[1-9][0-9]{0,17}$`)
)

// Sink opens and comments on Jira issues. It is safe for concurrent use.
type Sink struct {
	cfg     Config
	base    string
	auth    string
	secrets []string
	client  *sinkhttp.Client
	now     func() time.Time
}

var (
	_ sinks.Sink           = (*Sink)(nil)
	_ sinks.ParamValidator = (*Sink)(nil)
)

// New builds the sink from a resolved, configured Config. hc may be nil (sinkhttp's default
// client, which refuses redirects so that credentials never follow one).
func New(cfg *Config, hc *http.Client) (*Sink, error) {
	if cfg == nil {
		return nil, errors.New("jira: nil config")
	}
	c := *cfg
	if err := c.Resolve(); err != nil {
		return nil, err
	}
	if !c.Configured() {
		return nil, fmt.Errorf("%sBASE_URL is not set", EnvPrefix)
	}
	cred := base64.StdEncoding.EncodeToString([]byte(c.Email + ":" + c.APIToken.Reveal()))
	return &Sink{
		cfg:     c,
		base:    c.BaseURL,
		auth:    "Basic " + cred,
		secrets: []string{c.APIToken.Reveal(), cred},
		client:  &sinkhttp.Client{Sink: Name, HTTP: hc, Policy: c.policy()},
		now:     time.Now,
	}, nil
}

// Name implements sinks.Sink.
func (s *Sink) Name() string { return Name }

// Kind implements sinks.Sink.
func (s *Sink) Kind() sinks.Kind { return sinks.KindTicket }

// options are one action's settings: the configuration overridden by the step's params.
type options struct {
	project, issueType, priority string
	labels                       []string
}

// ValidateParams implements sinks.ParamValidator: project, issue_type, priority and labels
// (comma-separated, no spaces inside a label); any other key is an error.
func (s *Sink) ValidateParams(params map[string]string) error {
	_, err := s.options(params)
	return err
}

func (s *Sink) options(params map[string]string) (options, error) {
	o := options{project: s.cfg.ProjectKey, issueType: s.cfg.IssueType, priority: s.cfg.Priority}
	var errs []error
	bad := func(key string, err error) { errs = append(errs, fmt.Errorf("jira: param %q: %w", key, err)) }
	for _, k := range slices.Sorted(maps.Keys(params)) {
		v := params[k]
		switch k {
		case ParamProject:
			if err := checkProjectKey(v); err != nil {
				bad(k, err)
			}
			o.project = v
		case ParamIssueType:
			if err := checkName(v); err != nil {
				bad(k, err)
			}
			o.issueType = v
		case ParamPriority:
			if err := checkName(v); err != nil {
				bad(k, err)
			}
			o.priority = v
		case ParamLabels:
			for l := range strings.SplitSeq(v, ",") {
				l = strings.TrimSpace(l)
				switch {
				case l == "":
					bad(k, errors.New("has an empty label"))
				case sanitizeLabel(l) != l:
					bad(k, fmt.Errorf("label %q has spaces, control characters or more than %d characters", l, maxLabel))
				default:
					o.labels = append(o.labels, l)
				}
			}
		default:
			bad(k, errors.New("unknown (want project, issue_type, priority or labels)"))
		}
	}
	return o, errors.Join(errs...)
}

// Do implements sinks.Sink: a comment on a.Prior when set, else (or when Jira says that issue
// no longer exists) a new issue.
func (s *Sink) Do(ctx context.Context, a *sinks.Action) (sinks.Result, error) {
	if a == nil {
		return sinks.Result{}, errors.New("jira: nil action")
	}
	o, err := s.options(a.Params)
	if err != nil {
		return sinks.Result{}, err
	}
	if a.Prior == "" {
		return s.create(ctx, a, o)
	}
	if !issueKeyRE.MatchString(a.Prior) && !issueIDRE.MatchString(a.Prior) {
		return sinks.Result{}, fmt.Errorf("jira: prior reference %q is not an issue key", a.Prior)
	}
	err = s.comment(ctx, a)
	if err == nil {
		return sinks.Result{Ref: a.Prior, Detail: "commented on " + a.Prior}, nil
	}
	if !isStatus(err, http.StatusNotFound) {
		return sinks.Result{}, err
	}
	res, err := s.create(ctx, a, o)
	if err != nil {
		return sinks.Result{}, err
	}
	res.Detail += " (" + a.Prior + " no longer exists)"
	return res, nil
}

func (s *Sink) create(ctx context.Context, a *sinks.Action, o options) (sinks.Result, error) {
	op := "create issue in project " + o.project
	body, err := json.Marshal(buildCreate(a, o))
	if err != nil {
		return sinks.Result{}, fmt.Errorf("jira: %s: %w", op, err)
	}
	resp, err := s.client.Do(ctx, s.request(http.MethodPost, IssuePath, body))
	if err != nil {
		return sinks.Result{}, s.fail(op, err)
	}
	ref, err := decodeCreated(resp.Body)
	if err != nil {
		return sinks.Result{}, fmt.Errorf("jira: %s: HTTP %d: %w", op, resp.Status, err)
	}
	return sinks.Result{Ref: ref, Detail: "created " + ref}, nil
}

func (s *Sink) comment(ctx context.Context, a *sinks.Action) error {
	body, err := json.Marshal(buildComment(a, seenAt(a, s.now)))
	if err != nil {
		return fmt.Errorf("jira: comment on %s: %w", a.Prior, err)
	}
	path := IssuePath + "/" + url.PathEscape(a.Prior) + commentPath
	if _, err := s.client.Do(ctx, s.request(http.MethodPost, path, body)); err != nil {
		return s.fail("comment on "+a.Prior, err)
	}
	return nil
}

// request builds one attempt's request; the body is re-read on every attempt.
func (s *Sink) request(method, path string, body []byte) func(context.Context) (*http.Request, error) {
	return func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, method, s.base+path, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", s.auth)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", userAgent)
		return req, nil
	}
}

// fail names the operation and cuts credentials out of an echoed response body.
func (s *Sink) fail(op string, err error) error {
	var se *sinkhttp.StatusError
	if errors.As(err, &se) {
		se.Body = redact(se.Body, s.secrets)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func isStatus(err error, status int) bool {
	var se *sinkhttp.StatusError
	return errors.As(err, &se) && se.Status == status
}

// seenAt is when the indicator was seen again: the event's observation time, else now.
func seenAt(a *sinks.Action, now func() time.Time) time.Time {
	if a.Event != nil {
		if !a.Event.ObservedAt.IsZero() {
			return a.Event.ObservedAt
		}
		if !a.Event.ProcessedAt.IsZero() {
			return a.Event.ProcessedAt
		}
	}
	return now()
}

// decodeCreated reads the issue reference from a 201 answer to POST /rest/api/3/issue: the key
// ("SOC-24"), or the numeric id when the key is missing (both work as issueIdOrKey).
func decodeCreated(body []byte) (string, error) {
	var r struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return "", fmt.Errorf("unreadable create response: %w", err)
	}
	switch {
	case issueKeyRE.MatchString(r.Key):
		return r.Key, nil
	case issueIDRE.MatchString(r.ID):
		return r.ID, nil
	}
	return "", errors.New("create response has no issue key or id")
}

// redact replaces each secret in s, including a secret's leading part that sinkhttp's
// truncation left at the end of s ("...").
func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) < 4 {
			continue
		}
		s = strings.ReplaceAll(s, sec, "[redacted]")
		body, cut := strings.CutSuffix(s, "...")
		if !cut {
			continue
		}
		for n := len(sec) - 1; n >= 4; n-- {
			if strings.HasSuffix(body, sec[:n]) {
				s = body[:len(body)-n] + "[redacted]..."
				break
			}
		}
	}
	return s
}
