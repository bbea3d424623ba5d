#!/usr/bin/env bash
# VM kernel matrix: boots Debian's stock kernel in qemu (TCG software emulation, BPF LSM on the
# command line) and runs the engine tests inside once per hook backend, in one boot.
#
#   scripts/vm_matrix.sh [options] [-- deno test args...]
#
# Options:
#   --backends LIST   comma-separated subset of lsm,fentry,kprobe,tracepoint (default: all four)
#   --timeout SECS    hard limit for the whole VM run; qemu is killed after it (default 3600)
#   --backend-timeout SECS  limit for one backend's `deno test` inside the VM (default 600)
#   --kernel PKG      concrete kernel package (default: what linux-image-amd64 depends on now)
#   --smoke           run scripts/vm/smoke_test.ts (same as `-- scripts/vm/smoke_test.ts`)
#   --no-build        do not run scripts/build_bpf.sh before booting
# After `--`: arguments for `deno test -A --no-check` inside the VM (default: tests/bpf
# tests/engine, those that hold *_test.ts files; the smoke test when neither does). Paths are relative to
# the repo, which the VM mounts at the same absolute path as the host (read-only 9p share with a
# tmpfs overlay, so writes inside the VM never reach the host).
#
# Output: the VM's serial console, then one summary line per backend and a final
# "N passed, N failed". Exit status 0 only if every requested backend reported exit=0.
# Caches (git-ignored): .cache/vm/{kernel,initramfs,smoke,runs,logs}; last serial log:
# .cache/vm/logs/last.log. Environment: KIVEBPF_VM_CACHE, KIVEBPF_VM_MEM (MiB, default 2048),
# KIVEBPF_VM_SMP (default 2), KIVEBPF_VM_TIMEOUT, KIVEBPF_VM_BACKEND_TIMEOUT, KIVEBPF_VM_KERNEL,
# KIVEBPF_VM_HOST_PACKAGES (host packages whose programs are packed), DENO (deno binary),
# DENO_DIR (shared read-only, overlaid writable). Every other KIVEBPF_* variable is passed into
# the VM, where KIVEBPF_BACKEND is set per backend and KIVEBPF_VM=1.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
CACHE=${KIVEBPF_VM_CACHE:-$REPO/.cache/vm}
VM_DIR=$REPO/scripts/vm
ALL_BACKENDS="lsm fentry kprobe tracepoint"
BACKENDS=$ALL_BACKENDS
TIMEOUT=${KIVEBPF_VM_TIMEOUT:-3600}
BACKEND_TIMEOUT=${KIVEBPF_VM_BACKEND_TIMEOUT:-600}
MEM=${KIVEBPF_VM_MEM:-2048}
SMP=${KIVEBPF_VM_SMP:-2}
KERNEL_PKG=${KIVEBPF_VM_KERNEL:-}
BUILD=1
TEST_ARGS=()
# Kernel modules the VM needs (their dependencies are added from the modules' own metadata).
MODULES="virtio_pci 9pnet_virtio 9p overlay"
# Host packages whose programs are packed into the image, so that `cat`, `head`, `sh`, `bash`,
# `mount`, `setpriv`, `ps`... inside the VM are the same binaries at the same paths as on the host
# (busybox-static fills the rest: ip, vi, wget...).
HOST_PACKAGES=${KIVEBPF_VM_HOST_PACKAGES:-coreutils bash dash util-linux mount procps grep sed findutils}
# Bump to force a rebuild of cached images (the key also covers this script, init.sh, inputs).
IMAGE_FORMAT=1

log() { printf 'vm_matrix: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 2
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

while [ $# -gt 0 ]; do
  case "$1" in
  --backends) BACKENDS=$(tr ',' ' ' <<<"${2:?--backends needs a value}") && shift ;;
  --backends=*) BACKENDS=$(tr ',' ' ' <<<"${1#*=}") ;;
  --timeout) TIMEOUT=${2:?} && shift ;;
  --backend-timeout) BACKEND_TIMEOUT=${2:?} && shift ;;
  --kernel) KERNEL_PKG=${2:?} && shift ;;
  --smoke) TEST_ARGS=(scripts/vm/smoke_test.ts) ;;
  --no-build) BUILD=0 ;;
  -h | --help) usage && exit 0 ;;
  --)
    shift
    TEST_ARGS=("$@")
    break
    ;;
  *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done
