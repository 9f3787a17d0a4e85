#!/usr/bin/env bash
# Real local services for threatpipe tests: Apache Kafka (KRaft, single combined node) and Redis.
#
#   scripts/services.sh up             install (if needed) and start Kafka + Redis; reuses running ones
#   scripts/services.sh down           stop what this script started; wipe state (next up starts clean)
#   scripts/services.sh status         show what is running
#   scripts/services.sh env            print export lines: eval "$(scripts/services.sh env)"
#   scripts/services.sh kafka-restart  SIGTERM Kafka and start it again on the same data dir
#   scripts/services.sh up-secure      also start the SECURED pair on other ports: Kafka with a
#                                      SASL_SSL (SCRAM-SHA-512) listener, redis-server with TLS + ACL
#   scripts/services.sh down-secure | status-secure | env-secure [--test]   (see scripts/secure.sh)
#   scripts/services.sh up-cluster     a 3-master Redis Cluster (no replicas) on ports 7001-7003
#   scripts/services.sh up-sentinel    a Redis primary (6391) and replica (6392) watched by three
#                                      Sentinels (26391-26393, quorum 2) under the master name threatpipe
#   scripts/services.sh down-cluster | down-sentinel | status-cluster | status-sentinel   (scripts/redis-topologies.sh)
#   scripts/services.sh env-cluster | env-sentinel [--app]   THREATPIPE_TEST_REDIS_CLUSTER_ADDRS, or
#                                      THREATPIPE_TEST_REDIS_SENTINEL_ADDRS and _MASTER (--app: the
#                                      THREATPIPE_REDIS_ADDR / THREATPIPE_REDIS_MASTER_NAME to run threatpipe on it)
#
# Kafka has no Debian package and there is no Docker: its jars come from Maven Central via
# scripts/kafka/pom.xml and are cached outside git in $THREATPIPE_CACHE_DIR/kafka-<version>/libs.
#
# Environment (defaults):
#   THREATPIPE_KAFKA_VERSION  4.1.1
#   THREATPIPE_KAFKA_PORT     9092  (controller listener on port+1)
#   THREATPIPE_REDIS_PORT     6379
#   THREATPIPE_CACHE_DIR      $HOME/.cache/threatpipe
#   THREATPIPE_STATE_DIR      ${TMPDIR:-/tmp}/threatpipe-services
#   THREATPIPE_KAFKA_HEAP     512m
#   THREATPIPE_READY_TIMEOUT  90    (seconds, per service)
#   THREATPIPE_REDIS_CLUSTER_PORT   7001  (first of the three masters' ports)
#   THREATPIPE_REDIS_SENTINEL_PORT  6391  (the first primary; the replica on port+1)
#   THREATPIPE_SENTINEL_PORT        26391 (first of the three Sentinels)
#   THREATPIPE_SENTINEL_MASTER      threatpipe
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KAFKA_CONF_DIR="$SCRIPT_DIR/kafka"

HOST=127.0.0.1
KAFKA_VERSION="${THREATPIPE_KAFKA_VERSION:-4.1.1}"
KAFKA_PORT="${THREATPIPE_KAFKA_PORT:-9092}"
CONTROLLER_PORT="$((KAFKA_PORT + 1))"
REDIS_PORT="${THREATPIPE_REDIS_PORT:-6379}"
CACHE_DIR="${THREATPIPE_CACHE_DIR:-$HOME/.cache/threatpipe}"
STATE_DIR="${THREATPIPE_STATE_DIR:-${TMPDIR:-/tmp}/threatpipe-services}"
KAFKA_HEAP="${THREATPIPE_KAFKA_HEAP:-512m}"
READY_TIMEOUT="${THREATPIPE_READY_TIMEOUT:-90}"

