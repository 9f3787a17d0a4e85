package deployments

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	yamlv3 "gopkg.in/yaml.v3"

	"github.com/threatpipe/threatpipe/view"
	"github.com/threatpipe/threatpipe/view/auth"
)

// The Compose Specification keys docker-compose.yml uses, and no others: decoding with
// KnownFields(true) turns a misspelt key (depends_on.conditon, stop_grace_periode) into an error.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Networks map[string]composeNetwork `yaml:"networks"`
}

// composeNetwork is a network's fixed address range (the view's anonymous read names it).
type composeNetwork struct {
	IPAM struct {
		Config []struct {
			Subnet string `yaml:"subnet"`
		} `yaml:"config"`
	} `yaml:"ipam"`
}

type composeService struct {
	Image           string                       `yaml:"image"`
	Build           *composeBuild                `yaml:"build"`
	Command         []string                     `yaml:"command"`
	Environment     map[string]string            `yaml:"environment"`
	Ports           []string                     `yaml:"ports"`
	Volumes         []composeVolume              `yaml:"volumes"`
	DependsOn       map[string]composeDependency `yaml:"depends_on"`
	Healthcheck     *composeHealthcheck          `yaml:"healthcheck"`
	Restart         string                       `yaml:"restart"`
	StopGracePeriod string                       `yaml:"stop_grace_period"`
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

// composeVolume is a volume in the long syntax, the only one used: it names the mount's type and
// read-only flag instead of encoding them in a string.
type composeVolume struct {
	Type     string `yaml:"type"`
	Source   string `yaml:"source"`
	Target   string `yaml:"target"`
	ReadOnly bool   `yaml:"read_only"`
}

type composeDependency struct {
	Condition string `yaml:"condition"`
}

type composeHealthcheck struct {
	Test        []string `yaml:"test"`
	Interval    string   `yaml:"interval"`
	Timeout     string   `yaml:"timeout"`
	Retries     int      `yaml:"retries"`
	StartPeriod string   `yaml:"start_period"`
}

const composePath = repoRoot + "/docker-compose.yml"

// decodeCompose decodes one YAML document strictly into composeFile.
func decodeCompose(data []byte) (*composeFile, error) {
	dec := yamlv3.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f composeFile
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document")
	}
	return &f, nil
}

func loadCompose(t *testing.T) *composeFile {
	t.Helper()
	f, err := decodeCompose(readFile(t, composePath))
	if err != nil {
		t.Fatalf("docker-compose.yml does not decode strictly into the Compose model: %v", err)
	}
	return f
}

func TestComposeDecoderCatchesTypos(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown service key": "services:\n  a:\n    image: x:1\n    stop_grace_periode: 45s\n",
		"unknown nested key":  "services:\n  a:\n    depends_on:\n      b:\n        conditon: service_healthy\n",
		"unknown top key":     "service:\n  a:\n    image: x:1\n",
		"list environment":    "services:\n  a:\n    environment:\n      - A=1\n",
		"unknown volume key":  "services:\n  a:\n    volumes:\n      - type: bind\n        source: ./x\n        target: /x\n        readonly: true\n",
		"short volume syntax": "services:\n  a:\n    volumes:\n      - ./x:/x:ro\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeCompose([]byte(doc)); err == nil {
				t.Fatalf("decodeCompose accepted %q", doc)
			}
		})
	}
}

