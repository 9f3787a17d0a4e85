# Secured services for threatpipe tests, sourced by scripts/services.sh (not run on its own):
# a second Kafka broker whose only client listener is SASL_SSL with SCRAM-SHA-512 (and -256), and a second
# redis-server that speaks only TLS (client certificates required) with an ACL user and the
# default user disabled. They run beside the plain pair, on other ports, in their own state
# directory; nothing here touches the plain Kafka or Redis.
#
# Certificates (one CA, a server certificate for localhost and 127.0.0.1, a client certificate) and
# passwords are generated when the secured pair first starts, into $SECURE_STATE (0700), never
# into git; `down-secure` removes them with the data.
#
# Environment (defaults):
#   THREATPIPE_SECURE_KAFKA_PORT   9096  (controller listener on port+1)
#   THREATPIPE_SECURE_REDIS_PORT   6380  (TLS only; no plain-text port)
#   THREATPIPE_SECURE_KAFKA_HEAP   384m

SECURE_KAFKA_PORT="${THREATPIPE_SECURE_KAFKA_PORT:-9096}"
SECURE_REDIS_PORT="${THREATPIPE_SECURE_REDIS_PORT:-6380}"
SECURE_KAFKA_HEAP="${THREATPIPE_SECURE_KAFKA_HEAP:-384m}"
SECURE_STATE="$STATE_DIR/secure"
SECURE_TLS="$SECURE_STATE/tls"
SECURE_CREDS="$SECURE_STATE/credentials"
SECURE_REDIS_STATE="$SECURE_STATE/redis"
SECURE_REDIS_PID="$SECURE_REDIS_STATE/redis.pid"
SECURE_REDIS_LOG="$SECURE_REDIS_STATE/redis.log"
# The application's user on both services; the broker's own inter-broker user is "admin".
SECURE_USER=threatpipe
SECURE_ADMIN=admin
SECURE_MECHANISM=SCRAM-SHA-512
# What the Redis user may do: every key and channel, every command but the dangerous ones
# (FLUSHALL, KEYS, CONFIG, DEBUG, ...). The tests prove threatpipe needs no more.
SECURE_REDIS_ACL=('~*' '&*' '+@all' '-@dangerous')
CERT_DAYS=30

# Point the Kafka functions of services.sh at the secured broker: its port, state directory,
# template and the SCRAM users written at format time.
use_secure_kafka() {
  KAFKA_PORT="$SECURE_KAFKA_PORT"
  CONTROLLER_PORT="$((SECURE_KAFKA_PORT + 1))"
  KAFKA_HEAP="$SECURE_KAFKA_HEAP"
  KAFKA_STATE="$SECURE_STATE/kafka"
  KAFKA_DATA="$KAFKA_STATE/data"
  KAFKA_LOGS="$KAFKA_STATE/logs"
  KAFKA_LOG="$KAFKA_LOGS/kafkaServer.out"
  KAFKA_PID="$KAFKA_STATE/kafka.pid"
  KAFKA_PROPS="$KAFKA_STATE/server.properties"
  KAFKA_TEMPLATE="$KAFKA_CONF_DIR/server-secure.properties"
  KAFKA_RENDER_ARGS=(-e "s|@TLS_DIR@|$SECURE_TLS|g" -e "s|@ADMIN_USER@|$SECURE_ADMIN|g"
    -e "s|@ADMIN_PASSWORD@|${SECURE_KAFKA_ADMIN_PASSWORD:-}|g")
  KAFKA_FORMAT_ARGS=(--add-scram "$SECURE_MECHANISM=[name=$SECURE_ADMIN,password=${SECURE_KAFKA_ADMIN_PASSWORD:-}]"
    --add-scram "$SECURE_MECHANISM=[name=$SECURE_USER,password=${SECURE_KAFKA_PASSWORD:-}]"
    --add-scram "SCRAM-SHA-256=[name=$SECURE_USER,password=${SECURE_KAFKA_PASSWORD:-}]")
}

random_password() { head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24; }

# Passwords are made once per state directory: the SCRAM users in the formatted metadata and the
# running Redis must keep matching them until down-secure.
ensure_secure_credentials() {
  mkdir -p "$SECURE_STATE"
  chmod 700 "$SECURE_STATE"
  if [[ ! -s "$SECURE_CREDS" ]]; then
    (umask 077 && {
      echo "SECURE_KAFKA_ADMIN_PASSWORD=$(random_password)"
      echo "SECURE_KAFKA_PASSWORD=$(random_password)"
      echo "SECURE_REDIS_PASSWORD=$(random_password)"
    } >"$SECURE_CREDS")
  fi
  # shellcheck disable=SC1090
  source "$SECURE_CREDS"
}

