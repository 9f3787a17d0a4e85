package kafkax

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/pipeline/config"
)

// CheckSettings asks the brokers for metadata once and returns an error naming the variable to
// fix when the failure is a setting's fault: credentials the brokers reject, a SASL mechanism
// they do not offer, or a TLS handshake the settings cannot pass (untrusted CA, wrong server
// name, TLS to a plain-text port, a client certificate the broker requires). An unreachable or
// slow broker is not a setting's fault: it returns nil, and the processes wait for it as they do
// for any outage. Run it at start-up, so that a wrong password fails the start with its name
// instead of retrying behind a not-ready probe for ever.
func (c *Clients) CheckSettings(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(c.cfg.Brokers...), Transport: c.transport}
	_, err := client.Metadata(ctx, &kafka.MetadataRequest{})
	if err == nil {
		return nil
	}
	return c.explain(err)
}

// explain names the variable behind a connection error, or returns nil when no setting is to
// blame.
func (c *Clients) explain(err error) error {
	brokers := strings.Join(c.cfg.Brokers, ",")
	mech := strings.ToUpper(c.cfg.SASLMechanism)
	switch {
	case errors.Is(err, kafka.SASLAuthenticationFailed):
		return fmt.Errorf("%sKAFKA_SASL_PASSWORD: the brokers %s rejected user %q with this password (%s; check %sKAFKA_SASL_USERNAME too): %w",
			config.Prefix, brokers, c.cfg.SASLUsername, mech, config.Prefix, err)
	case errors.Is(err, kafka.UnsupportedSASLMechanism):
		return fmt.Errorf("%sKAFKA_SASL_MECHANISM: the brokers %s do not offer %s: %w", config.Prefix, brokers, mech, err)
	case errors.Is(err, kafka.IllegalSASLState):
		return fmt.Errorf("%sKAFKA_SASL_MECHANISM: the brokers %s did not expect SASL (%s) on this listener: %w", config.Prefix, brokers, mech, err)
	}
	return config.ExplainTLSError("KAFKA_", brokers, err)
}
