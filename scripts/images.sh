#!/usr/bin/env bash
# Builds the local cluster's container images WITHOUT Docker or a registry and imports them into
# containerd's k8s.io namespace (the one the kubelet uses).
#
# Usage: scripts/images.sh [build|import|list|clean] [IMAGE...]
#   build    build the images whose inputs changed (stamp = hash of the inputs)
#   import   build, then import each image into containerd unless it is already there (default)
#   list     the images, their references and whether they are built / imported
#   clean    delete the build cache (.cache/images) and the images from containerd (if running)
# IMAGE: pause nginx coredns callback-receiver kivebpf (default: all)
#
# References (as pods name them / as containerd stores them):
#   kivebpf/pause:dev              docker.io/kivebpf/pause:dev    (containerd's sandbox image)
#   kivebpf/nginx:dev              docker.io/kivebpf/nginx:dev
#   kivebpf/coredns:dev            docker.io/kivebpf/coredns:dev
#   kivebpf/callback-receiver:dev  docker.io/kivebpf/callback-receiver:dev
#   kivebpf:dev                    docker.io/library/kivebpf:dev (the agent)
# Env: CONTAINERD_ADDRESS (default /run/containerd/containerd.sock), KIVEBPF_DEBIAN_MIRROR.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE="$REPO/scripts/images"
OUT="$REPO/.cache/images"
K8S_BIN="${K8S_BIN_DIR:-$REPO/.cache/k8s/bin}"
DENO_BIN="$REPO/.cache/deno/node_modules/deno/deno"
CONTAINERD_ADDRESS=${CONTAINERD_ADDRESS:-/run/containerd/containerd.sock}
# shellcheck source-path=SCRIPTDIR
source "$HERE/lib.sh"
# shellcheck source-path=SCRIPTDIR
source "$REPO/scripts/cluster/packages.sh"

ALL=(pause nginx coredns callback-receiver kivebpf)
declare -A REF=(
  [pause]=docker.io/kivebpf/pause:dev
  [nginx]=docker.io/kivebpf/nginx:dev
  [coredns]=docker.io/kivebpf/coredns:dev
  [callback-receiver]=docker.io/kivebpf/callback-receiver:dev
  [kivebpf]=docker.io/library/kivebpf:dev
)

# ---- recipes: <name>_inputs prints what the image is made from; <name>_rootfs ROOT fills ROOT;
# ---- <name>_config prints the image config's "config" object.

pause_inputs() { hash_files "$HERE/pause.c"; gcc --version | head -1; }
pause_rootfs() {
  gcc -static -O2 -Wall -Werror -o "$1/pause" "$HERE/pause.c"
  strip "$1/pause"
}
pause_config() { echo '{"Entrypoint":["/pause"]}'; }

nginx_inputs() { base_inputs; hash_files "$HERE/nginx-index.html"; }
nginx_rootfs() {
  rootfs_from_base "$1" nginx
  # As the official image does: logs to the container's stdout/stderr.
  ln -sf /dev/stdout "$1/var/log/nginx/access.log"
  ln -sf /dev/stderr "$1/var/log/nginx/error.log"
  cp "$HERE/nginx-index.html" "$1/var/www/html/index.html"
  [[ -e "$1/etc/nginx/sites-enabled/default" || -L "$1/etc/nginx/sites-enabled/default" ]] || ln -s ../sites-available/default "$1/etc/nginx/sites-enabled/default"
}
nginx_config() {
  echo '{"Cmd":["nginx","-g","daemon off;"],"ExposedPorts":{"80/tcp":{}},"StopSignal":"SIGQUIT","Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}'
}

coredns_inputs() { hash_files "$K8S_BIN/coredns"; }
coredns_rootfs() {
  [[ -x "$K8S_BIN/coredns" ]] || idie "$K8S_BIN/coredns missing: run scripts/build_k8s.sh coredns"
  cp "$K8S_BIN/coredns" "$1/coredns"
  mkdir -p "$1/etc/coredns" "$1/tmp"
}
coredns_config() { echo '{"Entrypoint":["/coredns"],"ExposedPorts":{"53/udp":{},"53/tcp":{}}}'; }

