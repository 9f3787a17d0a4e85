package deployments

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/santhosh-tekuri/jsonschema/v6"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/view"
	"github.com/threatpipe/threatpipe/view/auth"
)

// The Helm chart itself: its values schema (without helm), and with THREATPIPE_TEST_HELM its
// lint, its renders with the default values, every ci/*.yaml and the kustomize values, and the
// values it must refuse.

const chartSchema = chartPath + "/values.schema.json"

func compileChartSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	abs, err := filepath.Abs(chartSchema)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(abs)
	if err != nil {
		t.Fatalf("%s does not compile: %v", chartSchema, err)
	}
	return s
}

// yamlToInstance decodes YAML into the generic JSON values jsonschema validates.
func yamlToInstance(t *testing.T, data []byte) any {
	t.Helper()
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// chartValueFiles are the values files the chart must accept: its defaults, the CI sets and the
// kustomize values.
func chartValueFiles(t *testing.T) []string {
	t.Helper()
	files := []string{chartPath + "/values.yaml", kustomizeValues}
	ci, err := filepath.Glob(chartPath + "/ci/*.yaml")
	if err != nil || len(ci) == 0 {
		t.Fatalf("no %s/ci/*.yaml: %v", chartPath, err)
	}
	return append(files, ci...)
}

func TestChartValuesSchema(t *testing.T) {
	s := compileChartSchema(t)
	for _, f := range chartValueFiles(t) {
		if err := s.Validate(yamlToInstance(t, readFile(t, f))); err != nil {
			t.Errorf("%s does not match values.schema.json: %v", f, err)
		}
	}
	t.Run("typos and wrong types fail", func(t *testing.T) {
		for name, doc := range map[string]string{
			"misspelt role key":       "enricher: {replicaCont: 2}",
			"misspelt top key":        "provider: {}",
			"misspelt provider key":   "providers: {criminalip: {dailyQuota: 100}}",
			"unknown provider":        "providers: {shodan: {enabled: true}}",
			"quota as text":           "providers: {criminalip: {quota: lots}}",
			"bad SASL mechanism":      "kafka: {sasl: {mechanism: scram}}",
			"bad Redis topology":      "redis: {topology: replicated}",
			"env not THREATPIPE_":     "config: {LOG_LEVEL: debug}",
			"env value not a string":  "enricher: {env: {THREATPIPE_PIPELINE_WORKERS: 8}}",
			"latest tag":              "image: {tag: latest}",
			"bad act kind":            "act: {kinds: [block, page]}",
			"misspelt KEDA key":       "autoscaling: {keda: {enricher: {maxReplica: 3}}}",
			"misspelt sink key":       "sinks: {slack: {webhookURL: x}}",
			"misspelt intel sink key": "sinks: {misp: {eventID: 3}}",
			"ingest replicas":         "ingest: {replicaCount: 2}",
			"ingest PDB":              "ingest: {pdb: {maxUnavailable: 1}}",
			"unknown ingest source":   "ingest: {sources: [otx]}",
			"ingest plain http":       "ingest: {misp: {url: \"http://misp.example.com\"}}",
			"bad TAXII auth":          "ingest: {taxii: {auth: oauth}}",
			"TAXII tokens as list":    "view: {taxii: {tokens: [a]}}",
			"OIDC plain http issuer":  "view: {auth: {oidc: {issuer: \"http://sso.example.com\"}}}",
			"OIDC wrong callback":     "view: {auth: {oidc: {redirectUrl: \"https://tp.example.com/callback\"}}}",
			"OIDC scopes sans openid": "view: {auth: {oidc: {scopes: [profile, email]}}}",
			"OIDC misspelt key":       "view: {auth: {oidc: {clientID: x}}}",
			"API token bad role":      "view: {auth: {apiTokens: {tokens: [{name: a, role: boss, sha256: " + strings.Repeat("a", 64) + "}]}}}",
			"API token short digest":  "view: {auth: {apiTokens: {tokens: [{name: a, role: viewer, sha256: abcd}]}}}",
			"API tokens as text":      "view: {auth: {apiTokens: {tokens: \"- {name: a}\"}}}",
			"anonymous CIDRs as text": "view: {auth: {anonymousReadCidrs: 10.0.0.0/8}}",
			"anonymous CIDR a name":   "view: {auth: {anonymousReadCidrs: [compose]}}",
			"session ttl a number":    "view: {auth: {session: {ttl: 8}}}",
		} {
			if err := s.Validate(yamlToInstance(t, []byte(doc))); err == nil {
				t.Errorf("%s: the schema accepts %q", name, doc)
			}
		}
	})
	t.Run("every object forbids unknown keys", func(t *testing.T) {
		var raw any
		if err := json.Unmarshal(readFile(t, chartSchema), &raw); err != nil {
			t.Fatal(err)
		}
		var walk func(where string, n any)
		walk = func(where string, n any) {
			m, ok := n.(map[string]any)
			if !ok {
				return
			}
			if props, ok := m["properties"].(map[string]any); ok {
				if m["additionalProperties"] != false {
					t.Errorf("%s: an object with properties but without additionalProperties: false lets typos through", or(where, "(root)"))
				}
				for k, v := range props {
					walk(where+"."+k, v)
				}
			}
			for _, k := range []string{"items", "additionalProperties"} {
				walk(where+"."+k, m[k])
			}
		}
		walk("", raw)
	})
}

// rendered is one helm template output, decoded strictly.
type rendered struct {
	name string
	ks   *kubeSet
}

func renderChart(t *testing.T, helm, name string, args ...string) *rendered {
	t.Helper()
	out, err := helmTemplate(t, helm, args...)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	ks := &kubeSet{kustomizations: map[string]*kustomization{}}
	for i, d := range splitRendered(t, out) {
		obj, ok := newObject(d.apiVersion + "/" + d.kind)
		if !ok {
			t.Errorf("%s: document %d is %s/%s, which this test cannot check strictly", name, i+1, d.apiVersion, d.kind)
			continue
		}
		if err := decodeStrict([]byte(d.text), obj); err != nil {
			t.Errorf("%s: %s %s does not decode strictly: %v", name, d.kind, d.name, err)
			continue
		}
		ks.manifests = append(ks.manifests, manifest{file: name, gvk: d.apiVersion + "/" + d.kind, name: d.name, obj: obj, raw: []byte(d.text)})
	}
	return &rendered{name: name, ks: ks}
}

// chartRenders renders the default values, every ci/*.yaml and the kustomize values.
func chartRenders(t *testing.T, helm string) []*rendered {
	t.Helper()
	rs := []*rendered{renderChart(t, helm, "default values")}
	for _, f := range chartValueFiles(t)[1:] {
		rs = append(rs, renderChart(t, helm, path.Base(f), "-f", f))
	}
	return rs
}

func TestChartLint(t *testing.T) {
	helm := helmBin(t)
	for _, f := range chartValueFiles(t) {
		cmd := exec.Command(helm, "lint", "--strict", chartPath, "-f", f)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("helm lint --strict -f %s: %v\n%s", f, err, out)
		}
	}
}

