package deployments

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// commandTimeout bounds one kubectl or helm run; a dry-run takes a fraction of a second, so
// reaching it means a hung server, not a slow one.
const commandTimeout = 2 * time.Minute

// kubeAPI runs kubectl and helm against the API server scripts/kube.sh starts: etcd and
// kube-apiserver on loopback, with the KEDA and Prometheus Operator CRDs installed.
type kubeAPI struct {
	kubectl    string // THREATPIPE_TEST_KUBECTL
	kubeconfig string // THREATPIPE_TEST_KUBECONFIG
	helm       string // THREATPIPE_TEST_HELM; empty when not set
	home       string // the test's own kubectl discovery cache and helm directories
}

// needKubeAPI returns the API server of THREATPIPE_TEST_KUBECONFIG, ready. Without it the test
// is skipped, unless THREATPIPE_TEST_REQUIRE_KUBE=1 (set by `make test`): then it fails.
func needKubeAPI(t *testing.T) kubeAPI {
	t.Helper()
	kubeconfig := os.Getenv("THREATPIPE_TEST_KUBECONFIG")
	if kubeconfig == "" {
		const msg = "THREATPIPE_TEST_KUBECONFIG is not set: start an API server with " +
			"`scripts/kube.sh up` and `eval \"$(scripts/kube.sh env)\"`"
		if os.Getenv("THREATPIPE_TEST_REQUIRE_KUBE") == "1" {
			t.Fatal(msg + " (THREATPIPE_TEST_REQUIRE_KUBE=1)")
		}
		t.Skip(msg)
	}
	k := kubeAPI{
		kubectl:    os.Getenv("THREATPIPE_TEST_KUBECTL"),
		kubeconfig: kubeconfig,
		helm:       os.Getenv("THREATPIPE_TEST_HELM"),
		home:       t.TempDir(),
	}
	if k.kubectl == "" {
		t.Fatal("THREATPIPE_TEST_KUBECONFIG is set but THREATPIPE_TEST_KUBECTL is not (`scripts/kube.sh env` sets both)")
	}
	if _, err := k.run(t.Context(), nil, k.kubectl, "get", "--raw=/readyz"); err != nil {
		t.Fatalf("the API server of %s is not ready (`scripts/kube.sh status`):\n%v", kubeconfig, err)
	}
	return k
}

// needHelm fails the test when no helm binary was given: the chart exists, so it must be checked.
func (k kubeAPI) needHelm(t *testing.T) {
	t.Helper()
	if k.helm == "" {
		t.Fatal("THREATPIPE_TEST_HELM is not set (`scripts/kube.sh env` sets it; scripts/helm.sh builds helm)")
	}
}

// run runs a kubectl or helm command and returns its standard output. The error names the
// command and carries what it printed on standard error, which is where both explain a failure.
func (k kubeAPI) run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	// Private caches, so that tests neither read nor write the developer's ~/.kube and helm state.
	cmd.Env = append(os.Environ(),
		"KUBECONFIG="+k.kubeconfig,
		"KUBECACHEDIR="+filepath.Join(k.home, "kube-cache"),
		"HELM_CACHE_HOME="+filepath.Join(k.home, "helm-cache"),
		"HELM_CONFIG_HOME="+filepath.Join(k.home, "helm-config"),
		"HELM_DATA_HOME="+filepath.Join(k.home, "helm-data"),
	)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return stdout.Bytes(), fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, msg)
	}
	return stdout.Bytes(), nil
}

// newNamespace creates a namespace of its own for the test: namespaced objects can only be
// dry-run into a namespace that exists.
func (k kubeAPI) newNamespace(t *testing.T) string {
	t.Helper()
	ns := namespaceFor(t.Name())
	if _, err := k.run(t.Context(), nil, k.kubectl, "create", "namespace", ns); err != nil {
		t.Fatalf("create namespace %s: %v", ns, err)
	}
	t.Cleanup(func() {
		// No kube-controller-manager runs, so the namespace stays Terminating; deleting it still
		// keeps `kubectl get ns` on a long-lived server readable. t.Context is done by now.
		ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
		defer cancel()
		if _, err := k.run(ctx, nil, k.kubectl, "delete", "namespace", ns, "--wait=false"); err != nil {
			t.Logf("delete namespace %s: %v", ns, err)
		}
	})
	return ns
}

