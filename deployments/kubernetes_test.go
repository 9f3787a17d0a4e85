package deployments

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/threatpipe/threatpipe/pipeline/config"
)

// KEDA's CRDs have no Go types in this module; these mirror keda.sh/v1alpha1 (kedacore/keda
// apis/keda/v1alpha1) for the fields a ScaledObject and a TriggerAuthentication of ours may use,
// so strict decoding rejects anything else.
type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              scaledObjectSpec `json:"spec"`
}

type scaledObjectSpec struct {
	ScaleTargetRef        *scaleTarget   `json:"scaleTargetRef"`
	PollingInterval       *int32         `json:"pollingInterval,omitempty"`
	CooldownPeriod        *int32         `json:"cooldownPeriod,omitempty"`
	InitialCooldownPeriod *int32         `json:"initialCooldownPeriod,omitempty"`
	IdleReplicaCount      *int32         `json:"idleReplicaCount,omitempty"`
	MinReplicaCount       *int32         `json:"minReplicaCount,omitempty"`
	MaxReplicaCount       *int32         `json:"maxReplicaCount,omitempty"`
	Advanced              *kedaAdvanced  `json:"advanced,omitempty"`
	Triggers              []scaleTrigger `json:"triggers"`
	Fallback              *kedaFallback  `json:"fallback,omitempty"`
}

type scaleTarget struct {
	Name                   string `json:"name"`
	APIVersion             string `json:"apiVersion,omitempty"`
	Kind                   string `json:"kind,omitempty"`
	EnvSourceContainerName string `json:"envSourceContainerName,omitempty"`
}

type kedaAdvanced struct {
	HorizontalPodAutoscalerConfig *struct {
		Name     string                                         `json:"name,omitempty"`
		Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
	} `json:"horizontalPodAutoscalerConfig,omitempty"`
	RestoreToOriginalReplicaCount bool `json:"restoreToOriginalReplicaCount,omitempty"`
	ScalingModifiers              *struct {
		Formula          string `json:"formula,omitempty"`
		Target           string `json:"target,omitempty"`
		ActivationTarget string `json:"activationTarget,omitempty"`
		MetricType       string `json:"metricType,omitempty"`
	} `json:"scalingModifiers,omitempty"`
}

type kedaFallback struct {
	FailureThreshold int32 `json:"failureThreshold"`
	Replicas         int32 `json:"replicas"`
}

type scaleTrigger struct {
	Type              string            `json:"type"`
	Name              string            `json:"name,omitempty"`
	UseCachedMetrics  bool              `json:"useCachedMetrics,omitempty"`
	Metadata          map[string]string `json:"metadata"`
	AuthenticationRef *struct {
		Name string `json:"name"`
		Kind string `json:"kind,omitempty"`
	} `json:"authenticationRef,omitempty"`
	MetricType string `json:"metricType,omitempty"`
}

type triggerAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretTargetRef    []authTargetRef `json:"secretTargetRef,omitempty"`
		ConfigMapTargetRef []authTargetRef `json:"configMapTargetRef,omitempty"`
		Env                []struct {
			Parameter     string `json:"parameter"`
			Name          string `json:"name"`
			ContainerName string `json:"containerName,omitempty"`
		} `json:"env,omitempty"`
	} `json:"spec"`
}

type authTargetRef struct {
	Parameter string `json:"parameter"`
	Name      string `json:"name"`
	Key       string `json:"key"`
}

// kafkaTriggerMetadata are the metadata keys of KEDA's kafka scaler (keda.sh/docs/2.17
// scalers/apache-kafka), so a misspelt key (consumergroup, lagTreshold) fails.
var kafkaTriggerMetadata = map[string]bool{
	"bootstrapServers": true, "consumerGroup": true, "topic": true, "lagThreshold": true,
	"activationLagThreshold": true, "offsetResetPolicy": true, "allowIdleConsumers": true,
	"scaleToZeroOnInvalidOffset": true, "excludePersistentLag": true, "limitToPartitionsWithLag": true,
	"ensureEvenDistributionOfPartitions": true, "version": true, "partitionLimitation": true,
	"sasl": true, "saslTokenProvider": true, "tls": true, "unsafeSsl": true, "awsRegion": true,
}

// kafkaAuthParameters are the TriggerAuthentication parameters of KEDA's kafka scaler.
var kafkaAuthParameters = map[string]bool{
	"sasl": true, "saslTokenProvider": true, "username": true, "password": true, "tls": true,
	"ca": true, "cert": true, "key": true, "keyPassword": true, "keytab": true, "realm": true,
	"kerberosConfig": true, "kerberosServiceName": true, "kerberosDisableFAST": true,
	"oauthTokenEndpointUri": true, "scopes": true, "oauthExtensions": true,
	"awsRoleArn": true, "awsAccessKeyID": true, "awsSecretAccessKey": true,
}

// kustomization models the kustomize.config.k8s.io/v1beta1 fields these manifests use.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace,omitempty"`
	Resources  []string `json:"resources"`
	Patches    []struct {
		Path   string       `json:"path,omitempty"`
		Patch  string       `json:"patch,omitempty"`
		Target *patchTarget `json:"target,omitempty"`
	} `json:"patches,omitempty"`
}

// patchTarget selects the objects a kustomize patch applies to.
type patchTarget struct {
	Group              string `json:"group,omitempty"`
	Version            string `json:"version,omitempty"`
	Kind               string `json:"kind,omitempty"`
	Name               string `json:"name,omitempty"`
	Namespace          string `json:"namespace,omitempty"`
	LabelSelector      string `json:"labelSelector,omitempty"`
	AnnotationSelector string `json:"annotationSelector,omitempty"`
}

