#!/usr/bin/env bash
# Installs the Debian packages Vigil's integration tests and deploy/local/*.sh
# use, skipping everything already present (idempotent; a no-op when complete).
#
#   deploy/local/deps.sh            # as root (or through sudo when available)
#
#   kcat        Kafka CLI client used by tests (Debian also has it as 'kafkacat')
#   prometheus  Prometheus server binary (its service is NOT started)
#   prometheus-alertmanager  Alertmanager (binary prometheus-alertmanager), which the
#               federation's tests start on a free loopback port; its service is NOT started
#   acl         setfacl: lets elasticsearch.sh grant its user traverse-only access
#   curl unzip  used by elasticsearch.sh
#   chromium    headless browser the web UI's tests drive (chromedp; never a downloaded one)
#   redis-server  the fleet-wide rate budget's tests (sdk/resilience) start their own
#               on a free loopback port; the package's service is not used
#   maven + a JDK 17 are expected to be there already (see docs/local-services.md)
#
# Then builds the stock jaeger-query the end-to-end tests run against Vigil's
# Elasticsearch indices (jaeger-query.sh fetch: once per version, cached), and
# installs Python's sentry-sdk from PyPI with pip into $VIGIL_CACHE_DIR/python,
# which the dumps intake's client tests put on PYTHONPATH (the machine's python3
# cannot use Debian's python3-* packages).
set -euo pipefail

_vigil_name=deps
# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

# command -> Debian package
declare -A want=(
  [kcat]=kcat
  [prometheus]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager
  [setfacl]=acl
  [curl]=curl
  [unzip]=unzip
  [redis-server]=redis-server
  [chromium]=chromium
)

missing=()
for cmd in kcat prometheus prometheus-alertmanager setfacl curl unzip redis-server chromium; do
  if [[ "$cmd" == kcat ]] && command -v kafkacat >/dev/null 2>&1; then
    continue
  fi
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${want[$cmd]}")
done
# Installed without its recommends, chromium brings no font: the UI's screenshots need one.
if [[ " ${missing[*]} " == *" chromium "* ]]; then
  missing+=(fonts-liberation)
fi
for cmd in java mvn; do
  command -v "$cmd" >/dev/null 2>&1 || log "WARNING: '$cmd' not found: kafka.sh/elasticsearch.sh need a JDK 17+ and Maven (apt-get install openjdk-17-jdk-headless maven)"
done

install_debs() {
  if [[ ${#missing[@]} -eq 0 ]]; then
    log "all present: kcat prometheus prometheus-alertmanager setfacl curl unzip redis-server chromium"
    return 0
  fi

  SUDO=()
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to install: ${missing[*]}"
    SUDO=(sudo)
  fi
  need_cmd apt-get apt-cache

  log "apt-get update"
  "${SUDO[@]}" apt-get update -qq

  # Debian names the Kafka client 'kcat' since bookworm, 'kafkacat' before.
  for i in "${!missing[@]}"; do
    if [[ "${missing[$i]}" == kcat ]] && ! apt-cache show kcat >/dev/null 2>&1; then
      apt-cache show kafkacat >/dev/null 2>&1 || die "neither kcat nor kafkacat is an available package"
      missing[i]=kafkacat
    fi
  done

  # Package maintainer scripts must not start the prometheus or alertmanager services (they would
  # listen on all interfaces): without systemd, invoke-rc.d asks policy-rc.d.
  created_policy=""
  if [[ ! -e /usr/sbin/policy-rc.d && "$(id -u)" == 0 ]]; then
    printf '#!/bin/sh\n# temporary, from vigil deploy/local/deps.sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi

  log "installing: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2

  if [[ -n "$created_policy" ]]; then
    rm -f /usr/sbin/policy-rc.d
    trap - EXIT
  fi
  log "installed: ${missing[*]}"
}

# Python's sentry-sdk for collector/dumps_clients_test.go; bump with the test.
SENTRY_SDK_VERSION=2.75.0
install_python_sentry_sdk() {
  local dir="$VIGIL_CACHE_DIR/python"
  if PYTHONPATH="$dir" python3 -c "import sys, sentry_sdk; sys.exit(sentry_sdk.VERSION != '$SENTRY_SDK_VERSION')" 2>/dev/null; then
    log "present: sentry-sdk $SENTRY_SDK_VERSION in $dir"
    return 0
  fi
  need_cmd python3
  log "pip install sentry-sdk==$SENTRY_SDK_VERSION into $dir"
  python3 -m pip install --quiet --disable-pip-version-check --upgrade --target "$dir" "sentry-sdk==$SENTRY_SDK_VERSION" >&2
}

install_debs
install_python_sentry_sdk
"$(dirname "$(readlink -f "$0")")/jaeger-query.sh" fetch
