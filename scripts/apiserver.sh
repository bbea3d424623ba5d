#!/usr/bin/env bash
# Start / stop a throw-away etcd + kube-apiserver on 127.0.0.1 for tests.
#
# Usage: scripts/apiserver.sh start DIR    # certs, data, logs, kubeconfig all under DIR
#        scripts/apiserver.sh stop DIR     # stop both processes, wait for them to exit
#        scripts/apiserver.sh status DIR   # exit 0 if the apiserver in DIR is ready
#        scripts/apiserver.sh stop-apiserver DIR   # an outage: stop kube-apiserver only, etcd stays
#        scripts/apiserver.sh start-apiserver DIR  # end it: start it again on the same port
#
# After `start`:
#   DIR/kubeconfig      admin kubeconfig (client cert in group system:masters)
#   DIR/env             KEY=VALUE lines: APISERVER_URL, APISERVER_PORT, ETCD_PORT, ETCD_PEER_PORT, ...
#   DIR/pki/            ca.crt/ca.key, apiserver.crt, admin.crt, sa.key/sa.pub, ...
#   DIR/etcd.log, DIR/kube-apiserver.log, DIR/*.pid
# Binaries come from <repo>/.cache/k8s/bin (run scripts/build_k8s.sh first), or K8S_BIN_DIR.
# Env: APISERVER_START_TIMEOUT (seconds to wait for /readyz, default 120).
#      APISERVER_EXTRA_ARGS (extra kube-apiserver flags, space separated).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR
source "$REPO/scripts/_proc.sh"
BIN="${K8S_BIN_DIR:-$REPO/.cache/k8s/bin}"
START_TIMEOUT="${APISERVER_START_TIMEOUT:-120}"
SERVICE_CIDR=10.96.0.0/16
SERVICE_IP=10.96.0.1

log() { printf '[apiserver %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() { sed -n '2,17p' "${BASH_SOURCE[0]}" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
CMD=$1
mkdir -p "$2"
DIR=$(cd "$2" && pwd)
PKI="$DIR/pki"
KUBECTL="$BIN/kubectl"

# ---- process helpers --------------------------------------------------------
# ours NAME: prints the pid from DIR/NAME.pid if that process is alive and was started for DIR
ours() { pid_of "$DIR/$1.pid" "$DIR"; }
stop_one() {
  local name=$1 pid i
  if pid=$(ours "$name"); then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do alive "$pid" || break; sleep 0.2; done
    if alive "$pid"; then
      log "$name did not exit after 30s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.2; done
      alive "$pid" && die "$name (pid $pid) is still running"
    fi
  fi
  rm -f "$DIR/$name.pid"
}

# ---- ports ------------------------------------------------------------------
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# pick_port: a random free port in 20000-32767 (below Linux's ephemeral range) not in PICKED.
# Concurrent starts may still race for a port: a bind failure makes do_start retry with new ports.
PICKED=" "
pick_port() {
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 12768))
    [[ "$PICKED" == *" $p "* ]] && continue
    port_in_use "$p" && continue
    echo "$p"; return 0
  done
  die "no free port found"
}

# ---- certificates -----------------------------------------------------------
gen_certs() {
  mkdir -p "$PKI"
  if [[ -s "$PKI/ca.crt" && -s "$PKI/apiserver.crt" && -s "$PKI/admin.crt" && -s "$PKI/sa.pub" \
        && -s "$PKI/apiserver-kubelet-client.crt" ]]; then
    log "certificates: reusing $PKI"; return 0
  fi
  log "certificates: generating CA, apiserver, admin, kubelet-client certs and service-account keys in $PKI"
  local o=(-nodes -sha256) ext
  (
    cd "$PKI"
    umask 077
    openssl req -x509 -newkey rsa:2048 "${o[@]}" -days 3650 -keyout ca.key -out ca.crt \
      -subj "/CN=kivebpf-test-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
      2>/dev/null
    # name subject extfile
    sign() {
      openssl req -newkey rsa:2048 "${o[@]}" -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -sha256 \
        -extfile "$3" -out "$1.crt" 2>/dev/null
      rm -f "$1.csr" "$3"
    }
    ext=$(mktemp -p .)
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" \
      "subjectAltName=IP:127.0.0.1,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" \
      > "$ext"
    sign apiserver "/CN=kube-apiserver" "$ext"
    for c in admin:/O=system:masters/CN=kivebpf-admin \
             apiserver-kubelet-client:/O=system:masters/CN=kube-apiserver-kubelet-client; do
      ext=$(mktemp -p .)
      printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=clientAuth" > "$ext"
      sign "${c%%:*}" "${c#*:}" "$ext"
    done
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
    openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f ca.srl
  )
}

