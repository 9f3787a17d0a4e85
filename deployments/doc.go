// Package deployments holds no code, only tests of the deployment artefacts next to it and at the
// repository root: the container image (Dockerfile, ../.dockerignore), the Compose stack
// (../docker-compose.yml), the Helm chart (helm/threatpipe), and the kustomize base and overlays
// generated from it (kubernetes/base, kubernetes/overlays).
//
// No container engine is needed. The tests decode every file strictly into the real types
// (k8s.io/api, a Compose model, compose-go's schema validation) so that a misspelt key fails,
// and check that the files agree with each other and with pipeline/config: every THREATPIPE_*
// variable they set exists and the values pass config.Load. With THREATPIPE_TEST_HELM (scripts/helm.sh)
// the chart is linted and rendered, and the kustomize files are checked against it; with
// THREATPIPE_TEST_KUBECONFIG (scripts/kube.sh: a real kube-apiserver and etcd, no kubelet) every
// object the chart and the kustomize files produce is server-side dry-run. make test sets both.
// The act playbook files are compiled with act.Parse against the sinks sinks.Load builds from the
// environment each manifest gives the process, so a step naming a sink it does not configure fails.
package deployments
