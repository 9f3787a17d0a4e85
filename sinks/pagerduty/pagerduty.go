// Package pagerduty is the PagerDuty alert sink, on the Events API v2
// (developer.pagerduty.com/docs/events-api-v2, schema PagerDuty/api-schema
// reference/events-v2/openapiv3.json).
//
// Do sends POST https://events.pagerduty.com/v2/enqueue (Content-Type application/json) with
// {"routing_key", "event_action": "trigger", "dedup_key": "threatpipe:<address>", "payload":
// {"summary", "source", "severity", "timestamp", "component", "group", "class",
// "custom_details"}, "client", "links"}; the integration key travels in the body, there is no
// auth header. PagerDuty answers 202 {"status": "success", "message": "Event processed",
// "dedup_key": "..."}, and Result.Ref is that dedup_key. Undo sends "event_action": "resolve"
// with the same key. 400 {"status": "invalid event", "message": ..., "errors": [...]} is
// permanent; 429 and 5xx are retried, as the API's retry table asks.
//
// The dedup key is per indicator: while its alert is open, a repeat trigger updates it instead
// of paging again, which also makes a redelivered action harmless.
package pagerduty

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

// Name is the sink's stable identifier.
const Name = "pagerduty"

// ParamSeverity is the optional playbook-step param that overrides the PagerDuty severity
// (critical, error, warning or info) otherwise derived from the event's severity.
const ParamSeverity = "severity"

// Sink sends alert events to one PagerDuty integration. It is safe for concurrent use.
type Sink struct {
	key    string
	url    string
	client *sinkhttp.Client
	now    func() time.Time
}

var (
	_ sinks.Sink           = (*Sink)(nil)
	_ sinks.Undoer         = (*Sink)(nil)
	_ sinks.ParamValidator = (*Sink)(nil)
)

// New builds the sink from a resolved configuration. hc may be nil (sinkhttp's default).
func New(cfg *Config, hc *http.Client) (*Sink, error) {
	if cfg.RoutingKey == "" {
		return nil, fmt.Errorf("%sROUTING_KEY (or %sROUTING_KEY_FILE) is not set", EnvPrefix, EnvPrefix)
	}
	if err := checkRoutingKey(cfg.RoutingKey.Reveal()); err != nil {
		return nil, err
	}
	if err := sinkhttp.CheckBaseURL(EnvPrefix+"URL", cfg.URL); err != nil {
		return nil, err
	}
	return &Sink{
		key:    cfg.RoutingKey.Reveal(),
		url:    cfg.URL,
		client: &sinkhttp.Client{Sink: Name, HTTP: hc, Policy: cfg.policy(), Secrets: []string{cfg.RoutingKey.Reveal()}},
		now:    time.Now,
	}, nil
}

// Name implements sinks.Sink.
func (s *Sink) Name() string { return Name }

// Kind implements sinks.Sink.
func (s *Sink) Kind() sinks.Kind { return sinks.KindAlert }

// Do implements sinks.Sink: it triggers (or updates) the indicator's alert.
func (s *Sink) Do(ctx context.Context, a *sinks.Action) (sinks.Result, error) {
	if a == nil {
		return sinks.Result{}, fmt.Errorf("%s: nil action", Name)
	}
	if err := s.ValidateParams(a.Params); err != nil {
		return sinks.Result{}, err
	}
	dedup, err := dedupKey(a.Target)
	if err != nil {
		return sinks.Result{}, fmt.Errorf("%s: %w", Name, err)
	}
	sev := a.Params[ParamSeverity]
	if sev == "" {
		sev = severityOf(a.Severity)
	}
	ref, err := s.send(ctx, triggerEvent(s.key, dedup, sev, a, s.now()))
	if err != nil {
		return sinks.Result{}, err
	}
	if ref == "" {
		ref = dedup
	}
	return sinks.Result{Ref: ref, Detail: "triggered PagerDuty alert " + ref}, nil
}

// Undo implements sinks.Undoer: it resolves the alert ref names (the indicator's key when ref
// is empty). Resolving an alert that is already resolved is accepted by PagerDuty.
func (s *Sink) Undo(ctx context.Context, a *sinks.Action, ref string) error {
	if ref == "" {
		if a == nil {
			return fmt.Errorf("%s: nil action and no ref", Name)
		}
		var err error
		if ref, err = dedupKey(a.Target); err != nil {
			return fmt.Errorf("%s: %w", Name, err)
		}
	}
	if len(ref) > maxDedupKey {
		return fmt.Errorf("%s: dedup key of %d bytes exceeds %d", Name, len(ref), maxDedupKey)
	}
	_, err := s.send(ctx, resolveEvent(s.key, ref))
	return err
}

// send enqueues one event and returns the dedup key PagerDuty answered with.
func (s *Sink) send(ctx context.Context, ev pdEvent) (string, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return "", fmt.Errorf("%s: encoding the event: %w", Name, err)
	}
	resp, err := s.client.Do(ctx, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", "threatpipe")
		return req, nil
	})
	if err != nil {
		var se *sinkhttp.StatusError
		if errors.As(err, &se) {
			se.Body = describeError(se.Body) // the client has cut the key out
		}
		return "", err
	}
	ref, err := decodeAccepted(resp.Body)
	if err != nil {
		return "", fmt.Errorf("%s: HTTP %d: %s", Name, resp.Status, sinkhttp.Redact(err.Error(), s.key))
	}
	return ref, nil
}

// ValidateParams implements sinks.ParamValidator: the only param is severity.
func (s *Sink) ValidateParams(params map[string]string) error {
	var errs []error
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k != ParamSeverity {
			errs = append(errs, fmt.Errorf("%s: unknown param %q (the only one is %s)", Name, k, ParamSeverity))
		}
	}
	if v, ok := params[ParamSeverity]; ok {
		switch v {
		case "critical", "error", "warning", "info":
		default:
			errs = append(errs, fmt.Errorf("%s: param %s %q is not one of critical, error, warning, info", Name, ParamSeverity, v))
		}
	}
	return errors.Join(errs...)
}