// TestChartRenders checks every render like the kustomize base: each Deployment's environment
// loads (its ConfigMaps and its secret files, with the Secret's own values when the chart makes
// it), names only documented variables, and has probes, resources and hardening; a Service, a
// PodDisruptionBudget and (when on) a NetworkPolicy go with it.
func TestChartRenders(t *testing.T) {
	helm := helmBin(t)
	for _, r := range chartRenders(t, helm) {
		t.Run(r.name, func(t *testing.T) {
			deps := 0
			for _, m := range r.ks.manifests {
				dep, ok := m.obj.(*appsv1.Deployment)
				if !ok {
					continue
				}
				deps++
				t.Run(dep.Name, func(t *testing.T) { checkRenderedDeployment(t, r, dep) })
			}
			if deps == 0 {
				t.Error("no Deployment rendered")
			}
		})
	}
}

func checkRenderedDeployment(t *testing.T, r *rendered, dep *appsv1.Deployment) {
	w := &workload{ks: r.ks, dep: dep, container: &dep.Spec.Template.Spec.Containers[0], env: map[string]string{}, loadEnv: map[string]string{}}
	role := w.container.Name
	var secret *corev1.Secret
	for _, m := range r.ks.manifests {
		switch o := m.obj.(type) {
		case *corev1.Secret:
			secret = o
		case *corev1.Service:
			if o.Name == dep.Name {
				w.svc = o
			}
		}
	}
	for _, src := range w.container.EnvFrom {
		for k, v := range configMapNamed(t, r.ks, src.ConfigMapRef.Name).Data {
			w.env[k], w.loadEnv[k] = v, v
			checkActVarName(t, "ConfigMap "+src.ConfigMapRef.Name, k)
			for _, msg := range validation.IsConfigMapKey(k) {
				t.Errorf("ConfigMap key %s: %s", k, msg)
			}
			if v, ok := knownActVars()[k]; ok && v.Secret {
				t.Errorf("ConfigMap %s sets %s, a secret", src.ConfigMapRef.Name, k)
			}
		}
	}
	mounts := map[string]*corev1.SecretVolumeSource{}
	vols := map[string]corev1.Volume{}
	for _, v := range dep.Spec.Template.Spec.Volumes {
		vols[v.Name] = v
	}
	for _, m := range w.container.VolumeMounts {
		if v, ok := vols[m.Name]; ok && v.Secret != nil {
			mounts[path.Clean(m.MountPath)] = v.Secret
		}
	}
	for _, ev := range w.container.Env {
		if !strings.HasPrefix(ev.Name, config.Prefix) {
			continue
		}
		checkActVarName(t, dep.Name+" env", ev.Name)
		w.env[ev.Name], w.loadEnv[ev.Name] = ev.Value, ev.Value
		if !strings.HasSuffix(ev.Name, "_FILE") {
			continue
		}
		if !isSecretFileVar(ev.Name) {
			t.Errorf("env %s is not the _FILE variant of a secret", ev.Name)
		}
		dir, file := path.Split(ev.Value)
		vol, ok := mounts[path.Clean(dir)]
		if !ok {
			t.Errorf("env %s=%s is in no secret mount", ev.Name, ev.Value)
			continue
		}
		key := ""
		for _, it := range vol.Items {
			if it.Path == file {
				key = it.Key
			}
		}
		if want := keyOfFileVar(ev.Name); key != want {
			t.Errorf("env %s reads Secret key %q, want %q", ev.Name, key, want)
		}
		content := standInSecret(ev.Name)
		if secret != nil && secret.Name == vol.SecretName {
			b, ok := secret.Data[key]
			if !ok {
				t.Errorf("env %s: the chart's Secret %s has no key %s", ev.Name, secret.Name, key)
			}
			content = string(b)
		}
		w.loadEnv[ev.Name] = writeTemp(t, file, content+"\n")
	}
	// TLS files from the Secrets of kafka.tls / redis.tls: mounted, and stood in by a real PEM pair.
	certPEM, keyPEM := testPEM(t)
	for k, v := range w.loadEnv {
		if !strings.HasSuffix(k, "_TLS_CA_FILE") && !strings.HasSuffix(k, "_TLS_CERT_FILE") && !strings.HasSuffix(k, "_TLS_KEY_FILE") {
			continue
		}
		dir := path.Dir(v)
		ok := false
		for _, m := range w.container.VolumeMounts {
			ok = ok || (path.Clean(m.MountPath) == dir && vols[m.Name].Secret != nil && m.ReadOnly)
		}
		if !ok {
			t.Errorf("%s=%s is in no read-only secret mount", k, v)
		}
		if strings.HasSuffix(k, "_KEY_FILE") {
			w.loadEnv[k] = writeTemp(t, "tls.key", string(keyPEM))
		} else {
			w.loadEnv[k] = writeTemp(t, "tls.crt", string(certPEM))
		}
	}
	w.cfg = loadConfig(t, dep.Name+" environment", w.loadEnv)
	switch role {
	case "enricher":
		checkEnricherProviders(t, r.name, w.loadEnv, nil)
		if r.name == "full-values.yaml" {
			checkEnricherProviders(t, r.name, w.loadEnv, []string{"criminalip", "abuseipdb", "virustotal", "greynoise", "otx", "internetdb"})
		}
	case "act":
		var pb *corev1.ConfigMap
		for _, v := range vols {
			if v.ConfigMap != nil {
				pb = configMapNamed(t, r.ks, v.ConfigMap.Name)
			}
		}
		if pb == nil {
			t.Fatal("act mounts no playbook ConfigMap")
		}
		p := startAct(t, r.name+" act", w.loadEnv, []byte(pb.Data["playbooks.yaml"]))
		// With EDL credentials the list answers 401 to checkActProcess's anonymous polls.
		if w.loadEnv["THREATPIPE_SINK_EDL_USERNAME"] == "" && w.loadEnv["THREATPIPE_SINK_EDL_TOKEN_FILE"] == "" {
			checkActProcess(t, p)
		}
	case "view":
		if _, err := view.LoadConfig(environ(w.loadEnv)); err != nil {
			t.Errorf("view.LoadConfig: %v", err)
		}
		checkTAXIIServer(t, w.loadEnv, r.name == "full-values.yaml")
		checkViewAuth(t, r, w, r.name == "full-values.yaml")
	case "ingest":
		sources := checkIngestConfig(t, r.name, w.loadEnv)
		if r.name == "full-values.yaml" && !sameStrings(sources, []string{"taxii", "misp", "threatq"}) {
			t.Errorf("full-values.yaml: ingest polls %v, want every platform", sources)
		}
		checkSingleton(t, dep)
	default:
		t.Errorf("container %s is not a role", role)
	}
	pod := &dep.Spec.Template.Spec
	t.Run("hardening, resources, probes", func(t *testing.T) {
		checkSecurityContext(t, pod, w.container)
		checkResources(t, w.container)
		for name, p := range map[string]*corev1.Probe{"/healthz": w.container.LivenessProbe, "/readyz": w.container.ReadinessProbe} {
			if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != name {
				t.Errorf("probe on %s missing", name)
			} else if port, ok := w.containerPort(p.HTTPGet.Port); !ok || port != w.httpPort(t) {
				t.Errorf("probe %s on port %s, not THREATPIPE_HTTP_ADDR's", name, p.HTTPGet.Port.String())
			}
		}
	})
	t.Run("Service, PDB and NetworkPolicy", func(t *testing.T) {
		if w.svc == nil {
			t.Fatalf("no Service %s", dep.Name)
		}
		found := map[string]bool{}
		for _, m := range r.ks.manifests {
			var sel *metav1.LabelSelector
			switch o := m.obj.(type) {
			case *corev1.Service:
				sel = &metav1.LabelSelector{MatchLabels: o.Spec.Selector}
			default:
				sel = selectorOf(m.obj)
			}
			if sel == nil {
				continue
			}
			s, err := metav1.LabelSelectorAsSelector(sel)
			if err == nil && !s.Empty() && s.Matches(w.podLabels()) {
				found[m.gvk] = true
			}
		}
		for _, gvk := range []string{"v1/Service", "policy/v1/PodDisruptionBudget", "networking.k8s.io/v1/NetworkPolicy"} {
			switch {
			case gvk == "policy/v1/PodDisruptionBudget" && role == "ingest":
				// One replica: a budget would either block node drains or allow nothing.
				if found[gvk] {
					t.Errorf("a %s selects the single ingest pod", gvk)
				}
			case !found[gvk]:
				t.Errorf("no %s selects the pods", gvk)
			}
		}
	})
}