secure_running() { pid_alive "$KAFKA_PID" || pid_alive "$SECURE_REDIS_PID"; }

# A CA, a server certificate (localhost, 127.0.0.1; server and client auth, as the broker also
# connects to itself) and a client certificate, all EC P-256 (fast to make). Made again when
# missing or expiring within a day, unless a secured service still uses the old ones.
ensure_secure_certs() {
  local tls="$SECURE_TLS"
  if [[ -s "$tls/client.crt" ]] && openssl x509 -checkend 86400 -noout -in "$tls/server.crt" >/dev/null 2>&1; then
    return 0
  fi
  secure_running && die "certificates in $tls are missing or expiring but secured services run: 'scripts/services.sh down-secure' first"
  command -v openssl >/dev/null || apt_install openssl
  local t0
  t0="$(date +%s%N)"
  rm -rf "$tls"
  mkdir -p "$tls"
  chmod 700 "$tls"
  local -a ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
  openssl req -x509 "${ec[@]}" -keyout "$tls/ca.key" -out "$tls/ca.crt" -days "$CERT_DAYS" \
    -subj "/CN=threatpipe test CA $(date +%s)" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null || die "openssl: CA"
  issue_cert server "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth,clientAuth"
  issue_cert client "/CN=$SECURE_USER" "extendedKeyUsage=clientAuth"
  # Kafka's PEM key store: the unencrypted PKCS#8 key followed by the certificate.
  cat "$tls/server.key" "$tls/server.crt" >"$tls/server-keystore.pem"
  chmod 600 "$tls"/*.key "$tls/server-keystore.pem"
  log "certificates made in $tls in $(elapsed "$t0")s (valid $CERT_DAYS days)"
}

issue_cert() { # name subject extensions
  local tls="$SECURE_TLS"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tls/$1.key" \
    -out "$tls/$1.csr" -subj "$2" 2>/dev/null || die "openssl: $1 key"
  printf '%s\nbasicConstraints=CA:FALSE\n' "$3" >"$tls/$1.ext"
  openssl x509 -req -in "$tls/$1.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial \
    -out "$tls/$1.crt" -days "$CERT_DAYS" -extfile "$tls/$1.ext" 2>/dev/null || die "openssl: sign $1"
  rm -f "$tls/$1.csr" "$tls/$1.ext"
}

secure_redis_cli() { # args...
  timeout 3 redis-cli --tls --cacert "$SECURE_TLS/ca.crt" --cert "$SECURE_TLS/client.crt" \
    --key "$SECURE_TLS/client.key" -h "$HOST" -p "$SECURE_REDIS_PORT" --user "$SECURE_USER" \
    --pass "$SECURE_REDIS_PASSWORD" --no-auth-warning "$@" 2>/dev/null
}

secure_redis_up() {
  local deadline=$((SECONDS + READY_TIMEOUT))
  while pid_alive "$SECURE_REDIS_PID"; do # running, starting, or being stopped
    if [[ "$(secure_redis_cli ping)" == PONG ]]; then
      log "secured redis already running (pid $(cat "$SECURE_REDIS_PID")) on $HOST:$SECURE_REDIS_PORT"
      return 0
    fi
    ((SECONDS < deadline)) || die "secured redis (pid $(cat "$SECURE_REDIS_PID")) does not answer PING over TLS; see $SECURE_REDIS_LOG"
    sleep 0.2
  done
  port_open "$HOST" "$SECURE_REDIS_PORT" && die "$HOST:$SECURE_REDIS_PORT is in use by a process this script did not start"
  ensure_redis_installed
  mkdir -p "$SECURE_REDIS_STATE"
  rm -f "$SECURE_REDIS_PID"
  local t0
  t0="$(date +%s%N)"
  log "starting secured redis on $HOST:$SECURE_REDIS_PORT (TLS only, client certificates, ACL user $SECURE_USER), log $SECURE_REDIS_LOG"
  # The ACL arrives on the command line (not visible later: redis rewrites its argv), so that no
  # config file with the password is left behind. --port 0: no plain-text listener at all.
  redis-server --bind "$HOST" --port 0 --tls-port "$SECURE_REDIS_PORT" \
    --tls-cert-file "$SECURE_TLS/server.crt" --tls-key-file "$SECURE_TLS/server.key" \
    --tls-ca-cert-file "$SECURE_TLS/ca.crt" --tls-auth-clients yes \
    --user default off --user "$SECURE_USER" on ">$SECURE_REDIS_PASSWORD" "${SECURE_REDIS_ACL[@]}" \
    --save "" --appendonly no --daemonize yes \
    --dir "$SECURE_REDIS_STATE" --pidfile "$SECURE_REDIS_PID" --logfile "$SECURE_REDIS_LOG" >&2
  deadline=$((SECONDS + READY_TIMEOUT))
  until [[ "$(secure_redis_cli ping)" == PONG ]]; do
    if ((SECONDS >= deadline)); then
      tail -n 30 "$SECURE_REDIS_LOG" >&2 || true
      die "secured redis not ready after ${READY_TIMEOUT}s"
    fi
    sleep 0.1
  done
  log "secured redis ready on $HOST:$SECURE_REDIS_PORT (pid $(cat "$SECURE_REDIS_PID" 2>/dev/null || echo '?')) after $(elapsed "$t0")s"
}

stop_secure_redis() {
  pid_alive "$SECURE_REDIS_PID" || { rm -f "$SECURE_REDIS_PID"; return 0; }
  local pid i
  pid="$(cat "$SECURE_REDIS_PID")"
  log "stopping secured redis (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$SECURE_REDIS_PID"
}

secure_kafka_up() {
  if pid_alive "$KAFKA_PID"; then
    if port_open "$HOST" "$KAFKA_PORT"; then
      log "secured kafka already running (pid $(cat "$KAFKA_PID")) on $HOST:$KAFKA_PORT"
    else
      log "secured kafka (pid $(cat "$KAFKA_PID")) is starting; waiting"
      wait_kafka_ready
    fi
    return 0
  fi
  rm -f "$KAFKA_PID"
  port_open "$HOST" "$KAFKA_PORT" && die "$HOST:$KAFKA_PORT is in use by a process this script did not start"
  start_kafka
  chmod 600 "$KAFKA_PROPS"
}

cmd_up_secure() {
  ensure_secure_credentials
  use_secure_kafka
  ensure_secure_certs
  # Kafka's JVM start dominates; Redis is up in a moment, so start it first.
  secure_redis_up
  secure_kafka_up
  log "up-secure: kafka SASL_SSL $HOST:$SECURE_KAFKA_PORT, redis TLS $HOST:$SECURE_REDIS_PORT (total $(elapsed "$START_NS")s)"
  log "use: eval \"\$($0 env-secure)\""
}

cmd_down_secure() {
  use_secure_kafka
  stop_kafka
  stop_secure_redis
  case "$SECURE_STATE" in
    "" | / | "$HOME") die "refusing to remove $SECURE_STATE" ;;
  esac
  rm -rf "$SECURE_STATE"
  log "down-secure: stopped and removed $SECURE_STATE (total $(elapsed "$START_NS")s)"
}

cmd_status_secure() {
  local rc=0
  use_secure_kafka
  if pid_alive "$KAFKA_PID" && port_open "$HOST" "$KAFKA_PORT"; then
    echo "secured kafka: running (pid $(cat "$KAFKA_PID")) SASL_SSL on $HOST:$KAFKA_PORT"
  else
    echo "secured kafka: not running ($HOST:$KAFKA_PORT)"; rc=1
  fi
  if pid_alive "$SECURE_REDIS_PID"; then
    echo "secured redis: running (pid $(cat "$SECURE_REDIS_PID")) TLS on $HOST:$SECURE_REDIS_PORT"
  else
    echo "secured redis: not running ($HOST:$SECURE_REDIS_PORT)"; rc=1
  fi
  return "$rc"
}

# env-secure prints the THREATPIPE_* settings that connect threatpipe to the secured pair;
# with --test, the same settings as THREATPIPE_TEST_SECURE_* for the integration tests.
cmd_env_secure() {
  [[ -s "$SECURE_CREDS" ]] || die "no secured services here: run '$0 up-secure' first"
  # shellcheck disable=SC1090
  source "$SECURE_CREDS"
  local prefix=THREATPIPE_
  [[ "${1:-}" != --test ]] || prefix=THREATPIPE_TEST_SECURE_
  local name value
  while IFS='=' read -r name value; do
    printf 'export %s%s=%q\n' "$prefix" "$name" "$value"
  done <<EOF
KAFKA_BROKERS=$HOST:$SECURE_KAFKA_PORT
KAFKA_TLS_ENABLED=true
KAFKA_TLS_CA_FILE=$SECURE_TLS/ca.crt
KAFKA_SASL_MECHANISM=scram-sha-512
KAFKA_SASL_USERNAME=$SECURE_USER
KAFKA_SASL_PASSWORD=$SECURE_KAFKA_PASSWORD
REDIS_ADDR=$HOST:$SECURE_REDIS_PORT
REDIS_TLS_ENABLED=true
REDIS_TLS_CA_FILE=$SECURE_TLS/ca.crt
REDIS_TLS_CERT_FILE=$SECURE_TLS/client.crt
REDIS_TLS_KEY_FILE=$SECURE_TLS/client.key
REDIS_USERNAME=$SECURE_USER
REDIS_PASSWORD=$SECURE_REDIS_PASSWORD
EOF
}
