#!/usr/bin/env bash
# Puts Debian's Prometheus and promtool (test tooling: the rules are checked with promtool and a
# real Prometheus scrapes an agent) under .cache/prometheus/bin, from the pinned Debian package,
# unpacked rather than installed so that no Prometheus service starts on the machine (it would
# take port 9090, the agent's metrics port). Fast when the binaries are there.
set -euo pipefail

PROMETHEUS_VERSION=2.42.0+ds-5+deb12u1   # bookworm's prometheus package

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE="$REPO/.cache/prometheus"
STAMP="$CACHE/stamp"

log() { printf '[fetch_prometheus %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [[ -x $CACHE/bin/prometheus && -x $CACHE/bin/promtool && $(cat "$STAMP" 2>/dev/null) == "$PROMETHEUS_VERSION" ]]; then
  exit 0
fi
log "fetching Debian's prometheus $PROMETHEUS_VERSION"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work" # apt's _apt user writes the download here
if ! (cd "$work" && apt-get download -q "prometheus=$PROMETHEUS_VERSION" >/dev/null 2>&1); then
  apt-get update -qq && (cd "$work" && apt-get download -q "prometheus=$PROMETHEUS_VERSION" >/dev/null)
fi
dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
mkdir -p "$CACHE/bin"
cp "$work/root/usr/bin/prometheus" "$work/root/usr/bin/promtool" "$CACHE/bin/"
echo "$PROMETHEUS_VERSION" >"$STAMP"
log "ready: $("$CACHE/bin/promtool" --version 2>&1 | head -1)"
