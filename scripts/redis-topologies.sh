# Redis in the topologies threatpipe supports besides a single node, sourced by scripts/services.sh
# (not run on its own): a Redis Cluster of three masters, and a primary with one replica watched by
# three Sentinels. Both use Debian's redis-server (a Sentinel is `redis-server <conf> --sentinel`,
# which is all the redis-sentinel package adds), run beside the plain Redis on other ports, in
# state directories of their own under $STATE_DIR, without persistence (the tests own their data).
#
#   up-cluster     three masters on $THREATPIPE_REDIS_CLUSTER_PORT.. (7001-7003), no replicas, the
#                  16384 slots split by `redis-cli --cluster create`; waits for cluster_state:ok on
#                  every node. Reuses a running cluster; its slots may have moved since (tests move
#                  them), which is fine: every slot is served by one of the three.
#   up-sentinel    a primary on $THREATPIPE_REDIS_SENTINEL_PORT (6391) and its replica on port+1
#                  (min-replicas-to-write 1, so that a failover loses no acknowledged write),
#                  three Sentinels on $THREATPIPE_SENTINEL_PORT.. (26391-26393), quorum 2, master
#                  name $THREATPIPE_SENTINEL_MASTER (threatpipe). Waits until every Sentinel names
#                  the primary, knows the replica with its link up, and knows the two other
#                  Sentinels. After a failover the primary is wherever the Sentinels say: nodes and
#                  Sentinels rewrite their own config files, so a restart keeps the roles.
#   down-*         stop them and remove their state.
#   env-*          export lines for the tests (THREATPIPE_TEST_REDIS_CLUSTER_ADDRS,
#                  THREATPIPE_TEST_REDIS_SENTINEL_ADDRS, THREATPIPE_TEST_REDIS_SENTINEL_MASTER);
#                  with --app, THREATPIPE_REDIS_ADDR (and THREATPIPE_REDIS_MASTER_NAME) instead.

CLUSTER_PORT="${THREATPIPE_REDIS_CLUSTER_PORT:-7001}"
CLUSTER_PORTS=("$CLUSTER_PORT" "$((CLUSTER_PORT + 1))" "$((CLUSTER_PORT + 2))")
CLUSTER_STATE="$STATE_DIR/redis-cluster"
SENTINEL_DATA_PORT="${THREATPIPE_REDIS_SENTINEL_PORT:-6391}"
SENTINEL_DATA_PORTS=("$SENTINEL_DATA_PORT" "$((SENTINEL_DATA_PORT + 1))")
SENTINEL_PORT="${THREATPIPE_SENTINEL_PORT:-26391}"
SENTINEL_PORTS=("$SENTINEL_PORT" "$((SENTINEL_PORT + 1))" "$((SENTINEL_PORT + 2))")
SENTINEL_MASTER="${THREATPIPE_SENTINEL_MASTER:-threatpipe}"
SENTINEL_QUORUM=2
SENTINEL_STATE="$STATE_DIR/redis-sentinel"

join_addrs() { # ports... -> host:port,host:port
  local out="" p
  for p in "$@"; do out+="${out:+,}$HOST:$p"; done
  echo "$out"
}

rcli() { # port args...   (one redis-cli call, bounded)
  local port="$1"
  shift
  timeout 3 redis-cli -h "$HOST" -p "$port" "$@" 2>/dev/null
}

node_ping() { [[ "$(rcli "$1" ping)" == "PONG" ]]; }

info_field() { # port section field
  rcli "$1" info "$2" | tr -d '\r' | sed -n "s/^$3://p"
}

