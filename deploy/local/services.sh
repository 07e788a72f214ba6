#!/usr/bin/env bash
# Kafka + Elasticsearch together, for Vigil's integration tests.
#
#   deploy/local/services.sh up       # start both (in parallel), wait until healthy
#   deploy/local/services.sh down     # stop both
#   deploy/local/services.sh status   # exit 0 when both are healthy
#   eval "$(deploy/local/services.sh env)"   # VIGIL_TEST_KAFKA[_TLS…] / VIGIL_TEST_ES
set -euo pipefail

_vigil_name=services
HERE="$(dirname "$(readlink -f "$0")")"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

KAFKA_ADDR="127.0.0.1:${VIGIL_KAFKA_PORT:-9092}"
ES_ADDR="http://127.0.0.1:${VIGIL_ES_PORT:-9200}"
# Kafka's SASL_SSL listener, its CA (made by kafka.sh up) and SCRAM user; the
# defaults match kafka.sh's.
KAFKA_TLS_ADDR="127.0.0.1:${VIGIL_KAFKA_TLS_PORT:-9094}"
KAFKA_TLS_CA="$VIGIL_RUN_DIR/kafka/tls/ca.pem"

case "${1:-}" in
up)
  t0="$(now_s)"
  # Both JVMs start in parallel; each script prints its own log tail on failure.
  "$HERE/kafka.sh" up &
  kpid=$!
  "$HERE/elasticsearch.sh" up &
  epid=$!
  rc=0
  wait "$kpid" || { rc=1; log "Kafka failed to come up"; }
  wait "$epid" || { rc=1; log "Elasticsearch failed to come up"; }
  if ((rc != 0)); then
    log "not all services are up ('$0 down' stops whatever did start)"
    exit 1
  fi
  log "all up in $(elapsed "$t0")s: Kafka $KAFKA_ADDR (SASL_SSL $KAFKA_TLS_ADDR), Elasticsearch $ES_ADDR"
  log "for tests: eval \"\$($0 env)\""
  ;;
down)
  rc=0
  "$HERE/kafka.sh" down || rc=1
  "$HERE/elasticsearch.sh" down || rc=1
  exit "$rc"
  ;;
status)
  rc=0
  "$HERE/kafka.sh" status || rc=1
  "$HERE/elasticsearch.sh" status || rc=1
  exit "$rc"
  ;;
env)
  printf 'export VIGIL_TEST_KAFKA=%s\n' "$KAFKA_ADDR"
  printf 'export VIGIL_TEST_KAFKA_TLS=%s\n' "$KAFKA_TLS_ADDR"
  printf 'export VIGIL_TEST_KAFKA_TLS_CA=%q\n' "$KAFKA_TLS_CA"
  printf 'export VIGIL_TEST_KAFKA_SASL_USER=%q\n' "${VIGIL_KAFKA_SCRAM_USER:-vigil}"
  printf 'export VIGIL_TEST_KAFKA_SASL_PASSWORD=%q\n' "${VIGIL_KAFKA_SCRAM_PASSWORD:-vigil-local-scram}"
  printf 'export VIGIL_TEST_ES=%s\n' "$ES_ADDR"
  ;;
*)
  echo "usage: $0 up|down|status|env" >&2
  exit 2
  ;;
esac