write_kubeconfig() {
  local url=$1 b64="base64 -w0"
  umask 077
  cat > "$DIR/kubeconfig.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kivebpf-test
  cluster:
    server: $url
    certificate-authority-data: $($b64 < "$PKI/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $($b64 < "$PKI/admin.crt")
    client-key-data: $($b64 < "$PKI/admin.key")
contexts:
- name: kivebpf-test
  context:
    cluster: kivebpf-test
    user: admin
current-context: kivebpf-test
EOF
  mv "$DIR/kubeconfig.tmp" "$DIR/kubeconfig"
}

ready() { "$KUBECTL" --kubeconfig "$DIR/kubeconfig" --request-timeout=5s get --raw /readyz >/dev/null 2>&1; }

fail_with_log() {
  local name=$1 msg=$2
  log "ERROR: $msg; last lines of $DIR/$name.log:"
  tail -n 40 "$DIR/$name.log" >&2 || true
  stop_one kube-apiserver; stop_one etcd
  exit 1
}

# ---- start ------------------------------------------------------------------
start_etcd() { # -> 0 started, 3 port clash, exits on other failure
  log "etcd: starting on 127.0.0.1:$ETCD_PORT (peer $ETCD_PEER_PORT), data $DIR/etcd-data"
  "$BIN/etcd" --name=default --data-dir="$DIR/etcd-data" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="default=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --log-level=warn \
    </dev/null >"$DIR/etcd.log" 2>&1 &
  echo $! > "$DIR/etcd.pid"
  local pid=$! i
  for ((i = 0; i < 150; i++)); do
    if ! alive "$pid"; then
      grep -q 'address already in use' "$DIR/etcd.log" && return 3
      fail_with_log etcd "etcd exited during start"
    fi
    port_in_use "$ETCD_PORT" && { log "etcd: listening (pid $pid)"; return 0; }
    sleep 0.2
  done
  fail_with_log etcd "etcd did not listen on 127.0.0.1:$ETCD_PORT within 30s"
}

start_apiserver() { # -> 0 started (not yet ready), 3 port clash
  log "kube-apiserver: starting on https://127.0.0.1:$APISERVER_PORT"
  local extra=()
  # shellcheck disable=SC2206
  [[ -n "${APISERVER_EXTRA_ARGS:-}" ]] && extra=($APISERVER_EXTRA_ARGS)
  "$BIN/kube-apiserver" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$APISERVER_PORT" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --cert-dir="$PKI" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --authorization-mode=Node,RBAC \
    --allow-privileged=true \
    --profiling=false \
    "${extra[@]+"${extra[@]}"}" \
    </dev/null >"$DIR/kube-apiserver.log" 2>&1 &
  echo $! > "$DIR/kube-apiserver.pid"
  local pid=$! i
  for ((i = 0; i < 25; i++)); do
    if ! alive "$pid"; then
      grep -q 'address already in use' "$DIR/kube-apiserver.log" && return 3
      fail_with_log kube-apiserver "kube-apiserver exited during start"
    fi
    port_in_use "$APISERVER_PORT" && return 0
    sleep 0.2
  done
  return 0
}

write_env() {
  cat > "$DIR/env.tmp" <<EOF
APISERVER_URL=https://127.0.0.1:$APISERVER_PORT
APISERVER_PORT=$APISERVER_PORT
ETCD_PORT=$ETCD_PORT
ETCD_PEER_PORT=$ETCD_PEER_PORT
ETCD_URL=http://127.0.0.1:$ETCD_PORT
KUBECONFIG=$DIR/kubeconfig
CA_CERT=$PKI/ca.crt
SERVICE_CLUSTER_IP_RANGE=$SERVICE_CIDR
EOF
  mv "$DIR/env.tmp" "$DIR/env"
}

wait_ready() {
  log "kube-apiserver: waiting up to ${START_TIMEOUT}s for /readyz"
  local deadline=$((SECONDS + START_TIMEOUT)) pid
  pid=$(cat "$DIR/kube-apiserver.pid")
  until ready; do
    alive "$pid" || fail_with_log kube-apiserver "kube-apiserver exited before becoming ready"
    ours etcd >/dev/null || fail_with_log etcd "etcd exited"
    ((SECONDS < deadline)) || {
      "$KUBECTL" --kubeconfig "$DIR/kubeconfig" --request-timeout=5s get --raw '/readyz?verbose' 2>&1 | grep -v '\[+\]' >&2 || true
      fail_with_log kube-apiserver "kube-apiserver not ready after ${START_TIMEOUT}s"
    }
    sleep 0.5
  done
}

# Restarts kube-apiserver alone, on the ports of DIR/env, with the etcd that kept running.
do_start_apiserver() {
  [[ -f "$DIR/env" ]] || die "$DIR/env missing: run start first"
  ours etcd >/dev/null || die "etcd of $DIR is not running: run start"
  ours kube-apiserver >/dev/null && { log "kube-apiserver already running"; return 0; }
  APISERVER_PORT=$(sed -n 's/^APISERVER_PORT=//p' "$DIR/env")
  ETCD_PORT=$(sed -n 's/^ETCD_PORT=//p' "$DIR/env")
  local rc=0
  start_apiserver || rc=$?
  [[ $rc == 0 ]] || die "kube-apiserver: port $APISERVER_PORT is taken"
  wait_ready
  log "kube-apiserver back on https://127.0.0.1:$APISERVER_PORT"
}

do_start() {
  local t0 b
  t0=$(date +%s.%N)
  for b in etcd kube-apiserver kubectl; do
    [[ -x "$BIN/$b" ]] || die "$BIN/$b missing: run scripts/build_k8s.sh"
  done
  command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"
  if ours kube-apiserver >/dev/null && ours etcd >/dev/null && [[ -f "$DIR/kubeconfig" ]] && ready; then
    log "already running and ready in $DIR ($(grep APISERVER_URL "$DIR/env"))"; return 0
  fi
  # leftovers from an earlier start in this DIR
  stop_one kube-apiserver; stop_one etcd
  gen_certs
  local try rc
  for try in 1 2 3 4 5; do
    PICKED=" "
    ETCD_PORT=$(pick_port); PICKED+="$ETCD_PORT "
    ETCD_PEER_PORT=$(pick_port); PICKED+="$ETCD_PEER_PORT "
    APISERVER_PORT=$(pick_port)
    rc=0; start_etcd || rc=$?
    if [[ $rc == 3 ]]; then log "etcd: port clash, retrying with other ports"; stop_one etcd; continue; fi
    rc=0; start_apiserver || rc=$?
    if [[ $rc == 3 ]]; then
      log "kube-apiserver: port clash, retrying with other ports"; stop_one kube-apiserver; stop_one etcd; continue
    fi
    break
  done
  [[ $rc == 0 ]] || die "could not find free ports after $try tries"
  write_env
  write_kubeconfig "https://127.0.0.1:$APISERVER_PORT"
  wait_ready
  log "ready in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s: https://127.0.0.1:$APISERVER_PORT (kubeconfig $DIR/kubeconfig)"
}

case "$CMD" in
  start) do_start ;;
  stop)
    stop_one kube-apiserver; stop_one etcd
    log "stopped ($DIR)" ;;
  stop-apiserver)
    stop_one kube-apiserver
    log "kube-apiserver stopped ($DIR); etcd keeps running" ;;
  start-apiserver) do_start_apiserver ;;
  status)
    if ours kube-apiserver >/dev/null && [[ -f "$DIR/kubeconfig" ]] && ready; then
      log "ready ($(grep APISERVER_URL "$DIR/env"))"
    else
      log "not running/ready in $DIR"; exit 1
    fi ;;
  *) usage ;;
esac
