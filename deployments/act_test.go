package deployments

import (
	"context"
	"io"
	"net/http"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/telemetry"
	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/all"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

// The playbook workers (threatpipe act) in the Kubernetes manifests and the Compose stack. Besides
// the checks every Deployment gets, their playbook files are compiled as cmd/threatpipe/act.go
// compiles them: against the sinks sinks.Load builds from the very environment the manifests
// give the process, so a step naming a sink the manifests do not configure fails here instead
// of at start-up in production.

// knownActVars are the variables `threatpipe act` reads: pipeline/config's and every sink's.
func knownActVars() map[string]config.Var {
	m := knownVars()
	for _, r := range all.Registrations() {
		for _, v := range r.Vars() {
			m[v.Name] = v
		}
	}
	return m
}

// checkActVarName fails when name has the THREATPIPE_ prefix but is neither a variable of
// pipeline/config nor of a sink.
func checkActVarName(t *testing.T, where, name string) {
	t.Helper()
	if !strings.HasPrefix(name, config.Prefix) {
		return
	}
	if _, ok := knownActVars()[name]; !ok {
		t.Errorf("%s sets %s, which is not a threatpipe or sink variable (see docs/configuration.md)", where, name)
	}
}

// sinkSetting is a sink variable's value in env, or its default.
func sinkSetting(t *testing.T, env map[string]string, name string) string {
	t.Helper()
	if v, ok := env[name]; ok {
		return v
	}
	v, ok := knownActVars()[name]
	if !ok {
		t.Fatalf("%s is not a sink variable", name)
	}
	return v.Default
}

// loadSinks builds the sinks an act process with env builds (cmd/threatpipe/act.go), registering
// their pages on mux. Produce is a no-op: nothing is sent.
func loadSinks(env map[string]string, mux *http.ServeMux) (map[string]sinks.Sink, error) {
	return sinks.Load(all.Registrations(), environ(env), sinks.Deps{
		HTTPClient: sinkhttp.NewHTTPClient(), Log: zap.NewNop(), Mux: mux,
		Produce: func(context.Context, string, string, []byte) error { return nil },
	})
}

// actProcess is what `threatpipe act` has built from its environment when it starts consuming:
// the configuration, the sinks (their pages served by a real telemetry server, next to /healthz,
// /readyz and /metrics) and the compiled playbooks.
type actProcess struct {
	where string
	env   map[string]string
	cfg   *config.Config
	sinks map[string]sinks.Sink
	set   *act.Set
	base  string // http://host:port of the telemetry server
}

// startAct builds an actProcess from env and the playbook file's content, failing the test with
// every problem config.Load, sinks.Load or act.Parse reports.
func startAct(t *testing.T, where string, env map[string]string, playbooks []byte) *actProcess {
	t.Helper()
	cfg := loadConfig(t, where, env)
	srv, err := telemetry.NewServer("127.0.0.1:0", telemetry.NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	configured, loadErr := loadSinks(env, srv.Mux())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("telemetry server: %v", err)
		}
	})
	if loadErr != nil {
		t.Fatalf("%s: sinks.Load rejects the sink settings:\n%v", where, loadErr)
	}
	set, err := act.Parse(playbooks, configured)
	if err != nil {
		t.Fatalf("%s: the playbooks do not compile against the sinks this environment configures (%s):\n%v",
			where, fmtList(sortedKeys(configured)), err)
	}
	return &actProcess{where: where, env: env, cfg: cfg, sinks: configured, set: set, base: "http://" + srv.Addr()}
}