// keyOfFileVar is the Secret key of a _FILE variable: THREATPIPE_SINK_SLACK_WEBHOOK_URL_FILE is
// sink-slack-webhook-url, THREATPIPE_CRIMINALIP_API_KEY_FILE criminalip-api-key.
func keyOfFileVar(name string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(name, config.Prefix), "_FILE"), "_", "-"))
}

// TestChartRejectsBadValues: values that would break the roll-out fail the render, naming the cause.
func TestChartRejectsBadValues(t *testing.T) {
	helm := helmBin(t)
	for name, c := range map[string]struct {
		set  []string
		want string
	}{
		"typo":                        {[]string{"enricher.replicaCont=2"}, "replicaCont"},
		"grace below the shutdown":    {[]string{"shutdownTimeout=1m"}, "terminationGracePeriodSeconds"},
		"sentinel without master":     {[]string{"redis.topology=sentinel"}, "masterName"},
		"SASL without a password":     {[]string{"kafka.sasl.mechanism=plain", "kafka.sasl.username=u"}, "kafka.sasl.password"},
		"KEDA past the partitions":    {[]string{"autoscaling.keda.enabled=true", "autoscaling.keda.enricher.maxReplicas=12"}, "partitions"},
		"Redis auth without a value":  {[]string{"redis.auth=true"}, "redis.password"},
		"sink without its secret":     {[]string{"sinks.slack.enabled=true"}, "sinks.slack.webhookUrl"},
		"intel sink without its URL":  {[]string{"sinks.misp.enabled=true", "sinks.misp.key=k"}, "sinks.misp.url"},
		"intel sink without a key":    {[]string{"sinks.misp.enabled=true", "sinks.misp.url=https://misp.example.com"}, "sinks.misp.key"},
		"ThreatQ password grant":      {[]string{"sinks.threatq.enabled=true", "sinks.threatq.url=https://tq.example.com", "sinks.threatq.clientId=c", "sinks.threatq.username=u"}, "sinks.threatq.password"},
		"ingest without sources":      {[]string{"ingest.enabled=true"}, "ingest.sources"},
		"ingest source without URL":   {[]string{"ingest.enabled=true", "ingest.sources={misp}", "ingest.misp.key=k"}, "ingest.misp.url"},
		"ingest unknown source":       {[]string{"ingest.enabled=true", "ingest.sources={otx}"}, "sources"},
		"ingest replica count":        {[]string{"ingest.replicaCount=2"}, "replicaCount"},
		"TAXII server without access": {[]string{"view.taxii.enabled=true", "view.taxii.tokens.enabled=false"}, "view.taxii"},
		"TAXII tokens without lines":  {[]string{"view.taxii.enabled=true"}, "view.taxii.tokens.lines"},
		"OIDC without a client id":    {oidcSet("clientId"), "view.auth.oidc.clientId"},
		"OIDC without redirect URL":   {oidcSet("redirectUrl"), "view.auth.oidc.redirectUrl"},
		"OIDC without groups":         {oidcSet("viewerGroups"), "viewerGroups"},
		"OIDC without client secret":  {oidcSet("clientSecret"), "view.auth.oidc.clientSecret"},
		"OIDC and anonymous networks": {append(oidcSet(""), "view.auth.anonymousReadCidrs={10.0.0.0/8}"), "view.auth.anonymousReadCidrs"},
		"OIDC client without issuer":  {[]string{"view.auth.oidc.clientId=x"}, "view.auth.oidc.issuer"},
		"API tokens without entries":  {[]string{"view.auth.apiTokens.enabled=true"}, "view.auth.apiTokens.tokens"},
	} {
		t.Run(name, func(t *testing.T) {
			var args []string
			for _, s := range c.set {
				args = append(args, "--set", s)
			}
			_, err := helmTemplate(t, helm, args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("helm template %v: %v; want a failure naming %s", c.set, err, c.want)
			}
		})
	}
}

