# shellcheck shell=bash
# Shared helpers for deploy/local/*.sh. Sourced, never executed directly.
#
# Everything heavy (jars, the Elasticsearch distribution) lives in
# VIGIL_CACHE_DIR; everything mutable (configs, data, pid and log files)
# lives in VIGIL_RUN_DIR. Both default to locations outside the repository.

VIGIL_CACHE_DIR="${VIGIL_CACHE_DIR:-$HOME/.cache/vigil}"
VIGIL_RUN_DIR="${VIGIL_RUN_DIR:-$VIGIL_CACHE_DIR/run}"

_vigil_name="${_vigil_name:-$(basename "$0" .sh)}"

log() { printf '[%s %s] %s\n' "$_vigil_name" "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_cmd() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || die "required command '$c' not found (try deploy/local/deps.sh)"
  done
}

# JAVA_HOME of the machine's java (the one on PATH unless JAVA_HOME is set).
detect_java_home() {
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    printf '%s\n' "$JAVA_HOME"
    return
  fi
  local j
  j="$(command -v java 2>/dev/null)" || die "no java on PATH and JAVA_HOME unset; install a JDK 17+"
  j="$(readlink -f "$j")"
  printf '%s\n' "${j%/bin/java}"
}

# Major version of a java binary (17, 21, ...).
java_major() {
  "$1" -XshowSettings:properties -version 2>&1 |
    sed -n 's/^ *java\.specification\.version = \(1\.\)\{0,1\}\([0-9]*\).*/\2/p' | head -n1
}

# pid_alive PIDFILE -> 0 when the pid in PIDFILE is a running process whose
# command line contains $PID_MATCH (set by each script), so a stale pid file
# whose pid was reused by an unrelated process is never trusted nor killed.
pid_alive() {
  local pf="$1" pid
  [[ -s "$pf" ]] || return 1
  pid="$(<"$pf")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ -z "${PID_MATCH:-}" ]] && return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$PID_MATCH"
}

# stop_pidfile PIDFILE NAME [TIMEOUT_S]
# The pid in PIDFILE was started under setsid, so it leads its own process
# group; the whole group (launcher + children) gets TERM, then KILL.
stop_pidfile() {
  local pf="$1" name="$2" timeout="${3:-30}" pid target i
  if ! pid_alive "$pf"; then
    log "$name is not running"
    rm -f "$pf"
    return 0
  fi
  pid="$(<"$pf")"
  target="$pid"
  if [[ "$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')" == "$pid" ]]; then
    target="-$pid" # process group we created with setsid
  fi
  log "stopping $name (pid $pid, SIGTERM)"
  kill -TERM -- "$target" 2>/dev/null || true
  for ((i = 0; i < timeout * 5; i++)); do
    kill -0 -- "$target" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 -- "$target" 2>/dev/null; then
    log "$name did not exit within ${timeout}s, sending SIGKILL"
    kill -KILL -- "$target" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      kill -0 -- "$target" 2>/dev/null || break
      sleep 0.2
    done
  fi
  rm -f "$pf"
  log "$name stopped"
}

# tcp_open HOST PORT -> 0 when something accepts a TCP connection.
tcp_open() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# Refuse to start when a foreign process already holds the port.
assert_port_free() {
  local port="$1" what="$2"
  if tcp_open 127.0.0.1 "$port"; then
    die "port 127.0.0.1:$port ($what) is already in use by another process; stop it or override the port"
  fi
}

# show_log_tail FILE... -> print to stderr the last lines of each existing
# file, from the latest "===== ... up =====" marker on (this start only).
show_log_tail() {
  local f start
  for f in "$@"; do
    [[ -s "$f" ]] || continue
    start="$( (grep -n '^===== .* up =====$' "$f" || true) | tail -n1 | cut -d: -f1)"
    printf -- '----- last lines of %s -----\n' "$f" >&2
    tail -n +"${start:-1}" "$f" | tail -n 40 >&2
    printf -- '-----\n' >&2
  done
}

# with_lock LOCKFILE CMD... -> run CMD while holding an exclusive flock,
# so two concurrent "up"s don't fetch into the same cache directory.
with_lock() {
  local lf="$1"
  shift
  mkdir -p "$(dirname "$lf")"
  if command -v flock >/dev/null 2>&1; then
    (
      flock -w 900 9 || die "could not lock $lf"
      "$@"
    ) 9>"$lf"
  else
    "$@"
  fi
}

# lock_service LOCKFILE -> serialize up/down of one service across processes.
# Holds fd 8 until the script exits; background servers must close it (8>&-).
lock_service() {
  mkdir -p "$(dirname "$1")"
  exec 8>"$1"
  if command -v flock >/dev/null 2>&1; then
    flock -w 300 8 || die "another up/down holds $1 for more than 300s"
  fi
}

# now_s -> seconds since epoch with decimals (for timings in messages).
now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }'; }
