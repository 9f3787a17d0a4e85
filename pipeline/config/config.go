// Package config is threatpipe's typed configuration: environment variables prefixed
// THREATPIPE_, parsed once at start-up with caarlos0/env and validated with errors that name the
// variable. docs/configuration.md is generated from the struct tags below (desc tags) and a test
// fails when the two drift apart.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/gate"
	"github.com/threatpipe/threatpipe/pipeline/sign"
)

// Prefix is prepended to every variable name.
const Prefix = "THREATPIPE_"

// Secret is a string that never prints: logs, errors and metrics see "[redacted]".
type Secret string

// String implements fmt.Stringer.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString implements fmt.GoStringer so %#v redacts too.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// MarshalText redacts the secret in any encoder.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Reveal returns the secret for the one place that needs it (an auth header, a SASL mechanism).
func (s Secret) Reveal() string { return string(s) }

// Config is the whole configuration; each role uses the parts it needs.
type Config struct {
	Kafka    Kafka    `envPrefix:"KAFKA_"`
	Redis    Redis    `envPrefix:"REDIS_"`
	Pipeline Pipeline `envPrefix:"PIPELINE_"`
	Gate     Gate     `envPrefix:"GATE_"`
	Enrich   Enrich   `envPrefix:"ENRICH_"`
	Act      Act      `envPrefix:"ACT_"`
	Signing  Signing  `envPrefix:"SIGNING_"`
	HTTPAddr string   `env:"HTTP_ADDR" envDefault:"127.0.0.1:8080" desc:"Listen address of the health, readiness and metrics server, and of the view and the EDL where they run (host:port; port 0 picks a free one). Loopback by default: set 0.0.0.0:8080 (or one interface's address) for Prometheus, probes, firewalls or browsers on other hosts to reach it."`
	Log      Log      `envPrefix:"LOG_"`
}

