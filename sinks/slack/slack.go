// Package slack is the Slack alert sink: one Block Kit message per action, posted to a Slack
// incoming webhook (api.slack.com/messaging/webhooks).
//
// The request is POST <webhook URL> with Content-Type application/json and a body of a
// top-level "text" (the notification fallback) plus "blocks": a header with the title, a
// section of fields (score and severity, indicator, ISP, country, tags, playbook), a section
// listing the reasons, and, when the action has a ViewURL, an actions block with a link
// button. Texts are cut to the Block Kit limits. Slack answers 200 "ok"; failures are plain
// text: 400 invalid_payload / invalid_blocks / no_text, 403 action_prohibited / invalid_token,
// 404 channel_not_found / no_service, 410 channel_is_archived (permanent, per Slack's
// 2016-05-17 incoming-webhook error changelog) and 429 with Retry-After or 5xx (retried).
//
// Incoming webhooks have no deduplication and return no message id: a redelivered action
// posts again, and Result.Ref is empty.
package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
	"github.com/threatpipe/threatpipe/sinks/sinktext"
)

// Name is the sink's stable identifier.
const Name = "slack"

// ParamChannelNote is the optional playbook-step param: a line shown above the message and in
// the notification, such as "@here" or "<!subteam^S0123ABCD> please triage". @here, @channel
// and @everyone are turned into the mentions Slack notifies for.
const ParamChannelNote = "channel_note"

// maxNote bounds a channel note, in characters.
const maxNote = 150

// Sink posts alerts to one Slack incoming webhook. It is safe for concurrent use.
type Sink struct {
	url    string
	client *sinkhttp.Client
}

var (
	_ sinks.Sink           = (*Sink)(nil)
	_ sinks.ParamValidator = (*Sink)(nil)
)

// New builds the sink from a resolved configuration. hc may be nil (sinkhttp's default).
func New(cfg *Config, hc *http.Client) (*Sink, error) {
	if cfg.WebhookURL == "" {
		return nil, fmt.Errorf("%sWEBHOOK_URL (or %sWEBHOOK_URL_FILE) is not set", EnvPrefix, EnvPrefix)
	}
	if err := sinkhttp.CheckURL(EnvPrefix+"WEBHOOK_URL", cfg.WebhookURL.Reveal()); err != nil {
		return nil, err
	}
	// The URL's path is the webhook's secret: a proxy or 404 page may echo it.
	secrets := sinkhttp.URLSecrets(cfg.WebhookURL.Reveal())
	return &Sink{
		url:    cfg.WebhookURL.Reveal(),
		client: &sinkhttp.Client{Sink: Name, HTTP: hc, Policy: cfg.policy(), Secrets: secrets},
	}, nil
}

// Name implements sinks.Sink.
func (s *Sink) Name() string { return Name }

// Kind implements sinks.Sink.
func (s *Sink) Kind() sinks.Kind { return sinks.KindAlert }

// Do implements sinks.Sink: it posts one message.
func (s *Sink) Do(ctx context.Context, a *sinks.Action) (sinks.Result, error) {
	if a == nil {
		return sinks.Result{}, fmt.Errorf("%s: nil action", Name)
	}
	if err := s.ValidateParams(a.Params); err != nil {
		return sinks.Result{}, err
	}
	body, err := json.Marshal(buildMessage(a))
	if err != nil {
		return sinks.Result{}, fmt.Errorf("%s: encoding the message: %w", Name, err)
	}
	resp, err := s.client.Do(ctx, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
		if err != nil {
			// Not wrapped: the error quotes the URL, which is the credential.
			return nil, errors.New("invalid webhook URL")
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "threatpipe")
		return req, nil
	})
	if err != nil {
		return sinks.Result{}, err
	}
	if err := checkAnswer(resp.Body, s.client.Secrets...); err != nil {
		return sinks.Result{}, fmt.Errorf("%s: HTTP %d: %w", Name, resp.Status, err)
	}
	return sinks.Result{Detail: "posted to Slack"}, nil
}

// checkAnswer accepts Slack's "ok". Anything else from a 2xx means the URL is probably not an
// incoming webhook (a proxy page, a workflow trigger), which must not pass for a delivered alert.
// The secrets (the URL's credential parts) are cut out of the answer the error quotes.
func checkAnswer(body []byte, secrets ...string) error {
	got := strings.TrimSpace(string(body))
	if got == "ok" {
		return nil
	}
	if got == "" {
		return errors.New(`empty answer, want "ok": is the URL a Slack incoming webhook?`)
	}
	return fmt.Errorf(`unexpected answer %q, want "ok": is the URL a Slack incoming webhook?`, fit(sinktext.SpaceControls(sinkhttp.Redact(got, secrets...)), 100, false))
}

// ValidateParams implements sinks.ParamValidator. The only param is channel_note.
func (s *Sink) ValidateParams(params map[string]string) error {
	var errs []error
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k != ParamChannelNote {
			errs = append(errs, fmt.Errorf("%s: unknown param %q (the only one is %s)", Name, k, ParamChannelNote))
		}
	}
	if note, ok := params[ParamChannelNote]; ok {
		switch {
		case !utf8.ValidString(note):
			errs = append(errs, fmt.Errorf("%s: param %s is not valid UTF-8", Name, ParamChannelNote))
		case utf8.RuneCountInString(note) > maxNote:
			errs = append(errs, fmt.Errorf("%s: param %s is longer than %d characters", Name, ParamChannelNote, maxNote))
		case strings.IndexFunc(note, unicode.IsControl) >= 0:
			errs = append(errs, fmt.Errorf("%s: param %s must be one line without control characters", Name, ParamChannelNote))
		}
	}
	return errors.Join(errs...)
}
