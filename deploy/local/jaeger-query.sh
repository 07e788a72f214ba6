#!/usr/bin/env bash
# A stock Jaeger v1 query service (and Jaeger's esmapping-generator), built
# from source, for the end-to-end test that proves a real jaeger-query reads
# the spans Vigil writes to Elasticsearch (e2e/jaegerquery_test.go).
#
#   deploy/local/jaeger-query.sh fetch            # build once per version (idempotent)
#   deploy/local/jaeger-query.sh path [TOOL]      # print a built binary's path, exit 1 if not built
#   deploy/local/jaeger-query.sh env              # export VIGIL_JAEGER_QUERY=... for eval
#
# TOOL is jaeger-query (default) or jaeger-esmapping-generator.
#
# The module github.com/jaegertracing/jaeger is downloaded through the Go
# module proxy with 'go mod download' and its cmd/query and
# cmd/esmapping-generator are built inside it ('go install pkg@version'
# refuses: Jaeger's go.mod has a replace directive). The binaries land in
# $VIGIL_CACHE_DIR/jaeger-<version>/bin. A build takes 2-3.5 minutes on 2
# cores (docs/local-services.md), later calls are instant. Nothing is
# started here: the test runs jaeger-query itself on 127.0.0.1 ports.
set -euo pipefail

_vigil_name=jaeger-query
# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

# 1.76.0 is the newest Jaeger v1 release (with cmd/query); it builds with Go
# 1.24+ and reads Elasticsearch 8 with --es.version=8.
JAEGER_VERSION="${VIGIL_JAEGER_VERSION:-1.76.0}"
JAEGER_MODULE=github.com/jaegertracing/jaeger
JAEGER_HOME="$VIGIL_CACHE_DIR/jaeger-$JAEGER_VERSION"
JAEGER_BIN="$JAEGER_HOME/bin"

fetch_unlocked() {
  if [[ -f "$JAEGER_BIN/.complete" ]]; then
    log "jaeger-query $JAEGER_VERSION already built in $JAEGER_BIN"
    return 0
  fi
  need_cmd go
  local t0 tmp src
  t0="$(now_s)"
  log "building jaeger-query $JAEGER_VERSION from source ($JAEGER_MODULE via the Go module proxy) into $JAEGER_BIN"
  mkdir -p "$JAEGER_HOME"
  tmp="$(mktemp -d "$JAEGER_HOME/.build.XXXXXX")"
  # Outside any module, so Vigil's go.mod is neither read nor changed.
  if ! (cd "$tmp" && GOWORK=off go mod download -json "$JAEGER_MODULE@v$JAEGER_VERSION" \
    >"$tmp/download.json" 2>"$tmp/download.log"); then
    show_log_tail "$tmp/download.json" "$tmp/download.log"
    rm -rf "$tmp"
    rmdir "$JAEGER_HOME" 2>/dev/null || true
    die "cannot download $JAEGER_MODULE@v$JAEGER_VERSION (set VIGIL_JAEGER_VERSION to another 1.x release with cmd/query)"
  fi
  src="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' "$tmp/download.json")"
  if [[ -z "$src" || ! -d "$src/cmd/query" ]]; then
    rm -rf "$tmp"
    die "$JAEGER_MODULE@v$JAEGER_VERSION has no cmd/query (in '$src'); set VIGIL_JAEGER_VERSION to a 1.x release"
  fi
  # The module cache is read-only; build in a writable copy.
  cp -R "$src" "$tmp/src"
  chmod -R u+w "$tmp/src"
  mkdir -p "$tmp/bin"
  if ! (cd "$tmp/src" && GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath \
    -o "$tmp/bin/" ./cmd/query ./cmd/esmapping-generator >"$tmp/build.log" 2>&1); then
    show_log_tail "$tmp/build.log"
    rm -rf "$tmp"
    rmdir "$JAEGER_HOME" 2>/dev/null || true
    die "cannot build jaeger-query $JAEGER_VERSION with $(go env GOVERSION) (see the log above)"
  fi
  mv "$tmp/bin/query" "$tmp/bin/jaeger-query"
  mv "$tmp/bin/esmapping-generator" "$tmp/bin/jaeger-esmapping-generator"
  rm -rf "$JAEGER_BIN"
  mv "$tmp/bin" "$JAEGER_BIN"
  rm -rf "$tmp"
  touch "$JAEGER_BIN/.complete"
  log "built jaeger-query and jaeger-esmapping-generator ($(du -sh "$JAEGER_BIN" | cut -f1)) with $(go env GOVERSION) in $(elapsed "$t0")s"
}
fetch() { with_lock "$VIGIL_CACHE_DIR/.jaeger-$JAEGER_VERSION.lock" fetch_unlocked; }

# path TOOL -> the binary's path; exit 1 (and say how to build it) when absent.
path() {
  local tool="${1:-jaeger-query}"
  case "$tool" in
  jaeger-query | jaeger-esmapping-generator) ;;
  *) die "unknown tool '$tool': want jaeger-query or jaeger-esmapping-generator" ;;
  esac
  if [[ ! -f "$JAEGER_BIN/.complete" || ! -x "$JAEGER_BIN/$tool" ]]; then
    log "$tool $JAEGER_VERSION is not built; run: $0 fetch"
    return 1
  fi
  printf '%s\n' "$JAEGER_BIN/$tool"
}

case "${1:-}" in
fetch) fetch ;;
path) path "${2:-}" ;;
env)
  fetch
  printf 'export VIGIL_JAEGER_QUERY=%s\n' "$JAEGER_BIN/jaeger-query"
  printf 'export VIGIL_JAEGER_ESMAPPING_GENERATOR=%s\n' "$JAEGER_BIN/jaeger-esmapping-generator"
  ;;
*)
  echo "usage: $0 fetch|path [jaeger-query|jaeger-esmapping-generator]|env" >&2
  exit 2
  ;;
esac
