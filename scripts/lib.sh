# Helpers shared by the service scripts (services.sh, kube.sh, helm.sh), sourced after the
# caller sets LOG_NAME, the prefix of its messages.

START_NS="$(date +%s%N)"

log() { printf '%s: %s\n' "$LOG_NAME" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
elapsed() { # seconds since $1 (ns), one decimal
  local d=$(( $(date +%s%N) - $1 ))
  printf '%d.%d' $((d / 1000000000)) $(((d / 100000000) % 10))
}

port_open() { # host port
  timeout 1 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

pid_alive() { # pidfile -> 0 if the recorded process is alive
  local p
  [[ -s "$1" ]] || return 1
  p="$(cat "$1" 2>/dev/null)" || return 1
  [[ "$p" =~ ^[0-9]+$ ]] && kill -0 "$p" 2>/dev/null
}
