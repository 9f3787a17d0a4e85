// Package kafkatopic is the alert sink that publishes alerts to a Kafka topic (soc.alerts by
// default) for a SIEM, a SOAR or a chat bridge to consume. Records are keyed by the indicator,
// so one indicator's alerts stay in order, and carry the webhook sink's documented payload
// (docs/playbooks.md). The broker acknowledges each record (acks=all) before Do returns.
package kafkatopic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/webhook"
)

// Name is the sink's name in playbooks.
const Name = "kafka"

// EnvPrefix is the prefix of the sink's variables.
const EnvPrefix = config.Prefix + "SINK_KAFKA_"

// Config is the sink's configuration.
type Config struct {
	Enabled bool   `env:"ENABLED" envDefault:"true" desc:"Publish alerts to a Kafka topic (uses the pipeline's brokers)."`
	Topic   string `env:"TOPIC" envDefault:"soc.alerts" desc:"Topic the alerts are published to."`
}

var topicName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// Resolve validates the configuration.
func (c *Config) Resolve() error {
	if c.Enabled && !topicName.MatchString(c.Topic) {
		return fmt.Errorf("%sTOPIC: %q is not a valid topic name", EnvPrefix, c.Topic)
	}
	return nil
}

// Configured reports whether the sink is on.
func (c *Config) Configured() bool { return c.Enabled }

// Registration adds the sink to the registry (sinks/all).
var Registration = sinks.Register[Config](Name, sinks.KindAlert, func(cfg *Config, deps sinks.Deps) (sinks.Sink, error) {
	if deps.Produce == nil {
		return nil, errors.New("no Kafka producer available")
	}
	return &Sink{topic: cfg.Topic, produce: deps.Produce}, nil
})

// errPrefix starts the sink's errors.
const errPrefix = "kafka sink"

// Sink publishes alerts to a topic.
type Sink struct {
	topic   string
	produce func(ctx context.Context, topic, key string, value []byte) error
}

var (
	_ sinks.Sink           = (*Sink)(nil)
	_ sinks.ParamValidator = (*Sink)(nil)
)

// Name implements sinks.Sink.
func (s *Sink) Name() string { return Name }

// Kind implements sinks.Sink.
func (s *Sink) Kind() sinks.Kind { return sinks.KindAlert }

// Topic is where the alerts go.
func (s *Sink) Topic() string { return s.topic }

// ValidateParams implements sinks.ParamValidator: the sink takes none.
func (s *Sink) ValidateParams(params map[string]string) error {
	return sinks.NoParams(errPrefix, params)
}

// Do implements sinks.Sink. The record's key is the indicator; a redelivered action publishes
// the same payload again, and consumers deduplicate on its key field.
func (s *Sink) Do(ctx context.Context, a *sinks.Action) (sinks.Result, error) {
	if a == nil {
		return sinks.Result{}, fmt.Errorf("%s: nil action", errPrefix)
	}
	value, err := json.Marshal(webhook.BuildPayload(webhook.ActionAlert, a))
	if err != nil {
		return sinks.Result{}, fmt.Errorf("%s: encoding the payload: %w", errPrefix, err)
	}
	if err := s.produce(ctx, s.topic, a.Target, value); err != nil {
		return sinks.Result{}, fmt.Errorf("%s: publish to %s: %w", errPrefix, s.topic, err)
	}
	return sinks.Result{Detail: "published to " + s.topic}, nil
}
