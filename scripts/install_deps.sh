#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo need. Fast when everything is there.
set -euo pipefail
packages=(
  openssl ca-certificates curl unzip openssh-client jq python3
  clang-19 llvm-19 libbpf-dev libbpf1 bpftool libelf1 zlib1g
  runc busybox-static gcc libc6-dev util-linux
  qemu-system-x86 cpio kmod libzstd-dev
)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]} == 0)); then
  echo "install_deps: all ${#packages[@]} Debian packages present"
  exit 0
fi
if [[ $(id -u) != 0 ]]; then
  echo "install_deps: missing ${missing[*]}; run as root or install them with apt-get" >&2
  exit 1
fi
echo "install_deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
