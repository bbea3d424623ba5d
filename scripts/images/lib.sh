# Helpers of scripts/images.sh (sourced): logging, input hashing, a Debian base rootfs and an
# OCI image-layout packer. Nothing here needs Docker, a registry or a daemon.
# shellcheck shell=bash

ilog() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
idie() { ilog "ERROR: $*"; exit 1; }

# hash_files PATH...: one line per regular file (content hash + path relative to REPO), sorted.
hash_files() {
  local p
  for p in "$@"; do
    if [[ -d "$p" ]]; then
      find "$p" -type f -print0
    elif [[ -e "$p" ]]; then
      printf '%s\0' "$p"
    else
      printf 'missing:%s\n' "$p" >&2
      return 1
    fi
  done | sort -z | xargs -0 -r sha256sum | sed "s|  $REPO/|  |"
}

# fn_source NAME...: the text of bash functions, so editing a recipe invalidates its stamp.
fn_source() { declare -f "$@"; }

# ---- Debian base rootfs ------------------------------------------------------------------------
# A bookworm minbase tree made by debootstrap, with apt lists downloaded, kept under
# $OUT/_base/rootfs; derived images copy it and install packages into the copy via chroot.
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR=${KIVEBPF_DEBIAN_MIRROR:-http://deb.debian.org/debian}

base_inputs() {
  echo "suite=$DEBIAN_SUITE mirror=$DEBIAN_MIRROR"
  dpkg-query -W -f='${Version}\n' debootstrap
  fn_source build_base chroot_begin chroot_end
}

# chroot_begin ROOT: prepare ROOT for `chroot ROOT apt-get ...`: no service may start (a postinst
# starting nginx in a chroot would run it on the host), name resolution, /proc, the host's apt
# leniency about old Release files (the mirror here may serve a dated snapshot).
chroot_begin() {
  local root=$1
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  cp -L /etc/resolv.conf "$root/etc/resolv.conf"
  printf '%s\n' 'Acquire::Check-Valid-Until "false";' 'Acquire::Check-Date "false";' \
    'APT::Install-Recommends "false";' > "$root/etc/apt/apt.conf.d/99kivebpf-build"
  mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
}

# chroot_end ROOT: undo chroot_begin and drop caches, docs and apt lists.
chroot_end() {
  local root=$1
  if mountpoint -q "$root/proc"; then umount "$root/proc"; fi
  rm -f "$root/usr/sbin/policy-rc.d" "$root/etc/apt/apt.conf.d/99kivebpf-build"
  : > "$root/etc/resolv.conf"
}

# strip_rootfs ROOT: what an image does not need.
strip_rootfs() {
  local root=$1
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/locale/* "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/tmp/*
}

build_base() {
  local dir=$1 tmp="$1/rootfs.tmp"
  command -v debootstrap >/dev/null || idie "debootstrap not found (apt-get install debootstrap)"
  mkdir -p "$OUT/_debs"
  rm -rf "$tmp"
  ilog "base: debootstrap --variant=minbase $DEBIAN_SUITE from $DEBIAN_MIRROR (a minute or two)"
  if ! debootstrap --variant=minbase --cache-dir="$OUT/_debs" "$DEBIAN_SUITE" "$tmp" "$DEBIAN_MIRROR" \
    > "$dir/debootstrap.log" 2>&1; then
    tail -n 20 "$dir/debootstrap.log" >&2
    idie "debootstrap failed (full log: $dir/debootstrap.log)"
  fi
  ilog "base: apt-get update inside the rootfs"
  chroot_begin "$tmp"
  if ! chroot "$tmp" apt-get update -q > "$dir/apt-update.log" 2>&1; then
    chroot_end "$tmp"
    tail -n 20 "$dir/apt-update.log" >&2
    idie "apt-get update in the base rootfs failed"
  fi
  chroot_end "$tmp"
  rm -rf "$dir/rootfs"
  mv "$tmp" "$dir/rootfs"
}

# ensure_base: build $OUT/_base/rootfs unless its stamp is current.
ensure_base() {
  local dir="$OUT/_base" stamp
  stamp=$(base_inputs | sha256sum | cut -d' ' -f1)
  if [[ -d "$dir/rootfs" && "$(cat "$dir/stamp" 2>/dev/null)" == "$stamp" ]]; then return 0; fi
  mkdir -p "$dir"
  local t0=$SECONDS
  build_base "$dir"
  echo "$stamp" > "$dir/stamp"
  ilog "base: ready in $((SECONDS - t0))s ($(du -sh "$dir/rootfs" | cut -f1))"
}

# rootfs_from_base ROOT PACKAGE...: ROOT = a copy of the base with PACKAGEs installed.
rootfs_from_base() {
  local root=$1
  shift
  ensure_base
  mkdir -p "$root"
  cp -a "$OUT/_base/rootfs/." "$root/"
  if (($#)); then
    ilog "installing $* into the rootfs"
    chroot_begin "$root"
    if ! chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" \
      > "$root.apt.log" 2>&1; then
      chroot_end "$root"
      tail -n 20 "$root.apt.log" >&2
      idie "apt-get install $* failed (log: $root.apt.log)"
    fi
    chroot "$root" apt-get clean
    chroot_end "$root"
    rm -f "$root.apt.log"
  fi
  strip_rootfs "$root"
}

# ---- OCI image layout ---------------------------------------------------------------------------
# layer_tar DIR TAR: DIR's content as an uncompressed layer TAR, its sha256 in TAR.digest.
# Uncompressed: the archive is only read back by containerd on this machine, and gzip of the
# ~270 MB agent runtime layer would cost more time than it saves.
layer_tar() {
  local dir=$1 tar=$2
  (cd "$dir" && find . -mindepth 1 -maxdepth 1 -printf '%P\n' | LC_ALL=C sort |
    tar --numeric-owner --sort=name --xattrs --xattrs-include='security.capability' \
      -cf "$tar.tmp" -T -)
  sha256sum "$tar.tmp" | cut -d' ' -f1 > "$tar.digest"
  mv -f "$tar.tmp" "$tar"
}

# oci_pack LAYOUT REF CONFIG_JSON TAR...: writes an OCI image layout to the directory LAYOUT whose
# layers are the TARs (made by layer_tar, lowest first) and whose index names the image REF (fully
# qualified, e.g. docker.io/kivebpf/nginx:dev) for `ctr images import`. CONFIG_JSON is the image
# config's "config" object (Entrypoint, Cmd, Env, ...). Prints the manifest digest.
oci_pack() {
  local layout=$1 ref=$2 config=$3
  shift 3
  local blobs="$layout/blobs/sha256" t d size diff_ids="" layers="" cfg cfg_digest man man_digest now
  rm -rf "$layout"
  mkdir -p "$blobs"
  for t in "$@"; do
    d=$(cat "$t.digest")
    size=$(stat -c %s "$t")
    ln -f "$t" "$blobs/$d" 2>/dev/null || cp "$t" "$blobs/$d"
    diff_ids+="${diff_ids:+,}\"sha256:$d\""
    layers+="${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:$d\",\"size\":$size}"
  done
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  cfg=$(printf '{"architecture":"amd64","os":"linux","created":"%s","config":%s,"rootfs":{"type":"layers","diff_ids":[%s]},"history":[{"created":"%s","created_by":"scripts/images.sh"}]}' \
    "$now" "$config" "$diff_ids" "$now")
  cfg_digest=$(printf '%s' "$cfg" | sha256sum | cut -d' ' -f1)
  printf '%s' "$cfg" > "$blobs/$cfg_digest"
  man=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[%s]}' \
    "$cfg_digest" "${#cfg}" "$layers")
  man_digest=$(printf '%s' "$man" | sha256sum | cut -d' ' -f1)
  printf '%s' "$man" > "$blobs/$man_digest"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$man_digest" "${#man}" "$ref" "${ref##*:}" > "$layout/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
  echo "sha256:$man_digest"
}
