#!/usr/bin/env bash
# A real Kubernetes API server for threatpipe's tests: etcd + kube-apiserver on loopback, no kubelet,
# no controllers. The tests server-side dry-run every rendered manifest against it (deployments/).
#
#   scripts/kube.sh build    build (first time) kube-apiserver, kubectl, etcd and helm; print their paths
#   scripts/kube.sh up       build if needed, start etcd and kube-apiserver (reuses healthy running
#                            ones), write a kubeconfig, install the KEDA and Prometheus Operator CRDs
#   scripts/kube.sh down     stop what this script started (apiserver first, then etcd); wipe state
#   scripts/kube.sh status   show what is running
#   scripts/kube.sh env      print export lines: eval "$(scripts/kube.sh env)"
#
# Nothing is downloaded prebuilt: k8s.io/kubernetes cannot be `go install`ed (its go.mod replaces
# its staging modules with local paths), so a throwaway tools module in the cache requires it,
# replaces every staging module with the published k8s.io/X v0.<minor>.<patch>, and builds the
# three binaries (4.5 minutes on 2 idle cores from an empty Go build cache, 10.5 on a busy
# machine; 1.8 GB peak; under a second once cached).
# The CRDs come from the Go modules of KEDA and of the Prometheus Operator.
#
# Environment (defaults):
#   THREATPIPE_KUBE_VERSION            1.35.4
#   THREATPIPE_KEDA_VERSION            2.20.2
#   THREATPIPE_PROMETHEUS_OPERATOR_VERSION  0.85.0 (the one version the module proxy serves)
#   THREATPIPE_CACHE_DIR               $HOME/.cache/threatpipe
#   THREATPIPE_KUBE_STATE_DIR          ${TMPDIR:-/tmp}/threatpipe-kube
#   THREATPIPE_READY_TIMEOUT           90    (seconds, per process)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

HOST=127.0.0.1
KUBE_VERSION="${THREATPIPE_KUBE_VERSION:-1.35.4}"
KEDA_VERSION="${THREATPIPE_KEDA_VERSION:-2.20.2}"
PROM_OP_VERSION="${THREATPIPE_PROMETHEUS_OPERATOR_VERSION:-0.85.0}"
CACHE_DIR="${THREATPIPE_CACHE_DIR:-$HOME/.cache/threatpipe}"
STATE_DIR="${THREATPIPE_KUBE_STATE_DIR:-${TMPDIR:-/tmp}/threatpipe-kube}"
READY_TIMEOUT="${THREATPIPE_READY_TIMEOUT:-90}"

KUBE_MINOR="$(cut -d. -f2 <<<"$KUBE_VERSION")"
STAGING_VERSION="v0.${KUBE_VERSION#*.}" # 1.35.4 -> v0.35.4: the staging modules' tag
TOOLS_DIR="$CACHE_DIR/kube-v$KUBE_VERSION"
BIN_DIR="$TOOLS_DIR/bin"
APISERVER="$BIN_DIR/kube-apiserver"
KUBECTL="$BIN_DIR/kubectl"
ETCD="$BIN_DIR/etcd"

PKI="$STATE_DIR/pki"
LOGS="$STATE_DIR/logs"
ETCD_DATA="$STATE_DIR/etcd-data"
ETCD_PID="$STATE_DIR/etcd.pid"
APISERVER_PID="$STATE_DIR/kube-apiserver.pid"
ETCD_LOG="$LOGS/etcd.log"
APISERVER_LOG="$LOGS/kube-apiserver.log"
PORTS="$STATE_DIR/ports.env"
KUBECONFIG_FILE="$STATE_DIR/kubeconfig"
# kubectl's discovery cache lives with the state, not in ~/.kube.
export KUBECACHEDIR="$STATE_DIR/kube-cache"

LOG_NAME=kube
# shellcheck source=scripts/lib.sh
source "$SCRIPT_DIR/lib.sh"