// oidcSet is a complete view.auth.oidc for --set, without the value omit.
func oidcSet(omit string) []string {
	var out []string
	for _, kv := range []string{"issuer=https://sso.example.com/realms/soc", "clientId=threatpipe-view", "clientSecret=s",
		"redirectUrl=https://tp.example.com/auth/callback", "viewerGroups={soc}"} {
		if !strings.HasPrefix(kv, omit+"=") || omit == "" {
			out = append(out, "view.auth.oidc."+kv)
		}
	}
	return out
}

// checkViewAuth: the view's sign-in settings load and build an Authenticator (the API tokens
// file parses); full-values.yaml exercises OIDC with a client secret, API tokens and HTTPS egress
// to the provider.
func checkViewAuth(t *testing.T, r *rendered, w *workload, full bool) {
	t.Helper()
	c, err := auth.LoadConfig(environ(w.loadEnv))
	if err != nil {
		t.Fatalf("auth.LoadConfig: %v", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never contacted by New
	defer func() { _ = rdb.Close() }()
	if _, err := auth.New(c, auth.Options{Redis: rdb}); err != nil {
		t.Fatalf("auth.New: %v", err)
	}
	if !full {
		return
	}
	if !c.OIDCEnabled() || c.ClientSecret == "" || c.APITokensFile == "" || len(c.AdminGroups) == 0 {
		t.Errorf("full-values.yaml should exercise OIDC with a client secret and API tokens: %+v", c)
	}
	for _, m := range r.ks.manifests {
		if np, ok := m.obj.(*networkingv1.NetworkPolicy); ok {
			if sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector); err == nil && !sel.Empty() && sel.Matches(w.podLabels()) {
				checkNetworkPolicy(t, w, np, true) // HTTPS to the OpenID provider
			}
		}
	}
}

// TestChartSecretKeysInExample: every Secret key the chart can mount is in secret.example.yaml,
// so the kustomize users see each one.
func TestChartSecretKeysInExample(t *testing.T) {
	helm := helmBin(t)
	full := chartPath + "/ci/full-values.yaml"
	sec := &corev1.Secret{Data: map[string][]byte{}}
	for _, set := range []string{"sinks.servicenow.enabled=true", "sinks.servicenow.username=,sinks.servicenow.token=oauth-token",
		// The other grant or authentication of ThreatQ (sink and ingest) and TAXII ingest.
		"sinks.threatq.username=,sinks.threatq.clientSecret=tq-secret",
		"ingest.threatq.username=reader@example.com,ingest.threatq.password=tq-password",
		"ingest.taxii.auth=basic,ingest.taxii.username=reader,ingest.taxii.password=taxii-password"} {
		r := renderChart(t, helm, "full-values.yaml", "-f", full, "--set", set)
		s, _ := one[*corev1.Secret](t, r.ks, "v1/Secret", "")
		for k, v := range s.Data {
			sec.Data[k] = v
		}
	}
	ks := loadKube(t)
	example, _ := one[*corev1.Secret](t, ks, "v1/Secret", "secret.example.yaml")
	for k := range sec.Data {
		if _, ok := example.StringData[k]; !ok {
			t.Errorf("the chart mounts Secret key %s, which deployments/kubernetes/secret.example.yaml lacks", k)
		}
	}
	for k := range example.StringData {
		if _, ok := sec.Data[k]; !ok {
			t.Errorf("secret.example.yaml has %s, which the chart never mounts", k)
		}
	}
}

// selectorOf is the pod selector of a PodDisruptionBudget or a NetworkPolicy, nil for others.
func selectorOf(obj any) *metav1.LabelSelector {
	switch o := obj.(type) {
	case *policyv1.PodDisruptionBudget:
		return o.Spec.Selector
	case *networkingv1.NetworkPolicy:
		return &o.Spec.PodSelector
	}
	return nil
}

// testPEM is a self-signed certificate and its key, for settings that load PEM files.
func testPEM(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "threatpipe-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
}