// TestComposeSchema validates docker-compose.yml with compose-go, the loader of the docker
// compose CLI: the Compose Specification JSON schema plus its consistency checks.
func TestComposeSchema(t *testing.T) {
	abs, err := filepath.Abs(composePath)
	if err != nil {
		t.Fatal(err)
	}
	project, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  filepath.Dir(abs),
		ConfigFiles: []types.ConfigFile{{Filename: abs}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("threatpipe", false) })
	if err != nil {
		t.Fatalf("compose-go rejects docker-compose.yml: %v", err)
	}
	enricher, ok := project.Services["enricher"]
	if !ok {
		t.Fatal("compose-go found no enricher service")
	}
	if enricher.StopGracePeriod == nil || time.Duration(*enricher.StopGracePeriod) <= 30*time.Second {
		t.Errorf("compose-go reads enricher stop_grace_period %v; want more than 30s", enricher.StopGracePeriod)
	}
	for _, dep := range []string{"kafka", "redis"} {
		if d, ok := enricher.DependsOn[dep]; !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("compose-go reads enricher depends_on %s as %+v; want condition service_healthy", dep, d)
		}
	}
	actSvc, ok := project.Services["act"]
	if !ok {
		t.Fatal("compose-go found no act service")
	}
	if actSvc.StopGracePeriod == nil || time.Duration(*actSvc.StopGracePeriod) <= 30*time.Second {
		t.Errorf("compose-go reads act stop_grace_period %v; want more than 30s", actSvc.StopGracePeriod)
	}
	for dep, d := range actSvc.DependsOn {
		switch d.Condition {
		case types.ServiceConditionHealthy:
		case types.ServiceConditionCompletedSuccessfully:
			if r := project.Services[dep].Restart; r != "" && r != "no" {
				t.Errorf("act waits for %s to complete, but its restart policy %q restarts it", dep, r)
			}
		default:
			t.Errorf("compose-go reads act depends_on %s as %+v; want service_healthy or service_completed_successfully", dep, d)
		}
	}
	if len(actSvc.Volumes) == 0 {
		t.Fatal("compose-go reads no volume on act: the playbook file is not mounted")
	}
	for _, v := range actSvc.Volumes {
		if v.Type != types.VolumeTypeBind || !v.ReadOnly {
			t.Errorf("compose-go reads act volume %+v; want a read-only bind mount", v)
		}
		if _, err := os.Stat(v.Source); err != nil {
			t.Errorf("act volume source %s (resolved by compose-go): %v", v.Source, err)
		}
	}
}

