#!/usr/bin/env bash
# Single-node Elasticsearch 8.x on 127.0.0.1 for Vigil's integration tests and
# for trying the distributed mode locally.
#
#   deploy/local/elasticsearch.sh up|down|status|restart|fetch
#
# The distribution is Maven Central's integ-test-zip
# (org.elasticsearch.distribution.integ-test-zip:elasticsearch:<ver>:zip, no
# bundled JDK: it runs on the machine's java), unpacked once into
# $VIGIL_CACHE_DIR/elasticsearch-<version>. Config, data, logs and pid live in
# $VIGIL_RUN_DIR/elasticsearch. Elasticsearch refuses to run as root, so when
# this script runs as root it starts the node as the unprivileged system user
# $VIGIL_ES_USER (created if missing). See docs/local-services.md.
set -euo pipefail

_vigil_name=elasticsearch
# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

ES_VERSION="${VIGIL_ES_VERSION:-8.19.21}"
ES_PORT="${VIGIL_ES_PORT:-9200}"
ES_TRANSPORT_PORT="${VIGIL_ES_TRANSPORT_PORT:-9300}"
ES_HEAP="${VIGIL_ES_HEAP:-512m}"
ES_USER="${VIGIL_ES_USER:-vigil-es}"
ES_START_TIMEOUT="${VIGIL_ES_START_TIMEOUT:-300}"

ES_DIST="$VIGIL_CACHE_DIR/elasticsearch-$ES_VERSION"
ES_HOME="$ES_DIST/elasticsearch-$ES_VERSION"
RUN="$VIGIL_RUN_DIR/elasticsearch"
CONF="$RUN/config"
DATA="$RUN/data"
LOGS="$RUN/logs"
TMPD="$RUN/tmp"
PIDFILE="$RUN/elasticsearch.pid" # the launcher, leader of its own process group
LOGFILE="$RUN/elasticsearch.log" # launcher + node stdout/stderr
URL="http://127.0.0.1:$ES_PORT"

JAVA_HOME="$(detect_java_home)"
PID_MATCH="elasticsearch" # in the command line of the process in PIDFILE

