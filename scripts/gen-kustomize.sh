#!/usr/bin/env bash
# Renders deployments/kubernetes/base and deployments/kubernetes/overlays/* from the Helm chart
# (deployments/helm/threatpipe, values kustomize-values.yaml), one file per object, and copies
# deployments/prometheus/alerts.yaml into the chart. The chart is the source of truth: never edit
# the generated files; `go test ./deployments/` (TestKustomizeGenerated, with THREATPIPE_TEST_HELM
# set) fails when they differ from what the chart renders.
#
#   scripts/gen-kustomize.sh
#
# Helm: $THREATPIPE_TEST_HELM, else the binary scripts/helm.sh prints (built on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
helm="${THREATPIPE_TEST_HELM:-$(scripts/helm.sh)}"
THREATPIPE_TEST_HELM="$helm" go test ./deployments/ -run '^TestKustomizeGenerated$' -count=1 -update
git status --short deployments/kubernetes deployments/helm/threatpipe/files
