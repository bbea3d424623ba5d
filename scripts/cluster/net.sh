# Host networking of the local cluster: sysctls, the pod network's CNI config, the pod egress
# masquerade rule, and removing all of it again (sourced by cluster.sh).
# shellcheck shell=bash

# Sysctls that `up` sets or that the kubelet / kube-proxy change; `down` puts back what was there
# before the first `up` (saved once in STATE/sysctl.orig).
SYSCTLS=(
  net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
  vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes
)
MASQ_RULE=(-s "$POD_CIDR" ! -o "$BRIDGE" -m comment --comment "kivebpf-cluster: pod egress" -j MASQUERADE)

net_setup() {
  local k
  # bridge-nf-call-iptables: traffic between pods on the bridge must see kube-proxy's rules.
  [[ -e /proc/sys/net/bridge ]] || modprobe br_netfilter 2>/dev/null || true
  [[ -e /proc/sys/net/bridge ]] || die "br_netfilter is missing: /proc/sys/net/bridge does not exist"
  modprobe overlay 2>/dev/null || true
  grep -qw overlay /proc/filesystems || die "overlayfs is not available (containerd's snapshotter)"
  if [[ ! -s "$STATE/sysctl.orig" ]]; then
    for k in "${SYSCTLS[@]}"; do
      [[ -e "/proc/sys/${k//.//}" ]] && echo "$k=$(sysctl -n "$k")"
    done > "$STATE/sysctl.orig"
  fi
  sysctl -q -w net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1
  iptables -t nat -C POSTROUTING "${MASQ_RULE[@]}" 2>/dev/null ||
    iptables -t nat -A POSTROUTING "${MASQ_RULE[@]}"
  mkdir -p "$STATE/cni/net.d"
  # The bridge plugin creates $BRIDGE on the first pod; host-local hands out $POD_CIDR.
  write_if_changed "$STATE/cni/net.d/10-kivebpf.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$CNI_NETWORK",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$POD_CIDR", "gateway": "$POD_GATEWAY" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
}

# netfilter_cleanup CMD: with CMD = iptables or ip6tables, remove every rule that jumps to a
# KUBE-* or CNI-* chain and then those chains, in every table; and our masquerade rule.
netfilter_cleanup() {
  local cmd=$1 table line chain
  command -v "$cmd" >/dev/null || return 0
  for table in filter nat mangle raw; do
    "$cmd" -t "$table" -S >/dev/null 2>&1 || continue
    # `-S` prints rules with double-quoted comments, so each line is a valid argument list.
    while IFS= read -r line; do
      eval "\"$cmd\" -t $table -D ${line#-A }" 2>/dev/null || true
    done < <("$cmd" -t "$table" -S 2>/dev/null | grep -E '^-A ' | grep -E -- '-j (KUBE|CNI)-|^-A (KUBE|CNI)-' || true)
    while IFS= read -r chain; do
      "$cmd" -t "$table" -F "$chain" 2>/dev/null || true
    done < <("$cmd" -t "$table" -S 2>/dev/null | awk '/^-N (KUBE|CNI)-/ { print $2 }')
    while IFS= read -r chain; do
      "$cmd" -t "$table" -X "$chain" 2>/dev/null || true
    done < <("$cmd" -t "$table" -S 2>/dev/null | awk '/^-N (KUBE|CNI)-/ { print $2 }')
  done
  if [[ $cmd == iptables ]]; then
    while iptables -t nat -D POSTROUTING "${MASQ_RULE[@]}" 2>/dev/null; do :; done
  fi
}

net_teardown() {
  local ns n
  # Pod network namespaces that outlived their pods (normally removed by the CRI at StopPodSandbox).
  n=0
  for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^cni-/ { print $1 }'); do
    ip netns delete "$ns" 2>/dev/null && n=$((n + 1))
  done
  ((n == 0)) || step "network: deleted $n leftover pod network namespaces"
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link delete "$BRIDGE" && step "network: deleted bridge $BRIDGE"
  fi
  if [[ -x "$BIN/kube-proxy" ]]; then
    "$BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
  fi
  netfilter_cleanup iptables
  netfilter_cleanup ip6tables
  step "network: removed kube-proxy, kubelet and CNI iptables rules and the pod masquerade rule"
  rm -rf "/var/lib/cni/networks/$CNI_NETWORK" /var/lib/cni/results
  if [[ -s "$STATE/sysctl.orig" ]]; then
    # shellcheck disable=SC2046 # one key=value word per line
    sysctl -q -w $(cat "$STATE/sysctl.orig") 2>/dev/null || true
    rm -f "$STATE/sysctl.orig"
    step "network: restored the sysctls saved at the first up (${SYSCTLS[*]})"
  fi
}