// Kafka configures the brokers, topics and client behaviour.
type Kafka struct {
	Brokers              []string      `env:"BROKERS" envDefault:"127.0.0.1:9092" desc:"Comma-separated bootstrap brokers (host:port)."`
	InputTopic           string        `env:"INPUT_TOPIC" envDefault:"indicators" desc:"Topic the enricher consumes indicator events from."`
	InputFormat          string        `env:"INPUT_FORMAT" envDefault:"auto" desc:"Format of the input topic's messages: auto (each message sniffed: native, ECS and every other format threatpipe reads) or one format's name (docs/events.md, Input formats); a message of another format is dead-lettered."`
	OutputTopic          string        `env:"OUTPUT_TOPIC" envDefault:"indicators.scored" desc:"Topic scored events are published to."`
	DLQTopic             string        `env:"DLQ_TOPIC" envDefault:"indicators.dlq" desc:"Dead-letter topic for messages that cannot be decoded or name no valid indicator."`
	OpsTopic             string        `env:"OPS_TOPIC" envDefault:"threatpipe.ops" desc:"Topic for operational events: quota warnings, exhausted quotas, disabled providers."`
	ChangesTopic         string        `env:"CHANGES_TOPIC" envDefault:"indicators.changes" desc:"Topic of verdict changes: an indicator whose severity a revision or a refresh moved (docs/lifecycle.md); the playbook workers lift or escalate on them."`
	GroupID              string        `env:"GROUP_ID" envDefault:"threatpipe-enricher" desc:"Consumer group of the enricher; replicas with the same group share the input partitions."`
	ClientID             string        `env:"CLIENT_ID" envDefault:"threatpipe" desc:"Kafka client.id sent to the brokers."`
	CreateTopics         bool          `env:"CREATE_TOPICS" envDefault:"false" desc:"Create missing topics at start-up (for development; production topics are usually managed)."`
	TopicPartitions      int           `env:"TOPIC_PARTITIONS" envDefault:"6" desc:"Partitions of topics created by THREATPIPE_KAFKA_CREATE_TOPICS."`
	TopicReplication     int           `env:"TOPIC_REPLICATION_FACTOR" envDefault:"1" desc:"Replication factor of topics created by THREATPIPE_KAFKA_CREATE_TOPICS."`
	CommitInterval       time.Duration `env:"COMMIT_INTERVAL" envDefault:"1s" desc:"How often completed offsets are committed; also bounds duplicates after a crash."`
	SessionTimeout       time.Duration `env:"SESSION_TIMEOUT" envDefault:"30s" desc:"Consumer group session timeout: how long a dead replica keeps its partitions."`
	HeartbeatInterval    time.Duration `env:"HEARTBEAT_INTERVAL" envDefault:"3s" desc:"Consumer group heartbeat interval."`
	FetchMaxWait         time.Duration `env:"FETCH_MAX_WAIT" envDefault:"2s" desc:"Longest the client waits for a fetch's answer when no new data comes (data is returned as soon as it arrives, so this costs no latency). kafka-go asks the broker to wait this minus 1 s and keeps 1 s for the round trip; under 2 s the margin shrinks to a quarter, and a busy broker answering late shows as 'i/o timeout' warnings and reconnections."`
	FetchMaxBytes        int           `env:"FETCH_MAX_BYTES" envDefault:"10485760" desc:"Largest fetch response, in bytes."`
	BatchTimeout         time.Duration `env:"BATCH_TIMEOUT" envDefault:"5ms" desc:"Producer linger: how long a partial batch waits before it is sent."`
	BatchSize            int           `env:"BATCH_SIZE" envDefault:"500" desc:"Producer batch size in messages, per partition."`
	WriteTimeout         time.Duration `env:"WRITE_TIMEOUT" envDefault:"10s" desc:"Timeout of one produce request."`
	TLSEnabled           bool          `env:"TLS_ENABLED" envDefault:"false" desc:"Connect to the brokers over TLS."`
	TLSCAFile            string        `env:"TLS_CA_FILE" desc:"PEM file of CA certificates to trust (default: the system pool)."`
	TLSCertFile          string        `env:"TLS_CERT_FILE" desc:"PEM client certificate for mutual TLS (with THREATPIPE_KAFKA_TLS_KEY_FILE)."`
	TLSKeyFile           string        `env:"TLS_KEY_FILE" desc:"PEM client key for mutual TLS."`
	TLSServerName        string        `env:"TLS_SERVER_NAME" desc:"Name the brokers' certificates must carry (default: the host of each broker address); for brokers reached by IP or through a proxy."`
	TLSInsecure          bool          `env:"TLS_INSECURE_SKIP_VERIFY" envDefault:"false" desc:"INSECURE, for testing only: accept any broker certificate, so anyone on the path can read and alter the traffic and learn the SASL password. Logged as a warning at start."`
	SASLMechanism        string        `env:"SASL_MECHANISM" envDefault:"none" desc:"SASL mechanism: none, plain, scram-sha-256 or scram-sha-512."`
	SASLUsername         string        `env:"SASL_USERNAME" desc:"SASL username."`
	SASLPassword         Secret        `env:"SASL_PASSWORD" desc:"SASL password." secret:"true"`
	SASLPasswordFromFile Secret        `env:"SASL_PASSWORD_FILE,file" desc:"File holding the SASL password (instead of THREATPIPE_KAFKA_SASL_PASSWORD)." secret:"true"`
}