KAFKA_LIBS="$CACHE_DIR/kafka-$KAFKA_VERSION/libs"
KAFKA_STATE="$STATE_DIR/kafka"
KAFKA_DATA="$KAFKA_STATE/data"
KAFKA_LOGS="$KAFKA_STATE/logs"
KAFKA_LOG="$KAFKA_LOGS/kafkaServer.out"
KAFKA_PID="$KAFKA_STATE/kafka.pid"
KAFKA_PROPS="$KAFKA_STATE/server.properties"
# What the secured broker changes (scripts/secure.sh use_secure_kafka): template, extra sed
# substitutions, extra `StorageTool format` arguments (its SCRAM users).
KAFKA_TEMPLATE="$KAFKA_CONF_DIR/server.properties"
KAFKA_RENDER_ARGS=()
KAFKA_FORMAT_ARGS=()
REDIS_STATE="$STATE_DIR/redis"
REDIS_PID="$REDIS_STATE/redis.pid"
REDIS_LOG="$REDIS_STATE/redis.log"

LOG_NAME=services
# shellcheck source=scripts/lib.sh
source "$SCRIPT_DIR/lib.sh"

# ---------------------------------------------------------------- installation

APT_UPDATED=0
apt_install() { # packages...
  command -v apt-get >/dev/null || die "apt-get not found; install manually: $*"
  local sudo=()
  [[ "$(id -u)" -eq 0 ]] || sudo=(sudo)
  if [[ "$APT_UPDATED" -eq 0 ]]; then
    log "apt-get update"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    APT_UPDATED=1
  fi
  # Do not let the package's own service start on the default port (we start our own instance).
  local policy=/usr/sbin/policy-rc.d created=0
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod +x "$policy"
    created=1
  fi
  log "apt-get install -y $*"
  local rc=0
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 || rc=$?
  [[ "$created" -eq 0 ]] || "${sudo[@]}" rm -f "$policy"
  [[ "$rc" -eq 0 ]] || die "apt-get install $* failed (rc=$rc)"
}

ensure_java_maven() { # [java-only]
  local pkgs=()
  command -v java >/dev/null || pkgs+=(openjdk-17-jre-headless)
  [[ "${1:-}" == java-only ]] || command -v mvn >/dev/null || pkgs+=(maven)
  [[ ${#pkgs[@]} -eq 0 ]] || apt_install "${pkgs[@]}"
  local major
  major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
  [[ -n "$major" && "$major" -ge 17 ]] || die "Kafka $KAFKA_VERSION needs Java 17+, found: $(java -version 2>&1 | head -n1)"
}

ensure_redis_installed() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return 0
  apt_install redis-server
}

# Resolve the broker classpath into the cache (once per Kafka version and pom.xml content).
ensure_kafka_libs() {
  local stamp="$KAFKA_LIBS/.complete" want
  want="$(sha256sum "$KAFKA_CONF_DIR/pom.xml" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "kafka $KAFKA_VERSION jars: cached in $KAFKA_LIBS"
    return 0
  fi
  ensure_java_maven
  local t0 tmp
  t0="$(date +%s%N)"
  mkdir -p "$(dirname "$KAFKA_LIBS")"
  tmp="$(mktemp -d "$(dirname "$KAFKA_LIBS")/libs.tmp.XXXXXX")"
  log "resolving kafka_2.13:$KAFKA_VERSION from Maven Central into $KAFKA_LIBS ..."
  # (maven 3.8 -q still emits bare ANSI resets; strip them)
  if ! mvn -q -B -Dstyle.color=never -f "$KAFKA_CONF_DIR/pom.xml" package \
      -Dkafka.version="$KAFKA_VERSION" -Dkafka.libs.dir="$tmp" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2; then
    rm -rf "$tmp"
    die "maven could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION (try THREATPIPE_KAFKA_VERSION=4.1.2 or 4.2.0)"
  fi
  ls "$tmp"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null 2>&1 || { rm -rf "$tmp"; die "kafka_2.13-$KAFKA_VERSION.jar missing after resolve"; }
  echo "$want" >"$tmp/.complete"
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
  log "kafka jars resolved: $(ls "$KAFKA_LIBS"/*.jar | wc -l) jars in $(elapsed "$t0")s"
}

# ---------------------------------------------------------------- kafka

kafka_java_opts() {
  printf '%s\n' "-Xms$KAFKA_HEAP" "-Xmx$KAFKA_HEAP" -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 \
    -Djava.awt.headless=true "-Dkafka.logs.dir=$KAFKA_LOGS" \
    "-Dlog4j2.configurationFile=file:$KAFKA_CONF_DIR/log4j2.properties"
}

kafka_tool() { # class args...  (runs a Kafka CLI class on the cached classpath)
  java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    "-Dlog4j2.configurationFile=file:$KAFKA_CONF_DIR/log4j2-tools.properties" \
    -cp "$KAFKA_LIBS/*" "$@"
}

render_kafka_props() {
  mkdir -p "$KAFKA_DATA" "$KAFKA_LOGS"
  sed -e "s|@KAFKA_HOST@|$HOST|g" -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
      -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" -e "s|@DATA_DIR@|$KAFKA_DATA|g" \
      "${KAFKA_RENDER_ARGS[@]}" "$KAFKA_TEMPLATE" >"$KAFKA_PROPS"
}

# Kafka's Uuid string: 16 random bytes, base64url without padding; must not start with '-'
random_cluster_id() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "$id" != -* && "$id" != AAAAAAAAAAAAAAAAAAAAA* ]] && { echo "$id"; return; }
  done
}