# start_node dir port kind [--sentinel]: starts redis-server on $dir/redis.conf unless the one this
# script started there answers. The conf is written by the caller once; Redis and Sentinel rewrite
# it (roles after a failover, the cluster's nodes.conf), so a restart keeps what they learnt.
start_node() {
  local dir="$1" port="$2" kind="$3" mode="${4:-}"
  if pid_alive "$dir/redis.pid" && node_ping "$port"; then
    log "$kind already running (pid $(cat "$dir/redis.pid")) on $HOST:$port"
    return 0
  fi
  rm -f "$dir/redis.pid"
  if node_ping "$port"; then
    die "$kind: $HOST:$port already answers PING but was not started by this script ($dir); stop it or set another port"
  fi
  port_open "$HOST" "$port" && die "$kind: $HOST:$port is in use by something that is not Redis"
  [[ -f "$dir/redis.conf" ]] || die "$kind: $dir/redis.conf missing"
  local args=("$dir/redis.conf")
  [[ -z "$mode" ]] || args+=("$mode")
  redis-server "${args[@]}" >&2 || die "$kind: redis-server $dir/redis.conf $mode failed to start (log $dir/redis.log)"
}

wait_nodes_ping() { # kind dir-of-port-fn ports...
  local kind="$1" dirfn="$2" deadline p
  shift 2
  deadline=$((SECONDS + READY_TIMEOUT))
  for p in "$@"; do
    until node_ping "$p"; do
      if ((SECONDS >= deadline)); then
        tail -n 30 "$("$dirfn" "$p")/redis.log" >&2 || true
        die "$kind on $HOST:$p not answering PING after ${READY_TIMEOUT}s"
      fi
      sleep 0.1
    done
  done
}

stop_nodes() { # kind dir-of-port-fn ports...
  local kind="$1" dirfn="$2" p dir pid i
  shift 2
  for p in "$@"; do
    dir="$("$dirfn" "$p")"
    pid_alive "$dir/redis.pid" || { rm -f "$dir/redis.pid"; continue; }
    pid="$(cat "$dir/redis.pid")"
    log "stopping $kind on $HOST:$p (pid $pid, SHUTDOWN NOSAVE)"
    rcli "$p" shutdown nosave >/dev/null || true
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$kind on $HOST:$p still running; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$dir/redis.pid"
  done
}

remove_state() { # dir
  case "$1" in
    "" | / | "$HOME" | "$STATE_DIR") die "refusing to remove $1" ;;
  esac
  rm -rf "$1"
  rmdir "$STATE_DIR" 2>/dev/null || true
}

# A data node's common settings: loopback only, no persistence, its files in its own directory.
node_conf() { # dir port
  cat <<EOF
bind $HOST
port $2
daemonize yes
pidfile $1/redis.pid
logfile $1/redis.log
dir $1
save ""
appendonly no
EOF
}

# ---------------------------------------------------------------- cluster

cluster_dir() { echo "$CLUSTER_STATE/$1"; }

cluster_field() { # port field (CLUSTER INFO)
  rcli "$1" cluster info | tr -d '\r' | sed -n "s/^$2://p"
}

cluster_ok_everywhere() {
  local p
  for p in "${CLUSTER_PORTS[@]}"; do
    [[ "$(cluster_field "$p" cluster_state)" == ok && "$(cluster_field "$p" cluster_known_nodes)" -ge 3 ]] || return 1
  done
}

# cluster_consistent: redis-cli --cluster check finds every slot covered, no slot open, and every
# node agreeing on who owns what.
cluster_consistent() {
  local out
  out="$(timeout 30 redis-cli --cluster check "$HOST:${CLUSTER_PORTS[0]}" 2>&1)" || return 1
  ! grep -qE '\[(ERR|WARNING)\]' <<<"$out"
}

