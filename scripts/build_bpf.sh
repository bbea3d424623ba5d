#!/bin/sh
# Builds the BPF objects of kivebpf into .cache/bpf/ (never committed):
#   .cache/bpf/vmlinux.h      generated from the running kernel's BTF with bpftool
#   .cache/bpf/<name>.bpf.o   each bpf/<name>.bpf.c compiled with clang for CO-RE
# Work is skipped when a hash of the sources, the kernel BTF and the compiler is unchanged.
# Environment: CLANG (default clang-19), BPFTOOL (default bpftool), KIVEBPF_BTF (default
# /sys/kernel/btf/vmlinux), KIVEBPF_BPF_OUT (default <repo>/.cache/bpf).
set -eu

repo=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
out=${KIVEBPF_BPF_OUT:-$repo/.cache/bpf}
clang=${CLANG:-clang-19}
bpftool=${BPFTOOL:-bpftool}
btf=${KIVEBPF_BTF:-/sys/kernel/btf/vmlinux}

command -v "$clang" >/dev/null 2>&1 || { echo "build_bpf: $clang not found (apt-get install clang-19)" >&2; exit 1; }
command -v "$bpftool" >/dev/null 2>&1 || { echo "build_bpf: $bpftool not found (apt-get install bpftool)" >&2; exit 1; }
[ -r "$btf" ] || { echo "build_bpf: kernel BTF $btf is not readable" >&2; exit 1; }
[ -r /usr/include/bpf/bpf_helpers.h ] || { echo "build_bpf: libbpf headers missing (apt-get install libbpf-dev)" >&2; exit 1; }

mkdir -p "$out"
stamp=$(
  {
    cat "$repo"/bpf/*.h "$repo"/bpf/*.bpf.c "$0"
    sha256sum "$btf"
    "$clang" --version
  } | sha256sum | cut -d' ' -f1
)
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ]; then
  exit 0
fi

"$bpftool" btf dump file "$btf" format c >"$out/vmlinux.h.tmp"
mv "$out/vmlinux.h.tmp" "$out/vmlinux.h"

for src in "$repo"/bpf/*.bpf.c; do
  name=$(basename "$src" .c)
  "$clang" -O2 -g -Wall -Werror -target bpf -D__TARGET_ARCH_x86 \
    -I"$out" -I"$repo/bpf" -c "$src" -o "$out/$name.o.tmp"
  mv "$out/$name.o.tmp" "$out/$name.o"
done
echo "$stamp" >"$out/stamp"
echo "build_bpf: built $(ls "$out"/*.bpf.o | wc -l) object(s) in $out" >&2
