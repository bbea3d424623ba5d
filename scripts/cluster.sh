#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, from the binaries scripts/build_k8s.sh built
# (.cache/k8s/bin), Debian's containerd/runc/CNI plugins and the images of scripts/images.sh.
#
# Usage: scripts/cluster.sh up              start (or finish starting) everything; idempotent
#        scripts/cluster.sh down [--purge]  stop and remove everything `up` started: processes,
#                                           containers, mounts, the bridge, iptables rules, sysctls,
#                                           cluster state (etcd); --purge also drops containerd's
#                                           image store and .cache/cluster (certificates)
#        scripts/cluster.sh status          each component, the node and the pods; exit 0 if Ready
#        scripts/cluster.sh kubeconfig      print the admin kubeconfig's path
#        scripts/cluster.sh kubectl ARGS    run the built kubectl against the cluster
#
# Node `kive-node` (node IP = the host's primary IPv4 address), pod CIDR 10.244.0.0/24 on bridge
# kive0, service CIDR 10.96.0.0/16, cluster DNS 10.96.0.10 (CoreDNS), API server on :6443.
# State, configs, certificates and logs: .cache/cluster/. Runtime data at the usual places:
# /var/lib/containerd, /run/containerd (socket containerd.sock), /var/lib/kubelet, /var/log/pods.
# Env: KIVEBPF_NODE_IP (override the node IP), CLUSTER_TIMEOUT (seconds per wait, default 180).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="${K8S_BIN_DIR:-$REPO/.cache/k8s/bin}"
STATE="$REPO/.cache/cluster"
PKI="$STATE/pki"
LOGS="$STATE/logs"
RUN="$STATE/run"
KUBECONFIG_ADMIN="$STATE/kubeconfig"
KUBECTL="$BIN/kubectl"
TIMEOUT=${CLUSTER_TIMEOUT:-180}

