#!/usr/bin/env bash
# Builds helm (test tooling: the chart is linted, rendered and installed with it, as users do)
# from the Go module proxy at pinned releases: helm 4 into .cache/helm/bin/helm, helm 3 (the
# chart must work with both) into .cache/helm/v3/helm. Fast when they are there.
set -euo pipefail

HELM_VERSION=v4.3.2     # helm.sh/helm/v4
HELM3_VERSION=v3.21.4   # helm.sh/helm/v3

log() { printf '[build_helm %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$REPO/.cache/helm/bin"
# shellcheck source=scripts/_go.sh
source "$REPO/scripts/_go.sh"
# build MODULE VERSION DIR: go install of MODULE/cmd/helm@VERSION into DIR, unless fresh.
build() {
  local module=$1 version=$2 dir=$3 pin
  pin="$module $version $("$GO" env GOVERSION)"
  if [[ -x $dir/helm && $(cat "$dir/.helm.stamp" 2>/dev/null) == "$pin" ]]; then return 0; fi
  log "building $module $version with $("$GO" env GOVERSION) (a few minutes the first time)"
  local started
  started=$(date +%s)
  mkdir -p "$dir"
  GOBIN="$dir" nice -n 10 "$GO" install -trimpath -ldflags "-s -w" "$module/cmd/helm@$version" \
    || die "cannot build $module $version"
  echo "$pin" >"$dir/.helm.stamp"
  log "done in $(($(date +%s) - started))s: $dir/helm"
}
build helm.sh/helm/v4 "$HELM_VERSION" "$BIN"
build helm.sh/helm/v3 "$HELM3_VERSION" "$REPO/.cache/helm/v3"