cmd_up_cluster() {
  local t0 p dir
  t0="$(date +%s%N)"
  ensure_redis_installed
  for p in "${CLUSTER_PORTS[@]}"; do
    dir="$(cluster_dir "$p")"
    mkdir -p "$dir"
    if [[ ! -f "$dir/redis.conf" ]]; then
      {
        node_conf "$dir" "$p"
        echo "cluster-enabled yes"
        echo "cluster-config-file $dir/nodes.conf"
        echo "cluster-node-timeout 5000"
      } >"$dir/redis.conf"
    fi
    start_node "$dir" "$p" "cluster node"
  done
  wait_nodes_ping "cluster node" cluster_dir "${CLUSTER_PORTS[@]}"
  for p in "${CLUSTER_PORTS[@]}"; do
    [[ "$(info_field "$p" cluster cluster_enabled)" == 1 ]] || die "$HOST:$p is not cluster-enabled"
  done
  if ! cluster_ok_everywhere; then
    local fresh=1
    for p in "${CLUSTER_PORTS[@]}"; do
      [[ "$(cluster_field "$p" cluster_known_nodes)" == 1 && "$(cluster_field "$p" cluster_slots_assigned)" == 0 ]] || fresh=0
    done
    if [[ "$fresh" -eq 1 ]]; then
      log "creating the cluster: $(join_addrs "${CLUSTER_PORTS[@]}"), 3 masters, no replicas"
      local hosts=() out
      for p in "${CLUSTER_PORTS[@]}"; do hosts+=("$HOST:$p"); done
      out="$(timeout 60 redis-cli --cluster create "${hosts[@]}" --cluster-replicas 0 --cluster-yes 2>&1)" \
        || { printf '%s\n' "$out" >&2; die "redis-cli --cluster create failed"; }
    else
      log "cluster nodes already joined; waiting for cluster_state:ok"
    fi
  fi
  local deadline=$((SECONDS + READY_TIMEOUT))
  until cluster_ok_everywhere; do
    if ((SECONDS >= deadline)); then
      for p in "${CLUSTER_PORTS[@]}"; do log "$HOST:$p: $(rcli "$p" cluster info | tr -d '\r' | grep -E 'cluster_(state|known_nodes|slots_ok)' | tr '\n' ' ')"; done
      die "cluster not ok after ${READY_TIMEOUT}s (a half-formed cluster? 'scripts/services.sh down-cluster' and up again)"
    fi
    sleep 0.1
  done
  # cluster_state:ok does not mean the nodes agree: a slot move cut short (a test killed between
  # SETSLOT IMPORTING and SETSLOT NODE) leaves a slot open, or owned in one node's view and not in
  # its owner's. redis-cli's own check finds that and its fix settles the slot, as an operator would.
  if ! cluster_consistent; then
    log "the cluster's nodes disagree or a slot is open; repairing with redis-cli --cluster fix"
    timeout 120 redis-cli --cluster fix "$HOST:${CLUSTER_PORTS[0]}" --cluster-yes >/dev/null 2>&1 || true
    deadline=$((SECONDS + 15)) # gossip settles a fixed cluster in a few seconds
    until cluster_consistent && cluster_ok_everywhere; do
      if ((SECONDS >= deadline)); then
        # fix cannot settle two nodes each naming the other as a slot's owner. The cluster
        # holds only test data: make it again.
        [[ -z "${CLUSTER_REMADE:-}" ]] || die "cluster still inconsistent after being made again"
        log "still inconsistent after redis-cli --cluster fix; making the cluster again"
        cmd_down_cluster
        CLUSTER_REMADE=1 cmd_up_cluster
        return
      fi
      sleep 0.2
    done
  fi
  log "redis cluster ready: $(join_addrs "${CLUSTER_PORTS[@]}"), cluster_state:ok on every node, slots agreed, after $(elapsed "$t0")s"
}

cmd_down_cluster() {
  stop_nodes "cluster node" cluster_dir "${CLUSTER_PORTS[@]}"
  remove_state "$CLUSTER_STATE"
  log "down-cluster: stopped and removed $CLUSTER_STATE"
}

cmd_status_cluster() {
  local p rc=0 dir
  for p in "${CLUSTER_PORTS[@]}"; do
    dir="$(cluster_dir "$p")"
    if node_ping "$p"; then
      echo "cluster node $HOST:$p: $(pid_alive "$dir/redis.pid" && echo "pid $(cat "$dir/redis.pid")" || echo external)," \
        "state $(cluster_field "$p" cluster_state), slots $(rcli "$p" cluster nodes | tr -d '\r' | awk '$3 ~ /myself/ {s=""; for (i=9; i<=NF; i++) s=s (s==""?"":",") $i; print (s==""?"none":s)}')"
    else
      echo "cluster node $HOST:$p: not running"
      rc=1
    fi
  done
  return "$rc"
}

