package deployments

import (
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
	"github.com/threatpipe/threatpipe/view"

	"go.uber.org/zap"
)

// The view, the NetworkPolicies, the providers of the enricher and the Prometheus Operator
// objects of deployments/kubernetes (rendered from the chart, see kustomize_gen_test.go).

// sharedConfigFile is the ConfigMap every role reads with envFrom, first.
const sharedConfigFile = "base/config-configmap.yaml"

// The Prometheus Operator CRDs (monitoring.coreos.com/v1) have no Go types in this module; these
// mirror the fields ours use, so strict decoding rejects anything else.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector *struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector,omitempty"`
		JobLabel  string `json:"jobLabel,omitempty"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path,omitempty"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

type prometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              obsRuleSpec `json:"spec"`
}

// obsRuleSpec is the groups of a rule file (the spec of a PrometheusRule).
type obsRuleSpec struct {
	Groups []struct {
		Name     string `json:"name"`
		Interval string `json:"interval,omitempty"`
		Rules    []struct {
			Alert       string            `json:"alert,omitempty"`
			Record      string            `json:"record,omitempty"`
			Expr        string            `json:"expr"`
			For         string            `json:"for,omitempty"`
			Labels      map[string]string `json:"labels,omitempty"`
			Annotations map[string]string `json:"annotations,omitempty"`
		} `json:"rules"`
	} `json:"groups"`
}

func loadView(t *testing.T) *workload {
	t.Helper()
	ks := loadKube(t)
	if len(ks.errs) > 0 {
		t.Fatalf("manifests do not decode strictly (see TestKubernetesManifestsDecodeStrictly):\n%s", strings.Join(ks.errs, "\n"))
	}
	return loadWorkload(t, ks, "base/view-deployment.yaml", "base/view-service.yaml", "base/view-pdb.yaml")
}

// TestKubernetesView: the prioritised view is deployed like the other roles, on the same Kafka,
// Redis and topics, with a configuration the view accepts.
func TestKubernetesView(t *testing.T) {
	v := loadView(t)
	enr := loadEnricher(t)
	c := v.container
	t.Run("args run the view", func(t *testing.T) {
		if len(c.Command) != 0 || !slices.Equal(c.Args, []string{"view"}) {
			t.Errorf("command %v args %v, want args [view]", c.Command, c.Args)
		}
		if c.Image != enr.container.Image {
			t.Errorf("image %q, the enricher runs %q", c.Image, enr.container.Image)
		}
	})
	t.Run("envFrom is the shared and the view's ConfigMap", func(t *testing.T) {
		checkEnvFrom(t, v, v.cm.Name, "threatpipe-view-config")
	})
	t.Run("env names are threatpipe variables", func(t *testing.T) {
		for k := range v.env {
			checkVarName(t, "view environment", k)
		}
		if _, err := view.LoadConfig(environ(v.loadEnv)); err != nil {
			t.Errorf("view.LoadConfig rejects the view's environment: %v", err)
		}
	})
	t.Run("reads what the enricher and act write", func(t *testing.T) {
		if v.cfg.Kafka.OutputTopic != enr.cfg.Kafka.OutputTopic || !slices.Equal(v.cfg.Kafka.Brokers, enr.cfg.Kafka.Brokers) ||
			!slices.Equal(v.cfg.Redis.Addrs, enr.cfg.Redis.Addrs) {
			t.Errorf("view reads %s on %v with Redis %v; the enricher writes %s on %v with Redis %v",
				v.cfg.Kafka.OutputTopic, v.cfg.Kafka.Brokers, v.cfg.Redis.Addrs, enr.cfg.Kafka.OutputTopic, enr.cfg.Kafka.Brokers, enr.cfg.Redis.Addrs)
		}
		vc, err := view.LoadConfig(environ(v.loadEnv))
		if err == nil && vc.GroupID == enr.cfg.Kafka.GroupID {
			t.Errorf("THREATPIPE_VIEW_GROUP_ID %s is the enricher's group", vc.GroupID)
		}
	})
	checkServiceAndPDB(t, v)
	checkDeploymentCommon(t, v, "base/view-deployment.yaml")
}

// TestKubernetesProviders: the enricher has a provider (the Secret's Criminal IP key, the bug
// that scored every event 0), and its quota is set, so the 80% quota alert can fire.
func TestKubernetesProviders(t *testing.T) {
	e := loadEnricher(t)
	checkEnricherProviders(t, "base", e.loadEnv, []string{"criminalip"})
}

// checkEnricherProviders loads the providers as the enricher does and checks that those named run
// with a quota.
func checkEnricherProviders(t *testing.T, where string, env map[string]string, want []string) {
	t.Helper()
	configured, err := enrich.Load(providers.All(), environ(env), enrich.Deps{HTTPClient: sinkhttp.NewHTTPClient(), Log: zap.NewNop()})
	if err != nil {
		t.Fatalf("%s: the providers do not load: %v", where, err)
	}
	got := map[string]*enrich.Configured{}
	for i, c := range configured {
		got[c.Provider.Name()] = &configured[i]
	}
	for _, name := range want {
		c, ok := got[name]
		if !ok {
			t.Errorf("%s: provider %s is not configured (no key file?): every event would miss its verdict", where, name)
			continue
		}
		if c.Policy.Quota <= 0 && name != "internetdb" {
			t.Errorf("%s: provider %s has no quota (THREATPIPE_%s_QUOTA): ThreatpipeProviderQuotaNearlySpent can never fire", where, name, strings.ToUpper(name))
		}
	}
}

// TestKubernetesNetworkPolicies: every Deployment has a NetworkPolicy selecting its pods that lets
// in its http port and lets out DNS, the brokers' and Redis' ports (and HTTPS for the roles that
// call providers, sinks or threat-intel platforms), and nothing selects another role's pods.
func TestKubernetesNetworkPolicies(t *testing.T) {
	roles := map[string]*workload{"enricher": loadEnricher(t), "act": loadAct(t).workload, "view": loadView(t), "ingest": loadIngest(t)}
	for role, w := range roles {
		t.Run(role, func(t *testing.T) {
			var pols []*networkingv1.NetworkPolicy
			for _, m := range w.ks.manifests {
				if np, ok := m.obj.(*networkingv1.NetworkPolicy); ok {
					sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
					if err == nil && !sel.Empty() && sel.Matches(w.podLabels()) {
						pols = append(pols, np)
					}
				}
			}
			if len(pols) != 1 {
				t.Fatalf("%d NetworkPolicies select the %s pods, want 1", len(pols), role)
			}
			checkNetworkPolicy(t, w, pols[0], role != "view")
		})
	}
}

func checkNetworkPolicy(t *testing.T, w *workload, np *networkingv1.NetworkPolicy, https bool) {
	t.Helper()
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		t.Errorf("policyTypes %v: want Ingress and Egress", np.Spec.PolicyTypes)
	}
	httpPort := w.httpPort(t)
	in := false
	for _, r := range np.Spec.Ingress {
		for _, p := range r.Ports {
			if p.Port != nil {
				if n, ok := w.containerPort(*p.Port); ok && n == httpPort {
					in = true
				}
			}
		}
	}
	if !in {
		t.Errorf("no ingress rule admits the http port %d (probes, Prometheus)", httpPort)
	}
	allows := func(port int32, proto corev1.Protocol) bool {
		for _, r := range np.Spec.Egress {
			for _, p := range r.Ports {
				pr := corev1.ProtocolTCP
				if p.Protocol != nil {
					pr = *p.Protocol
				}
				if p.Port == nil || pr != proto {
					continue
				}
				lo := p.Port.IntVal
				hi := lo
				if p.EndPort != nil {
					hi = *p.EndPort
				}
				if port >= lo && port <= hi {
					return true
				}
			}
		}
		return false
	}
	portOf := func(addr string) int32 {
		_, p, err := net.SplitHostPort(addr)
		n, err2 := strconv.Atoi(p)
		if err != nil || err2 != nil {
			t.Fatalf("address %q: no port", addr)
		}
		return int32(n)
	}
	if !allows(53, corev1.ProtocolUDP) || !allows(53, corev1.ProtocolTCP) {
		t.Error("egress does not allow DNS (53/UDP and 53/TCP)")
	}
	for _, b := range w.cfg.Kafka.Brokers {
		if !allows(portOf(b), corev1.ProtocolTCP) {
			t.Errorf("egress does not allow the broker %s", b)
		}
	}
	for _, r := range w.cfg.Redis.Addrs {
		if !allows(portOf(r), corev1.ProtocolTCP) {
			t.Errorf("egress does not allow Redis %s", r)
		}
	}
	if https && !allows(443, corev1.ProtocolTCP) {
		t.Error("egress does not allow HTTPS (443): providers and sinks are HTTPS APIs")
	}
}

// TestKEDAAct: the act's ScaledObject measures the lag of act's own groups, one trigger per kind
// it names, each a kind the act runs, on the topic that kind consumes.
func TestKEDAAct(t *testing.T) {
	a := loadAct(t)
	so := scaledObjectFor(t, a.ks, a.dep.Name)
	if so.Spec.ScaleTargetRef == nil || so.Spec.ScaleTargetRef.Name != a.dep.Name {
		t.Errorf("scaleTargetRef %+v, want %s", so.Spec.ScaleTargetRef, a.dep.Name)
	}
	if so.Spec.MinReplicaCount == nil || *so.Spec.MinReplicaCount < 2 {
		t.Errorf("minReplicaCount %v: want at least 2, so a rollout or a node loss keeps serving the EDL", deref(so.Spec.MinReplicaCount))
	}
	if len(so.Spec.Triggers) == 0 {
		t.Fatal("no trigger")
	}
	for _, tr := range so.Spec.Triggers {
		md := tr.Metadata
		kind, ok := strings.CutPrefix(md["consumerGroup"], a.cfg.Act.GroupPrefix+"-")
		if tr.Type != "kafka" || !ok || !slices.Contains(a.cfg.Act.Kinds, kind) {
			t.Errorf("trigger %s group %q is not a group of THREATPIPE_ACT_KINDS %v", tr.Type, md["consumerGroup"], a.cfg.Act.Kinds)
			continue
		}
		wantTopic := a.cfg.Kafka.OutputTopic
		if kind == "changes" {
			wantTopic = a.cfg.Kafka.ChangesTopic
		}
		if md["topic"] != wantTopic || md["bootstrapServers"] != strings.Join(a.cfg.Kafka.Brokers, ",") {
			t.Errorf("trigger for %s reads %s on %s, want %s on %v", kind, md["topic"], md["bootstrapServers"], wantTopic, a.cfg.Kafka.Brokers)
		}
		for k := range md {
			if !kafkaTriggerMetadata[k] {
				t.Errorf("kafka trigger metadata %q is not a parameter of KEDA's kafka scaler", k)
			}
		}
	}
}

// TestKubernetesMonitoring: the ServiceMonitor scrapes every role's Service on its http port, and
// the PrometheusRule holds exactly the rules of deployments/prometheus/alerts.yaml.
func TestKubernetesMonitoring(t *testing.T) {
	ks := loadKube(t)
	if len(ks.errs) > 0 {
		t.Fatalf("manifests do not decode strictly:\n%s", strings.Join(ks.errs, "\n"))
	}
	sm, _ := one[*serviceMonitor](t, ks, "monitoring.coreos.com/v1/ServiceMonitor", "")
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil || sel.Empty() {
		t.Fatalf("ServiceMonitor selector %v: %v", sm.Spec.Selector, err)
	}
	for _, w := range []*workload{loadEnricher(t), loadAct(t).workload, loadView(t), loadIngest(t)} {
		if !sel.Matches(labels.Set(w.svc.Labels)) {
			t.Errorf("the ServiceMonitor does not select Service %s (labels %v)", w.svc.Name, w.svc.Labels)
		}
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "http" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %+v: want port http, path /metrics", sm.Spec.Endpoints)
	}
	pr, _ := one[*prometheusRule](t, ks, "monitoring.coreos.com/v1/PrometheusRule", "")
	var plain obsRuleSpec
	if err := decodeStrict(readFile(t, alertsPath), &plain); err != nil {
		t.Fatalf("%s: %v", alertsPath, err)
	}
	if len(plain.Groups) == 0 || !reflect.DeepEqual(pr.Spec, plain) {
		a, _ := yaml.Marshal(pr.Spec)
		t.Errorf("the PrometheusRule's groups differ from %s:\n%s", alertsPath, truncate(string(a), 400))
	}
}
