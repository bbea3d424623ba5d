# Certificates and kubeconfigs of the local cluster, made with openssl (sourced by cluster.sh).
# shellcheck shell=bash

# pki_meta: what the certificates depend on; a change regenerates them all.
pki_meta() { echo "v1 node=$NODE_NAME ip=$NODE_IP service-ip=$SERVICE_IP"; }

# pki_sign NAME SUBJECT EXT_LINE...: a key and a certificate signed by the cluster CA (10 years).
pki_sign() {
  local name=$1 subj=$2 ext
  shift 2
  ext=$(mktemp -p "$PKI")
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "$@" > "$ext"
  openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$PKI/$name.key" -out "$PKI/$name.csr" \
    -subj "$subj" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$ext"
}

pki_generate() {
  if [[ -s "$PKI/meta" && "$(cat "$PKI/meta")" == "$(pki_meta)" && -s "$PKI/kubelet-server.crt" ]]; then
    step "certificates: reusing $PKI"; return 0
  fi
  step "certificates: generating the CA, serving and client certificates in $PKI (node IP $NODE_IP)"
  rm -rf "$PKI"
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  (
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -keyout "$PKI/ca.key" -out "$PKI/ca.crt" \
      -subj "/CN=kivebpf-cluster-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
      2>/dev/null
    pki_sign apiserver "/CN=kube-apiserver" "extendedKeyUsage=serverAuth" \
      "subjectAltName=IP:127.0.0.1,IP:$NODE_IP,IP:$SERVICE_IP,DNS:localhost,DNS:$NODE_NAME,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    pki_sign kubelet-server "/CN=$NODE_NAME" "extendedKeyUsage=serverAuth" \
      "subjectAltName=IP:127.0.0.1,IP:$NODE_IP,DNS:localhost,DNS:$NODE_NAME"
    local c
    for c in "apiserver-kubelet-client:/O=system:masters/CN=kube-apiserver-kubelet-client" \
             "admin:/O=system:masters/CN=kivebpf-admin" \
             "kube-controller-manager:/CN=system:kube-controller-manager" \
             "kube-scheduler:/CN=system:kube-scheduler" \
             "kube-proxy:/CN=system:kube-proxy" \
             "kubelet:/O=system:nodes/CN=system:node:$NODE_NAME"; do
      pki_sign "${c%%:*}" "${c#*:}" "extendedKeyUsage=clientAuth"
    done
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key" 2>/dev/null
    openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
    rm -f "$PKI/ca.srl"
  )
  pki_meta > "$PKI/meta"
}

# kubeconfig_write FILE SERVER CERT_NAME: a kubeconfig using PKI/CERT_NAME.{crt,key}.
kubeconfig_write() {
  local file=$1 server=$2 cert=$3 b64="base64 -w0"
  (
    umask 077
    cat > "$file.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kivebpf
  cluster:
    server: $server
    certificate-authority-data: $($b64 < "$PKI/ca.crt")
users:
- name: $cert
  user:
    client-certificate-data: $($b64 < "$PKI/$cert.crt")
    client-key-data: $($b64 < "$PKI/$cert.key")
contexts:
- name: kivebpf
  context:
    cluster: kivebpf
    user: $cert
current-context: kivebpf
EOF
    mv "$file.tmp" "$file"
  )
}

kubeconfigs_write() {
  local local_url="https://127.0.0.1:$APISERVER_PORT" node_url="https://$NODE_IP:$APISERVER_PORT"
  mkdir -p "$STATE/kubeconfigs"
  kubeconfig_write "$KUBECONFIG_ADMIN" "$local_url" admin
  kubeconfig_write "$STATE/kubeconfigs/kube-controller-manager" "$local_url" kube-controller-manager
  kubeconfig_write "$STATE/kubeconfigs/kube-scheduler" "$local_url" kube-scheduler
  kubeconfig_write "$STATE/kubeconfigs/kubelet" "$node_url" kubelet
  kubeconfig_write "$STATE/kubeconfigs/kube-proxy" "$node_url" kube-proxy
}