cmd_env_cluster() {
  if [[ "${1:-}" == --app ]]; then
    echo "export THREATPIPE_REDIS_ADDR=$(join_addrs "${CLUSTER_PORTS[@]}")"
  else
    echo "export THREATPIPE_TEST_REDIS_CLUSTER_ADDRS=$(join_addrs "${CLUSTER_PORTS[@]}")"
  fi
}

# ---------------------------------------------------------------- sentinel

sentinel_node_dir() { echo "$SENTINEL_STATE/node-$1"; }
sentinel_dir() { echo "$SENTINEL_STATE/sentinel-$1"; }

# sentinel_ready port: the Sentinel names a primary that answers as master, knows a replica whose
# link is up, and knows the two other Sentinels (so a failover's new epoch reaches every one).
sentinel_ready() {
  local sp="$1" addr mport
  addr="$(rcli "$sp" sentinel get-master-addr-by-name "$SENTINEL_MASTER" | tr -d '\r' | paste -sd: -)"
  [[ "$addr" == *:* ]] || return 1
  mport="${addr##*:}"
  [[ "$(info_field "$mport" replication role)" == master ]] || return 1
  [[ "$(info_field "$mport" replication connected_slaves)" -ge 1 ]] || return 1
  rcli "$sp" sentinel replicas "$SENTINEL_MASTER" | tr -d '\r' | grep -qx 'master-link-status' || return 1
  [[ "$(rcli "$sp" sentinel master "$SENTINEL_MASTER" | tr -d '\r' | sed -n '/^num-other-sentinels$/{n;p}')" -ge 2 ]] || return 1
  # the replica's link, as the Sentinel last saw it
  rcli "$sp" sentinel replicas "$SENTINEL_MASTER" | tr -d '\r' | sed -n '/^master-link-status$/{n;p}' | grep -qx ok
}

sentinel_primary() { # -> host:port the first answering Sentinel names
  local sp
  for sp in "${SENTINEL_PORTS[@]}"; do
    rcli "$sp" sentinel get-master-addr-by-name "$SENTINEL_MASTER" | tr -d '\r' | paste -sd: - && return 0
  done
  return 1
}

# A primary takes writes only while its replica is linked (acknowledged within 10 s). Without
# it, a failover loses every write the old primary acknowledges between the promotion of its
# replica and the clients' switch (about a second: Sentinel sees the promotion, then publishes
# +switch-master), and the old primary throws them away when it rejoins as a replica: cache
# entries and leases (so paid lookups repeat) and ledger claims (so actions repeat). With it, the
# old primary refuses them (NOREPLICAS) from the moment its replica is promoted, and the new one
# until the old one has rejoined it (about 10 s: Sentinel waits 8 s before reconfiguring it), a
# write stall threatpipe rides out by waiting.
node_safety_conf() {
  echo "min-replicas-to-write 1"
  echo "min-replicas-max-lag 10"
}