var notLabelChars = regexp.MustCompile(`[^a-z0-9]+`)

// namespaceFor turns a test name into a DNS label, with a random suffix so that reruns against
// the same server never collide.
func namespaceFor(testName string) string {
	base := strings.Trim(notLabelChars.ReplaceAllString(strings.ToLower(testName), "-"), "-")
	if len(base) > 50 {
		base = strings.TrimRight(base[:50], "-")
	}
	return fmt.Sprintf("%s-%06x", base, rand.Uint32()&0xffffff)
}

// dryRun asks the API server to apply manifest (a YAML stream) into ns without persisting
// anything: admission, defaulting, schema and strict field validation all run, so an unknown
// field, a wrong type or an invalid combination is an error. serverSide selects server-side
// apply (how Helm 4 installs) instead of kubectl's client-side apply (how `kubectl apply -k`
// does). It returns kubectl's report of the accepted objects.
func (k kubeAPI) dryRun(ctx context.Context, ns string, manifest []byte, serverSide bool) ([]byte, error) {
	args := []string{"apply", "--dry-run=server", "--validate=strict", "-n", ns, "-f", "-"}
	if serverSide {
		args = append(args, "--server-side", "--field-manager=threatpipe-test")
	}
	return k.run(ctx, manifest, k.kubectl, args...)
}

// checkDryRun fails the test, naming source, when the API server rejects any object of
// manifest, and logs how many it accepted.
func (k kubeAPI) checkDryRun(t *testing.T, ns, source string, manifest []byte, serverSide bool) {
	t.Helper()
	out, err := k.dryRun(t.Context(), ns, manifest, serverSide)
	if err != nil {
		t.Errorf("%s: the API server rejects what it renders:\n%v", source, err)
		return
	}
	t.Logf("%s: %d objects accepted by a server-side dry-run", source, bytes.Count(out, []byte("\n")))
}

// kustomizeDirs lists, relative to the package directory, every directory under root that holds
// a kustomization (the base and each overlay), sorted.
func kustomizeDirs(t *testing.T, root string) []string {
	t.Helper()
	var dirs []string
	for _, f := range yamlFiles(t, root) {
		if name := filepath.Base(f); name == "kustomization.yaml" || name == "kustomization.yml" {
			dirs = append(dirs, filepath.Join(root, filepath.Dir(f)))
		}
	}
	sort.Strings(dirs)
	return dirs
}

// chartValuesFiles lists the chart's ci/*.yaml values files (the chart-testing convention: each
// one is a configuration CI installs), sorted.
func chartValuesFiles(t *testing.T, chart string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chart, "ci", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// serverAPIVersions lists the group/versions the server serves, CRDs' included, for
// `helm template --api-versions`: offline, Helm would otherwise assume a cluster without the KEDA
// and Prometheus Operator APIs and drop what a chart renders only where they exist.
func (k kubeAPI) serverAPIVersions(t *testing.T) []string {
	t.Helper()
	out, err := k.run(t.Context(), nil, k.kubectl, "api-versions")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))
}

// serverVersion is the API server's gitVersion (v1.35.4), for `helm template --kube-version`.
func (k kubeAPI) serverVersion(t *testing.T) string {
	t.Helper()
	out, err := k.run(t.Context(), nil, k.kubectl, "get", "--raw=/version")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := json.Unmarshal(out, &v); err != nil || v.GitVersion == "" {
		t.Fatalf("the API server's /version %q has no gitVersion (%v)", out, err)
	}
	return v.GitVersion
}
