#!/usr/bin/env bash
# Runs the pinned Deno, installing it from the npm registry into .cache/deno on first use.
# Usage: scripts/deno.sh <deno arguments>   (for example: scripts/deno.sh task test)
set -euo pipefail
DENO_VERSION=2.9.6
root="$(cd "$(dirname "$0")/.." && pwd)"
prefix="$root/.cache/deno"
deno="$prefix/node_modules/.bin/deno"
if [[ ! -x $deno ]] || [[ "$("$deno" --version 2>/dev/null | head -1)" != "deno $DENO_VERSION "* ]]; then
  echo "deno.sh: installing deno@$DENO_VERSION from npm into $prefix" >&2
  mkdir -p "$prefix"
  npm install --prefix "$prefix" --no-audit --no-fund --no-save "deno@$DENO_VERSION" >&2
fi
exec "$deno" "$@"