for b in $BACKENDS; do
  case " $ALL_BACKENDS " in *" $b "*) ;; *) die "unknown backend $b (valid: $ALL_BACKENDS)" ;; esac
done
[ -n "$BACKENDS" ] || die "no backend requested"
[ "$(id -u)" = 0 ] || die "run as root (apt-get download, mknod for the image)"
for tool in qemu-system-x86_64 dpkg-deb apt-get apt-cache cpio ldconfig timeout; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install qemu-system-x86 cpio)"
done

trap 'log "unexpected failure (exit $?) at line $LINENO: $BASH_COMMAND"' ERR
case "$CACHE/" in "$REPO"/*) ;; *) die "KIVEBPF_VM_CACHE must be inside the repo (the VM reads its run directory through the repo share)" ;; esac

T_TOTAL=$(now)
mkdir -p "$CACHE"/{kernel,initramfs,smoke,runs,logs}
# One preparation at a time per cache (two concurrent runs would fight over the same files).
exec 9>"$CACHE/lock"
flock 9

# ---------------------------------------------------------------------------------------------
# 1. Kernel: resolve the concrete package now, fetch it once, keep vmlinuz + needed modules.
# ---------------------------------------------------------------------------------------------
T_KERNEL=$(now)
KERNEL_VERSION=
newest_cached_kernel() { ls -1td "$CACHE"/kernel/*/.complete 2>/dev/null | sed -n '1s|/\.complete$||p'; }
if [ -z "$KERNEL_PKG" ]; then
  KERNEL_PKG=$(apt-cache depends linux-image-amd64 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-amd64$/ && !n++ { print $2 }') || true
fi
if [ -n "$KERNEL_PKG" ]; then
  KERNEL_VERSION=$(apt-cache policy "$KERNEL_PKG" 2>/dev/null | awk '$1 == "Candidate:" { print $2 }') || true
  [ "$KERNEL_VERSION" = "(none)" ] && KERNEL_VERSION=
fi
if [ -z "$KERNEL_PKG" ] || [ -z "$KERNEL_VERSION" ]; then
  # No apt lists (offline, or no `apt-get update` yet): use the newest kernel already cached.
  KDIR=$(newest_cached_kernel || true)
  [ -n "$KDIR" ] || die "cannot resolve the kernel package (run apt-get update) and none is cached"
  log "apt cannot resolve the kernel package; using cached $(basename "$KDIR")"
else
  KDIR=$CACHE/kernel/${KERNEL_PKG}_${KERNEL_VERSION}
fi

# Modules to pack: the wanted ones plus their dependencies, read from each module's modinfo.
resolve_modules() { # ROOT KVER
  local root=$1/lib/modules/$2 todo=$MODULES done_list=" " name file deps
  while [ -n "$todo" ]; do
    set -- $todo
    name=$1 && shift && todo="$*"
    case "$done_list" in *" $name "*) continue ;; esac
    done_list="$done_list$name "
    file=$(find "$root/kernel" -name "$name.ko*" -print -quit)
    if [ -z "$file" ]; then
      grep -q "/$name.ko" "$root/modules.builtin" 2>/dev/null && continue
      die "kernel module $name not found in $KERNEL_PKG"
    fi
    echo "${file#"$root"/}"
    deps=$(tr '\0' '\n' <"$file" | awk -F= '$1 == "depends" && !seen { print $2; seen = 1 }' | tr ',' ' ')
    todo="$todo $deps"
  done
}