// Redis configures the cache and state store. One address is a single node; several are a
// Cluster; with a master name they are Sentinels.
type Redis struct {
	Addrs            []string      `env:"ADDR" envDefault:"127.0.0.1:6379" desc:"Comma-separated Redis addresses (one node, Cluster seeds, or Sentinels with THREATPIPE_REDIS_MASTER_NAME)."`
	MasterName       string        `env:"MASTER_NAME" desc:"Sentinel master name; set it to use Sentinel."`
	Username         string        `env:"USERNAME" desc:"Redis ACL username."`
	Password         Secret        `env:"PASSWORD" desc:"Redis password." secret:"true"`
	PasswordFromFile Secret        `env:"PASSWORD_FILE,file" desc:"File holding the Redis password (instead of THREATPIPE_REDIS_PASSWORD)." secret:"true"`
	DB               int           `env:"DB" envDefault:"0" desc:"Database number (single node and Sentinel only)."`
	KeyPrefix        string        `env:"KEY_PREFIX" envDefault:"tp" desc:"Prefix of every key threatpipe writes, so deployments can share a Redis."`
	TLSEnabled       bool          `env:"TLS_ENABLED" envDefault:"false" desc:"Connect to Redis over TLS (redis-server's tls-port)."`
	TLSCAFile        string        `env:"TLS_CA_FILE" desc:"PEM file of CA certificates to trust (default: the system pool)."`
	TLSCertFile      string        `env:"TLS_CERT_FILE" desc:"PEM client certificate, for servers with tls-auth-clients (with THREATPIPE_REDIS_TLS_KEY_FILE)."`
	TLSKeyFile       string        `env:"TLS_KEY_FILE" desc:"PEM client key."`
	TLSServerName    string        `env:"TLS_SERVER_NAME" desc:"Name the server certificate must carry (default: the host of each address); one name for every node of a Cluster or Sentinel set."`
	DialTimeout      time.Duration `env:"DIAL_TIMEOUT" envDefault:"2s" desc:"Timeout of a Redis connection attempt."`
	WaitReplicas     int           `env:"WAIT_REPLICAS" envDefault:"0" desc:"Replicas that must acknowledge a paid answer's store and act's ledger writes (claims, settled actions, handled events, active blocks) for them to count (Redis WAIT); otherwise they are written again, on the new primary after a failover. Set 1 with Sentinel or a Cluster with replicas: replication is asynchronous, and a failover otherwise loses what was written in its last moments: answers are then paid for again and actions done twice. 0: no wait."`
	WaitTimeout      time.Duration `env:"WAIT_TIMEOUT" envDefault:"1s" desc:"How long a store waits for THREATPIPE_REDIS_WAIT_REPLICAS acknowledgements before it is tried again."`
}

