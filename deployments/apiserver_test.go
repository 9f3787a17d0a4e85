package deployments

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The tests in this file check the manifests the way a cluster does: every object that Helm or
// kustomize renders is applied with a server-side dry-run to a real kube-apiserver (the one
// scripts/kube.sh starts), so admission, defaulting, OpenAPI and CRD schemas and strict field
// validation all run. The strict decoding of the other tests catches typos in the types this
// package knows; these catch the rest (CRD instances, cross-field rules the server enforces) and
// check what the renderers produce, not the files they start from.

// TestAPIServerKustomize dry-runs the kustomize base and every overlay under kubernetes/.
func TestAPIServerKustomize(t *testing.T) {
	k := needKubeAPI(t)
	dirs := kustomizeDirs(t, kubeDir)
	if len(dirs) == 0 {
		t.Fatalf("no kustomization.yaml under %s", kubeDir)
	}
	for _, dir := range dirs {
		t.Run(filepath.ToSlash(dir), func(t *testing.T) {
			ns := k.newNamespace(t)
			source := "kustomize dir deployments/" + filepath.ToSlash(dir)
			rendered, err := k.run(t.Context(), nil, k.kubectl, "kustomize", dir)
			if err != nil {
				t.Fatalf("%s does not render:\n%v", source, err)
			}
			// Client-side apply: the README applies these with `kubectl apply -k`.
			k.checkDryRun(t, ns, source, rendered, false)
		})
	}
}

// TestAPIServerHelm lints the chart and dry-runs what it renders with its default values and
// with each ci/*.yaml values file.
func TestAPIServerHelm(t *testing.T) {
	if _, err := os.Stat(filepath.Join(chartPath, "Chart.yaml")); errors.Is(err, fs.ErrNotExist) {
		t.Skipf("the chart deployments/%s is missing (no Chart.yaml): nothing to render", chartPath)
	}
	k := needKubeAPI(t)
	k.needHelm(t)
	// What `helm install` would learn from this server; offline rendering assumes another cluster.
	capabilities := []string{"--kube-version", k.serverVersion(t)}
	for _, gv := range k.serverAPIVersions(t) {
		capabilities = append(capabilities, "--api-versions", gv)
	}
	configs := append([]string{""}, chartValuesFiles(t, chartPath)...)
	for _, values := range configs {
		name, valuesArgs := "default values", []string(nil)
		if values != "" {
			rel, _ := filepath.Rel(chartPath, values)
			name, valuesArgs = filepath.ToSlash(rel), []string{"--values", values}
		}
		t.Run(name, func(t *testing.T) {
			ns := k.newNamespace(t)
			source := "chart deployments/" + chartPath + " with " + name
			lint := append([]string{"lint", "--strict", chartPath}, valuesArgs...)
			if _, err := k.run(t.Context(), nil, k.helm, lint...); err != nil {
				t.Errorf("%s: helm lint --strict fails:\n%v", source, err)
			}
			args := append([]string{"template", releaseName, chartPath, "--namespace", ns}, capabilities...)
			rendered, err := k.run(t.Context(), nil, k.helm, append(args, valuesArgs...)...)
			if err != nil {
				t.Fatalf("%s does not render:\n%v", source, err)
			}
			// Server-side apply: Helm 4 installs and upgrades that way.
			k.checkDryRun(t, ns, source, rendered, true)
		})
	}
}

// validObjects is a Deployment and a KEDA ScaledObject the API server accepts; the mutations of
// TestAPIServerRejectsBrokenManifests each break one thing in them.
const validObjects = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: probe
spec:
  replicas: 2
  selector:
    matchLabels: {app: probe}
  template:
    metadata:
      labels: {app: probe}
    spec:
      containers:
        - name: probe
          image: registry.invalid/probe:1
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: probe
spec:
  scaleTargetRef: {name: probe}
  triggers:
    - type: kafka
      metadata: {bootstrapServers: "kafka:9092", consumerGroup: probe, topic: probe, lagThreshold: "100"}
`

// TestAPIServerRejectsBrokenManifests proves the harness can fail: the valid objects pass, and
// each one-line mutation of them is rejected with the server's reason.
func TestAPIServerRejectsBrokenManifests(t *testing.T) {
	k := needKubeAPI(t)
	ns := k.newNamespace(t)
	for _, serverSide := range []bool{false, true} {
		if _, err := k.dryRun(t.Context(), ns, []byte(validObjects), serverSide); err != nil {
			t.Fatalf("the valid objects are rejected (server-side apply %v), so no rejection below would prove anything:\n%v", serverSide, err)
		}
	}
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"unknown field", "  replicas: 2\n", "  replicas: 2\n  replica: 2\n", `unknown field "spec.replica"`},
		{"wrong type", "  replicas: 2\n", "  replicas: \"two\"\n", "cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas"},
		{"selector does not match the labels", "labels: {app: probe}", "labels: {app: other}", "`selector` does not match template `labels`"},
		{"trigger without type (CRD schema)", "    - type: kafka\n      metadata:", "    - metadata:", "spec.triggers[0].type: Required value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			broken := strings.Replace(validObjects, tc.old, tc.new, 1)
			if broken == validObjects {
				t.Fatalf("mutation %q not found in the valid objects", tc.old)
			}
			_, err := k.dryRun(t.Context(), ns, []byte(broken), false)
			if err == nil {
				t.Fatalf("the API server accepts the objects with %s", tc.name)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("rejected, but the message lacks %q:\n%v", tc.want, err)
			}
			t.Logf("rejected as it should be:\n%v", err)
		})
	}
}
