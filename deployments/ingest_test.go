package deployments

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/threatpipe/threatpipe/ingest"
	ingestall "github.com/threatpipe/threatpipe/ingest/all"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
	"github.com/threatpipe/threatpipe/view"
	"github.com/threatpipe/threatpipe/view/taxii"
)

// The threat-intel platform poller (threatpipe ingest) and the view's TAXII server, in the chart
// and in deployments/kubernetes/overlays/ingest. ingest runs one replica: its cursors are per
// platform, so a second replica would poll and publish the same pages.

const (
	ingestOverlay = "overlays/ingest"
	ingestDepFile = ingestOverlay + "/ingest-deployment.yaml"
	ingestSvcFile = ingestOverlay + "/ingest-service.yaml"
)

// checkIngestConfig loads the ingest role's settings as `threatpipe ingest` does and builds the
// sources it names (which contacts nothing), returning their names.
func checkIngestConfig(t *testing.T, where string, env map[string]string) []string {
	t.Helper()
	regs := ingestall.Registrations()
	cfg, err := ingest.LoadConfig(environ(env), ingest.Names(regs))
	if err != nil {
		t.Fatalf("%s: ingest.LoadConfig rejects the ingest settings:\n%v", where, err)
	}
	if _, err := ingest.Build(regs, cfg, environ(env), sinkhttp.NewHTTPClient()); err != nil {
		t.Fatalf("%s: the ingest sources do not build:\n%v", where, err)
	}
	return cfg.Sources
}

// checkSingleton: one replica, replaced with strategy Recreate (never two pollers at once).
func checkSingleton(t *testing.T, dep *appsv1.Deployment) {
	t.Helper()
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 1 {
		t.Errorf("%s: replicas %v, want 1: two replicas would poll the same pages", dep.Name, deref(dep.Spec.Replicas))
	}
	if dep.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType || dep.Spec.Strategy.RollingUpdate != nil {
		t.Errorf("%s: strategy %+v, want Recreate: a rolling update runs the old and the new poller together", dep.Name, dep.Spec.Strategy)
	}
}

// checkTAXIIServer loads the TAXII server's settings and credential files as `threatpipe view`
// does; on says the render turns it on.
func checkTAXIIServer(t *testing.T, env map[string]string, on bool) {
	t.Helper()
	tc, err := view.LoadTAXIIConfig(environ(env))
	if err != nil {
		t.Fatalf("view.LoadTAXIIConfig: %v", err)
	}
	if tc.Enabled != on {
		t.Errorf("THREATPIPE_VIEW_TAXII_ENABLED %v, want %v", tc.Enabled, on)
	}
	if !tc.Enabled {
		return
	}
	auth, err := taxii.NewAuth(tc.UsersFile, tc.TokensFile, tc.AllowAnonymousLoopback)
	if err != nil {
		t.Fatalf("the TAXII credential files do not load: %v", err)
	}
	if auth.Empty() {
		t.Error("the TAXII server is on but its files list nobody")
	}
	if on && (tc.TokensFile == "" || tc.UsersFile == "") {
		t.Errorf("tokens file %q, users file %q: full-values.yaml should exercise both", tc.TokensFile, tc.UsersFile)
	}
}

func loadIngest(t *testing.T) *workload {
	t.Helper()
	ks := loadKube(t)
	if len(ks.errs) > 0 {
		t.Fatalf("manifests do not decode strictly (see TestKubernetesManifestsDecodeStrictly):\n%s", strings.Join(ks.errs, "\n"))
	}
	w := loadWorkload(t, ks, ingestDepFile, ingestSvcFile, "")
	w.singleton = true
	return w
}

// TestKubernetesIngest: overlays/ingest runs threatpipe ingest from the same image on the same
// Kafka, Redis and input topic as the enricher, as one replica without a PodDisruptionBudget,
// with settings ingest accepts; the base does not run it.
func TestKubernetesIngest(t *testing.T) {
	w := loadIngest(t)
	enr := loadEnricher(t)
	c := w.container
	t.Run("args run ingest", func(t *testing.T) {
		if len(c.Command) != 0 || !slices.Equal(c.Args, []string{"ingest"}) {
			t.Errorf("command %v args %v, want args [ingest]", c.Command, c.Args)
		}
		if c.Image != enr.container.Image {
			t.Errorf("image %q, the enricher runs %q", c.Image, enr.container.Image)
		}
	})
	t.Run("envFrom is the shared and the ingest ConfigMap", func(t *testing.T) {
		checkEnvFrom(t, w, w.cm.Name, "threatpipe-ingest-config")
	})
	t.Run("env names are threatpipe variables", func(t *testing.T) {
		for k := range w.env {
			checkVarName(t, "ingest environment", k)
			if v, ok := knownVars()[k]; ok && v.Secret && !strings.HasSuffix(k, "_FILE") {
				t.Errorf("ingest environment sets %s, a secret: mount it and use %s_FILE", k, k)
			}
		}
		checkIngestConfig(t, ingestDepFile, w.loadEnv)
	})
	t.Run("publishes what the enricher consumes", func(t *testing.T) {
		if w.cfg.Kafka.InputTopic != enr.cfg.Kafka.InputTopic || !slices.Equal(w.cfg.Kafka.Brokers, enr.cfg.Kafka.Brokers) ||
			!slices.Equal(w.cfg.Redis.Addrs, enr.cfg.Redis.Addrs) {
			t.Errorf("ingest writes %s on %v with Redis %v; the enricher reads %s on %v with Redis %v",
				w.cfg.Kafka.InputTopic, w.cfg.Kafka.Brokers, w.cfg.Redis.Addrs, enr.cfg.Kafka.InputTopic, enr.cfg.Kafka.Brokers, enr.cfg.Redis.Addrs)
		}
	})
	t.Run("one replica, Recreate, no PodDisruptionBudget", func(t *testing.T) {
		checkSingleton(t, w.dep)
		for _, m := range w.ks.manifests {
			if pdb, ok := m.obj.(*policyv1.PodDisruptionBudget); ok {
				sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
				if err == nil && sel.Matches(w.podLabels()) {
					t.Errorf("%s selects the single ingest pod", m)
				}
			}
		}
	})
	t.Run("not in the base", func(t *testing.T) {
		for _, r := range w.ks.kustomizations["base"].Resources {
			if strings.HasPrefix(r, "ingest-") {
				t.Errorf("the base lists %s: ingest is the optional overlays/ingest", r)
			}
		}
	})
	checkServiceAndPDB(t, w)
	checkDeploymentCommon(t, w, ingestDepFile)
}