format_kafka_storage() {
  [[ -f "$KAFKA_DATA/meta.properties" ]] && return 0
  local cid t0
  t0="$(date +%s%N)"
  cid="$(random_cluster_id)"
  log "formatting kafka storage $KAFKA_DATA (cluster id $cid, --standalone)"
  kafka_tool kafka.tools.StorageTool format --standalone --ignore-formatted \
    -t "$cid" -c "$KAFKA_PROPS" "${KAFKA_FORMAT_ARGS[@]}" >"$KAFKA_LOGS/format.out" 2>&1 \
    || { cat "$KAFKA_LOGS/format.out" >&2; die "kafka storage format failed"; }
  echo "$cid" >"$KAFKA_STATE/cluster.id"
  log "formatted in $(elapsed "$t0")s"
}

wait_kafka_ready() {
  local t0 deadline pid
  t0="$(date +%s%N)"
  deadline=$((SECONDS + READY_TIMEOUT))
  pid="$(cat "$KAFKA_PID")"
  while :; do
    if grep -q "Kafka Server started" "$KAFKA_LOG" 2>/dev/null && port_open "$HOST" "$KAFKA_PORT"; then
      log "kafka ready on $HOST:$KAFKA_PORT (pid $pid) after $(elapsed "$t0")s"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      log "kafka (pid $pid) exited during startup; last log lines:"
      tail -n 60 "$KAFKA_LOG" >&2 || true
      rm -f "$KAFKA_PID"
      die "kafka failed to start"
    fi
    if ((SECONDS >= deadline)); then
      log "kafka not ready after ${READY_TIMEOUT}s; last log lines:"
      tail -n 60 "$KAFKA_LOG" >&2 || true
      die "kafka startup timed out (pid $pid still running; 'scripts/services.sh down' to stop it)"
    fi
    sleep 0.25
  done
}