NODE_NAME=kive-node
POD_CIDR=10.244.0.0/24
POD_GATEWAY=10.244.0.1
CLUSTER_CIDR=10.244.0.0/16
SERVICE_CIDR=10.96.0.0/16
SERVICE_IP=10.96.0.1
DNS_IP=10.96.0.10
BRIDGE=kive0
CNI_NETWORK=kivebpf
APISERVER_PORT=6443
ETCD_PORT=2379
ETCD_PEER_PORT=2380
CONTAINERD_SOCK=/run/containerd/containerd.sock
CONTAINERD_ROOT=/var/lib/containerd
CONTAINERD_STATE=/run/containerd
KUBELET_DIR=/var/lib/kubelet
COMPONENTS=(containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

T0=$SECONDS
step() { printf '[cluster %s +%ss] %s\n' "$(date +%H:%M:%S)" "$((SECONDS - T0))" "$*" >&2; }
die() { step "ERROR: $*"; exit 1; }

# shellcheck source-path=SCRIPTDIR
source "$REPO/scripts/cluster/packages.sh"
# shellcheck source-path=SCRIPTDIR
source "$REPO/scripts/cluster/pki.sh"
# shellcheck source-path=SCRIPTDIR
source "$REPO/scripts/cluster/net.sh"
# shellcheck source-path=SCRIPTDIR
source "$REPO/scripts/_proc.sh"

kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

# ours NAME: the pid of component NAME if it runs and was started by this script for this STATE.
ours() { pid_of "$RUN/$1.pid" "$STATE"; }

# start_proc NAME FILES -- CMD...: start CMD detached (own session, stdio to LOGS/NAME.log) unless
# it already runs with the same command line and the same content of FILES (its configs); a
# changed command or config restarts it.
start_proc() {
  local name=$1 files=() spec pid
  shift
  while [[ $1 != -- ]]; do files+=("$1"); shift; done
  shift
  spec="$* $(cat "${files[@]}" /dev/null | sha256sum | cut -d' ' -f1)"
  if pid=$(ours "$name"); then
    if [[ "$(cat "$RUN/$name.spec" 2>/dev/null)" == "$spec" ]]; then
      step "$name: already running (pid $pid)"; return 0
    fi
    step "$name: command line or configuration changed, restarting"
    stop_proc "$name"
  fi
  [[ -f "$LOGS/$name.log" ]] && mv -f "$LOGS/$name.log" "$LOGS/$name.log.1"
  # setsid: the component outlives this script and the terminal it was started from.
  # 9>&-: the lock of `up`/`down` must not be inherited.
  setsid "$@" </dev/null >"$LOGS/$name.log" 2>&1 9>&- &
  pid=$!
  echo "$pid" > "$RUN/$name.pid"
  echo "$spec" > "$RUN/$name.spec"
  step "$name: started (pid $pid, log ${LOGS#"$REPO"/}/$name.log)"
}

# stop_proc NAME [GRACE]: SIGTERM, then SIGKILL after GRACE seconds (default 30).
stop_proc() {
  local name=$1 grace=${2:-30} pid i
  if pid=$(ours "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 5; i++)); do alive "$pid" || break; sleep 0.2; done
    if alive "$pid"; then
      step "$name: did not exit $grace s after SIGTERM, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.2; done
    fi
    step "$name: stopped (pid $pid)"
  fi
  rm -f "$RUN/$name.pid" "$RUN/$name.spec"
}

fail_with_log() {
  step "ERROR: $2; last lines of ${LOGS#"$REPO"/}/$1.log:"
  tail -n 30 "$LOGS/$1.log" >&2 2>/dev/null || true
  die "$2 (scripts/cluster.sh down removes what was started)"
}

# wait_for WHAT COMPONENT CHECK...: poll CHECK until it succeeds; fail if COMPONENT dies or after TIMEOUT.
wait_for() {
  local what=$1 comp=$2 deadline=$((SECONDS + TIMEOUT))
  shift 2
  until "$@" >/dev/null 2>&1; do
    # Only liveness here: right after the fork the child's cmdline is still the shell's, so the
    # full `ours` check would report a component that is starting as one that exited.
    alive "$(cat "$RUN/$comp.pid" 2>/dev/null)" || fail_with_log "$comp" "$comp exited while waiting for $what"
    ((SECONDS < deadline)) || fail_with_log "$comp" "timed out after ${TIMEOUT}s waiting for $what"
    sleep 0.5
  done
}

# write_if_changed FILE: stdin becomes FILE unless FILE already has that content (kube-proxy exits
# when its config file is written to, containerd reloads CNI on writes to its conf dir).
write_if_changed() {
  local f=$1
  cat > "$f.new"
  if cmp -s "$f.new" "$f"; then rm -f "$f.new"; else mv -f "$f.new" "$f"; fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---- components ---------------------------------------------------------------------------------
preflight() {
  [[ $EUID -eq 0 ]] || die "must run as root"
  local b
  for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl coredns; do
    [[ -x "$BIN/$b" ]] || die "$BIN/$b missing: run scripts/build_k8s.sh all"
  done
  ensure_packages "${CLUSTER_PACKAGES[@]}"
  command -v go >/dev/null || die "go not found (the callback-receiver image is a Go program)"
  NODE_IP=${KIVEBPF_NODE_IP:-$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')}
  [[ -n "$NODE_IP" ]] || NODE_IP=$(ip -4 -o addr show scope global | awk '{ sub("/.*", "", $4); print $4; exit }')
  [[ -n "$NODE_IP" ]] || die "no IPv4 address for the node: set KIVEBPF_NODE_IP"
  mkdir -p "$STATE" "$LOGS" "$RUN" "$STATE/config"
  # A node has bpffs at /sys/fs/bpf (systemd mounts it); the agents pin their traps there.
  if ! grep -q ' /sys/fs/bpf bpf ' /proc/self/mounts; then
    mount -t bpf bpf /sys/fs/bpf || die "cannot mount bpffs at /sys/fs/bpf"
    step "bpffs: mounted at /sys/fs/bpf"
  fi
}

# containerd_answers: true if a containerd serves CONTAINERD_SOCK (ctr alone waits 10 s for a socket).
containerd_answers() {
  [[ -S $CONTAINERD_SOCK ]] && ctr --address "$CONTAINERD_SOCK" --timeout 5s version >/dev/null 2>&1
}

start_containerd() {
  local cfg="$STATE/config/containerd.toml"
  write_if_changed "$cfg" <<EOF
# Written by scripts/cluster.sh: containerd for the local cluster's kubelet (CRI).
version = 2
root = "$CONTAINERD_ROOT"
state = "$CONTAINERD_STATE"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  # Our static pause image (scripts/images.sh); no registry is reachable.
  sandbox_image = "docker.io/kivebpf/pause:dev"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # cgroupfs: these hosts run no systemd (and have a hybrid cgroup v1 layout).
        SystemdCgroup = false
        # runc via scripts/cluster/runc-wrapper.sh: these VMs lack CAP_SYS_RESOURCE (see there).
        BinaryName = "$REPO/scripts/cluster/runc-wrapper.sh"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
EOF
  if ! ours containerd >/dev/null && containerd_answers; then
    die "another containerd already serves $CONTAINERD_SOCK (stop it first, e.g. systemctl stop containerd)"
  fi
  start_proc containerd "$cfg" -- containerd --config "$cfg"
  wait_for "containerd's socket" containerd containerd_answers
}

start_etcd() {
  mkdir -p "$STATE/etcd"
  chmod 700 "$STATE/etcd"
  start_proc etcd -- "$BIN/etcd" --name=kive --data-dir="$STATE/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="kive=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls="" \
    --unsafe-no-fsync --log-level=warn
  wait_for "etcd on 127.0.0.1:$ETCD_PORT" etcd port_open "$ETCD_PORT"
}

start_apiserver() {
  start_proc kube-apiserver "$PKI/meta" -- "$BIN/kube-apiserver" \
    --bind-address=0.0.0.0 --advertise-address="$NODE_IP" --secure-port="$APISERVER_PORT" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --cert-dir="$PKI" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$PKI/ca.crt" \
    --kubelet-preferred-address-types=InternalIP,Hostname \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NodeRestriction \
    --allow-privileged=true \
    --profiling=false
  wait_for "the API server's /readyz" kube-apiserver kc --request-timeout=5s get --raw /readyz
  step "kube-apiserver: ready on https://$NODE_IP:$APISERVER_PORT"
}

start_controllers() {
  local kcfg="$STATE/kubeconfigs"
  start_proc kube-controller-manager "$PKI/meta" -- "$BIN/kube-controller-manager" \
    --kubeconfig="$kcfg/kube-controller-manager" \
    --authentication-kubeconfig="$kcfg/kube-controller-manager" \
    --authorization-kubeconfig="$kcfg/kube-controller-manager" \
    --bind-address=127.0.0.1 --leader-elect=false --cluster-name=kivebpf \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --root-ca-file="$PKI/ca.crt" --service-account-private-key-file="$PKI/sa.key" \
    --use-service-account-credentials=true \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --allocate-node-cidrs=true --cluster-cidr="$CLUSTER_CIDR" --node-cidr-mask-size=24 \
    --profiling=false
  start_proc kube-scheduler "$PKI/meta" -- "$BIN/kube-scheduler" \
    --kubeconfig="$kcfg/kube-scheduler" \
    --authentication-kubeconfig="$kcfg/kube-scheduler" \
    --authorization-kubeconfig="$kcfg/kube-scheduler" \
    --bind-address=127.0.0.1 --leader-elect=false --profiling=false
}

start_kubelet() {
  local cfg="$STATE/config/kubelet.yaml"
  mkdir -p "$STATE/manifests" "$KUBELET_DIR"
  write_if_changed "$cfg" <<EOF
# Written by scripts/cluster.sh.
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 (hybrid layout) without systemd: v1.34 still accepts v1 when told to.
cgroupDriver: cgroupfs
failCgroupV1: false
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
staticPodPath: $STATE/manifests
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: $PKI/ca.crt }
authorization:
  mode: Webhook
tlsCertFile: $PKI/kubelet-server.crt
tlsPrivateKeyFile: $PKI/kubelet-server.key
readOnlyPort: 0
clusterDomain: cluster.local
clusterDNS: [$DNS_IP]
resolvConf: /etc/resolv.conf
failSwapOn: false
serializeImagePulls: false
# Our images cannot be pulled again once garbage-collected: keep image GC and disk eviction
# out of the way on a development machine with a fuller disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
EOF
  start_proc kubelet "$cfg" "$PKI/meta" -- "$BIN/kubelet" --config="$cfg" \
    --kubeconfig="$STATE/kubeconfigs/kubelet" \
    --hostname-override="$NODE_NAME" --node-ip="$NODE_IP"
}

start_kube_proxy() {
  local cfg="$STATE/config/kube-proxy.yaml"
  write_if_changed "$cfg" <<EOF
# Written by scripts/cluster.sh.
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: $STATE/kubeconfigs/kube-proxy
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
iptables:
  # Do not set net.ipv4.conf.all.route_localnet on the host.
  localhostNodePorts: false
nodePortAddresses: [primary]
conntrack:
  # Leave the host's conntrack sysctls alone.
  maxPerCore: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
  start_proc kube-proxy "$cfg" "$PKI/meta" -- "$BIN/kube-proxy" --config="$cfg"
}

node_ready() {
  [[ "$(kc get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

cmd_up() {
  preflight
  step "up: node $NODE_NAME, node IP $NODE_IP, state in ${STATE#"$REPO"/}"
  net_setup
  step "network: ip_forward and bridge-nf-call-iptables on, CNI bridge $BRIDGE with $POD_CIDR, pod egress masquerade"
  pki_generate
  kubeconfigs_write
  start_containerd
  step "images: building (if their inputs changed) and importing into containerd"
  CONTAINERD_ADDRESS="$CONTAINERD_SOCK" bash "$REPO/scripts/images.sh" import
  start_etcd
  start_apiserver
  start_controllers
  start_kubelet
  start_kube_proxy
  step "kubelet: waiting for node $NODE_NAME to register and become Ready"
  wait_for "node $NODE_NAME to be Ready" kubelet node_ready
  step "kubelet: node $NODE_NAME is Ready"
  wait_for "the default ServiceAccount (kube-controller-manager)" kube-controller-manager \
    kc -n default get serviceaccount default
  step "dns: applying CoreDNS (kube-system/coredns, Service kube-dns $DNS_IP)"
  kc apply -f "$REPO/scripts/cluster/coredns.yaml" >/dev/null
  wait_for "CoreDNS to be ready" kubelet \
    kc -n kube-system wait --for=condition=Ready pod -l k8s-app=kube-dns --timeout=5s
  step "dns: CoreDNS is ready"
  step "up: cluster ready in $((SECONDS - T0))s"
  echo "kubeconfig: $KUBECONFIG_ADMIN"
  echo "cluster: node $NODE_NAME Ready, API https://$NODE_IP:$APISERVER_PORT, v$("$BIN/kubelet" --version | awk '{print $2}' | tr -d v), containerd $(containerd --version | awk '{print $3}'), DNS $DNS_IP; export KUBECONFIG=$KUBECONFIG_ADMIN"
}

# ---- down ---------------------------------------------------------------------------------------
ctr_() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io --timeout 30s "$@"; }

remove_containers() {
  local ids id n=0 i
  ids=$(ctr_ tasks ls -q 2>/dev/null || true)
  for id in $ids; do ctr_ tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1 || true; done
  # Wait (at most 10 s) until no task is RUNNING any more, then delete tasks and containers.
  for ((i = 0; i < 100; i++)); do
    ctr_ tasks ls 2>/dev/null | awk 'NR > 1 && $3 != "STOPPED" { found = 1 } END { exit !found }' || break
    sleep 0.1
  done
  for id in $ids; do ctr_ tasks rm -f "$id" >/dev/null 2>&1 || true; done
  for id in $(ctr_ containers ls -q 2>/dev/null || true); do
    ctr_ containers rm "$id" >/dev/null 2>&1 && n=$((n + 1))
  done
  step "containers: removed $n containers and pod sandboxes"
}

# Processes still in the kubelet's cgroups (a container whose shim died), then the cgroups.
remove_pod_cgroups() {
  local d pids n=0
  for d in /sys/fs/cgroup/*/kubepods; do
    [[ -d $d ]] || continue
    pids=$(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)
    if [[ -n "$pids" ]]; then
      # shellcheck disable=SC2086
      kill -KILL $pids 2>/dev/null || true
      n=$((n + $(wc -w <<< "$pids")))
    fi
  done
  ((n == 0)) || { step "containers: killed $n leftover processes in kubepods cgroups"; sleep 0.5; }
  for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/*/kubepods.slice; do
    if [[ -d $d ]]; then find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
  done
}

kill_shims() {
  local pid
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" || true); do
    kill -KILL "$pid" 2>/dev/null || true
  done
}

unmount_under() {
  local prefix m n=0
  for prefix in "$@"; do
    while IFS= read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
      n=$((n + 1))
    done < <(findmnt -rn -o TARGET | grep -E "^$prefix(/|\$)" | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-)
  done
  ((n == 0)) || step "mounts: unmounted $n mounts under $*"
}

cmd_down() {
  local purge=${1:-}
  [[ $EUID -eq 0 ]] || die "must run as root"
  mkdir -p "$RUN" "$LOGS"
  step "down: stopping the cluster"
  stop_proc kube-proxy
  stop_proc kubelet
  stop_proc kube-scheduler
  stop_proc kube-controller-manager
  # The API server can take 30 s and more to finish its shutdown; its state is in etcd anyway.
  stop_proc kube-apiserver 5
  stop_proc etcd
  if ours containerd >/dev/null; then remove_containers; fi
  remove_pod_cgroups
  stop_proc containerd
  kill_shims
  net_teardown
  # The uninstall step of docs/USAGE.md: pins left by agents that were killed with traps armed.
  rm -rf /sys/fs/bpf/kivebpf
  unmount_under "$CONTAINERD_STATE" "$KUBELET_DIR" /run/netns/cni- /var/run/netns/cni-
  rm -rf "$KUBELET_DIR" /var/log/pods /var/log/containers "$CONTAINERD_STATE" "$STATE/etcd" "$RUN" \
    "$CONTAINERD_ROOT/io.containerd.grpc.v1.cri/sandboxes" "$CONTAINERD_ROOT/io.containerd.grpc.v1.cri/containers"
  step "state: removed etcd data, $KUBELET_DIR, /var/log/pods, $CONTAINERD_STATE"
  if [[ $purge == --purge ]]; then
    unmount_under "$CONTAINERD_ROOT"
    rm -rf "$CONTAINERD_ROOT" "$STATE"
    step "purge: removed $CONTAINERD_ROOT (imported images) and ${STATE#"$REPO"/}"
  fi
  step "down: done in $((SECONDS - T0))s"
}

# ---- status -------------------------------------------------------------------------------------
cmd_status() {
  local c pid ok=0
  for c in "${COMPONENTS[@]}"; do
    if pid=$(ours "$c"); then printf '%-24s running (pid %s)\n' "$c" "$pid"
    else printf '%-24s not running\n' "$c"; ok=1; fi
  done
  if [[ -f "$KUBECONFIG_ADMIN" ]] && kc --request-timeout=5s get --raw /readyz >/dev/null 2>&1; then
    kc get nodes -o wide
    kc get pods -A -o wide
    node_ready || ok=1
  else
    echo "API server: not reachable"; ok=1
  fi
  echo "kubeconfig: $KUBECONFIG_ADMIN"
  return $ok
}

usage() { sed -n '2,20p' "${BASH_SOURCE[0]}" >&2; exit 2; }

# One `up` or `down` at a time (a test run and a developer may both call it).
lock() {
  mkdir -p "$STATE"
  exec 9>"$STATE/.lock"
  flock -n 9 || { step "waiting for another scripts/cluster.sh up/down to finish"; flock 9; }
}

case "${1:-}" in
  up) lock; cmd_up ;;
  down) lock; cmd_down "${2:-}" ;;
  status) cmd_status ;;
  kubeconfig) echo "$KUBECONFIG_ADMIN" ;;
  kubectl) shift; kc "$@" ;;
  *) usage ;;
esac
