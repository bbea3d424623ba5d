#!/bin/busybox sh
# /init of the kivebpf VM-matrix initramfs (built by scripts/vm_matrix.sh; runs as PID 1 in qemu).
# Mounts the kernel filesystems, loads the 9p/overlay modules, mounts the host's repo (and Deno
# cache) read-only over virtio-9p with a tmpfs overlay on top, then runs `deno test` once per
# backend and prints one machine-readable line per backend on the serial console:
#   KIVEBPF-MATRIX backend=<b> exit=<rc> passed=<n> failed=<n> ignored=<n> seconds=<s>
# and powers off. Configuration comes from the kernel command line (kivebpf.*) and from the run
# directory the host script writes into the shared repo (backends, args, env: one item a line).

/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s # never overwrites the host binaries packed in the image (coreutils, bash)
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb NO_COLOR=1 LANG=C.UTF-8
umask 022

say() { echo "KIVEBPF-VM $*"; }
halt() {
  sync
  echo "KIVEBPF-MATRIX done"
  poweroff -f
  sleep 5
  echo o >/proc/sysrq-trigger
}
fail() {
  echo "KIVEBPF-MATRIX error=\"$*\""
  halt
}
uptime_s() { cut -d' ' -f1 /proc/uptime; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o gid=5,mode=620,ptmxmode=000 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t mqueue mqueue /dev/mqueue 2>/dev/null
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=700 tmpfs /root
mount -t securityfs securityfs /sys/kernel/security
mount -t bpf -o mode=700 bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
hostname kivebpf-vm
ip link set lo up 2>/dev/null
echo 1 >/proc/sys/kernel/bpf_stats_enabled 2>/dev/null

REPO= RUN= DENODIR= DENOBIN=
for arg in $(cat /proc/cmdline); do
  case "$arg" in
  kivebpf.repo=*) REPO=${arg#*=} ;;
  kivebpf.run=*) RUN=${arg#*=} ;;
  kivebpf.denodir=*) DENODIR=${arg#*=} ;;
  kivebpf.denobin=*) DENOBIN=${arg#*=} ;;
  esac
done
[ -n "$REPO" ] && [ -n "$RUN" ] || fail "kivebpf.repo= or kivebpf.run= missing on the kernel command line"

say "init uptime=$(uptime_s) kernel=$(uname -r) lsm=$(cat /sys/kernel/security/lsm)"

modprobe -a virtio_pci 9pnet_virtio 9p overlay || fail "modprobe of virtio_pci/9pnet_virtio/9p/overlay failed"

# mount9p TAG DIR: the virtio device may be probed a moment after the module loads.
mount9p() {
  mkdir -p "$2"
  i=0
  while ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288,cache=loose,ro "$1" "$2" 2>/dev/null; do
    i=$((i + 1))
    [ $i -gt 50 ] && return 1
    sleep 0.1
  done
}
# overlay LOWER TARGET NAME: writable tmpfs layer over a read-only share (host stays untouched).
overlay() {
  mkdir -p "/run/kivebpf-vm/$3/upper" "/run/kivebpf-vm/$3/work" "$2"
  mount -t overlay overlay \
    -o "lowerdir=$1,upperdir=/run/kivebpf-vm/$3/upper,workdir=/run/kivebpf-vm/$3/work" "$2" ||
    { say "warning: overlay on $2 failed, using the read-only share" && mount --bind "$1" "$2"; }
}

mount9p repo /mnt/repo || fail "cannot mount the 9p share 'repo'"
overlay /mnt/repo "$REPO" repo
export DENO_DIR=/run/kivebpf-vm/deno-dir
if [ -n "$DENODIR" ] && mount9p denodir /mnt/deno-dir; then
  overlay /mnt/deno-dir "$DENO_DIR" deno-dir
else
  mkdir -p "$DENO_DIR"
fi
if [ -n "$DENOBIN" ]; then
  mount9p denobin /mnt/deno-bin || fail "cannot mount the 9p share 'denobin'"
  mkdir -p "$DENOBIN"
  mount --bind /mnt/deno-bin "$DENOBIN"
fi

[ -d "$RUN" ] || fail "run directory $RUN not visible in the VM"
DENO=$(cat "$RUN/deno")
BACKEND_TIMEOUT=$(cat "$RUN/backend_timeout" 2>/dev/null || echo 600)
BACKENDS=$(cat "$RUN/backends")
while IFS= read -r kv; do
  [ -n "$kv" ] && export "$kv"
done <"$RUN/env"
export KIVEBPF_VM=1
set --
while IFS= read -r a; do
  set -- "$@" "$a"
done <"$RUN/args"

[ -x "$DENO" ] || fail "deno binary $DENO is not executable in the VM"
say "ready uptime=$(uptime_s) deno=$DENO args=$*"

out=/run/kivebpf-vm/out
for b in $BACKENDS; do
  start=$(uptime_s)
  say "backend=$b start uptime=$start"
  (
    cd "$REPO" || exit 1
    export KIVEBPF_BACKEND="$b"
    # coreutils timeout (busybox ash would run its own applet, which reports 143, not 124).
    /usr/bin/timeout -k 10 "$BACKEND_TIMEOUT" "$DENO" test -A --no-check "$@" </dev/null
    echo $? >"$out.$b.rc"
  ) 2>&1 | tee "$out.$b"
  rc=$(cat "$out.$b.rc" 2>/dev/null || echo 255)
  # deno test ends with e.g. "ok | 3 passed (2 steps) | 0 failed | 1 ignored (1s)".
  line=$(sed 's/\x1b\[[0-9;]*m//g' "$out.$b" | grep -E '^(ok|FAILED) +\| +[0-9]+ passed' | tail -n 1)
  passed=$(echo "$line" | sed -n 's/.*| *\([0-9][0-9]*\) passed.*/\1/p')
  failed=$(echo "$line" | sed -n 's/.*| *\([0-9][0-9]*\) failed.*/\1/p')
  ignored=$(echo "$line" | sed -n 's/.*| *\([0-9][0-9]*\) ignored.*/\1/p')
  secs=$(awk -v a="$start" -v b="$(uptime_s)" 'BEGIN { printf "%.1f", b - a }')
  # Leading newline: a killed test run may have left its last line unterminated.
  printf '\n'
  echo "KIVEBPF-MATRIX backend=$b exit=$rc passed=${passed:-0} failed=${failed:-0} ignored=${ignored:-0} seconds=$secs"
  # Leave nothing behind for the next backend: pinned objects and tracing state.
  rm -rf /sys/fs/bpf/* 2>/dev/null
done
halt