free_port() { # a loopback port nothing listens on, outside the ephemeral range
  local p i
  for i in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000))
    port_open "$HOST" "$p" || { echo "$p"; return 0; }
  done
  die "no free port found on $HOST"
}

# ---------------------------------------------------------------- build

module_field() { # module@version field -> that field of `go mod download -json` (Dir, GoMod)
  local out val
  # Outside any module, so that no go.mod around (a half-written tools module) is involved.
  out="$(cd / && GOWORK=off GOFLAGS= go mod download -json "$1" 2>&1)" \
    || die "go mod download $1 failed: $(grep -m1 '"Error"' <<<"$out" || tail -n3 <<<"$out")"
  val="$(sed -n "s/^[[:space:]]*\"$2\": \"\(.*\)\",\$/\1/p" <<<"$out")"
  [[ -e "$val" ]] || die "go mod download $1 gave no $2"
  echo "$val"
}

built() { [[ -x "$APISERVER" && -x "$KUBECTL" && -x "$ETCD" ]]; }

# The tools module: k8s.io/kubernetes with each ./staging replace turned into the published module.
write_tools_module() {
  local kmod gomod goline replaces
  kmod="$(module_field "k8s.io/kubernetes@v$KUBE_VERSION" GoMod)"
  goline="$(grep -m1 '^go ' "$kmod")"
  replaces="$(sed -n "s|^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*|\t\1 => \1 $STAGING_VERSION|p" "$kmod")"
  [[ -n "$replaces" ]] || die "no ./staging replace directives in $kmod"
  log "tools module: $(wc -l <<<"$replaces") staging modules replaced with $STAGING_VERSION ($goline)"
  gomod="$TOOLS_DIR/go.mod"
  {
    echo "module threatpipe.local/kube-tools"
    echo
    echo "$goline"
    echo
    echo "require k8s.io/kubernetes v$KUBE_VERSION"
    echo
    echo "replace ("
    echo "$replaces"
    echo ")"
  } >"$gomod"
  cat >"$TOOLS_DIR/tools.go" <<'EOF'
//go:build tools

// Package tools only pins the binaries scripts/kube.sh builds.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
EOF
}

build_binary() { # output package
  local out="$1" pkg="$2" t0 v ldflags=()
  t0="$(date +%s%N)"
  # Without these the binaries report v0.0.0-master+$Format:%H$ and `kubectl version` fails.
  for v in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=("-X $v.gitVersion=v$KUBE_VERSION" "-X $v.gitMajor=1" "-X $v.gitMinor=$KUBE_MINOR"
      "-X $v.gitTreeState=clean")
  done
  log "go build $pkg -> $out"
  (cd "$TOOLS_DIR" && GOWORK=off CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
    go build -trimpath -ldflags "-s -w ${ldflags[*]}" -o "$out.tmp" "$pkg" >&2) \
    || die "go build $pkg failed (tools module $TOOLS_DIR)"
  mv -f "$out.tmp" "$out"
  log "built $(basename "$out") in $(elapsed "$t0")s"
}

build_kube() {
  if built; then
    log "kube-apiserver, kubectl, etcd v$KUBE_VERSION: cached in $BIN_DIR"
    return 0
  fi
  command -v go >/dev/null || die "go is not installed; the Kubernetes binaries are built from the Go module proxy"
  local t0
  t0="$(date +%s%N)"
  mkdir -p "$BIN_DIR"
  [[ -s "$TOOLS_DIR/go.sum" ]] || {
    write_tools_module
    log "go mod tidy in $TOOLS_DIR ..."
    (cd "$TOOLS_DIR" && GOWORK=off go mod tidy >&2) || { rm -f "$TOOLS_DIR/go.sum"; die "go mod tidy failed in $TOOLS_DIR"; }
  }
  [[ -x "$ETCD" ]] || build_binary "$ETCD" go.etcd.io/etcd/server/v3
  [[ -x "$KUBECTL" ]] || build_binary "$KUBECTL" k8s.io/kubernetes/cmd/kubectl
  [[ -x "$APISERVER" ]] || build_binary "$APISERVER" k8s.io/kubernetes/cmd/kube-apiserver
  log "kubernetes v$KUBE_VERSION binaries built in $(elapsed "$t0")s"
}

