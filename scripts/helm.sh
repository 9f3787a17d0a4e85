#!/usr/bin/env bash
# Helm for threatpipe's tests and chart work, built from its Go module (helm.sh/helm/v4).
#
#   scripts/helm.sh            print the path of the cached helm binary, building it when missing
#   scripts/helm.sh version    the same, then print `helm version` on stderr
#
# There is no download of a prebuilt helm: `go install` builds it from the Go module proxy into
# $THREATPIPE_CACHE_DIR/helm-v<version>/ (about 3 minutes on 2 cores from an empty Go build cache; instant after).
#
# Environment (defaults):
#   THREATPIPE_HELM_VERSION  4.3.2
#   THREATPIPE_CACHE_DIR     $HOME/.cache/threatpipe
set -euo pipefail

HELM_VERSION="${THREATPIPE_HELM_VERSION:-4.3.2}"
CACHE_DIR="${THREATPIPE_CACHE_DIR:-$HOME/.cache/threatpipe}"
HELM_DIR="$CACHE_DIR/helm-v$HELM_VERSION"
HELM_BIN="$HELM_DIR/helm"

LOG_NAME=helm.sh
# shellcheck source=scripts/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

build_helm() {
  command -v go >/dev/null || die "go is not installed; helm is built from the Go module helm.sh/helm/v4"
  local t0 tmp
  t0="$SECONDS"
  mkdir -p "$CACHE_DIR"
  # Into a temporary directory first, so that an interrupted build never leaves a binary that
  # a later call would take for a finished one.
  tmp="$(mktemp -d "$CACHE_DIR/helm-build.XXXXXX")"
  log "building helm v$HELM_VERSION from helm.sh/helm/v4 (go install) into $HELM_DIR ..."
  # The version ldflag is what helm's Makefile sets for a release; without it `helm version`
  # says v4.3 and charts with a helm version constraint could misjudge it.
  if ! (cd "$tmp" && GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOBIN="$tmp" \
      go install -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=v$HELM_VERSION" \
      "helm.sh/helm/v4/cmd/helm@v$HELM_VERSION" >&2); then
    rm -rf "$tmp"
    die "go install helm.sh/helm/v4/cmd/helm@v$HELM_VERSION failed (see the go output above)"
  fi
  mkdir -p "$HELM_DIR"
  mv -f "$tmp/helm" "$HELM_BIN"
  rm -rf "$tmp"
  log "helm v$HELM_VERSION built in $((SECONDS - t0))s"
}

[[ -x "$HELM_BIN" ]] || build_helm
case "${1:-}" in
  "") ;;
  version) "$HELM_BIN" version >&2 ;;
  *) die "unknown argument '$1' (usage: scripts/helm.sh [version])" ;;
esac
echo "$HELM_BIN"