// checkActProcess: every playbook step can run, every block sink serves a purpose, and the EDL is
// served on THREATPIPE_HTTP_ADDR's server, where the probes and the Service point.
func checkActProcess(t *testing.T, p *actProcess) {
	t.Helper()
	t.Run("every action kind the playbooks use is consumed", func(t *testing.T) {
		runs := 0
		for _, k := range []sinks.Kind{sinks.KindBlock, sinks.KindAlert, sinks.KindTicket} {
			if !p.set.Uses(k) {
				continue
			}
			if !slices.Contains(p.cfg.Act.Kinds, string(k)) {
				t.Errorf("%s: playbook steps %s, but THREATPIPE_ACT_KINDS %v leaves %s out: they would never run", p.where, k, p.cfg.Act.Kinds, k)
				continue
			}
			runs++
		}
		if runs == 0 {
			t.Errorf("%s: no kind of THREATPIPE_ACT_KINDS %v is used by a playbook step: act refuses to start", p.where, p.cfg.Act.Kinds)
		}
	})
	t.Run("every block sink is used by a live step", func(t *testing.T) {
		live := map[string]bool{}
		for _, pb := range p.set.Playbooks {
			for _, st := range pb.Steps {
				live[st.Sink.Name()] = live[st.Sink.Name()] || !pb.DryRun
			}
		}
		for name, s := range p.sinks {
			if s.Kind() == sinks.KindBlock && !live[name] {
				t.Errorf("%s: block sink %s is on but no playbook step (outside dry runs) blocks with it: firewalls would poll an always-empty list", p.where, name)
			}
		}
	})
	t.Run("the EDL is served next to the probes", func(t *testing.T) {
		s, ok := p.sinks["edl"]
		if !ok {
			t.Skip("the EDL sink is off")
		}
		edlPath := sinkSetting(t, p.env, "THREATPIPE_SINK_EDL_PATH")
		// The telemetry server registers "GET /healthz" and so on, which take precedence over the
		// EDL's method-less pattern instead of conflicting with it: the list would be shadowed.
		if slices.Contains([]string{"/healthz", "/readyz", "/metrics"}, edlPath) {
			t.Fatalf("%s: THREATPIPE_SINK_EDL_PATH %s is a page of the telemetry server", p.where, edlPath)
		}
		for _, page := range []string{"/healthz", "/metrics", edlPath} {
			status, _, _ := get(t, p.base+page)
			if status != http.StatusOK {
				t.Errorf("%s: GET %s answers %d, want 200", p.where, page, status)
			}
		}
		// A block made by a playbook step appears on the list the firewalls poll.
		// A routable address: every block sink refuses special-purpose ranges (documentation included).
		target := "185.220.101.7"
		if _, err := s.Do(context.Background(), &sinks.Action{Key: "tpa-deployments-test", Playbook: "test", Step: "block",
			Kind: sinks.KindBlock, Target: target, Until: time.Now().Add(time.Hour)}); err != nil {
			t.Fatalf("edl Do: %v", err)
		}
		status, ctype, body := get(t, p.base+edlPath)
		if status != http.StatusOK || !strings.HasPrefix(ctype, "text/plain") || !slices.Contains(strings.Fields(body), target) {
			t.Errorf("%s: GET %s after blocking %s: %d %q %q", p.where, edlPath, target, status, ctype, truncate(body, 200))
		}
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func get(t *testing.T, url string) (status int, contentType, body string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// checkActTopicsAndGroups: the act's topics and consumer groups are its own. config.Load checks
// each value, not that the roles keep apart: an audit topic equal to the enricher's dead-letter
// topic would mix two schemas, and a group equal to the enricher's would steal its partitions.
func checkActTopicsAndGroups(t *testing.T, where string, cfg *config.Config, alertTopic string) {
	t.Helper()
	k, a := &cfg.Kafka, &cfg.Act
	topics := map[string]string{}
	for _, tp := range []struct{ name, value string }{
		{"THREATPIPE_KAFKA_INPUT_TOPIC", k.InputTopic}, {"THREATPIPE_KAFKA_OUTPUT_TOPIC", k.OutputTopic},
		{"THREATPIPE_KAFKA_DLQ_TOPIC", k.DLQTopic}, {"THREATPIPE_KAFKA_OPS_TOPIC", k.OpsTopic},
		{"THREATPIPE_ACT_RESULTS_TOPIC", a.ResultsTopic}, {"THREATPIPE_ACT_DLQ_TOPIC", a.DLQTopic},
		{"THREATPIPE_SINK_KAFKA_TOPIC", alertTopic},
	} {
		if tp.value == "" {
			continue
		}
		if prev, dup := topics[tp.value]; dup {
			t.Errorf("%s: %s and %s are both %q", where, prev, tp.name, tp.value)
		}
		topics[tp.value] = tp.name
	}
	for _, kind := range a.Kinds {
		if g := a.GroupPrefix + "-" + kind; g == k.GroupID {
			t.Errorf("%s: the act's %s group %q is the enricher's THREATPIPE_KAFKA_GROUP_ID", where, kind, g)
		}
	}
}

// actWorkload is the act Deployment with its ConfigMaps, and the enricher to compare it with.
type actWorkload struct {
	*workload
	actCM     *corev1.ConfigMap // base/act-config-configmap.yaml
	playbooks *corev1.ConfigMap // base/act-playbooks-configmap.yaml
	enricher  *workload
}

func loadAct(t *testing.T) *actWorkload {
	t.Helper()
	ks := loadKube(t)
	if len(ks.errs) > 0 {
		t.Fatalf("manifests do not decode strictly (see TestKubernetesManifestsDecodeStrictly):\n%s", strings.Join(ks.errs, "\n"))
	}
	a := &actWorkload{
		workload: loadWorkload(t, ks, "base/act-deployment.yaml", "base/act-service.yaml", "base/act-pdb.yaml"),
		enricher: loadWorkload(t, ks, "base/enricher-deployment.yaml", "base/enricher-service.yaml", "base/enricher-pdb.yaml"),
	}
	a.actCM, _ = one[*corev1.ConfigMap](t, ks, "v1/ConfigMap", "base/act-config-configmap.yaml")
	a.playbooks, _ = one[*corev1.ConfigMap](t, ks, "v1/ConfigMap", "base/act-playbooks-configmap.yaml")
	return a
}

// playbookFile resolves THREATPIPE_ACT_PLAYBOOKS to the ConfigMap key mounted there.
func (a *actWorkload) playbookFile(t *testing.T) (key string, content []byte) {
	t.Helper()
	file := a.cfg.Act.Playbooks
	if !path.IsAbs(file) {
		t.Fatalf("THREATPIPE_ACT_PLAYBOOKS %q is not an absolute path", file)
	}
	if set, ok := a.env["THREATPIPE_ACT_PLAYBOOKS"]; !ok || set != file {
		t.Fatalf("THREATPIPE_ACT_PLAYBOOKS is not set (the default %q is relative to a working directory the image does not have)", file)
	}
	dir, base := path.Split(file)
	var mount *corev1.VolumeMount
	for i, m := range a.container.VolumeMounts {
		if path.Clean(m.MountPath) == path.Clean(dir) {
			mount = &a.container.VolumeMounts[i]
		}
	}
	if mount == nil {
		t.Fatalf("THREATPIPE_ACT_PLAYBOOKS=%s: no volumeMount at %s", file, path.Clean(dir))
	}
	if !mount.ReadOnly {
		t.Errorf("volumeMount %s must be readOnly", mount.MountPath)
	}
	if mount.SubPath != "" || mount.SubPathExpr != "" {
		t.Errorf("volumeMount %s uses a subPath: the kubelet never updates those files", mount.MountPath)
	}
	var vol *corev1.Volume
	for i, v := range a.dep.Spec.Template.Spec.Volumes {
		if v.Name == mount.Name {
			vol = &a.dep.Spec.Template.Spec.Volumes[i]
		}
	}
	if vol == nil || vol.ConfigMap == nil {
		t.Fatalf("volumeMount %s uses volume %q, which is not a configMap volume", mount.MountPath, mount.Name)
	}
	src := vol.ConfigMap
	if src.Name != a.playbooks.Name {
		t.Errorf("volume %s mounts ConfigMap %q, the playbooks are in %q", vol.Name, src.Name, a.playbooks.Name)
	}
	if src.Optional != nil && *src.Optional {
		t.Errorf("volume %s is optional: without the playbooks the pods would crash instead of waiting for them", vol.Name)
	}
	if md := src.DefaultMode; md != nil && *md&0o044 == 0 {
		t.Errorf("volume %s defaultMode %o: the nonroot user (fsGroup) cannot read the file", vol.Name, *md)
	}
	key = base
	if len(src.Items) > 0 {
		key = ""
		for _, it := range src.Items {
			if it.Path == base {
				key = it.Key
			}
		}
		if key == "" {
			t.Fatalf("THREATPIPE_ACT_PLAYBOOKS=%s: volume %s projects no file %q", file, vol.Name, base)
		}
	}
	data, ok := a.playbooks.Data[key]
	if !ok {
		t.Fatalf("THREATPIPE_ACT_PLAYBOOKS=%s: ConfigMap %s has no key %q", file, a.playbooks.Name, key)
	}
	return key, []byte(data)
}

func TestKubernetesActConfigMaps(t *testing.T) {
	a := loadAct(t)
	t.Run("keys are act variables", func(t *testing.T) {
		if len(a.actCM.Data) == 0 {
			t.Fatal("act-configmap.yaml has no data")
		}
		vars := knownActVars()
		for k := range a.actCM.Data {
			if !strings.HasPrefix(k, config.Prefix) {
				t.Errorf("act-configmap.yaml key %s is not a THREATPIPE_ variable; envFrom would pass it to the process for nothing", k)
			}
			checkActVarName(t, "act-configmap.yaml", k)
			for _, msg := range validation.IsConfigMapKey(k) {
				t.Errorf("act-configmap.yaml key %s: %s", k, msg)
			}
			if v, ok := vars[k]; ok && v.Secret {
				t.Errorf("act-configmap.yaml sets %s, a secret: put it in the Secret and set %s_FILE", k, strings.TrimSuffix(k, "_FILE"))
			}
			if _, dup := a.cm.Data[k]; dup {
				t.Errorf("act-configmap.yaml and configmap.yaml both set %s: with envFrom the later one silently wins; set it in one place", k)
			}
		}
		if len(a.actCM.BinaryData) > 0 {
			t.Error("act-configmap.yaml has binaryData; envFrom ignores it")
		}
	})
	t.Run("EDL and Kafka alert sinks are on", func(t *testing.T) {
		if a.env["THREATPIPE_SINK_EDL_ENABLED"] != "true" {
			t.Errorf("THREATPIPE_SINK_EDL_ENABLED %q, want \"true\"", a.env["THREATPIPE_SINK_EDL_ENABLED"])
		}
		if sinkSetting(t, a.env, "THREATPIPE_SINK_KAFKA_ENABLED") != "true" {
			t.Error("the Kafka alert sink is off; the playbooks alert through it")
		}
		if n := sinkSetting(t, a.env, "THREATPIPE_SINK_EDL_MAX_ENTRIES"); n == "0" {
			t.Error("THREATPIPE_SINK_EDL_MAX_ENTRIES is unlimited: a firewall with a smaller capacity would silently skip the rest")
		}
	})
	t.Run("topics and groups are the act's own", func(t *testing.T) {
		checkActTopicsAndGroups(t, "act-configmap.yaml + configmap.yaml", a.cfg, sinkSetting(t, a.env, "THREATPIPE_SINK_KAFKA_TOPIC"))
	})
	t.Run("guardrails", func(t *testing.T) {
		if a.cfg.Act.KillSwitch {
			t.Error("THREATPIPE_ACT_KILL_SWITCH is on: nothing would ever be done")
		}
		if a.cfg.Kafka.CreateTopics {
			t.Error("THREATPIPE_KAFKA_CREATE_TOPICS should be false in production manifests: topics are managed")
		}
	})
	t.Run("playbooks ConfigMap holds only the playbook file", func(t *testing.T) {
		key, _ := a.playbookFile(t)
		if len(a.playbooks.Data) != 1 || len(a.playbooks.BinaryData) != 0 {
			t.Errorf("ConfigMap %s has keys %v; want only %s", a.playbooks.Name, sortedKeys(a.playbooks.Data), key)
		}
		for k := range a.playbooks.Data {
			for _, msg := range validation.IsConfigMapKey(k) {
				t.Errorf("act-playbooks.yaml key %s: %s", k, msg)
			}
		}
	})
}

func TestKubernetesActDeployment(t *testing.T) {
	a := loadAct(t)
	c := a.container
	t.Run("env names are threatpipe variables", func(t *testing.T) {
		for _, ev := range c.Env {
			checkActVarName(t, "act-deployment.yaml env", ev.Name)
			for _, msg := range validation.IsEnvVarName(ev.Name) {
				t.Errorf("act-deployment.yaml env %s: %s", ev.Name, msg)
			}
			for _, cm := range []*corev1.ConfigMap{a.cm, a.actCM} {
				if _, dup := cm.Data[ev.Name]; dup {
					t.Errorf("act-deployment.yaml env %s is also in ConfigMap %s; set it in one place", ev.Name, cm.Name)
				}
			}
			if v, ok := knownActVars()[ev.Name]; ok && v.Secret && !strings.HasSuffix(ev.Name, "_FILE") {
				t.Errorf("act-deployment.yaml env %s passes a secret as a value; mount it and use %s_FILE", ev.Name, ev.Name)
			}
		}
	})
	t.Run("envFrom is the shared and the act ConfigMap", func(t *testing.T) {
		var got []string
		for _, src := range c.EnvFrom {
			if src.ConfigMapRef == nil || src.Prefix != "" || (src.ConfigMapRef.Optional != nil && *src.ConfigMapRef.Optional) {
				t.Errorf("envFrom %+v: want a required configMapRef without prefix", src)
				continue
			}
			got = append(got, src.ConfigMapRef.Name)
		}
		if want := []string{a.cm.Name, a.actCM.Name}; !slices.Equal(got, want) {
			t.Errorf("envFrom ConfigMaps %v, want %v (connection settings shared with the enricher, then the act's own)", got, want)
		}
	})
	t.Run("args run act", func(t *testing.T) {
		if len(c.Command) != 0 {
			t.Errorf("command %v overrides the image's ENTRYPOINT /threatpipe; use args", c.Command)
		}
		if len(c.Args) != 1 || c.Args[0] != "act" {
			t.Errorf("args %v, want [act]", c.Args)
		}
	})
	t.Run("same image as the enricher", func(t *testing.T) {
		if c.Image != a.enricher.container.Image {
			t.Errorf("image %q, the enricher runs %q: roll both out together", c.Image, a.enricher.container.Image)
		}
	})
	t.Run("playbook file is the mounted ConfigMap key", func(t *testing.T) {
		a.playbookFile(t)
	})
	t.Run("playbooks compile against the manifests' sinks", func(t *testing.T) {
		_, raw := a.playbookFile(t)
		checkActProcess(t, startAct(t, "act-deployment.yaml + act-playbooks.yaml", a.loadEnv, raw))
	})
	checkDeploymentCommon(t, a.workload, "act-deployment.yaml")
}

// sinkKeyVar is the _FILE variable a sink-* key of the Secret is for: sink-slack-webhook-url is
// THREATPIPE_SINK_SLACK_WEBHOOK_URL_FILE.
func sinkKeyVar(key string) string {
	return config.Prefix + strings.ToUpper(strings.ReplaceAll(key, "-", "_")) + "_FILE"
}

func TestKubernetesActServiceAndPDB(t *testing.T) {
	a := loadAct(t)
	checkServiceAndPDB(t, a.workload)
	t.Run("selectors keep enricher and act apart", func(t *testing.T) {
		for _, c := range []struct {
			what string
			sel  labels.Selector
			own  *workload
		}{
			{"enricher Service", labels.SelectorFromSet(a.enricher.svc.Spec.Selector), a.enricher},
			{"act Service", labels.SelectorFromSet(a.svc.Spec.Selector), a.workload},
			{"enricher PodDisruptionBudget", mustSelector(t, a.enricher.pdb.Spec.Selector), a.enricher},
			{"act PodDisruptionBudget", mustSelector(t, a.pdb.Spec.Selector), a.workload},
			{"enricher Deployment", mustSelector(t, a.enricher.dep.Spec.Selector), a.enricher},
			{"act Deployment", mustSelector(t, a.dep.Spec.Selector), a.workload},
		} {
			for _, other := range []*workload{a.enricher, a.workload} {
				if other != c.own && c.sel.Matches(other.podLabels()) {
					t.Errorf("the %s selector %s also selects the pods of %s", c.what, c.sel, other.dep.Name)
				}
			}
		}
	})
	t.Run("the Service serves the EDL", func(t *testing.T) {
		if a.env["THREATPIPE_SINK_EDL_ENABLED"] != "true" {
			t.Skip("the EDL is off")
		}
		// The EDL is a page of the THREATPIPE_HTTP_ADDR server, whose port the Service exposes
		// (checked above); here, that polls reach a replica that holds the list.
		if a.svc.Spec.SessionAffinity != corev1.ServiceAffinityClientIP {
			t.Errorf("sessionAffinity %q: want ClientIP, so a firewall keeps polling one replica (Last-Modified differs between replicas)", a.svc.Spec.SessionAffinity)
		}
		if a.svc.Spec.PublishNotReadyAddresses {
			t.Error("publishNotReadyAddresses sends polls to replicas that are starting or draining")
		}
	})
}

func mustSelector(t *testing.T, s *metav1.LabelSelector) labels.Selector {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil || sel.Empty() {
		t.Fatalf("selector %v: %v (empty)", s, err)
	}
	return sel
}

func TestKubernetesSecretExampleSinkKeys(t *testing.T) {
	a := loadAct(t)
	n := 0
	for k, v := range a.secret.StringData {
		if !strings.HasPrefix(k, "sink-") {
			continue
		}
		n++
		if v != "CHANGE-ME" {
			t.Errorf("stringData[%s] = %q, want the placeholder CHANGE-ME", k, v)
		}
		if !isSecretFileVar(sinkKeyVar(k)) {
			t.Errorf("stringData[%s]: %s is not a sink's secret _FILE variable", k, sinkKeyVar(k))
		}
	}
	// Every sink secret has its key, so the example shows how to pass each.
	for _, r := range all.Registrations() {
		for _, v := range r.Vars() {
			if !v.Secret || strings.HasSuffix(v.Name, "_FILE") {
				continue
			}
			key := "sink-" + strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(v.Name, config.Prefix+"SINK_"), "_", "-"))
			if _, ok := a.secret.StringData[key]; !ok {
				t.Errorf("secret.example.yaml has no key %s for %s", key, v.Name)
			}
		}
	}
	if n == 0 {
		t.Error("secret.example.yaml has no sink-* key")
	}
}

// TestKubernetesNoPrivilegedPods: nothing in the manifests runs privileged or in a host
// namespace, and nothing turns the nftables sink on: it needs both (README.md explains running it
// as a DaemonSet of its own on the firewall hosts).
func TestKubernetesNoPrivilegedPods(t *testing.T) {
	ks := loadKube(t)
	for _, m := range ks.manifests {
		switch obj := m.obj.(type) {
		case *appsv1.Deployment:
			t.Run(m.String(), func(t *testing.T) {
				pod := &obj.Spec.Template.Spec
				for i := range pod.Containers {
					checkSecurityContext(t, pod, &pod.Containers[i])
					for _, ev := range pod.Containers[i].Env {
						if ev.Name == "THREATPIPE_SINK_NFTABLES_ENABLED" && ev.Value != "false" {
							t.Errorf("container %s turns the nftables sink on", pod.Containers[i].Name)
						}
					}
				}
				if len(pod.InitContainers) > 0 || len(pod.EphemeralContainers) > 0 {
					t.Error("init or ephemeral containers escape the checks above")
				}
			})
		case *corev1.ConfigMap:
			if v, ok := obj.Data["THREATPIPE_SINK_NFTABLES_ENABLED"]; ok && v != "false" {
				t.Errorf("%s turns the nftables sink on", m)
			}
		}
	}
}

// TestActPlaybookCheckCatchesUnconfiguredSink proves the compile check bites: the manifests'
// sinks do not include PagerDuty, so a playbook paging through it must fail.
func TestActPlaybookCheckCatchesUnconfiguredSink(t *testing.T) {
	a := loadAct(t)
	configured, err := loadSinks(a.loadEnv, http.NewServeMux())
	if err != nil {
		t.Fatal(err)
	}
	for name, pb := range map[string]string{
		"unconfigured sink": "playbooks:\n  - name: p\n    when: score >= 80\n    steps:\n      - action: alert\n        sink: pagerduty\n",
		"wrong kind":        "playbooks:\n  - name: p\n    when: score >= 80\n    steps:\n      - action: alert\n        sink: edl\n",
		"unknown key":       "playbooks:\n  - name: p\n    when: score >= 80\n    step:\n      - action: block\n        sink: edl\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := act.Parse([]byte(pb), configured); err == nil {
				t.Errorf("act.Parse accepted %q with sinks %v", pb, sortedKeys(configured))
			}
		})
	}
	if _, err := act.Parse([]byte("playbooks:\n  - name: p\n    when: score >= 80\n    steps:\n      - action: block\n        sink: edl\n"), configured); err != nil {
		t.Errorf("a minimal EDL playbook does not compile: %v", err)
	}
}
