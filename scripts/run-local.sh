#!/usr/bin/env bash
# `make run` until the embedded mode exists: the enricher on the local Kafka and Redis started by
# scripts/services.sh, fed with scripts/sample-events.jsonl every few seconds.
# Ctrl-C stops the enricher (it drains and commits) and the feeder.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/services.sh env)"
export THREATPIPE_KAFKA_CREATE_TOPICS=true THREATPIPE_HTTP_ADDR="${THREATPIPE_HTTP_ADDR:-127.0.0.1:8080}" \
	THREATPIPE_LOG_FORMAT="${THREATPIPE_LOG_FORMAT:-console}"

feed() {
	while true; do
		bin/threatpipe produce --create-topic --allow-invalid --quiet scripts/sample-events.jsonl 2>/dev/null || true
		sleep 5
	done
}
feed &
feeder=$!
trap 'kill $feeder 2>/dev/null || true' EXIT

cat >&2 <<MSG
threatpipe: enricher on ${THREATPIPE_KAFKA_BROKERS}; sample events every 5 s.
  metrics:  http://${THREATPIPE_HTTP_ADDR}/metrics   readiness: http://${THREATPIPE_HTTP_ADDR}/readyz
  scored events: topic indicators.scored   dead letters: topic indicators.dlq
Ctrl-C to stop.
MSG
bin/threatpipe enrich