func TestCompose(t *testing.T) {
	f := loadCompose(t)
	for _, name := range []string{"kafka", "redis", "enricher"} {
		if _, ok := f.Services[name]; !ok {
			t.Fatalf("docker-compose.yml has no service %q", name)
		}
	}
	kafka, redis, enr := f.Services["kafka"], f.Services["redis"], f.Services["enricher"]

	t.Run("images pinned", func(t *testing.T) {
		for name, s := range f.Services {
			if s.Image == "" && s.Build == nil {
				t.Errorf("service %s has neither image nor build", name)
			}
			if s.Image != "" {
				checkImageRef(t, "docker-compose.yml service "+name, s.Image)
			}
		}
		if !strings.HasPrefix(kafka.Image, "apache/kafka:4.") {
			t.Errorf("kafka image %q: want apache/kafka 4.x (KRaft, the broker version the tests use)", kafka.Image)
		}
	})
	t.Run("enricher builds the Dockerfile", func(t *testing.T) {
		if enr.Build == nil {
			t.Fatal("enricher has no build section")
		}
		df := filepath.Join(repoRoot, filepath.FromSlash(enr.Build.Context), filepath.FromSlash(enr.Build.Dockerfile))
		if _, err := os.Stat(df); err != nil {
			t.Errorf("build context %q + dockerfile %q: %v", enr.Build.Context, enr.Build.Dockerfile, err)
		}
		if len(enr.Command) != 1 || enr.Command[0] != "enrich" {
			t.Errorf("enricher command %v, want [enrich]", enr.Command)
		}
	})
	t.Run("enricher environment", func(t *testing.T) {
		for k := range enr.Environment {
			checkVarName(t, "docker-compose.yml enricher environment", k)
		}
		cfg := loadConfig(t, "docker-compose.yml enricher environment", enr.Environment)
		if !cfg.Kafka.CreateTopics {
			t.Error("THREATPIPE_KAFKA_CREATE_TOPICS should be true: the compose Kafka starts empty")
		}
	})
	t.Run("depends on healthy services", func(t *testing.T) {
		for _, dep := range []string{"kafka", "redis"} {
			d, ok := enr.DependsOn[dep]
			if !ok || d.Condition != "service_healthy" {
				t.Errorf("enricher depends_on %s: %+v, want condition service_healthy", dep, d)
			}
			if s := f.Services[dep]; s.Healthcheck == nil || len(s.Healthcheck.Test) == 0 {
				t.Errorf("service %s has no healthcheck, so service_healthy never holds", dep)
			}
		}
		for name, d := range enr.DependsOn {
			if _, ok := f.Services[name]; !ok {
				t.Errorf("enricher depends_on unknown service %s (%+v)", name, d)
			}
		}
	})
	t.Run("healthchecks", func(t *testing.T) {
		for name, s := range f.Services {
			h := s.Healthcheck
			if h == nil {
				continue
			}
			if len(h.Test) < 2 || (h.Test[0] != "CMD" && h.Test[0] != "CMD-SHELL") {
				t.Errorf("service %s healthcheck test %v: want [CMD ...] or [CMD-SHELL ...]", name, h.Test)
			}
			for field, v := range map[string]string{"interval": h.Interval, "timeout": h.Timeout, "start_period": h.StartPeriod} {
				if _, err := time.ParseDuration(v); v != "" && err != nil {
					t.Errorf("service %s healthcheck %s %q: %v", name, field, v, err)
				}
			}
			if h.Retries < 1 {
				t.Errorf("service %s healthcheck retries %d", name, h.Retries)
			}
		}
		if got := strings.Join(redis.Healthcheck.Test, " "); !strings.Contains(got, "redis-cli ping") {
			t.Errorf("redis healthcheck %q: want redis-cli ping", got)
		}
		if got := strings.Join(kafka.Healthcheck.Test, " "); !strings.Contains(got, "/opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server localhost:") {
			t.Errorf("kafka healthcheck %q: want /opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server localhost:PORT", got)
		}
	})
	t.Run("redis keeps nothing on disk", func(t *testing.T) {
		cmd := strings.Join(redis.Command, " ")
		if !strings.Contains(cmd, `--save `) || !strings.Contains(cmd, "--appendonly no") {
			t.Errorf("redis command %v: want --save \"\" and --appendonly no", redis.Command)
		}
	})
	t.Run("kafka KRaft settings", func(t *testing.T) {
		checkKafkaEnv(t, f)
	})
	t.Run("enricher reaches kafka and redis", func(t *testing.T) {
		cfg := loadConfig(t, "enricher environment", enr.Environment)
		adv := listenerAddrs(t, kafka.Environment["KAFKA_ADVERTISED_LISTENERS"])
		for _, b := range cfg.Kafka.Brokers {
			found := false
			for _, a := range adv {
				found = found || a.addr == b
			}
			if !found {
				t.Errorf("THREATPIPE_KAFKA_BROKERS %s is not an advertised listener of kafka (%s)", b, kafka.Environment["KAFKA_ADVERTISED_LISTENERS"])
			}
			if host, _, _ := net.SplitHostPort(b); host != "kafka" {
				t.Errorf("THREATPIPE_KAFKA_BROKERS %s: inside the compose network the broker is kafka:PORT", b)
			}
		}
		for _, a := range cfg.Redis.Addrs {
			if a != "redis:6379" {
				t.Errorf("THREATPIPE_REDIS_ADDR %s: want redis:6379", a)
			}
		}
	})
	t.Run("ports", func(t *testing.T) {
		cfg := loadConfig(t, "enricher environment", enr.Environment)
		_, httpPort, _ := net.SplitHostPort(cfg.HTTPAddr)
		if !publishes(t, enr.Ports, httpPort) {
			t.Errorf("enricher ports %v do not publish THREATPIPE_HTTP_ADDR's port %s", enr.Ports, httpPort)
		}
		// The host listener: advertised as 127.0.0.1:P (or localhost:P) and published as P.
		hostListener := false
		for _, a := range listenerAddrs(t, kafka.Environment["KAFKA_ADVERTISED_LISTENERS"]) {
			host, port, _ := net.SplitHostPort(a.addr)
			if host == "127.0.0.1" || host == "localhost" {
				hostListener = true
				if !publishes(t, kafka.Ports, port) {
					t.Errorf("kafka advertises %s for the host but its ports %v do not publish %s", a.addr, kafka.Ports, port)
				}
			}
		}
		if !hostListener {
			t.Error("kafka advertises no listener for clients on the host (127.0.0.1:9094)")
		}
		for name, s := range f.Services {
			for _, p := range s.Ports {
				if !strings.HasPrefix(p, "127.0.0.1:") {
					t.Errorf("service %s publishes %q on every interface; bind 127.0.0.1", name, p)
				}
			}
		}
	})
	t.Run("restart and stop", func(t *testing.T) {
		if enr.Restart != "unless-stopped" {
			t.Errorf("enricher restart %q, want unless-stopped", enr.Restart)
		}
		for name, s := range f.Services {
			switch s.Restart {
			case "", "no", "always", "on-failure", "unless-stopped":
			default:
				if !strings.HasPrefix(s.Restart, "on-failure:") {
					t.Errorf("service %s restart %q is not a Compose restart policy", name, s.Restart)
				}
			}
		}
		cfg := loadConfig(t, "enricher environment", enr.Environment)
		d, err := time.ParseDuration(enr.StopGracePeriod)
		if err != nil || d <= cfg.Pipeline.ShutdownTimeout+5*time.Second {
			t.Errorf("enricher stop_grace_period %q must exceed THREATPIPE_PIPELINE_SHUTDOWN_TIMEOUT (%s) + 5s reader close (Compose's default is 10s)", enr.StopGracePeriod, cfg.Pipeline.ShutdownTimeout)
		}
		if enr.Healthcheck != nil {
			t.Error("enricher has a healthcheck, but the distroless image has no shell or HTTP client to run one")
		}
	})
}