// jsonPatchOp is one RFC 6902 operation of an inline kustomize patch.
type jsonPatchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	From  string          `json:"from,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
}

// manifest is one decoded YAML document.
type manifest struct {
	file string // relative to kubernetes/
	gvk  string // apiVersion/kind
	name string
	obj  any
	raw  []byte
}

func (m manifest) String() string { return fmt.Sprintf("%s (%s %s)", m.file, m.gvk, m.name) }

// newObject returns the typed object a document of apiVersion/kind decodes into.
func newObject(gvk string) (any, bool) {
	switch gvk {
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, true
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, true
	case "v1/Secret":
		return &corev1.Secret{}, true
	case "v1/Service":
		return &corev1.Service{}, true
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, true
	case "keda.sh/v1alpha1/ScaledObject":
		return &scaledObject{}, true
	case "keda.sh/v1alpha1/TriggerAuthentication":
		return &triggerAuthentication{}, true
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, true
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &serviceMonitor{}, true
	case "monitoring.coreos.com/v1/PrometheusRule":
		return &prometheusRule{}, true
	}
	return nil, false
}

// kubeSet is everything under deployments/kubernetes, decoded.
type kubeSet struct {
	manifests      []manifest
	kustomizations map[string]*kustomization // by directory, relative to kubernetes/ ("." is the base)
	errs           []string                  // decode problems, one per file or document
}

func loadKube(t *testing.T) *kubeSet {
	t.Helper()
	ks := &kubeSet{kustomizations: map[string]*kustomization{}}
	for _, rel := range yamlFiles(t, kubeDir) {
		data := readFile(t, filepath.Join(kubeDir, rel))
		if path.Base(rel) == "kustomization.yaml" || path.Base(rel) == "kustomization.yml" {
			var k kustomization
			if err := decodeStrict(data, &k); err != nil {
				ks.errs = append(ks.errs, fmt.Sprintf("%s: %v", rel, err))
				continue
			}
			ks.kustomizations[path.Dir(rel)] = &k
			continue
		}
		docs, err := splitDocuments(data)
		if err != nil {
			ks.errs = append(ks.errs, fmt.Sprintf("%s: not YAML: %v", rel, err))
			continue
		}
		if len(docs) == 0 {
			ks.errs = append(ks.errs, fmt.Sprintf("%s: holds no document", rel))
		}
		for i, doc := range docs {
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				ks.errs = append(ks.errs, fmt.Sprintf("%s document %d: %v", rel, i+1, err))
				continue
			}
			gvk := tm.APIVersion + "/" + tm.Kind
			obj, ok := newObject(gvk)
			if !ok {
				ks.errs = append(ks.errs, fmt.Sprintf("%s document %d: apiVersion %q kind %q is not one this test knows how to check strictly", rel, i+1, tm.APIVersion, tm.Kind))
				continue
			}
			if err := decodeStrict(doc, obj); err != nil {
				ks.errs = append(ks.errs, fmt.Sprintf("%s document %d (%s): %v", rel, i+1, gvk, err))
				continue
			}
			name := obj.(metav1.Object).GetName()
			ks.manifests = append(ks.manifests, manifest{file: rel, gvk: gvk, name: name, obj: obj, raw: doc})
		}
	}
	return ks
}

// one returns the single manifest of gvk in file (any file when file is ""), failing otherwise.
func one[T any](t *testing.T, ks *kubeSet, gvk, file string) (T, manifest) {
	t.Helper()
	var found []manifest
	for _, m := range ks.manifests {
		if m.gvk == gvk && (file == "" || m.file == file) {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		var zero T
		t.Fatalf("want exactly one %s in %s, found %d %v", gvk, or(file, kubeDir), len(found), found)
		return zero, manifest{}
	}
	return found[0].obj.(T), found[0]
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// workload bundles a Deployment and the manifests the semantic checks compare it with.
type workload struct {
	ks        *kubeSet
	cm        *corev1.ConfigMap // base/config-configmap.yaml, the settings every workload reads
	secret    *corev1.Secret
	dep       *appsv1.Deployment
	svc       *corev1.Service
	pdb       *policyv1.PodDisruptionBudget
	container *corev1.Container
	env       map[string]string // ConfigMap data + the container's literal env, _FILE paths as written
	loadEnv   map[string]string // env as the process sees it: secret files replaced by temp files
	cfg       *config.Config    // loadEnv loaded by config.Load
	singleton bool              // one replica by design, no PodDisruptionBudget (ingest)
}

// loadEnricher loads the enricher: its Deployment, Service and PodDisruptionBudget in base/.
func loadEnricher(t *testing.T) *workload {
	t.Helper()
	ks := loadKube(t)
	if len(ks.errs) > 0 {
		t.Fatalf("manifests do not decode strictly (see TestKubernetesManifestsDecodeStrictly):\n%s", strings.Join(ks.errs, "\n"))
	}
	return loadWorkload(t, ks, "base/enricher-deployment.yaml", "base/enricher-service.yaml", "base/enricher-pdb.yaml")
}

// loadWorkload loads the Deployment of depFile with its Service and PodDisruptionBudget, the
// shared ConfigMap and the Secret example. Its environment is what the kubelet would build: the
// data of the ConfigMaps of envFrom in order (a later one wins), then the container's literal
// THREATPIPE_* env.
func loadWorkload(t *testing.T, ks *kubeSet, depFile, svcFile, pdbFile string) *workload {
	t.Helper()
	e := &workload{ks: ks}
	e.cm, _ = one[*corev1.ConfigMap](t, ks, "v1/ConfigMap", sharedConfigFile)
	e.secret, _ = one[*corev1.Secret](t, ks, "v1/Secret", "secret.example.yaml")
	e.dep, _ = one[*appsv1.Deployment](t, ks, "apps/v1/Deployment", depFile)
	e.svc, _ = one[*corev1.Service](t, ks, "v1/Service", svcFile)
	if pdbFile != "" { // "": a singleton without a PodDisruptionBudget (ingest)
		e.pdb, _ = one[*policyv1.PodDisruptionBudget](t, ks, "policy/v1/PodDisruptionBudget", pdbFile)
	}
	cs := e.dep.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("%s: want one container, got %d", depFile, len(cs))
	}
	e.container = &cs[0]

	e.env = map[string]string{}
	e.loadEnv = map[string]string{}
	for _, src := range e.container.EnvFrom {
		if src.ConfigMapRef == nil {
			continue
		}
		cm := configMapNamed(t, ks, src.ConfigMapRef.Name)
		for k, v := range cm.Data {
			e.env[src.Prefix+k] = v
			e.loadEnv[src.Prefix+k] = v
		}
	}
	for _, ev := range e.container.Env {
		if !strings.HasPrefix(ev.Name, config.Prefix) {
			continue
		}
		e.env[ev.Name] = ev.Value
		e.loadEnv[ev.Name] = ev.Value
		if strings.HasSuffix(ev.Name, "_FILE") && ev.ValueFrom == nil {
			// The kubelet would mount the Secret key here; stand in a file with dummy content.
			e.loadEnv[ev.Name] = writeTemp(t, path.Base(ev.Value), standInSecret(ev.Name)+"\n")
		}
	}
	e.cfg = loadConfig(t, depFile+" env (ConfigMaps + literal env)", e.loadEnv)
	return e
}

// standInSecret is the dummy content of the secret file of the _FILE variable name: well-formed
// for the secrets whose shape is checked at start-up, so that turning a sink on in the manifests
// fails these tests only for a real mistake.
func standInSecret(name string) string {
	switch name {
	case "THREATPIPE_SINK_SLACK_WEBHOOK_URL_FILE":
		return "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
	case "THREATPIPE_SINK_PAGERDUTY_ROUTING_KEY_FILE":
		return "0123456789abcdef0123456789abcdef"
	case "THREATPIPE_SINK_WEBHOOK_SECRET_FILE":
		return "dummy-signing-key-of-at-least-32-characters"
	case "THREATPIPE_VIEW_TAXII_TOKENS_FILE":
		return "dummy:" + dummySecretSHA256
	case "THREATPIPE_VIEW_TAXII_USERS_FILE":
		return "dummy:sha256:" + dummySecretSHA256
	case "THREATPIPE_VIEW_API_TOKENS_FILE":
		return "- {name: dummy, role: viewer, sha256: " + dummySecretSHA256 + "}"
	}
	return "dummy-secret"
}

const dummySecretSHA256 = "44f12bbf7c48258dd964dafe1d310d952596e640813ec4b4698bfeeac8d8f28d" // printf %s dummy-secret | sha256sum

// configMapNamed returns the ConfigMap manifest named name, failing when there is none.
func configMapNamed(t *testing.T, ks *kubeSet, name string) *corev1.ConfigMap {
	t.Helper()
	for _, m := range ks.manifests {
		if m.gvk == "v1/ConfigMap" && m.name == name {
			return m.obj.(*corev1.ConfigMap)
		}
	}
	t.Fatalf("no ConfigMap %q under %s", name, kubeDir)
	return nil
}

// podLabels are the Deployment's pod template labels.
func (e *workload) podLabels() labels.Set { return labels.Set(e.dep.Spec.Template.Labels) }

// containerPort resolves a probe or Service port (number or name) to a container port number.
func (e *workload) containerPort(p intstr.IntOrString) (int32, bool) {
	for _, cp := range e.container.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// httpPort is the port of THREATPIPE_HTTP_ADDR as the ConfigMap sets it.
func (e *workload) httpPort(t *testing.T) int32 {
	t.Helper()
	_, port, err := net.SplitHostPort(e.cfg.HTTPAddr)
	if err != nil {
		t.Fatalf("THREATPIPE_HTTP_ADDR %q: %v", e.cfg.HTTPAddr, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n == 0 {
		t.Fatalf("THREATPIPE_HTTP_ADDR %q needs a fixed port for probes and scraping", e.cfg.HTTPAddr)
	}
	return int32(n)
}

func TestKubernetesManifestsDecodeStrictly(t *testing.T) {
	ks := loadKube(t)
	for _, e := range ks.errs {
		t.Error(e)
	}
	t.Run("every file decodes", func(t *testing.T) {
		if len(ks.manifests) == 0 {
			t.Fatal("no manifest found under deployments/kubernetes")
		}
	})
	t.Run("names and labels are valid", func(t *testing.T) {
		for _, m := range ks.manifests {
			meta := m.obj.(metav1.Object)
			for _, msg := range validation.IsDNS1123Subdomain(meta.GetName()) {
				t.Errorf("%s: metadata.name %q: %s", m, meta.GetName(), msg)
			}
			if errs := validateLabels(meta.GetLabels()); errs != "" {
				t.Errorf("%s: metadata.labels: %s", m, errs)
			}
		}
	})
	t.Run("namespace-agnostic", func(t *testing.T) {
		for _, m := range ks.manifests {
			if ns := m.obj.(metav1.Object).GetNamespace(); ns != "" {
				t.Errorf("%s sets metadata.namespace %q; the manifests must apply into any namespace", m, ns)
			}
		}
		for dir, k := range ks.kustomizations {
			if k.Namespace != "" {
				t.Errorf("%s/kustomization.yaml sets namespace %q; leave that to the user's overlay", dir, k.Namespace)
			}
		}
	})
	t.Run("names unique per kind", func(t *testing.T) {
		seen := map[string]string{}
		for _, m := range ks.manifests {
			key := m.gvk + "/" + m.name
			if prev, ok := seen[key]; ok {
				t.Errorf("%s and %s both define %s %s", prev, m.file, m.gvk, m.name)
			}
			seen[key] = m.file
		}
	})
}

func validateLabels(l map[string]string) string {
	var msgs []string
	for k, v := range l {
		for _, msg := range validation.IsQualifiedName(k) {
			msgs = append(msgs, fmt.Sprintf("key %q: %s", k, msg))
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			msgs = append(msgs, fmt.Sprintf("value %q: %s", v, msg))
		}
	}
	return strings.Join(msgs, "; ")
}

func TestKustomizations(t *testing.T) {
	ks := loadKube(t)
	if len(ks.errs) > 0 {
		t.Fatalf("manifests do not decode strictly:\n%s", strings.Join(ks.errs, "\n"))
	}
	base, ok := ks.kustomizations["base"]
	if !ok {
		t.Fatal("deployments/kubernetes/base/kustomization.yaml is missing")
	}
	listed := map[string]bool{} // files reachable from any kustomization, relative to kubernetes/
	for dir, k := range ks.kustomizations {
		t.Run(dir, func(t *testing.T) {
			if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
				t.Errorf("%s/kustomization.yaml: apiVersion/kind %s/%s, want kustomize.config.k8s.io/v1beta1/Kustomization", dir, k.APIVersion, k.Kind)
			}
			if len(k.Resources) == 0 {
				t.Errorf("%s/kustomization.yaml lists no resources", dir)
			}
			for _, r := range k.Resources {
				rel := path.Clean(path.Join(dir, r))
				fi, err := os.Stat(filepath.Join(kubeDir, rel))
				switch {
				case err != nil:
					t.Errorf("%s/kustomization.yaml lists %q, which does not exist: %v", dir, r, err)
				case fi.IsDir():
					if _, ok := ks.kustomizations[rel]; !ok {
						t.Errorf("%s/kustomization.yaml lists directory %q, which has no kustomization.yaml", dir, r)
					}
				default:
					listed[rel] = true
				}
			}
			for i, p := range k.Patches {
				checkPatch(t, ks, dir, i, p.Patch, p.Path, p.Target)
			}
		})
	}
	t.Run("base has no CRD dependency", func(t *testing.T) {
		for _, r := range base.Resources {
			for _, m := range ks.manifests {
				if m.file == path.Join("base", path.Clean(r)) && !strings.Contains(m.gvk, "k8s.io") && strings.Contains(m.gvk, ".") {
					t.Errorf("the base lists %s, a custom resource: put it in an overlay such as overlays/keda", m)
				}
			}
		}
	})
	t.Run("every manifest is listed except the Secret example", func(t *testing.T) {
		for _, m := range ks.manifests {
			if m.file == "secret.example.yaml" {
				if listed[m.file] {
					t.Errorf("secret.example.yaml must not be listed in a kustomization: its placeholders would replace the real Secret")
				}
				continue
			}
			if !listed[m.file] {
				t.Errorf("%s is in no kustomization.yaml", m.file)
			}
		}
	})
}

// checkPatch checks an inline JSON 6902 patch: it targets an existing object, decodes strictly
// and every path it removes or replaces exists in that object.
func checkPatch(t *testing.T, ks *kubeSet, dir string, i int, patch, file string, target *patchTarget) {
	t.Helper()
	where := fmt.Sprintf("%s/kustomization.yaml patches[%d]", dir, i)
	if file != "" || target == nil || patch == "" {
		t.Errorf("%s: want an inline patch with a target (this test checks only those)", where)
		return
	}
	gv := target.Version
	if target.Group != "" {
		gv = target.Group + "/" + target.Version
	}
	var obj *manifest
	for j, m := range ks.manifests {
		if m.gvk == gv+"/"+target.Kind && m.name == target.Name {
			obj = &ks.manifests[j]
		}
	}
	if obj == nil {
		t.Errorf("%s: target %s %s %s matches no manifest", where, gv, target.Kind, target.Name)
		return
	}
	var ops []jsonPatchOp
	if err := decodeStrict([]byte(patch), &ops); err != nil {
		t.Errorf("%s: patch is not a JSON 6902 operation list: %v", where, err)
		return
	}
	var doc any
	if err := yaml.Unmarshal(obj.raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		switch op.Op {
		case "remove", "replace", "test":
			if !pointerExists(doc, op.Path) {
				t.Errorf("%s: %s %s: the path does not exist in %s", where, op.Op, op.Path, obj)
			}
		case "add", "move", "copy":
		default:
			t.Errorf("%s: unknown op %q", where, op.Op)
		}
	}
}

// pointerExists resolves a JSON pointer (RFC 6901) in a decoded document.
func pointerExists(doc any, ptr string) bool {
	if ptr == "" {
		return true
	}
	if !strings.HasPrefix(ptr, "/") {
		return false
	}
	cur := doc
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[tok]
			if !ok {
				return false
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(v) {
				return false
			}
			cur = v[i]
		default:
			return false
		}
	}
	return true
}

func TestKubernetesConfigMap(t *testing.T) {
	e := loadEnricher(t)
	t.Run("keys are threatpipe variables", func(t *testing.T) {
		if len(e.cm.Data) == 0 {
			t.Fatal("configmap.yaml has no data")
		}
		for k := range e.cm.Data {
			if !strings.HasPrefix(k, config.Prefix) {
				t.Errorf("configmap.yaml key %s is not a THREATPIPE_ variable; envFrom would pass it to the process for nothing", k)
			}
			checkVarName(t, "configmap.yaml", k)
			for _, msg := range validation.IsConfigMapKey(k) {
				t.Errorf("configmap.yaml key %s: %s", k, msg)
			}
		}
		if len(e.cm.BinaryData) > 0 {
			t.Error("configmap.yaml has binaryData; envFrom ignores it")
		}
	})
	t.Run("no secret in the ConfigMap", func(t *testing.T) {
		vars := knownVars()
		for k := range e.cm.Data {
			if v, ok := vars[k]; ok && v.Secret {
				t.Errorf("configmap.yaml sets %s, a secret: put it in the Secret and set %s_FILE", k, strings.TrimSuffix(k, "_FILE"))
			}
		}
	})
	t.Run("values pass config.Load", func(t *testing.T) {
		// loadEnricher already ran config.Load; check it saw the ConfigMap's values.
		if got, want := strings.Join(e.cfg.Kafka.Brokers, ","), e.cm.Data["THREATPIPE_KAFKA_BROKERS"]; want != "" && got != want {
			t.Errorf("config.Load read brokers %q, the ConfigMap has %q", got, want)
		}
	})
	t.Run("SASL and TLS example", func(t *testing.T) {
		if e.cfg.Kafka.SASLMechanism == "none" {
			t.Error("the ConfigMap should show SASL (e.g. scram-sha-512), the usual production set-up")
		}
		if e.cfg.Kafka.SASLMechanism != "none" && e.cfg.Kafka.SASLPassword.Reveal() == "" {
			t.Error("SASL is on but no password reaches the process")
		}
		if !e.cfg.Kafka.TLSEnabled {
			t.Error("the ConfigMap should enable Kafka TLS, as SASL passwords must not travel in clear")
		}
		if e.cfg.Kafka.TLSInsecure {
			t.Error("THREATPIPE_KAFKA_TLS_INSECURE_SKIP_VERIFY must not be set in the production manifests")
		}
		if e.cfg.Kafka.CreateTopics {
			t.Error("THREATPIPE_KAFKA_CREATE_TOPICS should be false in production manifests: topics are managed")
		}
	})
}

func TestKubernetesDeployment(t *testing.T) {
	e := loadEnricher(t)
	c := e.container

	t.Run("env names are threatpipe variables", func(t *testing.T) {
		for _, ev := range c.Env {
			checkVarName(t, "deployment.yaml env", ev.Name)
			for _, msg := range validation.IsEnvVarName(ev.Name) {
				t.Errorf("deployment.yaml env %s: %s", ev.Name, msg)
			}
			if _, dup := e.cm.Data[ev.Name]; dup {
				t.Errorf("deployment.yaml env %s is also in the ConfigMap; set it in one place", ev.Name)
			}
			if v, ok := knownVars()[ev.Name]; ok && v.Secret && !strings.HasSuffix(ev.Name, "_FILE") {
				t.Errorf("deployment.yaml env %s passes a secret as a value; mount it and use %s_FILE", ev.Name, ev.Name)
			}
		}
	})
	t.Run("envFrom is the shared and the enricher's ConfigMap", func(t *testing.T) {
		checkEnvFrom(t, e, e.cm.Name, "threatpipe-enricher-config")
	})
	t.Run("args run the enricher", func(t *testing.T) {
		if len(c.Command) != 0 {
			t.Errorf("command %v overrides the image's ENTRYPOINT /threatpipe; use args", c.Command)
		}
		if len(c.Args) != 1 || c.Args[0] != "enrich" {
			t.Errorf("args %v, want [enrich]", c.Args)
		}
	})
	checkDeploymentCommon(t, e, "deployment.yaml")
}

// checkDeploymentCommon checks what every threatpipe Deployment must satisfy: secrets as files,
// a versioned image, probes on THREATPIPE_HTTP_ADDR, a grace period beyond the shutdown timeout,
// hardening, resources, labels, replicas, scraping and spreading.
func checkDeploymentCommon(t *testing.T, e *workload, file string) {
	t.Helper()
	pod := &e.dep.Spec.Template.Spec
	c := e.container
	t.Run("secrets are files from the Secret", func(t *testing.T) {
		checkSecretFiles(t, e)
	})
	t.Run("image is versioned", func(t *testing.T) {
		checkImageRef(t, file, c.Image)
	})
	t.Run("container port is THREATPIPE_HTTP_ADDR's", func(t *testing.T) {
		want := e.httpPort(t)
		if p, ok := e.containerPort(intstr.FromString("http")); !ok || p != want {
			t.Errorf("container port named http is %d (found %v), THREATPIPE_HTTP_ADDR listens on %d", p, ok, want)
		}
	})
	t.Run("probes", func(t *testing.T) {
		want := e.httpPort(t)
		for _, p := range []struct {
			name  string
			probe *corev1.Probe
			path  string
		}{
			{"livenessProbe", c.LivenessProbe, "/healthz"},
			{"readinessProbe", c.ReadinessProbe, "/readyz"},
			{"startupProbe", c.StartupProbe, "/healthz"},
		} {
			if p.probe == nil || p.probe.HTTPGet == nil {
				t.Errorf("%s: missing, want httpGet %s", p.name, p.path)
				continue
			}
			if p.probe.HTTPGet.Path != p.path {
				t.Errorf("%s: path %q, want %q", p.name, p.probe.HTTPGet.Path, p.path)
			}
			if port, ok := e.containerPort(p.probe.HTTPGet.Port); !ok || port != want {
				t.Errorf("%s: port %s is not the container's http port %d", p.name, p.probe.HTTPGet.Port.String(), want)
			}
		}
		if c.LivenessProbe != nil && c.LivenessProbe.HTTPGet != nil && c.LivenessProbe.HTTPGet.Path == "/readyz" {
			t.Error("livenessProbe on /readyz would restart pods whenever Kafka or Redis is down")
		}
	})
	t.Run("grace period outlasts the shutdown timeout", func(t *testing.T) {
		// SIGTERM: drain and commit within THREATPIPE_PIPELINE_SHUTDOWN_TIMEOUT, then up to 5s
		// for the reader(s) to leave the group (closeWithin in cmd/threatpipe/enrich.go, act.go).
		need := e.cfg.Pipeline.ShutdownTimeout + 5*time.Second
		g := pod.TerminationGracePeriodSeconds
		if g == nil || time.Duration(*g)*time.Second <= need {
			t.Errorf("terminationGracePeriodSeconds %v must exceed THREATPIPE_PIPELINE_SHUTDOWN_TIMEOUT (%s) + 5s reader close", deref(g), e.cfg.Pipeline.ShutdownTimeout)
		}
	})
	t.Run("security context", func(t *testing.T) {
		checkSecurityContext(t, pod, c)
	})
	t.Run("resources", func(t *testing.T) {
		checkResources(t, c)
	})
	t.Run("selector matches template labels", func(t *testing.T) {
		sel, err := metav1.LabelSelectorAsSelector(e.dep.Spec.Selector)
		if err != nil || sel.Empty() {
			t.Fatalf("spec.selector %v: %v (empty: %v)", e.dep.Spec.Selector, err, sel == nil || sel.Empty())
		}
		if !sel.Matches(e.podLabels()) {
			t.Errorf("spec.selector %s does not match template labels %v", sel, e.podLabels())
		}
	})
	t.Run("replicas", func(t *testing.T) {
		if e.singleton {
			if e.dep.Spec.Replicas == nil || *e.dep.Spec.Replicas != 1 {
				t.Errorf("replicas %v: want exactly 1 (a singleton)", deref(e.dep.Spec.Replicas))
			}
			return
		}
		if e.dep.Spec.Replicas == nil || *e.dep.Spec.Replicas < 2 {
			t.Errorf("replicas %v: want at least 2 so a rollout or node loss keeps consuming", deref(e.dep.Spec.Replicas))
		}
		if e.dep.Spec.Replicas != nil && int(*e.dep.Spec.Replicas) > e.cfg.Kafka.TopicPartitions {
			t.Errorf("replicas %d exceed the consumed topic's partitions (THREATPIPE_KAFKA_TOPIC_PARTITIONS %d): the rest would idle", *e.dep.Spec.Replicas, e.cfg.Kafka.TopicPartitions)
		}
	})
	t.Run("prometheus annotations", func(t *testing.T) {
		a := e.dep.Spec.Template.Annotations
		if a["prometheus.io/scrape"] != "true" {
			t.Errorf("template annotation prometheus.io/scrape %q, want \"true\"", a["prometheus.io/scrape"])
		}
		if a["prometheus.io/path"] != "/metrics" {
			t.Errorf("template annotation prometheus.io/path %q, want /metrics", a["prometheus.io/path"])
		}
		if want := strconv.Itoa(int(e.httpPort(t))); a["prometheus.io/port"] != want {
			t.Errorf("template annotation prometheus.io/port %q, want %s (THREATPIPE_HTTP_ADDR)", a["prometheus.io/port"], want)
		}
	})
	t.Run("topology spread", func(t *testing.T) {
		tsc := pod.TopologySpreadConstraints
		if len(tsc) == 0 {
			t.Fatal("no topologySpreadConstraints: replicas may all land on one node or zone")
		}
		for i, s := range tsc {
			sel, err := metav1.LabelSelectorAsSelector(s.LabelSelector)
			if err != nil || sel.Empty() || !sel.Matches(e.podLabels()) {
				t.Errorf("topologySpreadConstraints[%d] labelSelector %v does not select the Deployment's pods (%v)", i, s.LabelSelector, err)
			}
			if s.MaxSkew < 1 || s.TopologyKey == "" {
				t.Errorf("topologySpreadConstraints[%d]: maxSkew %d, topologyKey %q", i, s.MaxSkew, s.TopologyKey)
			}
		}
	})
}

func deref[T any](p *T) any {
	if p == nil {
		return "unset"
	}
	return *p
}

// secretMountDir is where every Deployment mounts the Secret's required keys.
const secretMountDir = "/var/run/secrets/threatpipe"

// checkSecretFiles: every *_FILE variable points into a read-only mount of a volume of the Secret,
// at a key the Secret example holds; every such volume names the Secret and keeps its files from
// other users; the required keys are mounted at secretMountDir from a volume that is not optional.
func checkSecretFiles(t *testing.T, e *workload) {
	t.Helper()
	vols := map[string]corev1.Volume{}
	for _, v := range e.dep.Spec.Template.Spec.Volumes {
		vols[v.Name] = v
	}
	mounts := map[string]*corev1.SecretVolumeSource{} // mount path -> secret volume
	for _, m := range e.container.VolumeMounts {
		vol, ok := vols[m.Name]
		if !ok {
			t.Errorf("volumeMount %s uses volume %q, which the pod does not define", m.MountPath, m.Name)
			continue
		}
		if vol.Secret == nil {
			if m.MountPath == secretMountDir {
				t.Errorf("volumeMount %s uses volume %q, which is not a secret volume", m.MountPath, m.Name)
			}
			continue
		}
		mounts[path.Clean(m.MountPath)] = vol.Secret
		if !m.ReadOnly {
			t.Errorf("volumeMount %s must be readOnly", m.MountPath)
		}
		if m.SubPath != "" || m.SubPathExpr != "" {
			t.Errorf("volumeMount %s uses a subPath: the kubelet never updates those files", m.MountPath)
		}
		if vol.Secret.SecretName != e.secret.Name {
			t.Errorf("volume %s mounts Secret %q, the example Secret is %q", vol.Name, vol.Secret.SecretName, e.secret.Name)
		}
		if md := vol.Secret.DefaultMode; md == nil || *md&0o007 != 0 {
			t.Errorf("volume %s defaultMode %v: secret files must not be world-readable", vol.Name, deref(md))
		}
		for _, it := range vol.Secret.Items {
			if _, ok := e.secret.StringData[it.Key]; !ok {
				t.Errorf("volume %s projects Secret key %q, which secret.example.yaml does not have", vol.Name, it.Key)
			}
		}
	}
	core, ok := mounts[secretMountDir]
	if !ok {
		t.Fatalf("no secret volumeMount at %s", secretMountDir)
	}
	if core.Optional != nil && *core.Optional {
		t.Errorf("the secret volume at %s is optional: a missing Kafka or Redis password would only show up as a start-up error", secretMountDir)
	}
	files := 0
	for _, ev := range e.container.Env {
		if !strings.HasPrefix(ev.Name, config.Prefix) || !strings.HasSuffix(ev.Name, "_FILE") {
			continue
		}
		files++
		if !isSecretFileVar(ev.Name) {
			t.Errorf("env %s: %s is not a secret variable with a _FILE variant", ev.Name, strings.TrimSuffix(ev.Name, "_FILE"))
		}
		checkSecretFile(t, e, mounts, ev.Name, ev.Value)
	}
	for _, want := range []string{"THREATPIPE_KAFKA_SASL_PASSWORD_FILE", "THREATPIPE_REDIS_PASSWORD_FILE"} {
		found := false
		for _, ev := range e.container.Env {
			found = found || (ev.Name == want && path.Dir(ev.Value) == secretMountDir)
		}
		if !found {
			t.Errorf("env %s is not set to a file in %s: the password would have to be in the ConfigMap", want, secretMountDir)
		}
	}
	if files == 0 {
		t.Error("no THREATPIPE_*_FILE variable: secrets are not passed as files")
	}
}

// checkSecretFile: the file name (the value of a _FILE variable) is in one of the secret mounts
// and projects a key the Secret example holds.
func checkSecretFile(t *testing.T, e *workload, mounts map[string]*corev1.SecretVolumeSource, name, file string) {
	t.Helper()
	dir, base := path.Split(file)
	vol, ok := mounts[path.Clean(dir)]
	if !ok {
		t.Errorf("env %s=%s is not in a secret mount (%s)", name, file, fmtList(sortedKeys(mounts)))
		return
	}
	key := base
	if len(vol.Items) > 0 {
		key = ""
		for _, it := range vol.Items {
			if it.Path == base {
				key = it.Key
			}
		}
		if key == "" {
			t.Errorf("env %s=%s: the secret volume's items project no file %q", name, file, base)
			return
		}
	}
	if _, ok := e.secret.StringData[key]; !ok {
		t.Errorf("env %s reads Secret key %q, which secret.example.yaml does not have", name, key)
	}
}

// isSecretFileVar reports whether name is the _FILE variant of a secret variable of
// pipeline/config or of a sink.
func isSecretFileVar(name string) bool {
	base, ok := strings.CutSuffix(name, "_FILE")
	if !ok {
		return false
	}
	vars := knownActVars()
	if _, ok := vars[name]; ok && credentialFileVars[name] {
		return true
	}
	v, okBase := vars[base]
	_, okFile := vars[name]
	return okBase && okFile && v.Secret
}

// credentialFileVars are the _FILE variables that name a file of credentials with no variable
// holding them as a value (the TAXII server's tokens and users, the view's API tokens): they too
// come from the Secret.
var credentialFileVars = map[string]bool{
	"THREATPIPE_VIEW_TAXII_TOKENS_FILE": true,
	"THREATPIPE_VIEW_TAXII_USERS_FILE":  true,
	"THREATPIPE_VIEW_API_TOKENS_FILE":   true,
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func checkSecurityContext(t *testing.T, pod *corev1.PodSpec, c *corev1.Container) {
	t.Helper()
	psc, sc := pod.SecurityContext, c.SecurityContext
	if sc == nil {
		t.Fatal("container securityContext is missing")
	}
	nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot)
	if !nonRoot {
		t.Error("runAsNonRoot is not true")
	}
	if sc.RunAsUser != nil && *sc.RunAsUser == 0 || psc != nil && psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		t.Error("runAsUser 0 contradicts runAsNonRoot")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("readOnlyRootFilesystem is not true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("privileged is true")
	}
	if sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0 {
		t.Errorf("capabilities %+v, want drop [ALL] and no add", sc.Capabilities)
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil && psc != nil {
		seccomp = psc.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("seccompProfile %+v, want RuntimeDefault", seccomp)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken should be false: threatpipe does not call the Kubernetes API")
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Error("the pod shares a host namespace")
	}
}

func checkResources(t *testing.T, c *corev1.Container) {
	t.Helper()
	r := c.Resources
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := r.Requests[name]
		lim, okLim := r.Limits[name]
		if !okReq || req.IsZero() {
			t.Errorf("resources.requests.%s is not set", name)
		}
		if !okLim || lim.IsZero() {
			t.Errorf("resources.limits.%s is not set", name)
		}
		if okReq && okLim && req.Cmp(lim) > 0 {
			t.Errorf("resources.requests.%s %s exceeds the limit %s", name, req.String(), lim.String())
		}
	}
	for _, ev := range c.Env {
		if ev.Name != "GOMEMLIMIT" {
			continue
		}
		limit, ok := r.Limits[corev1.ResourceMemory]
		soft, err := parseGoMemLimit(ev.Value)
		if err != nil {
			t.Errorf("GOMEMLIMIT %q: %v", ev.Value, err)
		} else if ok && soft >= limit.Value() {
			t.Errorf("GOMEMLIMIT %s (%d bytes) must stay below the memory limit %s", ev.Value, soft, limit.String())
		}
	}
}

// parseGoMemLimit parses GOMEMLIMIT's syntax: a byte count with an optional B, KiB, MiB, GiB or
// TiB suffix.
func parseGoMemLimit(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil || v <= 0 {
				return 0, fmt.Errorf("not a positive byte count with a %s suffix", u.suffix)
			}
			return v * u.mult, nil
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("not a positive byte count")
	}
	return v, nil
}

// checkImageRef requires an explicit tag (or digest) other than latest.
func checkImageRef(t *testing.T, where, ref string) {
	t.Helper()
	if ref == "" {
		t.Errorf("%s: image is empty", where)
		return
	}
	if strings.Contains(ref, "@sha256:") {
		return
	}
	slash := strings.LastIndex(ref, "/")
	colon := strings.LastIndex(ref, ":")
	if colon <= slash {
		t.Errorf("%s: image %q has no tag (that means latest); pin a version", where, ref)
		return
	}
	if tag := ref[colon+1:]; tag == "latest" || tag == "" {
		t.Errorf("%s: image %q uses tag %q; pin a version", where, ref, tag)
	}
}

func TestKubernetesServiceAndPDB(t *testing.T) {
	checkServiceAndPDB(t, loadEnricher(t))
}

// checkServiceAndPDB: the workload's Service and PodDisruptionBudget select its pods, and the
// Service serves the container's http port.
func checkServiceAndPDB(t *testing.T, e *workload) {
	t.Helper()
	t.Run("service selects the pods", func(t *testing.T) {
		sel := labels.SelectorFromSet(e.svc.Spec.Selector)
		if len(e.svc.Spec.Selector) == 0 || !sel.Matches(e.podLabels()) {
			t.Errorf("service selector %v does not match the pod labels %v", e.svc.Spec.Selector, e.podLabels())
		}
	})
	t.Run("service is ClusterIP on the named http port", func(t *testing.T) {
		if e.svc.Spec.Type != corev1.ServiceTypeClusterIP && e.svc.Spec.Type != "" {
			t.Errorf("service type %s, want ClusterIP", e.svc.Spec.Type)
		}
		var http *corev1.ServicePort
		for i, p := range e.svc.Spec.Ports {
			if p.Name == "http" {
				http = &e.svc.Spec.Ports[i]
			}
		}
		if http == nil {
			t.Fatal("service has no port named http")
		}
		if http.TargetPort.Type != intstr.String {
			t.Errorf("service port http targets %s; target the container port by name", http.TargetPort.String())
		}
		if p, ok := e.containerPort(http.TargetPort); !ok || p != e.httpPort(t) {
			t.Errorf("service targetPort %s is not the container's http port %d", http.TargetPort.String(), e.httpPort(t))
		}
		if http.Port != e.httpPort(t) {
			t.Errorf("service port %d, want %d (the port the annotations and docs name)", http.Port, e.httpPort(t))
		}
	})
	t.Run("pdb", func(t *testing.T) {
		if e.singleton {
			if e.pdb != nil {
				t.Errorf("a singleton has PodDisruptionBudget %s: with one replica it blocks drains or allows nothing", e.pdb.Name)
			}
			return
		}
		if e.pdb == nil {
			t.Fatal("no PodDisruptionBudget")
		}
		if e.pdb.Spec.MaxUnavailable == nil || e.pdb.Spec.MaxUnavailable.IntValue() != 1 {
			t.Errorf("maxUnavailable %v, want 1", e.pdb.Spec.MaxUnavailable)
		}
		if e.pdb.Spec.MinAvailable != nil {
			t.Error("minAvailable would block node drains when KEDA scales down to one replica; use maxUnavailable")
		}
		sel, err := metav1.LabelSelectorAsSelector(e.pdb.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(e.podLabels()) {
			t.Errorf("pdb selector %v does not select the Deployment's pods (%v)", e.pdb.Spec.Selector, err)
		}
	})
}

func TestKubernetesSecretExample(t *testing.T) {
	e := loadEnricher(t)
	if e.secret.Name != "threatpipe-secrets" {
		t.Errorf("secret name %q, want threatpipe-secrets", e.secret.Name)
	}
	if len(e.secret.Data) > 0 {
		t.Error("secret.example.yaml has data; use stringData placeholders only")
	}
	for _, k := range []string{"kafka-sasl-password", "redis-password"} {
		if v, ok := e.secret.StringData[k]; !ok || v != "CHANGE-ME" {
			t.Errorf("stringData[%s] = %q (present %v), want the placeholder CHANGE-ME", k, v, ok)
		}
	}
	raw := string(readFile(t, filepath.Join(kubeDir, "secret.example.yaml")))
	if !strings.Contains(raw, "kubectl create secret") {
		t.Error("secret.example.yaml should say how to create the real Secret (kubectl create secret ...)")
	}
}

// checkEnvFrom: the container's envFrom is exactly the ConfigMaps named, in order, each required
// and without prefix, and no key is in two of them (with envFrom the later one silently wins).
func checkEnvFrom(t *testing.T, e *workload, want ...string) {
	t.Helper()
	var got []string
	seen := map[string]string{}
	for _, src := range e.container.EnvFrom {
		if src.ConfigMapRef == nil || src.Prefix != "" || (src.ConfigMapRef.Optional != nil && *src.ConfigMapRef.Optional) {
			t.Errorf("envFrom %+v: want a required configMapRef without prefix", src)
			continue
		}
		got = append(got, src.ConfigMapRef.Name)
		for k := range configMapNamed(t, e.ks, src.ConfigMapRef.Name).Data {
			if prev, dup := seen[k]; dup {
				t.Errorf("ConfigMaps %s and %s both set %s: with envFrom the later one silently wins", prev, src.ConfigMapRef.Name, k)
			}
			seen[k] = src.ConfigMapRef.Name
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("envFrom ConfigMaps %v, want %v", got, want)
	}
}

// scaledObjectFor returns the ScaledObject named like the Deployment (in any overlay).
func scaledObjectFor(t *testing.T, ks *kubeSet, dep string) *scaledObject {
	t.Helper()
	for _, m := range ks.manifests {
		if so, ok := m.obj.(*scaledObject); ok && so.Name == dep {
			return so
		}
	}
	t.Fatalf("no ScaledObject %s under %s", dep, kubeDir)
	return nil
}

func TestKEDA(t *testing.T) {
	e := loadEnricher(t)
	so := scaledObjectFor(t, e.ks, e.dep.Name)
	spec := &so.Spec
	t.Run("targets the Deployment", func(t *testing.T) {
		ref := spec.ScaleTargetRef
		if ref == nil || ref.Name != e.dep.Name || (ref.Kind != "" && ref.Kind != "Deployment") || (ref.APIVersion != "" && ref.APIVersion != "apps/v1") {
			t.Errorf("scaleTargetRef %+v, want Deployment %s", ref, e.dep.Name)
		}
	})
	t.Run("replica bounds", func(t *testing.T) {
		if spec.MinReplicaCount == nil || *spec.MinReplicaCount < 1 {
			t.Errorf("minReplicaCount %v: want at least 1 (at zero the group has no member and no lag to measure)", deref(spec.MinReplicaCount))
		}
		if spec.MaxReplicaCount == nil {
			t.Fatal("maxReplicaCount is unset (KEDA's default is 100)")
		}
		if int(*spec.MaxReplicaCount) > e.cfg.Kafka.TopicPartitions {
			t.Errorf("maxReplicaCount %d exceeds the input topic's partitions (%d): extra replicas would idle", *spec.MaxReplicaCount, e.cfg.Kafka.TopicPartitions)
		}
		if spec.MinReplicaCount != nil && *spec.MinReplicaCount > *spec.MaxReplicaCount {
			t.Errorf("minReplicaCount %d > maxReplicaCount %d", *spec.MinReplicaCount, *spec.MaxReplicaCount)
		}
	})
	if len(spec.Triggers) != 1 || spec.Triggers[0].Type != "kafka" {
		t.Fatalf("triggers %+v: want one of type kafka", spec.Triggers)
	}
	tr := spec.Triggers[0]
	md := tr.Metadata
	t.Run("trigger metadata keys", func(t *testing.T) {
		for k := range md {
			if !kafkaTriggerMetadata[k] {
				t.Errorf("kafka trigger metadata %q is not a parameter of KEDA's kafka scaler", k)
			}
		}
	})
	t.Run("trigger matches the ConfigMap", func(t *testing.T) {
		for _, c := range []struct{ key, got, want, variable string }{
			{"bootstrapServers", md["bootstrapServers"], strings.Join(e.cfg.Kafka.Brokers, ","), "THREATPIPE_KAFKA_BROKERS"},
			{"consumerGroup", md["consumerGroup"], e.cfg.Kafka.GroupID, "THREATPIPE_KAFKA_GROUP_ID"},
			{"topic", md["topic"], e.cfg.Kafka.InputTopic, "THREATPIPE_KAFKA_INPUT_TOPIC"},
		} {
			if c.got != c.want {
				t.Errorf("trigger %s %q differs from %s %q in the ConfigMaps", c.key, c.got, c.variable, c.want)
			}
		}
		wantSASL := map[string]string{"none": "", "plain": "plaintext", "scram-sha-256": "scram_sha256", "scram-sha-512": "scram_sha512"}[e.cfg.Kafka.SASLMechanism]
		if got := md["sasl"]; got != wantSASL && !(wantSASL == "" && got == "none") {
			t.Errorf("trigger sasl %q, want %q for THREATPIPE_KAFKA_SASL_MECHANISM=%s", got, wantSASL, e.cfg.Kafka.SASLMechanism)
		}
		if got := md["tls"] == "enable"; got != e.cfg.Kafka.TLSEnabled {
			t.Errorf("trigger tls %q but THREATPIPE_KAFKA_TLS_ENABLED=%v", md["tls"], e.cfg.Kafka.TLSEnabled)
		}
		// The enricher's reader starts a new group at the first offset (pipeline/kafkax).
		if p := md["offsetResetPolicy"]; p != "" && p != "earliest" {
			t.Errorf("offsetResetPolicy %q, but the enricher starts new groups at the earliest offset", p)
		}
		if md["allowIdleConsumers"] == "true" {
			t.Error("allowIdleConsumers true lets KEDA run more replicas than partitions")
		}
	})
	t.Run("lag threshold", func(t *testing.T) {
		n, err := strconv.Atoi(md["lagThreshold"])
		if err != nil || n <= 0 {
			t.Errorf("lagThreshold %q: want a positive integer", md["lagThreshold"])
		}
	})
	t.Run("authentication", func(t *testing.T) {
		if e.cfg.Kafka.SASLMechanism == "none" {
			return
		}
		if tr.AuthenticationRef == nil {
			t.Fatal("SASL is on but the trigger has no authenticationRef")
		}
		ta, _ := one[*triggerAuthentication](t, e.ks, "keda.sh/v1alpha1/TriggerAuthentication", "")
		if tr.AuthenticationRef.Name != ta.Name || (tr.AuthenticationRef.Kind != "" && tr.AuthenticationRef.Kind != "TriggerAuthentication") {
			t.Errorf("authenticationRef %+v does not name TriggerAuthentication %s", tr.AuthenticationRef, ta.Name)
		}
		params := map[string]bool{}
		for _, r := range ta.Spec.SecretTargetRef {
			params[r.Parameter] = true
			if r.Name != e.secret.Name {
				t.Errorf("secretTargetRef %s names Secret %q, the enricher's is %q", r.Parameter, r.Name, e.secret.Name)
			} else if _, ok := e.secret.StringData[r.Key]; !ok {
				t.Errorf("secretTargetRef %s: Secret %s has no key %q", r.Parameter, r.Name, r.Key)
			}
		}
		for _, r := range ta.Spec.ConfigMapTargetRef {
			params[r.Parameter] = true
			if r.Name != e.cm.Name {
				t.Errorf("configMapTargetRef %s names ConfigMap %q, the enricher's is %q", r.Parameter, r.Name, e.cm.Name)
			} else if _, ok := e.cm.Data[r.Key]; !ok {
				t.Errorf("configMapTargetRef %s: ConfigMap %s has no key %q", r.Parameter, r.Name, r.Key)
			}
		}
		for p := range params {
			if !kafkaAuthParameters[p] {
				t.Errorf("TriggerAuthentication parameter %q is not one of KEDA's kafka scaler", p)
			}
		}
		for _, p := range []string{"username", "password"} {
			if !params[p] {
				t.Errorf("TriggerAuthentication has no %s for SASL", p)
			}
		}
	})
	t.Run("scale-down is gradual", func(t *testing.T) {
		adv := spec.Advanced
		if adv == nil || adv.HorizontalPodAutoscalerConfig == nil || adv.HorizontalPodAutoscalerConfig.Behavior == nil ||
			adv.HorizontalPodAutoscalerConfig.Behavior.ScaleDown == nil {
			t.Error("no HPA scaleDown behavior: every replica change is a rebalance, scale down slowly")
		}
	})
}