if [ ! -f "$KDIR/.complete" ]; then
  log "fetching $KERNEL_PKG $KERNEL_VERSION"
  tmp=$(mktemp -d "$CACHE/kernel/.fetch.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  if ! (cd "$tmp" && apt-get -q -o APT::Sandbox::User=root download "$KERNEL_PKG=$KERNEL_VERSION" >&2); then
    # Stale apt lists (the revision left the mirror) or no network: fall back to the cache.
    KDIR=$(newest_cached_kernel || true)
    [ -n "$KDIR" ] || die "apt-get download $KERNEL_PKG=$KERNEL_VERSION failed and no kernel is cached"
    log "download failed; using cached $(basename "$KDIR")"
  fi
fi
if [ ! -f "$KDIR/.complete" ]; then
  deb=$(ls "$tmp"/*.deb)
  mkdir -p "$tmp/x"
  dpkg-deb -x "$deb" "$tmp/x"
  kver=$(ls "$tmp/x/lib/modules")
  [ -f "$tmp/x/boot/vmlinuz-$kver" ] || die "no vmlinuz-$kver in $deb"
  mkdir -p "$tmp/k/lib/modules/$kver"
  cp "$tmp/x/boot/vmlinuz-$kver" "$tmp/k/vmlinuz"
  cp "$tmp/x/boot/config-$kver" "$tmp/k/config"
  for f in modules.builtin modules.builtin.modinfo modules.order; do
    [ -f "$tmp/x/lib/modules/$kver/$f" ] && cp "$tmp/x/lib/modules/$kver/$f" "$tmp/k/lib/modules/$kver/"
  done
  mods=$(resolve_modules "$tmp/x" "$kver")
  for m in $mods; do
    mkdir -p "$tmp/k/lib/modules/$kver/$(dirname "$m")"
    cp "$tmp/x/lib/modules/$kver/$m" "$tmp/k/lib/modules/$kver/$m"
  done
  echo "$kver" >"$tmp/k/kver"
  mv "$deb" "$tmp/k/" # the fetched package, to re-extract other modules without a download
  rm -rf "$KDIR" && mv "$tmp/k" "$KDIR"
  touch "$KDIR/.complete"
  rm -rf "$tmp" && trap - EXIT
  # Keep only the newest two kernels.
  ls -1td "$CACHE"/kernel/*/ 2>/dev/null | tail -n +3 | xargs -r rm -rf || true
fi
KVER=$(cat "$KDIR/kver")
log "kernel $(basename "$KDIR") ($KVER) ready in $(elapsed "$T_KERNEL")s"

# ---------------------------------------------------------------------------------------------
# 2. Initramfs: busybox-static, modules, libbpf + the libraries deno/libbpf/coreutils need, /init.
#    Deno itself is not packed: it runs from the host over virtio-9p.
# ---------------------------------------------------------------------------------------------
T_IMAGE=$(now)
DENO_BIN=${DENO:-$REPO/.cache/deno/node_modules/.bin/deno}
DENO_REAL=$(readlink -f "$DENO_BIN") || true
[ -x "$DENO_REAL" ] || die "deno not found at $DENO_BIN (set DENO=...)"
BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] && ! ldd "$BUSYBOX" >/dev/null 2>&1 ||
  die "a statically linked busybox is needed (apt-get install busybox-static)"
LIBBPF=$(ldconfig -p | awk '$1 == "libbpf.so.1" && /x86-64/ && !n++ { print $NF }') # no early exit: SIGPIPE
[ -n "$LIBBPF" ] || die "libbpf.so.1 not found (apt-get install libbpf1)"

# Host files to copy at their own path: programs of HOST_PACKAGES, libbpf, and every shared
# library (plus the dynamic loader) that ldd lists for them and for deno.
host_files() {
  local progs=() p
  for pkg in $HOST_PACKAGES; do
    while IFS= read -r p; do
      [ -f "$p" ] && [ ! -L "$p" ] && [ -x "$p" ] && progs+=("$p")
    done < <(dpkg -L "$pkg" | grep -E '^(/usr)?/s?bin/')
  done
  printf '%s\n' "${progs[@]}" "$LIBBPF"
  ldd "$DENO_REAL" "$LIBBPF" "${progs[@]}" 2>/dev/null |
    awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $1 !~ /:$/ { print $1 }'
}
mapfile -t FILES < <(host_files | sort -u)
IMAGE_KEY=$(
  {
    echo "format=$IMAGE_FORMAT kernel=$(basename "$KDIR") modules=$MODULES packages=$HOST_PACKAGES"
    sha256sum "$0" "$VM_DIR/init.sh" "$BUSYBOX" "${FILES[@]}"
  } | sha256sum | cut -c1-16
)
IMAGE=$CACHE/initramfs/initramfs-$IMAGE_KEY.cpio
if [ ! -f "$IMAGE" ]; then
  log "building initramfs $IMAGE_KEY"
  root=$(mktemp -d "$CACHE/initramfs/.root.XXXXXX")
  chmod 755 "$root" # becomes / in the VM: mktemp makes it 0700, unusable for non-root users
  trap 'rm -rf "$root"' EXIT
  # Merged /usr like the host (Debian 12): /bin, /sbin, /lib, /lib64 are links into /usr.
  mkdir -p "$root"/usr/{bin,sbin,lib,lib64} "$root"/{dev,proc,sys,tmp,run,root,mnt,etc}
  for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
  cp "$BUSYBOX" "$root/usr/bin/busybox"
  for f in "${FILES[@]}"; do
    mkdir -p "$root$(dirname "$f")"
    cp -L "$f" "$root$f"
  done
  ln -sf dash "$root/usr/bin/sh"
  mkdir -p "$root/lib/modules"
  cp -a "$KDIR/lib/modules/$KVER" "$root/lib/modules/"
  "$BUSYBOX" depmod -b "$root" "$KVER"
  printf '/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n' >"$root/etc/ld.so.conf"
  ldconfig -r "$root"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' >"$root/etc/group"
  : >"$root/etc/fstab"
  install -m 0755 "$VM_DIR/init.sh" "$root/init"
  mknod -m 600 "$root/dev/console" c 5 1
  mknod -m 666 "$root/dev/null" c 1 3
  # Uncompressed: TCG decompresses slowly; the image is small anyway.
  (cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0) >"$IMAGE.tmp"
  mv "$IMAGE.tmp" "$IMAGE"
  rm -rf "$root" && trap - EXIT
  ls -1t "$CACHE"/initramfs/initramfs-*.cpio | tail -n +3 | xargs -r rm -f || true
fi
log "initramfs $(basename "$IMAGE") ($(du -m "$IMAGE" | cut -f1) MiB) ready in $(elapsed "$T_IMAGE")s"

# ---------------------------------------------------------------------------------------------
# 3. Run directory (read by /init through the repo share), BPF objects, qemu.
# ---------------------------------------------------------------------------------------------
if [ "$BUILD" = 1 ] && [ -x "$REPO/scripts/build_bpf.sh" ] && compgen -G "$REPO/bpf/*.bpf.c" >/dev/null; then
  log "building BPF objects (scripts/build_bpf.sh)"
  "$REPO/scripts/build_bpf.sh" || die "scripts/build_bpf.sh failed"
fi
SMOKE_OBJ=$CACHE/smoke/smoke.bpf.o
if command -v "${CLANG:-clang-19}" >/dev/null && [ -r /usr/include/bpf/bpf_helpers.h ]; then
  if [ ! -f "$SMOKE_OBJ" ] || [ "$VM_DIR/smoke.bpf.c" -nt "$SMOKE_OBJ" ]; then
    "${CLANG:-clang-19}" -O2 -g -Wall -Werror -target bpf -I/usr/include/x86_64-linux-gnu \
      -c "$VM_DIR/smoke.bpf.c" -o "$SMOKE_OBJ.tmp" && mv "$SMOKE_OBJ.tmp" "$SMOKE_OBJ"
  fi
else
  log "clang-19 or libbpf-dev missing: the smoke test skips its BPF load check"
  SMOKE_OBJ=
fi

if [ ${#TEST_ARGS[@]} -eq 0 ]; then
  # Only directories that hold test modules (deno test fails on "No test modules found").
  for d in tests/bpf tests/engine; do
    [ -n "$(find "$REPO/$d" -type f \( -name '*_test.ts' -o -name '*.test.ts' -o -name 'test.ts' \) -print -quit 2>/dev/null)" ] &&
      TEST_ARGS+=("$d")
  done
  [ ${#TEST_ARGS[@]} -gt 0 ] || TEST_ARGS=(scripts/vm/smoke_test.ts)
fi

# Host-side preparation the VM cannot do (it has no compiler): each `_prebuild.ts` found in the
# directory of a test path (e.g. tests/engine/_prebuild.ts) runs here first with `deno run -A`.
declare -A PREBUILT=()
for t in "${TEST_ARGS[@]}"; do
  case "$t" in -*) continue ;; esac
  d=$REPO/$t
  [ -d "$d" ] || d=$(dirname "$d")
  pre=$d/_prebuild.ts
  if [ -f "$pre" ] && [ -z "${PREBUILT[$pre]:-}" ]; then
    PREBUILT[$pre]=1
    log "host prebuild: ${pre#"$REPO"/}"
    (cd "$REPO" && "$DENO_BIN" run -A "$pre") || die "${pre#"$REPO"/} failed"
  fi
done
# The engine's test fixtures take the prebuilt object from KIVEBPF_BPF_OBJECT inside the VM.
if [ -z "${KIVEBPF_BPF_OBJECT:-}" ] && [ -f "$REPO/.cache/bpf/trap.bpf.o" ]; then
  export KIVEBPF_BPF_OBJECT=$REPO/.cache/bpf/trap.bpf.o
fi

ls -1td "$CACHE"/runs/*/ 2>/dev/null | tail -n +6 | xargs -r rm -rf || true
RUN=$(mktemp -d "$CACHE/runs/$(date +%Y%m%d-%H%M%S).XXXX")
echo "$BACKENDS" | tr ' ' '\n' >"$RUN/backends"
printf '%s\n' "${TEST_ARGS[@]}" >"$RUN/args"
echo "$BACKEND_TIMEOUT" >"$RUN/backend_timeout"
{
  env | grep -E '^KIVEBPF_[A-Z0-9_]*=' | grep -vE '^KIVEBPF_(BACKEND|VM)=' || true
  if [ -n "$SMOKE_OBJ" ]; then echo "KIVEBPF_VM_SMOKE_OBJ=$SMOKE_OBJ"; fi
} >"$RUN/env"

VIRTFS=(-virtfs "local,path=$REPO,mount_tag=repo,security_model=none,readonly=on,multidevs=remap")
APPEND="console=ttyS0 quiet lsm=lockdown,capability,landlock,bpf panic=-1 mitigations=off"
APPEND="$APPEND kivebpf.repo=$REPO kivebpf.run=$RUN"
case "$DENO_REAL" in
"$REPO"/*) echo "$DENO_REAL" >"$RUN/deno" ;;
*)
  VIRTFS+=(-virtfs "local,path=$(dirname "$DENO_REAL"),mount_tag=denobin,security_model=none,readonly=on,multidevs=remap")
  APPEND="$APPEND kivebpf.denobin=$(dirname "$DENO_REAL")"
  echo "$DENO_REAL" >"$RUN/deno"
  ;;
esac
HOST_DENO_DIR=${DENO_DIR:-$HOME/.cache/deno}
if [ -d "$HOST_DENO_DIR" ]; then
  VIRTFS+=(-virtfs "local,path=$HOST_DENO_DIR,mount_tag=denodir,security_model=none,readonly=on,multidevs=remap")
  APPEND="$APPEND kivebpf.denodir=1"
fi

flock -u 9 # the rest only reads the cache
LOG=$CACHE/logs/serial-$(basename "$RUN").log
ln -sfn "$(basename "$LOG")" "$CACHE/logs/last.log"
ls -1t "$CACHE"/logs/serial-*.log 2>/dev/null | tail -n +11 | xargs -r rm -f || true
log "booting $KVER: backends [$BACKENDS], deno test ${TEST_ARGS[*]} (timeout ${TIMEOUT}s, log $LOG)"
# console LOG FILE: copy the serial console to stdout and LOG; write the host seconds from qemu's
# start to the guest's "ready" line (boot + module load + mounts) into FILE.
console() {
  local line seen=
  while IFS= read -r line || [ -n "$line" ]; do
    printf '%s\n' "$line"
    printf '%s\n' "$line" >&3
    if [ -z "$seen" ] && [[ "$line" == "KIVEBPF-VM ready "* ]]; then
      seen=1 && elapsed "$T_BOOT" >"$2"
    fi
  done 3>"$1"
}
T_BOOT=$(now)
set +e
timeout -k 10 "$TIMEOUT" qemu-system-x86_64 \
  -accel tcg -cpu max -m "$MEM" -smp "$SMP" \
  -nodefaults -no-user-config -display none -no-reboot -nic none \
  -serial stdio -monitor none \
  -kernel "$KDIR/vmlinuz" -initrd "$IMAGE" -append "$APPEND" \
  "${VIRTFS[@]}" </dev/null 2>&1 | console "$LOG" "$RUN/boot_seconds"
QEMU_RC=${PIPESTATUS[0]}
set -e
BOOT_SECS=$(elapsed "$T_BOOT")

# ---------------------------------------------------------------------------------------------
# 4. Summary from the serial log.
# ---------------------------------------------------------------------------------------------
echo
echo "== kivebpf VM kernel matrix ($KVER, $(basename "$KDIR")) =="
[ "$QEMU_RC" = 124 ] && echo "qemu killed after ${TIMEOUT}s (serial log: $LOG)"
READY=$(tr -d '\r' <"$LOG" | awk '/^KIVEBPF-VM ready uptime=/ && !n++ { sub(/.*uptime=/, ""); sub(/ .*/, ""); print }')
tr -d '\r' <"$LOG" | grep -o 'KIVEBPF-MATRIX error=.*' || true
total_passed=0 total_failed=0 bad=0
for b in $BACKENDS; do
  line=$(tr -d '\r' <"$LOG" | grep -oE "KIVEBPF-MATRIX backend=$b .*" | tail -n 1 || true)
  if [ -z "$line" ]; then
    printf '%-11s MISSING (no result line: VM crashed, hung or timed out)\n' "$b"
    total_failed=$((total_failed + 1)) bad=1
    continue
  fi
  rc=$(sed -n 's/.* exit=\([0-9]*\).*/\1/p' <<<"$line")
  p=$(sed -n 's/.* passed=\([0-9]*\).*/\1/p' <<<"$line")
  f=$(sed -n 's/.* failed=\([0-9]*\).*/\1/p' <<<"$line")
  i=$(sed -n 's/.* ignored=\([0-9]*\).*/\1/p' <<<"$line")
  s=$(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' <<<"$line")
  status=PASS
  if [ "$rc" != 0 ]; then
    status=FAIL bad=1
    [ "$rc" = 124 ] && status="TIMEOUT(${BACKEND_TIMEOUT}s)"
    # A deno test that dies before its summary (load error, timeout) counts as one failure.
    [ "${f:-0}" = 0 ] && f=1
  fi
  printf '%-11s %s  exit=%s passed=%s failed=%s ignored=%s (%ss)\n' "$b" "$status" "$rc" "$p" "$f" "$i" "$s"
  total_passed=$((total_passed + p)) total_failed=$((total_failed + f))
done
echo "timings: total $(elapsed "$T_TOTAL")s, qemu ${BOOT_SECS}s," \
  "boot-to-test $(cat "$RUN/boot_seconds" 2>/dev/null || echo ?)s (guest uptime ${READY:-?}s)"
echo "$total_passed passed, $total_failed failed"
if [ "$bad" = 0 ] && [ "$total_failed" = 0 ]; then exit 0; fi
exit 1