start_kafka() {
  ensure_kafka_libs
  ensure_java_maven java-only
  render_kafka_props
  format_kafka_storage
  port_open "$HOST" "$CONTROLLER_PORT" && die "controller port $HOST:$CONTROLLER_PORT is already in use"
  [[ -f "$KAFKA_LOG" ]] && mv -f "$KAFKA_LOG" "$KAFKA_LOG.1"
  rm -f "$KAFKA_PID"
  local opts
  mapfile -t opts < <(kafka_java_opts)
  log "starting kafka $KAFKA_VERSION on $HOST:$KAFKA_PORT (controller :$CONTROLLER_PORT), log $KAFKA_LOG"
  # new session (setsid) + nohup: survives the calling shell/terminal; the inner shell records its own
  # pid and then execs java, so the pid file holds the JVM's pid.
  (
    cd "$KAFKA_STATE"
    setsid -f bash -c 'echo $$ >"$0"; exec nohup "$@"' "$KAFKA_PID" \
      java "${opts[@]}" -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_PROPS" \
      </dev/null >>"$KAFKA_LOG" 2>&1
  )
  local i
  for i in $(seq 1 100); do [[ -s "$KAFKA_PID" ]] && break; sleep 0.05; done
  [[ -s "$KAFKA_PID" ]] || die "kafka pid file not written"
  wait_kafka_ready
}

stop_kafka() { # SIGTERM (controlled shutdown), up to 30 s, then SIGKILL
  pid_alive "$KAFKA_PID" || { rm -f "$KAFKA_PID"; return 0; }
  local pid t0 i
  pid="$(cat "$KAFKA_PID")"
  t0="$(date +%s%N)"
  log "stopping kafka (pid $pid, SIGTERM)"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "kafka still running after 30s; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$KAFKA_PID"
  log "kafka stopped in $(elapsed "$t0")s"
}

kafka_up() {
  if pid_alive "$KAFKA_PID"; then
    if port_open "$HOST" "$KAFKA_PORT"; then
      log "kafka already running (pid $(cat "$KAFKA_PID")) on $HOST:$KAFKA_PORT"
    else
      log "kafka (pid $(cat "$KAFKA_PID")) is starting; waiting"
      wait_kafka_ready
    fi
    return 0
  fi
  rm -f "$KAFKA_PID"
  if port_open "$HOST" "$KAFKA_PORT"; then
    log "kafka: something already listens on $HOST:$KAFKA_PORT (not started by this script); reusing it"
    return 0
  fi
  start_kafka
}

# ---------------------------------------------------------------- redis