// listener is one NAME://host:port entry of KAFKA_LISTENERS or KAFKA_ADVERTISED_LISTENERS.
type listener struct{ name, addr string }

func listenerAddrs(t *testing.T, s string) []listener {
	t.Helper()
	var out []listener
	for _, l := range strings.Split(s, ",") {
		name, addr, ok := strings.Cut(strings.TrimSpace(l), "://")
		if !ok || name == "" {
			t.Errorf("listener %q is not NAME://host:port", l)
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			t.Errorf("listener %q: %v", l, err)
			continue
		}
		out = append(out, listener{name, addr})
	}
	return out
}

func checkKafkaEnv(t *testing.T, f *composeFile) {
	t.Helper()
	env := f.Services["kafka"].Environment
	for k, want := range map[string]string{
		"KAFKA_PROCESS_ROLES":                            "broker,controller",
		"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":         "1",
		"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
		"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":            "1",
		"KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS":         "0",
	} {
		if env[k] != want {
			t.Errorf("kafka %s=%q, want %q", k, env[k], want)
		}
	}
	for _, k := range []string{"KAFKA_NODE_ID", "KAFKA_LISTENERS", "KAFKA_ADVERTISED_LISTENERS", "KAFKA_CONTROLLER_LISTENER_NAMES",
		"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "KAFKA_CONTROLLER_QUORUM_VOTERS", "KAFKA_INTER_BROKER_LISTENER_NAME", "CLUSTER_ID"} {
		if env[k] == "" {
			t.Errorf("kafka %s is not set", k)
		}
	}
	for k := range env {
		if !strings.HasPrefix(k, "KAFKA_") && k != "CLUSTER_ID" {
			t.Errorf("kafka environment %s: the apache/kafka image reads KAFKA_* variables and CLUSTER_ID", k)
		}
	}
	listeners := map[string]string{} // name -> port
	for _, l := range listenerAddrs(t, env["KAFKA_LISTENERS"]) {
		_, port, _ := net.SplitHostPort(l.addr)
		listeners[l.name] = port
	}
	protocols := map[string]bool{}
	for _, p := range strings.Split(env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"], ",") {
		name, proto, ok := strings.Cut(p, ":")
		if !ok || proto == "" {
			t.Errorf("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP entry %q is not NAME:PROTOCOL", p)
		}
		protocols[name] = true
	}
	for name := range listeners {
		if !protocols[name] {
			t.Errorf("listener %s has no entry in KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", name)
		}
	}
	for _, a := range listenerAddrs(t, env["KAFKA_ADVERTISED_LISTENERS"]) {
		port, ok := listeners[a.name]
		if !ok {
			t.Errorf("advertised listener %s is not in KAFKA_LISTENERS", a.name)
			continue
		}
		if _, p, _ := net.SplitHostPort(a.addr); p != port {
			t.Errorf("advertised listener %s://%s does not use its listener's port %s", a.name, a.addr, port)
		}
	}
	ctrl := env["KAFKA_CONTROLLER_LISTENER_NAMES"]
	if _, ok := listeners[ctrl]; !ok {
		t.Errorf("KAFKA_CONTROLLER_LISTENER_NAMES %s is not in KAFKA_LISTENERS", ctrl)
	}
	if _, ok := listeners[env["KAFKA_INTER_BROKER_LISTENER_NAME"]]; !ok {
		t.Errorf("KAFKA_INTER_BROKER_LISTENER_NAME %s is not in KAFKA_LISTENERS", env["KAFKA_INTER_BROKER_LISTENER_NAME"])
	}
	// One voter: this node, at the controller listener, under the service's name.
	id, hostPort, ok := strings.Cut(env["KAFKA_CONTROLLER_QUORUM_VOTERS"], "@")
	if !ok || id != env["KAFKA_NODE_ID"] {
		t.Errorf("KAFKA_CONTROLLER_QUORUM_VOTERS %q: want %s@kafka:%s", env["KAFKA_CONTROLLER_QUORUM_VOTERS"], env["KAFKA_NODE_ID"], listeners[ctrl])
	} else if host, port, err := net.SplitHostPort(hostPort); err != nil || host != "kafka" || port != listeners[ctrl] {
		t.Errorf("KAFKA_CONTROLLER_QUORUM_VOTERS %q: want %s@kafka:%s", env["KAFKA_CONTROLLER_QUORUM_VOTERS"], id, listeners[ctrl])
	}
	// The healthcheck's bootstrap port must be a listener.
	hc := strings.Join(f.Services["kafka"].Healthcheck.Test, " ")
	if _, after, ok := strings.Cut(hc, "--bootstrap-server localhost:"); ok {
		port := strings.FieldsFunc(after, func(r rune) bool { return r < '0' || r > '9' })
		found := false
		for _, p := range listeners {
			found = found || (len(port) > 0 && p == port[0])
		}
		if !found {
			t.Errorf("kafka healthcheck bootstraps on a port no listener uses: %q", hc)
		}
	}
}