fetch_unlocked() {
  [[ -f "$ES_DIST/.complete" ]] && return 0
  need_cmd mvn
  local t0 tmp zip
  t0="$(now_s)"
  log "fetching Elasticsearch $ES_VERSION (integ-test-zip) with Maven into $ES_DIST"
  mkdir -p "$ES_DIST"
  tmp="$(mktemp -d "$ES_DIST/.fetch.XXXXXX")"
  # dependency:copy needs no project; the zip also stays in ~/.m2 for reuse.
  # VIGIL_MVN_ARGS is split into words on purpose (e.g. "-o -s settings.xml").
  # shellcheck disable=SC2086
  if ! (cd "$tmp" && mvn -B -q ${VIGIL_MVN_ARGS:-} dependency:copy \
    -Dartifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip" \
    -DoutputDirectory="$tmp" >"$tmp/mvn.log" 2>&1); then
    show_log_tail "$tmp/mvn.log"
    rm -rf "$tmp"
    rmdir "$ES_DIST" 2>/dev/null || true
    die "Maven could not fetch Elasticsearch $ES_VERSION (set VIGIL_ES_VERSION to another 8.x release)"
  fi
  zip="$tmp/elasticsearch-$ES_VERSION.zip"
  [[ -f "$zip" ]] || die "Maven reported success but $zip is missing"
  mkdir -p "$tmp/x"
  if command -v unzip >/dev/null 2>&1; then
    unzip -q "$zip" -d "$tmp/x"
  else
    python3 -m zipfile -e "$zip" "$tmp/x" # keeps no modes: fixed below
  fi
  [[ -d "$tmp/x/elasticsearch-$ES_VERSION/bin" ]] || die "unexpected layout in $zip"
  chmod -R a+rX,go-w "$tmp/x"
  chmod a+rx "$tmp/x/elasticsearch-$ES_VERSION"/bin/*
  find "$tmp/x/elasticsearch-$ES_VERSION" -path '*/platform/*/bin/*' -type f -exec chmod a+rx {} +
  rm -rf "$ES_HOME"
  mv "$tmp/x/elasticsearch-$ES_VERSION" "$ES_HOME"
  rm -rf "$tmp"
  touch "$ES_DIST/.complete"
  log "fetched and unpacked ($(du -sh "$ES_HOME" | cut -f1)) in $(elapsed "$t0")s"
}
fetch() { with_lock "$VIGIL_CACHE_DIR/.elasticsearch-$ES_VERSION.lock" fetch_unlocked; }

# --- running as an unprivileged user -------------------------------------------

as_root() { [[ "$(id -u)" == 0 ]]; }

ensure_user() {
  as_root || return 0
  if ! id -u "$ES_USER" >/dev/null 2>&1; then
    need_cmd useradd
    log "creating unprivileged system user '$ES_USER' to run Elasticsearch (it refuses to run as root)"
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin --comment "Vigil local Elasticsearch" "$ES_USER"
  fi
}

# as_es CMD... : run CMD as the Elasticsearch user (or as-is when not root).
as_es() {
  if as_root; then
    setpriv --reuid="$ES_USER" --regid="$ES_USER" --init-groups -- "$@"
  else
    "$@"
  fi
}

# The ES user must be able to reach the distribution and its run dir. The
# defaults sit below $HOME (/root is mode 700), so grant it search (x) only,
# never read, on each ancestor directory it cannot traverse: with an ACL entry
# for that one user when setfacl exists, else with o+x.
ensure_traversable() {
  as_root || return 0
  local target d dirs=()
  for target in "$ES_HOME" "$RUN"; do
    d="$target"
    while [[ "$d" != "/" && -n "$d" ]]; do
      dirs=("$d" "${dirs[@]}")
      d="$(dirname "$d")"
    done
  done
  for d in "${dirs[@]}"; do
    [[ -d "$d" ]] || continue
    as_es test -x "$d" && continue
    if command -v setfacl >/dev/null 2>&1 && setfacl -m "u:$ES_USER:x" "$d" 2>/dev/null; then
      log "granted '$ES_USER' traverse-only access to $d (ACL u:$ES_USER:x)"
    else
      chmod o+x "$d"
      log "granted traverse-only access to $d (chmod o+x; install 'acl' to limit it to $ES_USER)"
    fi
  done
  as_es test -r "$ES_HOME/lib/elasticsearch-$ES_VERSION.jar" ||
    die "user '$ES_USER' cannot read $ES_HOME; set VIGIL_CACHE_DIR/VIGIL_RUN_DIR to a path it can reach"
}

write_config() {
  mkdir -p "$RUN" "$CONF" "$DATA" "$LOGS" "$TMPD"
  # Start from the distribution's config (jvm.options, log4j2.properties, ...).
  cp -R "$ES_HOME/config/." "$CONF/"
  # GC log / crash files are relative paths (to ES_HOME in older 8.x, to the
  # logs dir in newer ones); pin them to our writable logs dir.
  sed -i -e "s#file=[^:]*gc\.log#file=$LOGS/gc.log#" \
    -e "s#^\(-XX:ErrorFile=\).*#\1$LOGS/hs_err_pid%p.log#" \
    -e "s#^\(-XX:HeapDumpPath=\).*#\1$DATA#" "$CONF/jvm.options"
  local xpack=""
  if [[ -d "$ES_HOME/modules/x-pack-security" ]]; then
    xpack="xpack.security.enabled: false"
  fi
  local geoip=""
  if [[ -d "$ES_HOME/modules/ingest-geoip" ]]; then
    geoip="ingest.geoip.downloader.enabled: false"
  fi
  cat >"$CONF/elasticsearch.yml" <<EOF
# generated by deploy/local/elasticsearch.sh on every "up"; edits are overwritten
cluster.name: vigil-local
node.name: vigil-local-1
path.data: $DATA
path.logs: $LOGS
network.host: 127.0.0.1
http.port: $ES_PORT
transport.port: $ES_TRANSPORT_PORT
discovery.type: single-node
cluster.routing.allocation.disk.threshold_enabled: false
action.destructive_requires_name: false
$xpack
$geoip
EOF
  if as_root; then
    chown -R "$ES_USER:$ES_USER" "$CONF" "$DATA" "$LOGS" "$TMPD"
  fi
}

# --- health ------------------------------------------------------------------

health_json() {
  curl -s -m 10 "$URL/_cluster/health?wait_for_status=yellow&timeout=5s" 2>/dev/null
}

healthy() {
  pid_alive "$PIDFILE" || return 1
  local h
  h="$(health_json)" || return 1
  [[ "$h" =~ \"status\":\"(green|yellow)\" ]] || return 1
  [[ ! "$h" =~ \"timed_out\":true ]]
}

# go-elasticsearch/v8 rejects servers that don't send this header.
check_product_header() {
  if ! curl -s -m 10 -o /dev/null -D - "$URL/_cluster/health" | grep -qi '^X-Elastic-Product: Elasticsearch'; then
    log "WARNING: $URL/ does not send 'X-Elastic-Product: Elasticsearch'; go-elasticsearch/v8 will refuse it"
    return 1
  fi
}

cmd_up() {
  local t0 deadline pid major
  t0="$(now_s)"
  if pid_alive "$PIDFILE"; then
    if healthy; then
      log "already up on $URL (pid $(<"$PIDFILE"))"
      return 0
    fi
    log "pid $(<"$PIDFILE") is running but not healthy yet; waiting for it"
  else
    rm -f "$PIDFILE"
    need_cmd curl
    as_root && need_cmd setpriv
    fetch
    major="$(java_major "$JAVA_HOME/bin/java")"
    [[ "${major:-0}" -ge 17 ]] || die "Elasticsearch 8.x needs Java 17+, $JAVA_HOME is Java ${major:-unknown}"
    assert_port_free "$ES_PORT" "Elasticsearch HTTP, VIGIL_ES_PORT"
    assert_port_free "$ES_TRANSPORT_PORT" "Elasticsearch transport, VIGIL_ES_TRANSPORT_PORT"
    ensure_user
    write_config
    ensure_traversable
    log "starting Elasticsearch $ES_VERSION on $URL (java $major at $JAVA_HOME$(as_root && printf ', user %s' "$ES_USER"), log $LOGFILE)"
    : >>"$LOGFILE"
    printf '\n===== %s elasticsearch.sh up =====\n' "$(date -Is)" >>"$LOGFILE"
    local drop=()
    as_root && drop=(setpriv --reuid="$ES_USER" --regid="$ES_USER" --init-groups --)
    (
      cd "$LOGS" # jvm.options writes gc.log / hs_err files relative to the cwd
      exec setsid "${drop[@]}" env -i \
        PATH=/usr/local/bin:/usr/bin:/bin \
        HOME="$RUN" LANG=C.UTF-8 \
        ES_JAVA_HOME="$JAVA_HOME" \
        ES_PATH_CONF="$CONF" \
        ES_TMPDIR="$TMPD" \
        ES_JAVA_OPTS="-Xms$ES_HEAP -Xmx$ES_HEAP ${VIGIL_ES_JAVA_OPTS:-}" \
        "$ES_HOME/bin/elasticsearch"
    ) </dev/null >>"$LOGFILE" 2>&1 8>&- &
    pid=$!
    printf '%s\n' "$pid" >"$PIDFILE"
  fi

  deadline=$((SECONDS + ES_START_TIMEOUT))
  until healthy; do
    # plain kill -0: just after the fork the child may not have exec'd java yet
    if ! kill -0 "$(<"$PIDFILE")" 2>/dev/null; then
      show_log_tail "$LOGFILE" "$LOGS/vigil-local.log"
      rm -f "$PIDFILE"
      die "Elasticsearch exited during startup (see $LOGFILE)"
    fi
    if ((SECONDS >= deadline)); then
      show_log_tail "$LOGFILE"
      die "Elasticsearch not healthy after ${ES_START_TIMEOUT}s (still running as pid $(<"$PIDFILE"); 'elasticsearch.sh down' stops it)"
    fi
    sleep 1
  done
  check_product_header || true
  log "up on $URL (pid $(<"$PIDFILE")) after $(elapsed "$t0")s"
}

cmd_status() {
  if ! pid_alive "$PIDFILE"; then
    log "down"
    return 1
  fi
  if healthy; then
    log "healthy on $URL (pid $(<"$PIDFILE")): $(health_json | grep -o '"status":"[a-z]*"')"
    return 0
  fi
  log "pid $(<"$PIDFILE") running but $URL/_cluster/health is not yellow/green"
  return 1
}

case "${1:-}" in
up | down | restart) lock_service "$RUN.lock" ;;
esac

case "${1:-}" in
up) cmd_up ;;
down) stop_pidfile "$PIDFILE" "Elasticsearch" 60 ;;
status) cmd_status ;;
restart)
  stop_pidfile "$PIDFILE" "Elasticsearch" 60
  cmd_up
  ;;
fetch) fetch ;;
*)
  echo "usage: $0 up|down|status|restart|fetch" >&2
  exit 2
  ;;
esac
