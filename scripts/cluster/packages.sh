# Debian packages the local cluster and its images need (sourced by cluster.sh and images.sh).
# shellcheck shell=bash

# containerd 1.6 + runc: the container runtime; containernetworking-plugins: bridge, host-local,
# portmap, loopback; iptables: kube-proxy, the kubelet and CNI (iptables-nft backend here);
# debootstrap: the Debian rootfs of the nginx and agent images; gcc + libc6-dev: the static pause;
# jq: scripts/cluster/runc-wrapper.sh edits OCI specs.
CLUSTER_PACKAGES=(containerd runc containernetworking-plugins iptables debootstrap openssl iproute2
  kmod procps util-linux gcc libc6-dev jq)

# ensure_packages PKG...: apt-get install the ones that are not installed (nothing if all are).
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" == "install ok installed" ]] || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  printf '[packages %s] installing Debian packages: %s\n' "$(date +%H:%M:%S)" "${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; then
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  fi
}