// publishes reports whether ports (short syntax, [ip:]host:container) maps host port p to
// container port p.
func publishes(t *testing.T, ports []string, p string) bool {
	t.Helper()
	for _, spec := range ports {
		spec, _, _ = strings.Cut(spec, "/")
		parts := strings.Split(spec, ":")
		if len(parts) < 2 || len(parts) > 3 {
			t.Errorf("port %q: want [ip:]host:container", spec)
			continue
		}
		host, cont := parts[len(parts)-2], parts[len(parts)-1]
		if _, err := strconv.Atoi(cont); err != nil {
			t.Errorf("port %q: container port is not a number", spec)
		}
		if host == p && cont == p {
			return true
		}
	}
	return false
}

// TestComposeAct checks the playbook workers of the Compose stack like the enricher, and compiles
// the playbook file they mount against the sinks their environment configures.
func TestComposeAct(t *testing.T) {
	f := loadCompose(t)
	a, ok := f.Services["act"]
	if !ok {
		t.Fatal("docker-compose.yml has no service act")
	}
	enr := f.Services["enricher"]
	for k := range a.Environment {
		checkActVarName(t, "docker-compose.yml act environment", k)
	}
	cfg := loadConfig(t, "docker-compose.yml act environment", a.Environment)
	enrCfg := loadConfig(t, "docker-compose.yml enricher environment", enr.Environment)

	t.Run("runs act from the enricher's image", func(t *testing.T) {
		if a.Build == nil || enr.Build == nil || *a.Build != *enr.Build || a.Image != enr.Image {
			t.Errorf("act image %q build %+v; want the enricher's (%q, %+v)", a.Image, a.Build, enr.Image, enr.Build)
		}
		if len(a.Command) != 1 || a.Command[0] != "act" {
			t.Errorf("act command %v, want [act]", a.Command)
		}
	})
	t.Run("same Kafka, Redis and topics as the enricher", func(t *testing.T) {
		if !slices.Equal(cfg.Kafka.Brokers, enrCfg.Kafka.Brokers) || !slices.Equal(cfg.Redis.Addrs, enrCfg.Redis.Addrs) {
			t.Errorf("act brokers %v, Redis %v; the enricher uses %v, %v", cfg.Kafka.Brokers, cfg.Redis.Addrs, enrCfg.Kafka.Brokers, enrCfg.Redis.Addrs)
		}
		if cfg.Kafka.OutputTopic != enrCfg.Kafka.OutputTopic {
			t.Errorf("act consumes %s, the enricher publishes scored events to %s", cfg.Kafka.OutputTopic, enrCfg.Kafka.OutputTopic)
		}
		if !cfg.Kafka.CreateTopics {
			t.Error("THREATPIPE_KAFKA_CREATE_TOPICS should be true: the compose Kafka starts empty")
		}
		// The act's THREATPIPE_KAFKA_GROUP_ID is the enricher's (both unset): compare the groups.
		if cfg.Kafka.GroupID != enrCfg.Kafka.GroupID {
			t.Errorf("act THREATPIPE_KAFKA_GROUP_ID %s differs from the enricher's %s; the act does not use it, leave it unset", cfg.Kafka.GroupID, enrCfg.Kafka.GroupID)
		}
		checkActTopicsAndGroups(t, "docker-compose.yml act environment", cfg, sinkSetting(t, a.Environment, "THREATPIPE_SINK_KAFKA_TOPIC"))
	})
	var playbooks []byte
	t.Run("playbook file is a read-only bind mount", func(t *testing.T) {
		var mount *composeVolume
		for i, v := range a.Volumes {
			if v.Target == cfg.Act.Playbooks {
				mount = &a.Volumes[i]
			}
		}
		if mount == nil || !path.IsAbs(cfg.Act.Playbooks) {
			t.Fatalf("THREATPIPE_ACT_PLAYBOOKS %q is not the target of a volume (%+v)", cfg.Act.Playbooks, a.Volumes)
		}
		if mount.Type != "bind" || !mount.ReadOnly {
			t.Errorf("volume %+v: want type bind, read_only true", *mount)
		}
		if !strings.HasPrefix(mount.Source, "./") {
			t.Errorf("volume source %q: want a path in the repository (./...)", mount.Source)
		}
		playbooks = readFile(t, filepath.Join(repoRoot, filepath.FromSlash(mount.Source)))
	})
	t.Run("playbooks compile against the service's sinks", func(t *testing.T) {
		if playbooks == nil {
			t.Skip("no playbook file")
		}
		checkActProcess(t, startAct(t, "docker-compose.yml act + its playbooks", a.Environment, playbooks))
		if a.Environment["THREATPIPE_SINK_EDL_ENABLED"] != "true" {
			t.Error("THREATPIPE_SINK_EDL_ENABLED is not \"true\"")
		}
	})
	t.Run("the alert topic exists before act starts", func(t *testing.T) {
		if sinkSetting(t, a.Environment, "THREATPIPE_SINK_KAFKA_ENABLED") != "true" {
			t.Skip("the Kafka alert sink is off")
		}
		// Nothing else creates it: THREATPIPE_KAFKA_CREATE_TOPICS covers the pipeline's topics, and
		// the producer does not auto-create. A one-shot service act waits for must.
		topic := sinkSetting(t, a.Environment, "THREATPIPE_SINK_KAFKA_TOPIC")
		adv := listenerAddrs(t, f.Services["kafka"].Environment["KAFKA_ADVERTISED_LISTENERS"])
		found := false
		for name, d := range a.DependsOn {
			s := f.Services[name]
			if d.Condition != "service_completed_successfully" {
				continue
			}
			args := s.Command
			if !slices.Contains(args, "--create") || !slices.Contains(args, "--if-not-exists") {
				continue
			}
			i := slices.Index(args, "--topic")
			if i < 0 || i+1 >= len(args) || args[i+1] != topic {
				continue
			}
			found = true
			if s.Restart != "no" {
				t.Errorf("service %s runs once; restart %q would rerun it forever (want \"no\")", name, s.Restart)
			}
			if d, ok := s.DependsOn["kafka"]; !ok || d.Condition != "service_healthy" {
				t.Errorf("service %s does not wait for kafka to be healthy", name)
			}
			if j := slices.Index(args, "--bootstrap-server"); j < 0 || j+1 >= len(args) ||
				!slices.ContainsFunc(adv, func(l listener) bool { return l.addr == args[j+1] }) {
				t.Errorf("service %s: --bootstrap-server is not an advertised listener of kafka (%v)", name, args)
			}
			if j := slices.Index(args, "--partitions"); j < 0 || j+1 >= len(args) || args[j+1] != strconv.Itoa(cfg.Kafka.TopicPartitions) {
				t.Errorf("service %s: want --partitions %d like the pipeline's topics (%v)", name, cfg.Kafka.TopicPartitions, args)
			}
		}
		if !found {
			t.Errorf("no service act depends on (service_completed_successfully) creates %s with kafka-topics.sh --create --if-not-exists", topic)
		}
	})
	t.Run("depends on healthy services", func(t *testing.T) {
		for _, dep := range []string{"kafka", "redis"} {
			if d, ok := a.DependsOn[dep]; !ok || d.Condition != "service_healthy" {
				t.Errorf("act depends_on %s: %+v, want condition service_healthy", dep, d)
			}
		}
		for name := range a.DependsOn {
			if _, ok := f.Services[name]; !ok {
				t.Errorf("act depends_on unknown service %s", name)
			}
		}
	})
	t.Run("ports", func(t *testing.T) {
		_, httpPort, _ := net.SplitHostPort(cfg.HTTPAddr)
		if !publishes(t, a.Ports, httpPort) {
			t.Errorf("act ports %v do not publish THREATPIPE_HTTP_ADDR's port %s (the EDL)", a.Ports, httpPort)
		}
		seen := map[string]string{}
		for name, s := range f.Services {
			for _, p := range s.Ports {
				parts := strings.Split(strings.TrimSuffix(p, "/tcp"), ":")
				host := strings.Join(parts[:len(parts)-1], ":")
				if prev, dup := seen[host]; dup {
					t.Errorf("services %s and %s both publish %s", prev, name, host)
				}
				seen[host] = name
			}
		}
	})
	t.Run("restart and stop", func(t *testing.T) {
		if a.Restart != "unless-stopped" {
			t.Errorf("act restart %q, want unless-stopped", a.Restart)
		}
		d, err := time.ParseDuration(a.StopGracePeriod)
		if err != nil || d <= cfg.Pipeline.ShutdownTimeout+5*time.Second {
			t.Errorf("act stop_grace_period %q must exceed THREATPIPE_PIPELINE_SHUTDOWN_TIMEOUT (%s) + 5s reader close", a.StopGracePeriod, cfg.Pipeline.ShutdownTimeout)
		}
		if a.Healthcheck != nil {
			t.Error("act has a healthcheck, but the distroless image has no shell or HTTP client to run one")
		}
	})
}

