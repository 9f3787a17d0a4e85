#!/usr/bin/env bash
# `make run-local`: the provider simulator (every provider's API shapes) and the enricher on the real
# local Kafka and Redis started by scripts/services.sh, fed with scripts/sample-events.jsonl every
# few seconds (`make run` is the embedded all-in-one demo). Ctrl-C stops everything; the enricher
# drains and commits first.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/services.sh env)"
SIM_ADDR="${THREATPIPE_SIM_ADDR:-127.0.0.1:8090}"
export THREATPIPE_KAFKA_CREATE_TOPICS=true THREATPIPE_HTTP_ADDR="${THREATPIPE_HTTP_ADDR:-127.0.0.1:8080}" \
	THREATPIPE_LOG_FORMAT="${THREATPIPE_LOG_FORMAT:-console}" \
	THREATPIPE_INTERNETDB_ENABLED="${THREATPIPE_INTERNETDB_ENABLED:-true}"
# Every provider against the simulator unless the environment points it elsewhere.
for p in criminalip abuseipdb virustotal greynoise otx internetdb; do
	P=$(echo "$p" | tr a-z A-Z)
	key="THREATPIPE_${P}_API_KEY" base="THREATPIPE_${P}_BASE_URL" quota="THREATPIPE_${P}_QUOTA"
	[ "$p" = internetdb ] || export "$key=${!key:-sim-key}"
	export "$base=${!base:-http://$SIM_ADDR/$p}" "$quota=${!quota:-1000}"
done

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

bin/threatpipe sim --addr "$SIM_ADDR" --latency 80ms --jitter 40ms --daily-quota 1000 &
pids+=($!)

feed() {
	while true; do
		bin/threatpipe produce --create-topic --allow-invalid --quiet scripts/sample-events.jsonl 2>/dev/null || true
		sleep 5
	done
}
feed &
pids+=($!)

cat >&2 <<MSG
threatpipe: enricher on ${THREATPIPE_KAFKA_BROKERS}, providers simulated under http://${SIM_ADDR}/<name>;
sample events every 5 s.
  metrics:  http://${THREATPIPE_HTTP_ADDR}/metrics   readiness: http://${THREATPIPE_HTTP_ADDR}/readyz
  simulator counters: http://${SIM_ADDR}/_sim/providers
  topics: indicators (in), indicators.scored, indicators.dlq, threatpipe.ops
Ctrl-C to stop.
MSG
bin/threatpipe enrich
