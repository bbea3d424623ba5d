#!/usr/bin/env bash
# Runs the per-open cost benchmark (M1, M2) on the lsm, fentry and kprobe backends in Debian's
# stock kernel under qemu, and collects each backend's table into .cache/bench/vm-results.md.
# Usage: scripts/bench/vm_bench.sh [--backends lsm,fentry,kprobe,tracepoint]
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
backends="lsm,fentry,kprobe"
if [[ ${1:-} == --backends ]]; then backends=$2; fi
bash "$repo/scripts/vm_matrix.sh" --backends "$backends" --backend-timeout 1800 --timeout 5400 \
  -- scripts/bench/vm_bench_test.ts
out="$repo/.cache/bench/vm-results.md"
mkdir -p "$(dirname "$out")"
{
  echo "# Benchmarks in the VM kernel matrix ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
  echo
  echo "Software emulation (qemu TCG): only ratios are meaningful."
  sed -n '/KIVEBPF-BENCH-BEGIN/,/KIVEBPF-BENCH-END/p' "$repo/.cache/vm/logs/last.log" |
    sed -e 's/^KIVEBPF-BENCH-BEGIN backend=\(.*\)$/\n## backend \1\n/' -e '/KIVEBPF-BENCH-END/d' | tr -d '\r'
} > "$out"
echo "wrote $out"