callback-receiver_inputs() { hash_files "$HERE/callback-receiver"; go version; }
callback-receiver_rootfs() {
  (cd "$HERE/callback-receiver" &&
    CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" \
      -o "$1/callback-receiver" .)
  mkdir -p "$1/tmp"
}
callback-receiver_config() {
  echo '{"Entrypoint":["/callback-receiver"],"ExposedPorts":{"9376/tcp":{}},"Env":["PORT=9376"]}'
}

# The agent. `deno compile` cannot fetch its runtime here (see Dockerfile), so the image carries
# the deno binary and the program with its npm packages cached in DENO_DIR, run with
# --cached-only: the same program and libraries, started the same way (`kivebpf agent ...`).
# Two layers, so that a change in src/ rebuilds and imports only the small one:
#   runtime  Debian + libbpf1 + deno + the npm cache ($OUT/_agent-runtime, kept between builds)
#   app      /app (mod.ts, src/, deno.json, deno.lock) + /usr/lib/kivebpf/trap.bpf.o
KIVEBPF_APP_FILES=(mod.ts deno.json deno.lock src)
kivebpf_inputs() {
  kivebpf_runtime_inputs
  hash_files "${KIVEBPF_APP_FILES[@]/#/$REPO/}" "$REPO/.cache/bpf/trap.bpf.o"
  fn_source kivebpf_build kivebpf_app_rootfs kivebpf_check
}
kivebpf_prepare() { # before kivebpf_inputs: the BPF object is an input
  sh "$REPO/scripts/build_bpf.sh" || idie "scripts/build_bpf.sh failed: the agent image needs .cache/bpf/trap.bpf.o"
  [[ -x "$DENO_BIN" ]] || bash "$REPO/scripts/deno.sh" --version >/dev/null
}
kivebpf_runtime_inputs() {
  base_inputs
  hash_files "$DENO_BIN" "$REPO/deno.json" "$REPO/deno.lock"
  fn_source kivebpf_runtime_rootfs
}
kivebpf_runtime_rootfs() {
  local root=$1 f
  rootfs_from_base "$root" libbpf1 ca-certificates
  install -m 755 "$DENO_BIN" "$root/usr/local/bin/deno"
  # `kivebpf ARGS` inside the image, like the compiled executable of the Dockerfile.
  printf '#!/bin/sh\nexec /usr/local/bin/deno run -A --cached-only /app/mod.ts "$@"\n' \
    > "$root/usr/local/bin/kivebpf"
  chmod 755 "$root/usr/local/bin/kivebpf"
  # The npm packages need the registry once, at build time: every dependency of deno.json, and
  # whatever the program's module graph reaches.
  ilog "kivebpf: caching the program's npm dependencies into the image's DENO_DIR"
  mkdir -p "$root/var/cache/deno" "$root.app"
  for f in "${KIVEBPF_APP_FILES[@]}"; do cp -a "$REPO/$f" "$root.app/"; done
  (cd "$root.app" && export DENO_DIR="$root/var/cache/deno" DENO_NO_UPDATE_CHECK=1 NO_COLOR=1 &&
    "$DENO_BIN" install --frozen && "$DENO_BIN" cache --frozen mod.ts) > "$root.deno.log" 2>&1 ||
    { tail -n 20 "$root.deno.log" >&2; idie "deno cache of the agent's dependencies failed"; }
  rm -rf "$root.app" "$root.deno.log" "$root/var/cache/deno/gen" # gen: keyed by the build's paths
}
kivebpf_app_rootfs() {
  local root=$1 f
  mkdir -p "$root/app" "$root/usr/lib/kivebpf"
  for f in "${KIVEBPF_APP_FILES[@]}"; do cp -a "$REPO/$f" "$root/app/"; done
  install -m 644 "$REPO/.cache/bpf/trap.bpf.o" "$root/usr/lib/kivebpf/trap.bpf.o"
}
# kivebpf_check RUNTIME APP WORK: the image must run offline: the usage text through
# `deno run --cached-only` in the two layers merged (overlayfs), in a network namespace of its own.
kivebpf_check() {
  local merged="$3/merged" rc=0
  mkdir -p "$merged" "$3/upper" "$3/work"
  mount -t overlay overlay -o "lowerdir=$2:$1,upperdir=$3/upper,workdir=$3/work" "$merged"
  mount -t proc proc "$merged/proc"
  unshare --net chroot "$merged" env -i PATH=/usr/bin:/bin DENO_DIR=/var/cache/deno DENO_NO_UPDATE_CHECK=1 \
    NO_COLOR=1 /usr/local/bin/deno run -A --cached-only /app/mod.ts help > "$3/check.log" 2>&1 || rc=$?
  umount "$merged/proc"
  umount "$merged"
  if [[ $rc != 0 ]] || ! grep -q '^Usage: kivebpf' "$3/check.log"; then
    tail -n 20 "$3/check.log" >&2
    idie "the agent does not start offline in its image (deno run --cached-only /app/mod.ts help)"
  fi
  rm -rf "$3"
}
# kivebpf_build DIR: prints the layer tars.
kivebpf_build() {
  local dir=$1 rt="$OUT/_agent-runtime" stamp
  stamp=$(kivebpf_runtime_inputs | sha256sum | cut -d' ' -f1)
  if [[ ! -f "$rt/layer.tar.digest" || "$(cat "$rt/stamp" 2>/dev/null)" != "$stamp" ]]; then
    ilog "kivebpf: building the runtime layer (Debian, libbpf, deno, npm packages)"
    if mountpoint -q "$rt/rootfs/proc" 2>/dev/null; then umount "$rt/rootfs/proc"; fi
    rm -rf "$rt"
    mkdir -p "$rt"
    kivebpf_runtime_rootfs "$rt/rootfs"
    layer_tar "$rt/rootfs" "$rt/layer.tar"
    echo "$stamp" > "$rt/stamp"
  else
    ilog "kivebpf: runtime layer up to date"
  fi
  kivebpf_app_rootfs "$dir/app-rootfs"
  layer_tar "$dir/app-rootfs" "$dir/app.tar"
  kivebpf_check "$rt/rootfs" "$dir/app-rootfs" "$dir/check"
  rm -rf "$dir/app-rootfs"
  echo "$rt/layer.tar" "$dir/app.tar"
}
kivebpf_config() {
  echo '{"Entrypoint":["/usr/local/bin/deno","run","-A","--cached-only","/app/mod.ts"],"Cmd":["agent"],"WorkingDir":"/app","Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","DENO_DIR=/var/cache/deno","DENO_NO_UPDATE_CHECK=1","DENO_NO_PROMPT=1","NO_COLOR=1","KIVEBPF_BPF_OBJECT=/usr/lib/kivebpf/trap.bpf.o"]}'
}

# ---- generic ------------------------------------------------------------------------------------

stamp_of() { "$1_inputs" | sha256sum | cut -d' ' -f1; }

build_one() {
  local name=$1 dir="$OUT/$1" stamp t0=$SECONDS digest layers
  if declare -F "${name}_prepare" >/dev/null; then "${name}_prepare"; fi
  stamp=$(stamp_of "$name")
  if [[ -f "$dir/oci/index.json" && "$(cat "$dir/stamp" 2>/dev/null)" == "$stamp" ]]; then
    ilog "$name: up to date (${REF[$name]})"; return 0
  fi
  ilog "$name: building ${REF[$name]}"
  mkdir -p "$dir"
  # A rootfs left mounted by an interrupted build.
  if mountpoint -q "$dir/rootfs/proc" 2>/dev/null; then umount "$dir/rootfs/proc"; fi
  rm -rf "$dir/rootfs" "$dir/stamp" "$dir/oci" "$dir"/*.tar "$dir"/*.tar.digest
  if declare -F "${name}_build" >/dev/null; then
    layers=$("${name}_build" "$dir")
  else # one layer: the whole rootfs
    mkdir -p "$dir/rootfs"
    "${name}_rootfs" "$dir/rootfs"
    layer_tar "$dir/rootfs" "$dir/layer.tar"
    rm -rf "$dir/rootfs"
    layers="$dir/layer.tar"
  fi
  # shellcheck disable=SC2086 # a list of paths without spaces
  digest=$(oci_pack "$dir/oci" "${REF[$name]}" "$("${name}_config")" $layers)
  rm -f "$dir"/*.tar "$dir"/*.tar.digest # the blobs are hard links
  echo "$digest" > "$dir/digest"
  echo "$stamp" > "$dir/stamp"
  ilog "$name: built in $((SECONDS - t0))s, $(du -sh "$dir/oci" | cut -f1), manifest $digest"
}

ctr_() { ctr --address "$CONTAINERD_ADDRESS" --namespace k8s.io "$@"; }
containerd_up() { [[ -S $CONTAINERD_ADDRESS ]] && ctr --address "$CONTAINERD_ADDRESS" --timeout 5s version >/dev/null 2>&1; }

# imported_digest REF: the manifest digest containerd has for REF, or nothing.
imported_digest() { ctr_ images ls 2>/dev/null | awk -v r="$1" '$1 == r { print $3 }'; }

import_one() {
  local name=$1 dir="$OUT/$1" want have t0=$SECONDS
  want=$(cat "$dir/digest")
  have=$(imported_digest "${REF[$name]}")
  if [[ "$have" == "$want" ]]; then ilog "$name: already in containerd"; return 0; fi
  ilog "$name: importing into containerd (k8s.io namespace)"
  # Blobs containerd already holds (the agent's runtime layer) are left out of the archive.
  local have_blobs blobs=() b
  have_blobs=$(ctr_ content ls -q 2>/dev/null || true)
  for b in "$dir"/oci/blobs/sha256/*; do
    grep -qx "sha256:${b##*/}" <<< "$have_blobs" || blobs+=("blobs/sha256/${b##*/}")
  done
  tar -C "$dir/oci" -cf - oci-layout index.json "${blobs[@]}" | ctr_ images import - >/dev/null ||
    idie "ctr images import of $name failed"
  have=$(imported_digest "${REF[$name]}")
  [[ "$have" == "$want" ]] || idie "$name: containerd has '$have' for ${REF[$name]} after import, expected $want"
  ilog "$name: imported in $((SECONDS - t0))s"
}

usage() { sed -n '2,19p' "${BASH_SOURCE[0]}" >&2; exit 2; }

cmd=${1:-import}
[[ $# -gt 0 ]] && shift
names=("$@")
((${#names[@]})) || names=("${ALL[@]}")
for n in "${names[@]}"; do [[ -n "${REF[$n]:-}" ]] || { ilog "unknown image: $n"; usage; }; done
[[ $EUID -eq 0 ]] || idie "must run as root (debootstrap, chroot, containerd)"
[[ $cmd == build || $cmd == import ]] && ensure_packages debootstrap gcc libc6-dev containerd

case "$cmd" in
  build)
    for n in "${names[@]}"; do build_one "$n"; done ;;
  import)
    containerd_up || idie "containerd is not answering on $CONTAINERD_ADDRESS (start it: scripts/cluster.sh up)"
    for n in "${names[@]}"; do build_one "$n"; import_one "$n"; done ;;
  list)
    for n in "${names[@]}"; do
      built=no; [[ -f "$OUT/$n/digest" ]] && built=$(cat "$OUT/$n/digest")
      imported=unknown; containerd_up && imported=$(imported_digest "${REF[$n]}")
      printf '%-18s %-42s built=%s imported=%s\n' "$n" "${REF[$n]}" "${built:0:19}" "${imported:-no}"
    done ;;
  clean)
    if containerd_up; then
      for n in "${names[@]}"; do ctr_ images rm "${REF[$n]}" >/dev/null 2>&1 || true; done
    fi
    for n in "${names[@]}"; do rm -rf "${OUT:?}/$n"; done
    # All of them: also the Debian base rootfs and debootstrap's package cache.
    if ((${#names[@]} == ${#ALL[@]})); then rm -rf "${OUT:?}"; fi
    ilog "cleaned" ;;
  *) usage ;;
esac