// TestComposeEveryRole: the stack runs every role, wired to each other: the simulator answers the
// enricher's providers (with a key it accepts), the view reads what the enricher and act write
// and is published on the host, and a producer feeds the enricher's input topic.
func TestComposeEveryRole(t *testing.T) {
	f := loadCompose(t)
	for _, name := range []string{"kafka", "redis", "kafka-topics", "sim", "enricher", "act", "view", "producer"} {
		if _, ok := f.Services[name]; !ok {
			t.Fatalf("docker-compose.yml has no service %q", name)
		}
	}
	enr, sim, vw, prod := f.Services["enricher"], f.Services["sim"], f.Services["view"], f.Services["producer"]
	roles := map[string]string{"sim": "sim", "enricher": "enrich", "act": "act", "view": "view", "producer": "produce"}
	for name, cmd := range roles {
		s := f.Services[name]
		if s.Build == nil || *s.Build != *enr.Build || len(s.Command) == 0 || s.Command[0] != cmd {
			t.Errorf("service %s: build %+v command %v; want the enricher's build and command %s", name, s.Build, s.Command, cmd)
		}
		for k := range s.Environment {
			checkActVarName(t, "docker-compose.yml "+name+" environment", k)
		}
	}
	enrCfg := loadConfig(t, "enricher environment", enr.Environment)

	t.Run("the simulator answers the enricher's providers", func(t *testing.T) {
		addr, keys := "127.0.0.1:8090", "sim-key"
		for i := 1; i < len(sim.Command)-1; i++ {
			switch sim.Command[i] {
			case "--addr":
				addr = sim.Command[i+1]
			case "--keys":
				keys = sim.Command[i+1]
			}
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil || (host != "0.0.0.0" && host != "") {
			t.Fatalf("sim --addr %q: want 0.0.0.0:PORT, reachable from the other containers", addr)
		}
		if d, ok := enr.DependsOn["sim"]; !ok || d.Condition != "service_started" {
			t.Errorf("enricher depends_on sim: %+v, want service_started", d)
		}
		names := 0
		for k, v := range enr.Environment {
			p, ok := strings.CutSuffix(strings.TrimPrefix(k, "THREATPIPE_"), "_BASE_URL")
			if !ok {
				continue
			}
			names++
			name := strings.ToLower(p)
			if want := "http://sim:" + port + "/" + name; v != want {
				t.Errorf("%s=%s, want %s (the simulator serves each provider under /<name>)", k, v, want)
			}
			if key := enr.Environment["THREATPIPE_"+p+"_API_KEY"]; key == "" || !slices.Contains(strings.Split(keys, ","), key) {
				t.Errorf("THREATPIPE_%s_API_KEY %q is not a key the simulator accepts (--keys %s)", p, key, keys)
			}
		}
		if names == 0 || enr.Environment["THREATPIPE_CRIMINALIP_BASE_URL"] == "" {
			t.Error("the enricher points no provider (Criminal IP at least) at the simulator: every event would score 0")
		}
		env := map[string]string{}
		for k, v := range enr.Environment {
			env[k] = v
		}
		checkEnricherProviders(t, "docker-compose.yml enricher", env, []string{"criminalip", "abuseipdb", "greynoise", "otx"})
	})
	t.Run("the view reads the pipeline and is published", func(t *testing.T) {
		cfg := loadConfig(t, "view environment", vw.Environment)
		if _, err := view.LoadConfig(environ(vw.Environment)); err != nil {
			t.Errorf("view.LoadConfig rejects the view's environment: %v", err)
		}
		if cfg.Kafka.OutputTopic != enrCfg.Kafka.OutputTopic || !slices.Equal(cfg.Kafka.Brokers, enrCfg.Kafka.Brokers) || !slices.Equal(cfg.Redis.Addrs, enrCfg.Redis.Addrs) {
			t.Errorf("view reads %s on %v (Redis %v); the enricher writes %s on %v (Redis %v)", cfg.Kafka.OutputTopic, cfg.Kafka.Brokers, cfg.Redis.Addrs,
				enrCfg.Kafka.OutputTopic, enrCfg.Kafka.Brokers, enrCfg.Redis.Addrs)
		}
		checkListensBeyondLoopback(t, "docker-compose.yml view", cfg.HTTPAddr)
		checkComposeViewAnonymousRead(t, f, vw)
		_, p, _ := net.SplitHostPort(cfg.HTTPAddr)
		if !publishes(t, vw.Ports, p) {
			t.Errorf("view ports %v do not publish THREATPIPE_HTTP_ADDR's port %s", vw.Ports, p)
		}
		for _, dep := range []string{"kafka", "redis"} {
			if d, ok := vw.DependsOn[dep]; !ok || d.Condition != "service_healthy" {
				t.Errorf("view depends_on %s: %+v, want service_healthy", dep, d)
			}
		}
		d, err := time.ParseDuration(vw.StopGracePeriod)
		if err != nil || d <= cfg.Pipeline.ShutdownTimeout+5*time.Second {
			t.Errorf("view stop_grace_period %q must exceed THREATPIPE_PIPELINE_SHUTDOWN_TIMEOUT + 5s", vw.StopGracePeriod)
		}
	})
	t.Run("the producer feeds the enricher", func(t *testing.T) {
		cfg := loadConfig(t, "producer environment", prod.Environment)
		if !slices.Equal(cfg.Kafka.Brokers, enrCfg.Kafka.Brokers) {
			t.Errorf("producer brokers %v, the enricher's %v", cfg.Kafka.Brokers, enrCfg.Kafka.Brokers)
		}
		topic := cfg.Kafka.InputTopic
		if i := slices.Index(prod.Command, "--topic"); i >= 0 && i+1 < len(prod.Command) {
			topic = prod.Command[i+1]
		}
		if topic != enrCfg.Kafka.InputTopic {
			t.Errorf("producer publishes to %s, the enricher consumes %s", topic, enrCfg.Kafka.InputTopic)
		}
		file := prod.Command[len(prod.Command)-1]
		found := false
		for _, v := range prod.Volumes {
			if v.Target == file {
				found = true
				if _, err := os.Stat(filepath.Join(repoRoot, filepath.FromSlash(v.Source))); err != nil || !v.ReadOnly {
					t.Errorf("producer volume %+v: %v (want an existing file, read_only)", v, err)
				}
			}
		}
		if !found {
			t.Errorf("producer reads %s, which no volume mounts", file)
		}
		if prod.Restart != "no" {
			t.Errorf("producer restart %q: it runs once (want \"no\")", prod.Restart)
		}
	})
}

// checkComposeViewAnonymousRead: the compose view lets the host's browser read without sign-in.
// It arrives through the published port from the default network's gateway, not from loopback,
// so THREATPIPE_VIEW_ANONYMOUS_READ_CIDRS must cover the network's fixed subnet; and the port is
// published on loopback only, so nobody off the host gets that access.
func checkComposeViewAnonymousRead(t *testing.T, f *composeFile, vw composeService) {
	t.Helper()
	c, err := auth.LoadConfig(environ(vw.Environment))
	if err != nil {
		t.Fatalf("auth.LoadConfig rejects the view's environment: %v", err)
	}
	nets, err := c.AnonymousReadNets()
	if err != nil || len(nets) == 0 {
		t.Fatalf("THREATPIPE_VIEW_ANONYMOUS_READ_CIDRS %q: %v; want the compose network's range", c.AnonymousReadCIDRs, err)
	}
	def := f.Networks["default"].IPAM.Config
	if len(def) == 0 {
		t.Fatal("the default network has no fixed subnet (networks.default.ipam.config) for the view's anonymous read")
	}
	for _, cfg := range def {
		sub, err := netip.ParsePrefix(cfg.Subnet)
		if err != nil {
			t.Fatalf("networks.default subnet %q: %v", cfg.Subnet, err)
		}
		covered := slices.ContainsFunc(nets, func(p netip.Prefix) bool { return p.Bits() <= sub.Bits() && p.Contains(sub.Addr()) })
		if !covered {
			t.Errorf("THREATPIPE_VIEW_ANONYMOUS_READ_CIDRS %v does not cover the compose network %s: the host's browser would get 401", nets, sub)
		}
	}
	for _, p := range vw.Ports {
		if !strings.HasPrefix(p, "127.0.0.1:") {
			t.Errorf("view port %q: publish it on 127.0.0.1 only, since the compose network reads anonymously", p)
		}
	}
}