cmd_up_sentinel() {
  local t0 p dir
  t0="$(date +%s%N)"
  ensure_redis_installed
  local primary="${SENTINEL_DATA_PORTS[0]}"
  for p in "${SENTINEL_DATA_PORTS[@]}"; do
    dir="$(sentinel_node_dir "$p")"
    mkdir -p "$dir"
    if [[ ! -f "$dir/redis.conf" ]]; then
      {
        node_conf "$dir" "$p"
        # a replica resyncs at once (the default waits 5 s for more replicas)
        echo "repl-diskless-sync yes"
        echo "repl-diskless-sync-delay 0"
        node_safety_conf
        [[ "$p" == "$primary" ]] || echo "replicaof $HOST $primary"
      } >"$dir/redis.conf"
    fi
    start_node "$dir" "$p" "sentinel-managed redis"
  done
  wait_nodes_ping "sentinel-managed redis" sentinel_node_dir "${SENTINEL_DATA_PORTS[@]}"
  for p in "${SENTINEL_DATA_PORTS[@]}"; do # nodes started before these settings existed
    node_safety_conf | while read -r name value; do
      [[ "$(rcli "$p" config set "$name" "$value")" == OK ]] || die "CONFIG SET $name $value on $HOST:$p failed"
    done
  done
  for p in "${SENTINEL_PORTS[@]}"; do
    dir="$(sentinel_dir "$p")"
    mkdir -p "$dir"
    if [[ ! -f "$dir/redis.conf" ]]; then
      # Sentinel rewrites this file (epochs, the other Sentinels, the current primary).
      {
        echo "bind $HOST"
        echo "port $p"
        echo "daemonize yes"
        echo "pidfile $dir/redis.pid"
        echo "logfile $dir/redis.log"
        echo "dir $dir"
        echo "sentinel resolve-hostnames no"
        echo "sentinel monitor $SENTINEL_MASTER $HOST $primary $SENTINEL_QUORUM"
        echo "sentinel down-after-milliseconds $SENTINEL_MASTER 3000"
        echo "sentinel failover-timeout $SENTINEL_MASTER 10000"
        echo "sentinel parallel-syncs $SENTINEL_MASTER 1"
      } >"$dir/redis.conf"
    fi
    start_node "$dir" "$p" "sentinel" --sentinel
  done
  wait_nodes_ping "sentinel" sentinel_dir "${SENTINEL_PORTS[@]}"
  local deadline=$((SECONDS + READY_TIMEOUT))
  for p in "${SENTINEL_PORTS[@]}"; do
    until sentinel_ready "$p"; do
      if ((SECONDS >= deadline)); then
        log "sentinel $HOST:$p: master $(rcli "$p" sentinel get-master-addr-by-name "$SENTINEL_MASTER" | paste -sd: -)"
        tail -n 20 "$(sentinel_dir "$p")/redis.log" >&2 || true
        die "sentinel $HOST:$p does not report a primary with a linked replica and two other Sentinels after ${READY_TIMEOUT}s"
      fi
      sleep 0.2
    done
  done
  log "redis sentinel ready: master $SENTINEL_MASTER at $(sentinel_primary), replica linked, Sentinels $(join_addrs "${SENTINEL_PORTS[@]}") (quorum $SENTINEL_QUORUM), after $(elapsed "$t0")s"
}

cmd_down_sentinel() {
  # Sentinels first, so that stopping the primary does not start a failover.
  stop_nodes "sentinel" sentinel_dir "${SENTINEL_PORTS[@]}"
  stop_nodes "sentinel-managed redis" sentinel_node_dir "${SENTINEL_DATA_PORTS[@]}"
  remove_state "$SENTINEL_STATE"
  log "down-sentinel: stopped and removed $SENTINEL_STATE"
}

cmd_status_sentinel() {
  local p rc=0
  for p in "${SENTINEL_DATA_PORTS[@]}"; do
    if node_ping "$p"; then
      echo "redis $HOST:$p: $(info_field "$p" replication role)"
    else
      echo "redis $HOST:$p: not running"; rc=1
    fi
  done
  for p in "${SENTINEL_PORTS[@]}"; do
    if node_ping "$p"; then
      echo "sentinel $HOST:$p: master $SENTINEL_MASTER at $(rcli "$p" sentinel get-master-addr-by-name "$SENTINEL_MASTER" | tr -d '\r' | paste -sd: -)"
    else
      echo "sentinel $HOST:$p: not running"; rc=1
    fi
  done
  return "$rc"
}

cmd_env_sentinel() {
  if [[ "${1:-}" == --app ]]; then
    echo "export THREATPIPE_REDIS_ADDR=$(join_addrs "${SENTINEL_PORTS[@]}")"
    echo "export THREATPIPE_REDIS_MASTER_NAME=$SENTINEL_MASTER"
  else
    echo "export THREATPIPE_TEST_REDIS_SENTINEL_ADDRS=$(join_addrs "${SENTINEL_PORTS[@]}")"
    echo "export THREATPIPE_TEST_REDIS_SENTINEL_MASTER=$SENTINEL_MASTER"
  fi
}
