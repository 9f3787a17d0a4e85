// Package jira is the Jira Cloud ticket sink, following the Jira Cloud platform REST API v3:
//
//   - POST /rest/api/3/issue creates an issue (201 {"id","key","self"}); Result.Ref is the key.
//     The issue carries the label "tp-" + 16 hex digits of SHA-256(Action.Key), which is how
//     Find recognises it.
//   - POST /rest/api/3/issue/{issueIdOrKey}/comment adds a comment (201) when the action carries
//     the Prior key of an issue this sink opened for the same target within the playbook's
//     window. Jira answers 404 for an issue that was deleted (or that the account may no longer
//     see); the sink then opens a new issue and returns its key.
//   - POST /rest/api/3/search/jql with {"jql": "labels = \"tp-...\" ORDER BY created ASC",
//     "fields": ["key"], "maxResults": 1} (200 {"issues": [{"id","key",...}], "nextPageToken",
//     "isLast"}) is Find: the issue an earlier Do with the same Action.Key opened, if any. (The
//     older GET/POST /rest/api/3/search is removed from Jira Cloud.)
//
// Requests use Basic auth (account email and API token), Accept and Content-Type
// application/json, and rich text in Atlassian Document Format (ADF, version 1). Errors are Jira's {"errorMessages":[...],"errors":{...}}; sinkhttp retries 429
// (honouring Retry-After) and 5xx within the retry budget, and fails at once on other statuses.
//
// Jira has no idempotency key for issue creation: a create whose answer is lost (a timeout or
// a 5xx after Jira committed) is retried and may leave a second issue. Find guards the repeat
// after a crash, with one limit: Jira's JQL search is eventually consistent, so an issue
// created moments before may not be found yet. A comment leaves no trace Find can see; a
// repeated comment action comments again.
package jira

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
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
	"github.com/threatpipe/threatpipe/sinks/sinkticket"
)

// Name is the sink's stable identifier.
const Name = "jira"

// Endpoint paths.
const (
	IssuePath   = "/rest/api/3/issue"
	SearchPath  = "/rest/api/3/search/jql"
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
		cfg:  c,
		base: c.BaseURL,
		auth: "Basic " + cred,
		client: &sinkhttp.Client{Sink: Name, HTTP: hc, Policy: c.Policy(),
			Secrets: []string{c.APIToken.Reveal(), cred}},
		now: time.Now,
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
// no longer exists) a new issue. The action must have a Key: the issue's label, and so Find,
// derives from it.
func (s *Sink) Do(ctx context.Context, a *sinks.Action) (sinks.Result, error) {
	return sinkticket.Do(ctx, a, sinkticket.Flow[options]{
		Sink:    Name,
		Options: s.options,
		IsRef:   func(ref string) bool { return issueKeyRE.MatchString(ref) || issueIDRE.MatchString(ref) },
		RefIs:   "an issue key",
		Create:  s.create,
		Comment: s.comment,
	})
}

func (s *Sink) create(ctx context.Context, a *sinks.Action, o options) (sinks.Result, error) {
	op := "create issue in project " + o.project
	body, err := json.Marshal(buildCreate(a, o))
	if err != nil {
		return sinks.Result{}, fmt.Errorf("jira: %s: %w", op, err)
	}
	resp, err := s.client.Do(ctx, s.request(http.MethodPost, IssuePath, body))
	if err != nil {
		return sinks.Result{}, fmt.Errorf("%s: %w", op, err)
	}
	ref, err := decodeCreated(resp.Body)
	if err != nil {
		return sinks.Result{}, fmt.Errorf("jira: %s: HTTP %d: %w", op, resp.Status, err)
	}
	return sinks.Result{Ref: ref, Detail: "created " + ref}, nil
}

// comment adds a comment to the issue a.Prior.
func (s *Sink) comment(ctx context.Context, a *sinks.Action) (string, error) {
	body, err := json.Marshal(buildComment(a, a.SeenAt(s.now())))
	if err != nil {
		return "", fmt.Errorf("jira: comment on %s: %w", a.Prior, err)
	}
	path := IssuePath + "/" + url.PathEscape(a.Prior) + commentPath
	if _, err := s.client.Do(ctx, s.request(http.MethodPost, path, body)); err != nil {
		return "", fmt.Errorf("comment on %s: %w", a.Prior, err)
	}
	return "commented on " + a.Prior, nil
}

// Find implements sinks.Finder: the key of the issue an earlier Do with a.Key opened (the oldest,
// should there be several), found by its key label.
func (s *Sink) Find(ctx context.Context, a *sinks.Action) (string, bool, error) {
	if a == nil || a.Key == "" {
		return "", false, errors.New("jira: find: action has no Key")
	}
	const op = "search issues by key label"
	body, err := json.Marshal(buildSearch(keyLabel(a.Key)))
	if err != nil {
		return "", false, fmt.Errorf("jira: %s: %w", op, err)
	}
	resp, err := s.client.Do(ctx, s.request(http.MethodPost, SearchPath, body))
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", op, err)
	}
	ref, found, err := decodeSearch(resp.Body)
	if err != nil {
		return "", false, fmt.Errorf("jira: %s: HTTP %d: %w", op, resp.Status, err)
	}
	return ref, found, nil
}

// keyLabel is the label that ties an issue to the Action.Key that opened it: 64 bits of the
// key's SHA-256 keep it short, free of characters labels cannot hold, and unique in practice.
func keyLabel(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "tp-" + hex.EncodeToString(sum[:8])
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

// decodeSearch reads the first issue of a 200 answer to POST /rest/api/3/search/jql
// ({"issues":[{"id","key",...}],...}): its key, or its id when the key is missing, as
// decodeCreated does. An answer without an issues array is an error, not "not found".
func decodeSearch(body []byte) (ref string, found bool, err error) {
	var r struct {
		Issues *[]struct {
			ID  string `json:"id"`
			Key string `json:"key"`
		} `json:"issues"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return "", false, fmt.Errorf("unreadable search response: %w", err)
	}
	if r.Issues == nil {
		return "", false, errors.New("search response has no issues array")
	}
	if len(*r.Issues) == 0 {
		return "", false, nil
	}
	switch is := (*r.Issues)[0]; {
	case issueKeyRE.MatchString(is.Key):
		return is.Key, true, nil
	case issueIDRE.MatchString(is.ID):
		return is.ID, true, nil
	}
	return "", false, errors.New("search response has an issue without key or id")
}