redis_ping() { [[ "$(timeout 2 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == "PONG" ]]; }

redis_up() {
  if command -v redis-cli >/dev/null && redis_ping; then
    if pid_alive "$REDIS_PID"; then
      log "redis already running (pid $(cat "$REDIS_PID")) on $HOST:$REDIS_PORT"
    else
      log "redis: $HOST:$REDIS_PORT already answers PONG (not started by this script); reusing it"
    fi
    return 0
  fi
  if ! command -v redis-cli >/dev/null && port_open "$HOST" "$REDIS_PORT"; then
    log "redis: $HOST:$REDIS_PORT is open (redis-cli not installed to check); reusing it"
    return 0
  fi
  port_open "$HOST" "$REDIS_PORT" && die "$HOST:$REDIS_PORT is in use but does not answer redis PING"
  ensure_redis_installed
  mkdir -p "$REDIS_STATE"
  rm -f "$REDIS_PID"
  log "starting redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on $HOST:$REDIS_PORT, log $REDIS_LOG"
  redis-server --bind "$HOST" --port "$REDIS_PORT" --save "" --appendonly no --daemonize yes \
    --dir "$REDIS_STATE" --pidfile "$REDIS_PID" --logfile "$REDIS_LOG" >&2
  local t0 deadline
  t0="$(date +%s%N)"
  deadline=$((SECONDS + READY_TIMEOUT))
  until redis_ping; do
    if ((SECONDS >= deadline)); then
      tail -n 30 "$REDIS_LOG" >&2 || true
      die "redis not ready after ${READY_TIMEOUT}s"
    fi
    sleep 0.1
  done
  log "redis ready on $HOST:$REDIS_PORT (pid $(cat "$REDIS_PID" 2>/dev/null || echo '?')) after $(elapsed "$t0")s"
}

stop_redis() {
  pid_alive "$REDIS_PID" || { rm -f "$REDIS_PID"; return 0; }
  local pid i
  pid="$(cat "$REDIS_PID")"
  log "stopping redis (pid $pid, SHUTDOWN NOSAVE)"
  redis-cli -h "$HOST" -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "redis still running; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$REDIS_PID"
}

# ---------------------------------------------------------------- commands

cmd_up() {
  mkdir -p "$STATE_DIR"
  redis_up
  kafka_up
  log "up: kafka $HOST:$KAFKA_PORT, redis $HOST:$REDIS_PORT (total $(elapsed "$START_NS")s)"
  log "use: eval \"\$($0 env)\""
}

cmd_down() {
  stop_kafka
  stop_redis
  # both gone (or never ours): remove data so the next 'up' formats a fresh cluster
  case "$STATE_DIR" in
    "" | / | "$HOME") die "refusing to remove STATE_DIR=$STATE_DIR" ;;
  esac
  rm -rf "$KAFKA_STATE" "$REDIS_STATE"
  rmdir "$STATE_DIR" 2>/dev/null || true
  log "down: stopped and removed state in $STATE_DIR (total $(elapsed "$START_NS")s)"
}

cmd_status() {
  local rc=0
  if pid_alive "$KAFKA_PID"; then
    if port_open "$HOST" "$KAFKA_PORT"; then
      echo "kafka: running (pid $(cat "$KAFKA_PID"), started by services.sh, v$KAFKA_VERSION) on $HOST:$KAFKA_PORT, data $KAFKA_DATA"
    else
      echo "kafka: process alive (pid $(cat "$KAFKA_PID")) but $HOST:$KAFKA_PORT not accepting connections"; rc=1
    fi
  elif port_open "$HOST" "$KAFKA_PORT"; then
    echo "kafka: $HOST:$KAFKA_PORT reachable (external, not started by services.sh)"
  else
    echo "kafka: not running ($HOST:$KAFKA_PORT)"; rc=1
  fi
  if command -v redis-cli >/dev/null && redis_ping; then
    if pid_alive "$REDIS_PID"; then
      echo "redis: running (pid $(cat "$REDIS_PID"), started by services.sh) on $HOST:$REDIS_PORT"
    else
      echo "redis: $HOST:$REDIS_PORT answers PONG (external, not started by services.sh)"
    fi
  else
    echo "redis: not running ($HOST:$REDIS_PORT)"; rc=1
  fi
  return "$rc"
}

cmd_env() {
  echo "export THREATPIPE_KAFKA_BROKERS=$HOST:$KAFKA_PORT"
  echo "export THREATPIPE_REDIS_ADDR=$HOST:$REDIS_PORT"
}

cmd_kafka_restart() {
  if ! pid_alive "$KAFKA_PID" && port_open "$HOST" "$KAFKA_PORT"; then
    die "kafka on $HOST:$KAFKA_PORT was not started by this script; cannot restart it"
  fi
  stop_kafka
  start_kafka
  log "kafka-restart done (total $(elapsed "$START_NS")s)"
}

# shellcheck source=scripts/secure.sh
source "$SCRIPT_DIR/secure.sh"

# shellcheck source=scripts/redis-topologies.sh
source "$SCRIPT_DIR/redis-topologies.sh"

usage() {
  sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  kafka-restart) cmd_kafka_restart ;;
  up-secure) cmd_up_secure ;;
  down-secure) cmd_down_secure ;;
  status-secure) cmd_status_secure ;;
  env-secure) cmd_env_secure "${2:-}" ;;
  up-cluster) cmd_up_cluster ;;
  down-cluster) cmd_down_cluster ;;
  status-cluster) cmd_status_cluster ;;
  env-cluster) cmd_env_cluster "${2:-}" ;;
  up-sentinel) cmd_up_sentinel ;;
  down-sentinel) cmd_down_sentinel ;;
  status-sentinel) cmd_status_sentinel ;;
  env-sentinel) cmd_env_sentinel "${2:-}" ;;
  -h | --help | help) usage ;;
  *) usage; exit 2 ;;
esac
