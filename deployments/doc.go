// Package deployments holds no code, only tests of the deployment artefacts next to it and at the
// repository root: the container image (Dockerfile, ../.dockerignore), the Compose stack
// (../docker-compose.yml) and the Helm chart (helm/threatpipe) and the kustomize base and overlays generated from it (kubernetes/base, kubernetes/overlays).
//
// No container engine or cluster is needed: the tests decode every file strictly into the real
// types (k8s.io/api, a Compose model, compose-go's schema validation) so that a misspelt key
// fails, and check that the files agree with each other and with pipeline/config: every
// THREATPIPE_* variable they set exists and the values pass config.Load. The playbook files of
// the act workers (kubernetes/act-playbooks.yaml, compose-playbooks.yaml) are compiled with
// act.Parse against the sinks sinks.Load builds from the environment each manifest gives the
// process, so a step naming a sink the manifest does not configure fails.
package deployments
