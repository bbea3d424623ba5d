#!/usr/bin/env bash
# Builds helm (test tooling: the chart is linted, rendered and installed with it, as users do)
# from the Go module proxy at a pinned release into .cache/helm/bin. Fast when it is there.
set -euo pipefail

HELM_VERSION=v4.3.2   # helm.sh/helm/v4

log() { printf '[build_helm %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$REPO/.cache/helm/bin"
# shellcheck source=scripts/_go.sh
source "$REPO/scripts/_go.sh"
pin="helm $HELM_VERSION $("$GO" env GOVERSION)"
if [[ -x $BIN/helm && $(cat "$BIN/.helm.stamp" 2>/dev/null) == "$pin" ]]; then
  exit 0
fi
log "building helm $HELM_VERSION with $("$GO" env GOVERSION) (a few minutes the first time)"
started=$(date +%s)
mkdir -p "$BIN"
GOBIN="$BIN" nice -n 10 "$GO" install -trimpath -ldflags "-s -w" "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" \
  || die "cannot build helm $HELM_VERSION"
echo "$pin" >"$BIN/.helm.stamp"
log "done in $(($(date +%s) - started))s: $("$BIN/helm" version --short)"