report_versions() {
  log "kube-apiserver: $("$APISERVER" --version 2>&1)"
  log "kubectl: $("$KUBECTL" version --client 2>&1 | head -n1)"
  log "etcd: $("$ETCD" --version 2>&1 | head -n1)"
}

helm_bin() { "$SCRIPT_DIR/helm.sh"; }

# ---------------------------------------------------------------- certificates and kubeconfig

write_pki() {
  [[ -s "$PKI/token" ]] && return 0
  command -v openssl >/dev/null || die "openssl is needed for the API server's certificate and service-account keys"
  mkdir -p "$PKI"
  # A self-signed serving certificate for 127.0.0.1 doubles as the kubeconfig's CA.
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=threatpipe-test-apiserver" \
    -addext "subjectAltName=IP:$HOST,DNS:localhost" -keyout "$PKI/serving.key" -out "$PKI/serving.crt" \
    2>"$LOGS/openssl.log" || die "openssl could not make the serving certificate (see $LOGS/openssl.log)"
  openssl genrsa -out "$PKI/sa.key" 2048 2>>"$LOGS/openssl.log" || die "openssl genrsa failed"
  openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>>"$LOGS/openssl.log" || die "openssl rsa -pubout failed"
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$PKI/token"
  # token,user,uid,"groups": system:masters is cluster-admin without any RBAC object.
  printf '%s,threatpipe-test,threatpipe-test,"system:masters"\n' "$(cat "$PKI/token")" >"$PKI/tokens.csv"
  chmod 600 "$PKI"/*
}

write_kubeconfig() { # apiserver port
  cat >"$KUBECONFIG_FILE" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: threatpipe-test
  cluster:
    server: https://$HOST:$1
    certificate-authority: $PKI/serving.crt
users:
- name: threatpipe-test
  user:
    token: $(cat "$PKI/token")
contexts:
- name: threatpipe-test
  context: {cluster: threatpipe-test, user: threatpipe-test}
current-context: threatpipe-test
EOF
  chmod 600 "$KUBECONFIG_FILE"
}

kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

apiserver_ready() { [[ -s "$KUBECONFIG_FILE" ]] && kc get --raw=/readyz --request-timeout=3s >/dev/null 2>&1; }

# ---------------------------------------------------------------- processes

start_process() { # pidfile logfile command...
  local pidfile="$1" logfile="$2" i
  shift 2
  rm -f "$pidfile"
  [[ -f "$logfile" ]] && mv -f "$logfile" "$logfile.1"
  # new session (setsid) + nohup: survives the calling shell; the inner shell records its own pid
  # and then execs the server, so the pid file holds the server's pid.
  setsid -f bash -c 'echo $$ >"$0"; exec nohup "$@"' "$pidfile" "$@" </dev/null >>"$logfile" 2>&1
  for i in $(seq 1 100); do [[ -s "$pidfile" ]] && return 0; sleep 0.05; done
  die "pid file $pidfile not written for $1"
}

wait_ready() { # name pidfile logfile check-command...
  local name="$1" pidfile="$2" logfile="$3" t0 deadline pid
  shift 3
  t0="$(date +%s%N)"
  deadline=$((SECONDS + READY_TIMEOUT))
  pid="$(cat "$pidfile")"
  until "$@"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$name (pid $pid) exited during startup; last log lines of $logfile:"
      tail -n 40 "$logfile" >&2 || true
      rm -f "$pidfile"
      die "$name failed to start"
    fi
    if ((SECONDS >= deadline)); then
      log "$name not ready after ${READY_TIMEOUT}s; last log lines of $logfile:"
      tail -n 40 "$logfile" >&2 || true
      die "$name startup timed out (pid $pid still running; 'scripts/kube.sh down' stops it)"
    fi
    sleep 0.2
  done
  log "$name ready (pid $pid) after $(elapsed "$t0")s"
}

etcd_healthy() { # client port: GET /health over bash's /dev/tcp (no curl needed)
  local body
  body="$(timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "GET /health HTTP/1.0\r\nHost: %s\r\n\r\n" "$0" >&3 && cat <&3' \
    "$HOST" "$1" 2>/dev/null)" || return 1
  [[ "$body" == *'"health":"true"'* ]]
}

start_etcd() { # client port, peer port
  log "starting etcd on $HOST:$1, log $ETCD_LOG"
  # --unsafe-no-fsync: the data is thrown away at `down`; fsync only slows the tests.
  start_process "$ETCD_PID" "$ETCD_LOG" "$ETCD" --name threatpipe-test --data-dir "$ETCD_DATA" \
    --listen-client-urls "http://$HOST:$1" --advertise-client-urls "http://$HOST:$1" \
    --listen-peer-urls "http://$HOST:$2" --initial-advertise-peer-urls "http://$HOST:$2" \
    --initial-cluster "threatpipe-test=http://$HOST:$2" --unsafe-no-fsync --log-level warn
  wait_ready etcd "$ETCD_PID" "$ETCD_LOG" etcd_healthy "$1"
}

start_apiserver() { # apiserver port, etcd client port
  log "starting kube-apiserver v$KUBE_VERSION on https://$HOST:$1, log $APISERVER_LOG"
  start_process "$APISERVER_PID" "$APISERVER_LOG" "$APISERVER" \
    --bind-address="$HOST" --advertise-address="$HOST" --secure-port="$1" --cert-dir="$PKI" \
    --etcd-servers="http://$HOST:$2" \
    --tls-cert-file="$PKI/serving.crt" --tls-private-key-file="$PKI/serving.key" \
    --token-auth-file="$PKI/tokens.csv" --anonymous-auth=false --authorization-mode=AlwaysAllow \
    --service-account-issuer="https://$HOST:$1" --service-account-key-file="$PKI/sa.pub" \
    --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range=10.96.0.0/24 --endpoint-reconciler-type=none --profiling=false
  wait_ready kube-apiserver "$APISERVER_PID" "$APISERVER_LOG" apiserver_ready
}

stop_process() { # name pidfile: SIGTERM, up to 20 s, then SIGKILL
  pid_alive "$2" || { rm -f "$2"; return 0; }
  local pid i
  pid="$(cat "$2")"
  log "stopping $1 (pid $pid, SIGTERM)"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$1 still running after 20s; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$2"
}

# The API server first: without etcd it ignores SIGTERM while retrying its storage.
stop_all() {
  stop_process kube-apiserver "$APISERVER_PID"
  stop_process etcd "$ETCD_PID"
}

# ---------------------------------------------------------------- CRDs

crd_files() {
  local keda prom f
  keda="$(module_field "github.com/kedacore/keda/v2@v$KEDA_VERSION" Dir)"
  prom="$(module_field "github.com/prometheus-operator/prometheus-operator@v$PROM_OP_VERSION" Dir)"
  ls "$keda"/config/crd/bases/keda.sh_*.yaml
  for f in servicemonitors podmonitors prometheusrules probes; do
    echo "$prom/example/prometheus-operator-crd/monitoring.coreos.com_$f.yaml"
  done
}

install_crds() {
  local t0 files=() f
  t0="$(date +%s%N)"
  mapfile -t files < <(crd_files)
  [[ ${#files[@]} -gt 4 ]] || die "CRD files not found in the KEDA and Prometheus Operator modules"
  local args=()
  for f in "${files[@]}"; do
    [[ -s "$f" ]] || die "CRD file missing: $f"
    args+=(-f "$f")
  done
  # Server-side: these CRDs are too large for client-side apply's last-applied annotation.
  kc apply --server-side --force-conflicts --field-manager=threatpipe-kube-sh "${args[@]}" >"$LOGS/crds.log" 2>&1 \
    || { cat "$LOGS/crds.log" >&2; die "installing the CRDs failed"; }
  kc wait --for=condition=Established --timeout=60s "${args[@]}" >>"$LOGS/crds.log" 2>&1 \
    || { cat "$LOGS/crds.log" >&2; die "the CRDs did not become Established"; }
  log "CRDs established (KEDA v$KEDA_VERSION, Prometheus Operator v$PROM_OP_VERSION: ${#files[@]} files) in $(elapsed "$t0")s"
}

# ---------------------------------------------------------------- commands

cmd_build() {
  build_kube
  report_versions
  local helm
  helm="$(helm_bin)"
  echo "$APISERVER"
  echo "$KUBECTL"
  echo "$ETCD"
  echo "$helm"
}

running() { pid_alive "$ETCD_PID" && pid_alive "$APISERVER_PID" && apiserver_ready; }

cmd_up() {
  build_kube
  helm_bin >/dev/null
  if running; then
    log "already running (etcd pid $(cat "$ETCD_PID"), kube-apiserver pid $(cat "$APISERVER_PID")); reusing it"
  else
    # Anything half-up (one process dead, or unhealthy) is stopped and started afresh.
    stop_all
    rm -rf "$ETCD_DATA" "$PORTS" "$KUBECONFIG_FILE" "$KUBECACHEDIR"
    mkdir -p "$STATE_DIR" "$LOGS"
    write_pki
    local etcd_port peer_port api_port t0
    t0="$(date +%s%N)"
    etcd_port="$(free_port)"
    peer_port="$(free_port)"
    api_port="$(free_port)"
    [[ "$etcd_port" != "$peer_port" && "$peer_port" != "$api_port" && "$etcd_port" != "$api_port" ]] \
      || die "free_port picked one port twice; try again"
    printf 'ETCD_PORT=%s\nAPISERVER_PORT=%s\n' "$etcd_port" "$api_port" >"$PORTS"
    write_kubeconfig "$api_port"
    start_etcd "$etcd_port" "$peer_port"
    start_apiserver "$api_port" "$etcd_port"
    log "servers started in $(elapsed "$t0")s"
  fi
  install_crds
  log "up: $(kc config view -o jsonpath='{.clusters[0].cluster.server}') (total $(elapsed "$START_NS")s)"
  log "use: eval \"\$($0 env)\""
}

cmd_down() {
  stop_all
  case "$STATE_DIR" in
    "" | / | "$HOME") die "refusing to remove THREATPIPE_KUBE_STATE_DIR=$STATE_DIR" ;;
  esac
  rm -rf "$STATE_DIR"
  log "down: stopped and removed $STATE_DIR (total $(elapsed "$START_NS")s)"
}

cmd_status() {
  local rc=0
  if pid_alive "$ETCD_PID"; then
    echo "etcd: running (pid $(cat "$ETCD_PID")), data $ETCD_DATA"
  else
    echo "etcd: not running"; rc=1
  fi
  if pid_alive "$APISERVER_PID"; then
    if apiserver_ready; then
      echo "kube-apiserver: ready (pid $(cat "$APISERVER_PID")) at $(kc config view -o jsonpath='{.clusters[0].cluster.server}'), kubeconfig $KUBECONFIG_FILE"
    else
      echo "kube-apiserver: process alive (pid $(cat "$APISERVER_PID")) but /readyz fails; log $APISERVER_LOG"; rc=1
    fi
  else
    echo "kube-apiserver: not running"; rc=1
  fi
  return "$rc"
}

cmd_env() {
  [[ -s "$KUBECONFIG_FILE" ]] || die "no API server is up (no $KUBECONFIG_FILE): run scripts/kube.sh up"
  echo "export THREATPIPE_TEST_KUBECONFIG=$KUBECONFIG_FILE"
  echo "export THREATPIPE_TEST_KUBECTL=$KUBECTL"
  echo "export THREATPIPE_TEST_HELM=$(helm_bin)"
}

usage() {
  sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

case "${1:-}" in
  build) cmd_build ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) usage; exit 2 ;;
esac