// Pipeline sizes the enricher's worker pool and in-flight window.
type Pipeline struct {
	Workers          int           `env:"WORKERS" envDefault:"256" desc:"Concurrent events being enriched; a worker waiting on a provider holds nothing else up, so this bounds concurrent lookups."`
	MaxInFlight      int           `env:"MAX_IN_FLIGHT" envDefault:"4096" desc:"Events fetched but not yet committable; when full, fetching pauses (backpressure). Bounds memory and duplicates after a crash."`
	MaxInFlightBytes int64         `env:"MAX_IN_FLIGHT_BYTES" envDefault:"67108864" desc:"Bytes of in-flight events (inputs and the outputs made of them) above which fetching pauses, whatever their count: large documents cannot exhaust memory. 0 disables the byte bound."`
	MaxEventBytes    int           `env:"MAX_EVENT_BYTES" envDefault:"1048576" desc:"Larger input messages are dead-lettered as too_large."`
	MaxIndicators    int           `env:"MAX_INDICATORS_PER_EVENT" envDefault:"32" desc:"Distinct indicators taken from one ECS event. An event naming more has these scored and is dead-lettered as too_many_indicators as well, so that the rest are not lost."`
	MaxNestingDepth  int           `env:"MAX_NESTING_DEPTH" envDefault:"64" desc:"Deepest nesting of JSON objects and arrays in an input message (the message itself is level 1); deeper ones are dead-lettered as too_deep before they are parsed, so no record threatpipe publishes nests deeper than standard JSON parsers accept (Python's about 1,000 levels)."`
	MaxContextBytes  int           `env:"MAX_CONTEXT_BYTES" envDefault:"16384" desc:"Most bytes of carried context (a native event's context and unknown fields, an ECS event's whole document) copied into each of an input's scored events. Above it the largest top-level fields are left out, and each scored event names them in context_truncated; the whole input stays at its origin topic, partition and offset."`
	ScoredDetail     string        `env:"SCORED_DETAIL" envDefault:"compact" desc:"How much of each provider's answer a scored event carries: compact (verdict, score, tags, benign service and list hits: what the score, the playbooks and the view read; AS, location and ISP are at the event's top level, the summary in its reasons) or full (every normalised field each provider returned: levels, ports, CVEs, AS and location per source). Compact halves the bytes per event."`
	LocalCacheSize   int           `env:"LOCAL_CACHE_SIZE" envDefault:"100000" desc:"Provider answers kept in process memory besides Redis, so repeats skip the round trip; 0 disables."`
	LocalCacheTTL    time.Duration `env:"LOCAL_CACHE_TTL" envDefault:"30s" desc:"Longest an in-process copy is used (never past its Redis expiry); bounds how stale a replica can be after an answer changes."`
	ShutdownTimeout  time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"30s" desc:"On SIGTERM, how long in-flight events may take to finish and commit before exit."`
}

// Gate configures which indicators are never looked up.
type Gate struct {
	OwnCIDRs       []string `env:"OWN_CIDRS" desc:"Comma-separated CIDRs of your own networks: never looked up, never blocked."`
	AllowlistCIDRs []string `env:"ALLOWLIST_CIDRS" desc:"Comma-separated CIDRs or addresses that need no lookup (partners, scanners you run, CDNs)."`
	// SharedAllowlistRefresh bounds how long a false positive marked in the view is still looked
	// up by a replica (pipeline/allowlist).
	SharedAllowlistRefresh time.Duration `env:"SHARED_ALLOWLIST_REFRESH" envDefault:"2s" desc:"How often each enricher reloads the shared allowlist in Redis (the view's false positives and allowlist entries; gated with reason allowlist, never looked up). 0 disables it: only THREATPIPE_GATE_ALLOWLIST_CIDRS gate."`
}

// Enrich configures the enrichment rules (which sources, in what order, field mapping, scoring
// weights, IP lists).
type Enrich struct {
	RulesFile     string        `env:"RULES_FILE" desc:"Enrichment rules YAML (docs/enrichment.md): stages, stop conditions, IP lists, field mapping and scoring weights. Unset: the documented default rules."`
	ListsInterval time.Duration `env:"LISTS_RELOAD_INTERVAL" envDefault:"30s" desc:"How often IP list files are checked for changes and reloaded."`
}

// Act configures the playbook workers (threatpipe act).
type Act struct {
	Playbooks          string        `env:"PLAYBOOKS" envDefault:"playbooks.yaml" desc:"Playbook file (docs/playbooks.md)."`
	Kinds              []string      `env:"KINDS" envDefault:"block,alert,ticket,intel,changes" desc:"Action kinds this process runs, each as its own consumer group (THREATPIPE_ACT_GROUP_PREFIX-<kind>), so a slow ticket API never delays a block. changes consumes the verdict changes of THREATPIPE_KAFKA_CHANGES_TOPIC (lifts and escalations, every action kind); run it in one act deployment only."`
	GroupPrefix        string        `env:"GROUP_PREFIX" envDefault:"threatpipe-act" desc:"Prefix of the playbook workers' consumer groups."`
	ResultsTopic       string        `env:"RESULTS_TOPIC" envDefault:"actions.results" desc:"Audit topic: every action considered and its outcome."`
	DLQTopic           string        `env:"DLQ_TOPIC" envDefault:"actions.dlq" desc:"Dead-letter topic for scored events whose action failed after retries, and for unreadable scored events."`
	RedisAddrs         []string      `env:"REDIS_ADDR" desc:"Redis of the action ledger and the kill switch, when they should not share THREATPIPE_REDIS_ADDR (the cache's): a Redis with maxmemory-policy noeviction, so that eviction never drops a claim or the kill switch (docs/operations.md, Redis memory and eviction). Same forms as THREATPIPE_REDIS_ADDR; credentials, TLS and the Sentinel master name are THREATPIPE_REDIS_*'s. Unset: THREATPIPE_REDIS_ADDR."`
	RedisDB            int           `env:"REDIS_DB" envDefault:"-1" desc:"Database number of the action ledger and the kill switch (single node and Sentinel only); -1: THREATPIPE_REDIS_DB. A database of its own separates the keys, not the eviction: maxmemory and its policy are per server."`
	Workers            int           `env:"WORKERS" envDefault:"16" desc:"Concurrent scored events per action kind."`
	MaxInFlight        int           `env:"MAX_IN_FLIGHT" envDefault:"256" desc:"Scored events fetched but not yet committed, per action kind."`
	NeverBlockCIDRs    []string      `env:"NEVER_BLOCK_CIDRS" desc:"Comma-separated CIDRs never blocked, besides private, loopback and other special ranges and THREATPIPE_GATE_OWN_CIDRS (resolvers, partners, your egress)."`
	MaxBlocksPerMinute int           `env:"MAX_BLOCKS_PER_MINUTE" envDefault:"60" desc:"New blocks allowed per minute across replicas; past it, blocking trips to alert-only for THREATPIPE_ACT_TRIP_DURATION and an alert is raised."`
	TripDuration       time.Duration `env:"TRIP_DURATION" envDefault:"15m" desc:"How long blocking stays alert-only after the rate cap trips."`
	KillSwitch         bool          `env:"KILL_SWITCH" envDefault:"false" desc:"Perform no action at all (each is recorded as kill_switch). Also settable at run time: threatpipe act --kill-switch on|off."`
	MaxBlockDuration   time.Duration `env:"MAX_BLOCK_DURATION" envDefault:"720h" desc:"Longest block a repeat offender's escalation can reach."`
	OffenceMemory      time.Duration `env:"OFFENCE_MEMORY" envDefault:"720h" desc:"How long a block counts towards a repeat offender's escalation."`
	LiftInterval       time.Duration `env:"LIFT_INTERVAL" envDefault:"5s" desc:"How often expired blocks are lifted (and their pages resolved)."`
	ReconcileInterval  time.Duration `env:"RECONCILE_INTERVAL" envDefault:"30s" desc:"How often stateful block sinks (EDL, nftables) are made to match the ledger."`
	ViewURL            string        `env:"VIEW_URL" desc:"Base URL of the prioritised view; actions link to <url>/indicators/<ip>."`
	RequireSignature   bool          `env:"REQUIRE_SIGNATURE" envDefault:"true" desc:"With THREATPIPE_SIGNING_KEY set, scored events and changes that carry no signature are refused (dead-lettered, never acted on); false accepts them while the enrichers are given the key. A wrong signature is always refused. Without a key nothing is verified."`
}

// Signing configures the HMAC signatures of scored events and verdict changes
// (docs/operations.md, "Signed scored events").
type Signing struct {
	Key                 Secret `env:"KEY" desc:"HMAC-SHA256 key (at least 32 characters) the enricher signs every scored event and verdict change with, and act verifies them with, so that act acts only on records an enricher produced. Empty: nothing is signed or verified." secret:"true"`
	KeyFromFile         Secret `env:"KEY_FILE,file" desc:"File holding the signing key (instead of THREATPIPE_SIGNING_KEY)." secret:"true"`
	PreviousKey         Secret `env:"PREVIOUS_KEY" desc:"A second key act also accepts, for rotation: the previous key, or the next one before the enrichers switch to it. Never used to sign." secret:"true"`
	PreviousKeyFromFile Secret `env:"PREVIOUS_KEY_FILE,file" desc:"File holding the second key (instead of THREATPIPE_SIGNING_PREVIOUS_KEY)." secret:"true"`
}

// Log configures zap.
type Log struct {
	Level  string `env:"LEVEL" envDefault:"info" desc:"Log level: debug, info, warn or error."`
	Format string `env:"FORMAT" envDefault:"json" desc:"Log format: json or console."`
}

// Load parses the environment (environ in os.Environ form) and validates the result.
func Load(environ []string) (*Config, error) {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	var c Config
	if err := Parse(&c, Prefix, vars); err != nil {
		return nil, err
	}
	if err := c.resolveSecrets(); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) resolveSecrets() error {
	for _, s := range []struct {
		value    *Secret
		fromFile Secret
		name     string
	}{
		{&c.Kafka.SASLPassword, c.Kafka.SASLPasswordFromFile, "KAFKA_SASL_PASSWORD"},
		{&c.Redis.Password, c.Redis.PasswordFromFile, "REDIS_PASSWORD"},
		{&c.Signing.Key, c.Signing.KeyFromFile, "SIGNING_KEY"},
		{&c.Signing.PreviousKey, c.Signing.PreviousKeyFromFile, "SIGNING_PREVIOUS_KEY"},
	} {
		if s.fromFile == "" {
			continue
		}
		if *s.value != "" {
			return fmt.Errorf("%s%s and %s%s_FILE are both set: set one", Prefix, s.name, Prefix, s.name)
		}
		*s.value = Secret(strings.TrimRight(string(s.fromFile), "\r\n"))
	}
	return nil
}

// fieldError names the variable behind a struct field in validation errors.
func fieldError(name, format string, args ...any) error {
	return fmt.Errorf("%s%s: %s", Prefix, name, fmt.Sprintf(format, args...))
}

var topicName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// Validate checks every value and returns all problems at once, each naming its variable.
func (c *Config) Validate() error {
	var errs []error
	add := func(name, format string, args ...any) { errs = append(errs, fieldError(name, format, args...)) }

	k := &c.Kafka
	if len(k.Brokers) == 0 {
		add("KAFKA_BROKERS", "must list at least one broker")
	}
	for _, b := range k.Brokers {
		if err := checkHostPort(b); err != nil {
			add("KAFKA_BROKERS", "%q: %v", b, err)
		}
	}
	for name, t := range map[string]string{"KAFKA_INPUT_TOPIC": k.InputTopic, "KAFKA_OUTPUT_TOPIC": k.OutputTopic, "KAFKA_DLQ_TOPIC": k.DLQTopic,
		"KAFKA_OPS_TOPIC": k.OpsTopic, "KAFKA_CHANGES_TOPIC": k.ChangesTopic} {
		if !topicName.MatchString(t) || t == "." || t == ".." {
			add(name, "%q is not a valid topic name (1-249 of a-z A-Z 0-9 . _ -)", t)
		}
	}
	if _, ok := event.ParseDetail(c.Pipeline.ScoredDetail); !ok {
		add("PIPELINE_SCORED_DETAIL", "%q is neither compact nor full", c.Pipeline.ScoredDetail)
	}
	if k.InputTopic == k.OutputTopic || k.InputTopic == k.DLQTopic {
		add("KAFKA_INPUT_TOPIC", "%q must differ from the output and dead-letter topics", k.InputTopic)
	}
	if k.OutputTopic == k.DLQTopic {
		add("KAFKA_DLQ_TOPIC", "%q must differ from the output topic", k.DLQTopic)
	}
	if strings.TrimSpace(k.GroupID) == "" {
		add("KAFKA_GROUP_ID", "must not be empty")
	}
	positive := []struct {
		name string
		v    int64
	}{
		{"KAFKA_TOPIC_PARTITIONS", int64(k.TopicPartitions)}, {"KAFKA_TOPIC_REPLICATION_FACTOR", int64(k.TopicReplication)},
		{"KAFKA_COMMIT_INTERVAL", int64(k.CommitInterval)}, {"KAFKA_SESSION_TIMEOUT", int64(k.SessionTimeout)},
		{"KAFKA_HEARTBEAT_INTERVAL", int64(k.HeartbeatInterval)}, {"KAFKA_FETCH_MAX_WAIT", int64(k.FetchMaxWait)},
		{"KAFKA_FETCH_MAX_BYTES", int64(k.FetchMaxBytes)}, {"KAFKA_BATCH_TIMEOUT", int64(k.BatchTimeout)},
		{"KAFKA_BATCH_SIZE", int64(k.BatchSize)}, {"KAFKA_WRITE_TIMEOUT", int64(k.WriteTimeout)},
		{"REDIS_DIAL_TIMEOUT", int64(c.Redis.DialTimeout)},
		{"PIPELINE_WORKERS", int64(c.Pipeline.Workers)}, {"PIPELINE_MAX_IN_FLIGHT", int64(c.Pipeline.MaxInFlight)},
		{"PIPELINE_MAX_EVENT_BYTES", int64(c.Pipeline.MaxEventBytes)}, {"PIPELINE_MAX_INDICATORS_PER_EVENT", int64(c.Pipeline.MaxIndicators)},
		{"PIPELINE_MAX_NESTING_DEPTH", int64(c.Pipeline.MaxNestingDepth)}, {"PIPELINE_MAX_CONTEXT_BYTES", int64(c.Pipeline.MaxContextBytes)},
		{"PIPELINE_SHUTDOWN_TIMEOUT", int64(c.Pipeline.ShutdownTimeout)},
	}
	for _, p := range positive {
		if p.v <= 0 {
			add(p.name, "must be greater than zero")
		}
	}
	if k.HeartbeatInterval*3 > k.SessionTimeout {
		add("KAFKA_HEARTBEAT_INTERVAL", "%s is more than a third of THREATPIPE_KAFKA_SESSION_TIMEOUT (%s)", k.HeartbeatInterval, k.SessionTimeout)
	}
	switch k.SASLMechanism {
	case "none":
	case "plain", "scram-sha-256", "scram-sha-512":
		if k.SASLUsername == "" {
			add("KAFKA_SASL_USERNAME", "is required with THREATPIPE_KAFKA_SASL_MECHANISM=%s", k.SASLMechanism)
		}
		if k.SASLPassword == "" {
			add("KAFKA_SASL_PASSWORD", "is required with THREATPIPE_KAFKA_SASL_MECHANISM=%s (or THREATPIPE_KAFKA_SASL_PASSWORD_FILE)", k.SASLMechanism)
		}
	default:
		add("KAFKA_SASL_MECHANISM", "%q is not one of none, plain, scram-sha-256, scram-sha-512", k.SASLMechanism)
	}
	errs = append(errs, k.tlsSettings().validate()...)
	errs = append(errs, c.Redis.tlsSettings().validate()...)
	if len(c.Redis.Addrs) == 0 {
		add("REDIS_ADDR", "must list at least one address")
	}
	for _, a := range c.Redis.Addrs {
		if err := checkHostPort(a); err != nil {
			add("REDIS_ADDR", "%q: %v", a, err)
		}
	}
	if c.Redis.KeyPrefix == "" || strings.ContainsAny(c.Redis.KeyPrefix, " \t\r\n") {
		add("REDIS_KEY_PREFIX", "%q must be non-empty and without spaces", c.Redis.KeyPrefix)
	}
	if c.Redis.DB < 0 {
		add("REDIS_DB", "must not be negative")
	}
	if c.Redis.WaitReplicas < 0 {
		add("REDIS_WAIT_REPLICAS", "must not be negative")
	}
	if c.Redis.WaitReplicas > 0 && c.Redis.WaitTimeout <= 0 {
		add("REDIS_WAIT_TIMEOUT", "must be greater than zero with THREATPIPE_REDIS_WAIT_REPLICAS=%d", c.Redis.WaitReplicas)
	}
	for _, addr := range c.Act.RedisAddrs {
		if err := checkHostPort(addr); err != nil {
			add("ACT_REDIS_ADDR", "%q: %v", addr, err)
		}
	}
	if l := c.LedgerRedis(); c.Act.RedisDB < -1 || (l.DB != 0 && len(l.Addrs) > 1 && l.MasterName == "") {
		add("ACT_REDIS_DB", "%d is not -1 (THREATPIPE_REDIS_DB) or a database number (a Redis Cluster has only 0)", c.Act.RedisDB)
	}
	a := &c.Act
	for _, kind := range a.Kinds {
		if !slices.Contains([]string{"block", "alert", "ticket", "intel", "changes"}, kind) {
			add("ACT_KINDS", "%q is not one of block, alert, ticket, intel, changes", kind)
		}
	}
	for name, t := range map[string]string{"ACT_RESULTS_TOPIC": a.ResultsTopic, "ACT_DLQ_TOPIC": a.DLQTopic} {
		if !topicName.MatchString(t) || t == "." || t == ".." {
			add(name, "%q is not a valid topic name (1-249 of a-z A-Z 0-9 . _ -)", t)
		}
	}
	if strings.TrimSpace(a.GroupPrefix) == "" {
		add("ACT_GROUP_PREFIX", "must not be empty")
	}
	if _, err := gate.ParsePrefixes(a.NeverBlockCIDRs); err != nil {
		add("ACT_NEVER_BLOCK_CIDRS", "%v", err)
	}
	for name, key := range map[string]Secret{"SIGNING_KEY": c.Signing.Key, "SIGNING_PREVIOUS_KEY": c.Signing.PreviousKey} {
		if key != "" && len(key.Reveal()) < sign.MinKeyLen {
			add(name, "must be at least %d characters (e.g. openssl rand -hex 32)", sign.MinKeyLen)
		}
	}
	if c.Signing.PreviousKey != "" && (c.Signing.Key == "" || c.Signing.PreviousKey == c.Signing.Key) {
		add("SIGNING_PREVIOUS_KEY", "is a second key besides THREATPIPE_SIGNING_KEY: set that one, and make them differ")
	}
	for _, p := range []struct {
		name string
		v    int64
	}{
		{"ACT_WORKERS", int64(a.Workers)}, {"ACT_MAX_IN_FLIGHT", int64(a.MaxInFlight)},
		{"ACT_MAX_BLOCKS_PER_MINUTE", int64(a.MaxBlocksPerMinute)}, {"ACT_TRIP_DURATION", int64(a.TripDuration)},
		{"ACT_MAX_BLOCK_DURATION", int64(a.MaxBlockDuration)}, {"ACT_OFFENCE_MEMORY", int64(a.OffenceMemory)},
		{"ACT_LIFT_INTERVAL", int64(a.LiftInterval)}, {"ACT_RECONCILE_INTERVAL", int64(a.ReconcileInterval)},
	} {
		if p.v <= 0 {
			add(p.name, "must be greater than zero")
		}
	}
	if a.ViewURL != "" {
		if u, err := url.Parse(a.ViewURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("ACT_VIEW_URL", "%q is not an http(s) URL", a.ViewURL)
		}
	}
	if c.Enrich.ListsInterval <= 0 {
		add("ENRICH_LISTS_RELOAD_INTERVAL", "must be greater than zero")
	}
	if c.Pipeline.LocalCacheSize < 0 || c.Pipeline.LocalCacheTTL < 0 {
		add("PIPELINE_LOCAL_CACHE_SIZE", "size and THREATPIPE_PIPELINE_LOCAL_CACHE_TTL must not be negative")
	}
	if c.Pipeline.MaxInFlightBytes < 0 {
		add("PIPELINE_MAX_IN_FLIGHT_BYTES", "must not be negative (0 disables the byte bound)")
	}
	if c.Pipeline.MaxInFlight < c.Pipeline.Workers {
		add("PIPELINE_MAX_IN_FLIGHT", "%d is less than THREATPIPE_PIPELINE_WORKERS (%d)", c.Pipeline.MaxInFlight, c.Pipeline.Workers)
	}
	if _, err := c.Gate.Own(); err != nil {
		add("GATE_OWN_CIDRS", "%v", err)
	}
	if _, err := c.Gate.Allowlist(); err != nil {
		add("GATE_ALLOWLIST_CIDRS", "%v", err)
	}
	if r := c.Gate.SharedAllowlistRefresh; r < 0 || (r > 0 && r < 100*time.Millisecond) || r > time.Hour {
		add("GATE_SHARED_ALLOWLIST_REFRESH", "%s must be 0 (disabled) or between 100ms and 1h", r)
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		add("HTTP_ADDR", "%q is not host:port", c.HTTPAddr)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("LOG_LEVEL", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		add("LOG_FORMAT", "%q is not one of json, console", c.Log.Format)
	}
	return errors.Join(errs...)
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("want host:port")
	}
	if host == "" {
		return errors.New("host is empty")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not 1-65535", port)
	}
	return nil
}

// Own parses THREATPIPE_GATE_OWN_CIDRS.
func (g *Gate) Own() ([]netip.Prefix, error) { return gate.ParsePrefixes(g.OwnCIDRs) }

// Allowlist parses THREATPIPE_GATE_ALLOWLIST_CIDRS.
func (g *Gate) Allowlist() ([]netip.Prefix, error) { return gate.ParsePrefixes(g.AllowlistCIDRs) }

// ResolveSecretFile applies a NAME_FILE secret: when fromFile is set (its content, read by
// caarlos0/env's "file" option) it becomes *value, trailing newline trimmed. Setting both NAME
// and NAME_FILE is an error naming both. name is the full variable name without _FILE.
func ResolveSecretFile(value *Secret, fromFile Secret, name string) error {
	if fromFile == "" {
		return nil
	}
	if *value != "" {
		return fmt.Errorf("%s and %s_FILE are both set: set one", name, name)
	}
	*value = Secret(strings.TrimRight(string(fromFile), "\r\n"))
	return nil
}
