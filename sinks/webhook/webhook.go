// Package webhook is the generic signed webhook sink: threatpipe's own documented JSON
// (Payload, schema_version 1), POSTed to any receiver, for alerts or as a firewall
// integration (THREATPIPE_SINK_WEBHOOK_KIND=block, where expired blocks are lifted by an
// "unblock" request).
//
// Every request is POST <URL> with Content-Type application/json, User-Agent threatpipe and:
//
//	X-Threatpipe-Timestamp:       Unix seconds at signing (fresh on every retry)
//	X-Threatpipe-Signature:       v1=hex(HMAC-SHA256(secret, timestamp + "." + body))
//	X-Threatpipe-Idempotency-Key: the action's key (plus ":unblock" for an unblock)
//
// in the style of Stripe's and Slack's signed requests. Receivers check them with Verify,
// which also rejects timestamps outside a tolerance, so that a captured request cannot be
// replayed later. Any 2xx is success; 408, 425, 429 (Retry-After honoured) and 5xx are
// retried; other statuses fail at once.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/neverblock"
	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

// Name is the sink's stable identifier.
const Name = "webhook"

// Sink delivers alerts (THREATPIPE_SINK_WEBHOOK_KIND=alert) to one receiver. It is safe for
// concurrent use.
type Sink struct {
	url    string
	secret []byte
	kind   sinks.Kind
	client *sinkhttp.Client
	now    func() time.Time
	// never is the never-block list a block is checked against (nil: the built-in ranges).
	never *neverblock.List
}

// BlockSink is the sink with THREATPIPE_SINK_WEBHOOK_KIND=block: it also lifts blocks. A
// separate type so that only a blocking webhook is an Undoer.
type BlockSink struct {
	*Sink
}

var (
	_ sinks.Sink           = (*Sink)(nil)
	_ sinks.ParamValidator = (*Sink)(nil)
	_ sinks.Sink           = (*BlockSink)(nil)
	_ sinks.Undoer         = (*BlockSink)(nil)
	_ sinks.ParamValidator = (*BlockSink)(nil)
)

// New builds the sink from a resolved configuration: a *Sink for kind alert, a *BlockSink for
// kind block, which refuses never-block addresses of the built-in ranges. hc may be nil
// (sinkhttp's default).
func New(cfg *Config, hc *http.Client) (sinks.Sink, error) { return build(cfg, hc, nil) }

// build is New with the operator's never-block list.
func build(cfg *Config, hc *http.Client, never *neverblock.List) (sinks.Sink, error) {
	if cfg.URL == "" {
		return nil, fmt.Errorf("%sURL is not set", EnvPrefix)
	}
	if err := sinkhttp.CheckURL(EnvPrefix+"URL", cfg.URL); err != nil {
		return nil, err
	}
	if err := checkSecret(cfg.Secret); err != nil {
		return nil, err
	}
	s := &Sink{
		url:    cfg.URL,
		secret: []byte(cfg.Secret.Reveal()),
		kind:   sinks.Kind(cfg.Kind),
		// The URL's path and query may hold a token: a proxy or 404 page may echo them.
		client: &sinkhttp.Client{Sink: Name, HTTP: hc, Policy: cfg.policy(), Secrets: sinkhttp.URLSecrets(cfg.URL)},
		now:    time.Now,
		never:  never,
	}
	switch s.kind {
	case sinks.KindAlert:
		return s, nil
	case sinks.KindBlock:
		return &BlockSink{s}, nil
	default:
		return nil, fmt.Errorf("%sKIND: %q is not one of alert, block", EnvPrefix, cfg.Kind)
	}
}

// Name implements sinks.Sink.
func (s *Sink) Name() string { return Name }

// Kind implements sinks.Sink: the configured kind.
func (s *Sink) Kind() sinks.Kind { return s.kind }

// Do implements sinks.Sink: it delivers an alert or a block, by the configured kind.
func (s *Sink) Do(ctx context.Context, a *sinks.Action) (sinks.Result, error) {
	if a == nil {
		return sinks.Result{}, fmt.Errorf("%s: nil action", Name)
	}
	if err := s.ValidateParams(a.Params); err != nil {
		return sinks.Result{}, err
	}
	action := ActionAlert
	if s.kind == sinks.KindBlock {
		action = ActionBlock
		// The receiver is a firewall: it never hears of a never-block address.
		if _, err := sinks.Blockable(s.never, Name, "block", a.Target); err != nil {
			return sinks.Result{}, err
		}
	}
	if err := s.send(ctx, BuildPayload(action, a), a.Key); err != nil {
		return sinks.Result{}, err
	}
	return sinks.Result{Detail: fmt.Sprintf("delivered %s of %s", action, a.Target)}, nil
}

// Undo implements sinks.Undoer: it asks the receiver to lift the block. ref is not used: the
// receiver identifies the block by its target and key.
func (s *BlockSink) Undo(ctx context.Context, a *sinks.Action, _ string) error {
	if a == nil {
		return fmt.Errorf("%s: nil action", Name)
	}
	key := ""
	if a.Key != "" {
		// Distinct from the block's own key, or a receiver that drops duplicates would drop it.
		key = a.Key + ":" + ActionUnblock
	}
	return s.send(ctx, BuildPayload(ActionUnblock, a), key)
}

func (s *Sink) send(ctx context.Context, p Payload, idempotencyKey string) error {
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("%s: encoding the payload: %w", Name, err)
	}
	_, err = s.client.Do(ctx, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
		if err != nil {
			// Not wrapped: the error quotes the URL, which may hold a token.
			return nil, errors.New("invalid receiver URL")
		}
		// Signed per attempt: a retry after a long Retry-After must still be fresh.
		ts := s.now().Unix()
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "threatpipe")
		req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
		req.Header.Set(HeaderSignature, Sign(s.secret, ts, body))
		if idempotencyKey != "" {
			req.Header.Set(HeaderIdempotencyKey, idempotencyKey)
		}
		return req, nil
	})
	return err
}

// ValidateParams implements sinks.ParamValidator: the webhook takes no params.
func (s *Sink) ValidateParams(params map[string]string) error {
	return sinks.NoParams(Name, params)
}
