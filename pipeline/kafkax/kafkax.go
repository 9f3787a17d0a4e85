// Package kafkax builds kafka-go clients from threatpipe's configuration: TLS and SASL (PLAIN,
// SCRAM-SHA-256/512) for readers and writers alike, topic creation, and a reachability check.
package kafkax

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline/config"
)

// Clients bundles the connection settings every Kafka client of a process shares.
type Clients struct {
	cfg       *config.Kafka
	dialer    *kafka.Dialer
	transport *kafka.Transport
	log       *zap.Logger
}

// New prepares the dialer (readers) and transport (writers, admin requests).
func New(cfg *config.Kafka, log *zap.Logger) (*Clients, error) {
	tlsCfg, err := cfg.TLSConfig()
	if err != nil {
		return nil, err
	}
	if tlsCfg != nil && tlsCfg.InsecureSkipVerify {
		log.Warn("INSECURE: broker certificates are not verified (" + config.Prefix + "KAFKA_TLS_INSECURE_SKIP_VERIFY=true); anyone on the path can read and alter the traffic")
	}
	if tlsCfg == nil && cfg.SASLMechanism == "plain" {
		log.Warn("SASL PLAIN without TLS sends the password in clear text: set " + config.Prefix + "KAFKA_TLS_ENABLED=true")
	}
	mech, err := mechanism(cfg)
	if err != nil {
		return nil, err
	}
	return &Clients{
		cfg: cfg,
		log: log,
		dialer: &kafka.Dialer{
			ClientID: cfg.ClientID, Timeout: 10 * time.Second, DualStack: true,
			TLS: tlsCfg, SASLMechanism: mech,
		},
		transport: newTransport(cfg, tlsCfg, mech),
	}, nil
}

func newTransport(cfg *config.Kafka, tlsCfg *tls.Config, mech sasl.Mechanism) *kafka.Transport {
	return &kafka.Transport{
		ClientID: cfg.ClientID, DialTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second,
		TLS: tlsCfg, SASL: mech,
	}
}

func mechanism(cfg *config.Kafka) (sasl.Mechanism, error) {
	switch cfg.SASLMechanism {
	case "none", "":
		return nil, nil
	case "plain":
		return plain.Mechanism{Username: cfg.SASLUsername, Password: cfg.SASLPassword.Reveal()}, nil
	case "scram-sha-256":
		return scram.Mechanism(scram.SHA256, cfg.SASLUsername, cfg.SASLPassword.Reveal())
	case "scram-sha-512":
		return scram.Mechanism(scram.SHA512, cfg.SASLUsername, cfg.SASLPassword.Reveal())
	default:
		return nil, fmt.Errorf("%sKAFKA_SASL_MECHANISM: unsupported %q", config.Prefix, cfg.SASLMechanism)
	}
}

// Transport is shared by writers and admin requests so they reuse connections.
func (c *Clients) Transport() *kafka.Transport { return c.transport }

// ReaderConfig returns a consumer-group reader configuration for topic: explicit commits only
// (the caller commits through CommitMessages; CommitInterval 0 makes those synchronous, so a
// failed commit is seen), and kafka-go's logs bridged into zap.
func (c *Clients) ReaderConfig(topic string) kafka.ReaderConfig {
	log := c.log.Named("kafka-reader").Sugar()
	return kafka.ReaderConfig{
		Brokers:           c.cfg.Brokers,
		GroupID:           c.cfg.GroupID,
		Topic:             topic,
		Dialer:            c.dialer,
		MinBytes:          1,
		MaxBytes:          c.cfg.FetchMaxBytes,
		MaxWait:           c.cfg.FetchMaxWait,
		ReadBatchTimeout:  c.cfg.FetchMaxWait + 10*time.Second,
		QueueCapacity:     1000,
		CommitInterval:    0,
		SessionTimeout:    c.cfg.SessionTimeout,
		HeartbeatInterval: c.cfg.HeartbeatInterval,
		RebalanceTimeout:  c.cfg.SessionTimeout,
		JoinGroupBackoff:  time.Second,
		StartOffset:       kafka.FirstOffset,
		ReadBackoffMin:    50 * time.Millisecond,
		ReadBackoffMax:    time.Second,
		Logger:            kafka.LoggerFunc(log.Debugf),
		ErrorLogger:       kafka.LoggerFunc(log.Warnf),
	}
}

// Writer returns a writer that requires acknowledgement by all in-sync replicas, hashes keys to
// partitions (so one indicator stays on one partition) and takes the topic from each message.
// With completion set it is asynchronous: WriteMessages enqueues and completion reports each
// batch's outcome; callers bound what they enqueue.
func (c *Clients) Writer(completion func([]kafka.Message, error)) *kafka.Writer {
	log := c.log.Named("kafka-writer").Sugar()
	return &kafka.Writer{
		Addr:         kafka.TCP(c.cfg.Brokers...),
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: c.cfg.BatchTimeout,
		BatchSize:    c.cfg.BatchSize,
		BatchBytes:   16 << 20,
		WriteTimeout: c.cfg.WriteTimeout,
		ReadTimeout:  c.cfg.WriteTimeout,
		MaxAttempts:  5,
		Async:        completion != nil,
		Completion:   completion,
		Transport:    c.transport,
		Logger:       kafka.LoggerFunc(log.Debugf),
		ErrorLogger:  kafka.LoggerFunc(log.Warnf),
	}
}

// EnsureTopics creates any of topics that do not exist yet, with the configured partitions and
// replication factor. Topics that already exist are left alone.
func (c *Clients) EnsureTopics(ctx context.Context, topics ...string) error {
	client := &kafka.Client{Addr: kafka.TCP(c.cfg.Brokers...), Transport: c.transport, Timeout: 15 * time.Second}
	req := &kafka.CreateTopicsRequest{}
	for _, t := range topics {
		req.Topics = append(req.Topics, kafka.TopicConfig{
			Topic: t, NumPartitions: c.cfg.TopicPartitions, ReplicationFactor: c.cfg.TopicReplication,
		})
	}
	res, err := client.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	var errs []error
	for topic, err := range res.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("create topic %s: %w", topic, err))
		}
	}
	return errors.Join(errs...)
}

// Ping checks that a broker answers a metadata request for topics, which also proves
// authentication works. It is the Kafka readiness check.
func (c *Clients) Ping(ctx context.Context, topics ...string) error {
	// A transport of its own, closed after: the shared one answers metadata requests from its
	// cache and keeps serving the last layout it knew while every broker is unreachable, so a
	// check through it would report a broker outage as ready.
	t := newTransport(c.cfg, c.transport.TLS, c.transport.SASL)
	defer t.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(c.cfg.Brokers...), Transport: t}
	res, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("kafka metadata: %w", err)
	}
	for _, t := range res.Topics {
		if t.Error != nil {
			return fmt.Errorf("kafka topic %s: %w", t.Name, t.Error)
		}
	}
	return nil
}
