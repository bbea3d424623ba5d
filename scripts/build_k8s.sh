#!/usr/bin/env bash
# Build pinned Kubernetes / etcd / CoreDNS binaries from the Go module proxy into
# <repo>/.cache/k8s/bin/. Idempotent: a binary whose stamp matches the pins is skipped.
#
# Usage: scripts/build_k8s.sh [component...]
#   components: kube-apiserver kubectl etcd (default)
#               kube-controller-manager kube-scheduler kubelet kube-proxy coredns
#               all  (= every component above)
# Env: GO (go binary; default: go on PATH, else /usr/local/go/bin/go)
#      K8S_BUILD_NICE=0 to build without `nice`.
set -euo pipefail

# ---- pins -----------------------------------------------------------------
K8S_VERSION=v1.34.12        # k8s.io/kubernetes; staging modules at v0.34.12
ETCD_VERSION=v3.6.16        # go.etcd.io/etcd/server/v3 (its main package is the etcd binary)
COREDNS_VERSION=v1.13.2     # github.com/coredns/coredns (built with a reduced plugin set)
BUILD_REV=1                 # bump to force a rebuild when this script's build logic changes

KUBE_COMPONENTS=(kube-apiserver kubectl kube-controller-manager kube-scheduler kubelet kube-proxy)
ALL_COMPONENTS=("${KUBE_COMPONENTS[@]}" etcd coredns)
DEFAULT_COMPONENTS=(kube-apiserver kubectl etcd)

log() { printf '[build_k8s %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE="$REPO/.cache/k8s"
BIN="$CACHE/bin"
SRC="$CACHE/src"

GO_TOOLCHAIN_VERSION=1.26.8   # fetched from the Go module proxy when no Go >= 1.24 is installed

# go_ok GO: true when GO runs and is at least Go 1.24 (what Kubernetes 1.34 needs).
go_ok() {
  local v
  v=$("$1" env GOVERSION 2>/dev/null) || return 1
  v=${v#go}
  [[ ${v%%.*} -gt 1 || ( ${v%%.*} -eq 1 && $(echo "$v" | cut -d. -f2) -ge 24 ) ]]
}

# A Go toolchain is itself a module on the Go module proxy (golang.org/toolchain), which these
# machines reach: a machine without Go gets the pinned one in .cache/go.
fetch_go() {
  local dir="$REPO/.cache/go" mod="v0.0.1-go$GO_TOOLCHAIN_VERSION.linux-amd64"
  local go="$dir/golang.org/toolchain@$mod/bin/go"
  if [[ ! -x $go ]]; then
    local proxy
    proxy=$(printf '%s' "${GOPROXY:-https://proxy.golang.org}" | cut -d, -f1)
    [[ $proxy == direct || $proxy == off ]] && proxy=https://proxy.golang.org
    log "go: none >= 1.24 installed; fetching go$GO_TOOLCHAIN_VERSION from $proxy"
    mkdir -p "$dir"
    curl -fsSL -o "$dir/toolchain.zip" "$proxy/golang.org/toolchain/@v/$mod.zip" || die "cannot fetch the Go toolchain"
    (cd "$dir" && unzip -q -o toolchain.zip && rm toolchain.zip) || die "cannot unpack the Go toolchain (is unzip installed?)"
    chmod +x "$dir/golang.org/toolchain@$mod/bin/"* "$dir/golang.org/toolchain@$mod/pkg/tool/"*/* 2>/dev/null || true
  fi
  echo "$go"
}

if [[ -z "${GO:-}" ]]; then
  if command -v go >/dev/null 2>&1; then GO=$(command -v go); else GO=/usr/local/go/bin/go; fi
  go_ok "$GO" || GO=$(fetch_go)
fi
[[ -x "$GO" ]] && go_ok "$GO" || die "no usable Go >= 1.24 at $GO (set GO=/path/to/go)"

export CGO_ENABLED=0
export GOTOOLCHAIN=local        # never try to download another Go toolchain
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod"
NICE=()
if [[ "${K8S_BUILD_NICE:-1}" != 0 ]] && command -v nice >/dev/null; then NICE=(nice -n 10); fi

# ---- arguments ------------------------------------------------------------
want=()
if [[ $# -eq 0 ]]; then want=("${DEFAULT_COMPONENTS[@]}"); fi
for a in "$@"; do
  case "$a" in
    all) want+=("${ALL_COMPONENTS[@]}") ;;
    -h|--help) sed -n '2,10p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *)
      ok=0; for c in "${ALL_COMPONENTS[@]}"; do [[ "$c" == "$a" ]] && ok=1; done
      [[ $ok == 1 ]] || die "unknown component '$a' (known: ${ALL_COMPONENTS[*]} all)"
      want+=("$a") ;;
  esac
done
# de-duplicate, keep order
declare -A seen=(); uniq=()
for c in "${want[@]}"; do [[ -n "${seen[$c]:-}" ]] || { seen[$c]=1; uniq+=("$c"); }; done
want=("${uniq[@]}")

mkdir -p "$BIN" "$SRC"

pin_of() {
  case "$1" in
    etcd) echo "etcd-server $ETCD_VERSION rev$BUILD_REV $("$GO" env GOVERSION)" ;;
    coredns) echo "coredns $COREDNS_VERSION rev$BUILD_REV $("$GO" env GOVERSION)" ;;
    *) echo "kubernetes $K8S_VERSION rev$BUILD_REV $("$GO" env GOVERSION)" ;;
  esac
}
is_fresh() { [[ -x "$BIN/$1" && -f "$BIN/.$1.stamp" && "$(cat "$BIN/.$1.stamp")" == "$(pin_of "$1")" ]]; }
stamp() { pin_of "$1" > "$BIN/.$1.stamp"; }

# json_field KEY FILE: string value of a top-level "KEY": "..." line of `go ... -json` output
json_field() { sed -n 's/^[[:space:]]*"'"$1"'": "\(.*\)",\{0,1\}$/\1/p' "$2" | head -n1; }

# write_if_changed FILE: content on stdin. FILE.gen keeps what was generated last, so edits the
# go command makes to go.mod (-mod=mod) don't count as changes; a regenerated go.mod drops go.sum.
write_if_changed() {
  local f=$1 tmp; tmp=$(mktemp)
  cat > "$tmp"
  if [[ -f "$f" && -f "$f.gen" ]] && cmp -s "$tmp" "$f.gen"; then rm -f "$tmp"; return 0; fi
  cp "$tmp" "$f.gen" && mv "$tmp" "$f"
  if [[ "$(basename "$f")" == go.mod ]]; then rm -f "$(dirname "$f")/go.sum"; fi
}

# ---- kubernetes -----------------------------------------------------------
prepare_kube_module() {
  local dir="$SRC/kubernetes" staging_ver
  staging_ver="v0.${K8S_VERSION#v1.}"
  mkdir -p "$dir"
  log "kubernetes: resolving k8s.io/kubernetes@$K8S_VERSION go.mod"
  local upstream="$dir/upstream-$K8S_VERSION.mod"
  if [[ ! -s "$upstream" || ! -s "$dir/upstream-$K8S_VERSION.json" ]]; then
    # `go mod download -json` prints the module's Time and the path of its cached go.mod (GoMod)
    local gomod
    (cd "$dir" && "$GO" mod download -json "k8s.io/kubernetes@$K8S_VERSION") > "$dir/upstream-$K8S_VERSION.json" \
      || die "go mod download k8s.io/kubernetes@$K8S_VERSION failed"
    gomod=$(json_field GoMod "$dir/upstream-$K8S_VERSION.json")
    [[ -n "$gomod" && -f "$gomod" ]] || die "could not download k8s.io/kubernetes@$K8S_VERSION go.mod"
    cp "$gomod" "$upstream.tmp" && mv "$upstream.tmp" "$upstream"
  fi
  # every staging module that k8s.io/kubernetes requires as v0.0.0 -> its real release
  local staging
  staging=$(awk '/^require[[:space:]]*\(/{r=1;next} r&&/^\)/{r=0} r&&$2=="v0.0.0"&&$1~/^k8s\.io\//{print $1}' "$upstream" | sort -u)
  [[ -n "$staging" ]] || die "no staging modules found in $upstream"
  local gover
  gover=$(awk '$1=="go"{print $2; exit}' "$upstream")
  {
    echo "// Generated by scripts/build_k8s.sh; do not edit."
    echo "module kivebpf.local/k8sbuild"
    echo
    echo "go $gover"
    echo
    echo "godebug default=go1.24"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    for m in $staging; do echo "	$m => $m $staging_ver"; done
    echo ")"
  } | write_if_changed "$dir/go.mod"
  printf 'package k8sbuild\n' | write_if_changed "$dir/doc.go"
}

kube_ldflags() {
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local date
  date=$(json_field Time "$SRC/kubernetes/upstream-$K8S_VERSION.json")
  [[ -n "$date" ]] || date=1970-01-01T00:00:00Z
  local f="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    f+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    f+=" -X $p.gitTreeState=clean -X $p.buildDate=$date"
  done
  echo "$f"
}

build_kube() {
  local comps=("$@") pkgs=() c
  prepare_kube_module
  for c in "${comps[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  log "kubernetes $K8S_VERSION: go build ${comps[*]} (cold builds take many minutes)"
  local t0=$SECONDS
  (cd "$SRC/kubernetes" && "${NICE[@]}" "$GO" build -trimpath -ldflags="$(kube_ldflags)" -o "$BIN/" "${pkgs[@]}")
  for c in "${comps[@]}"; do [[ -x "$BIN/$c" ]] || die "$c was not produced"; stamp "$c"; done
  log "kubernetes: built ${comps[*]} in $((SECONDS - t0))s"
}

# ---- etcd -----------------------------------------------------------------
build_etcd() {
  local dir="$SRC/etcd"
  mkdir -p "$dir"
  {
    echo "// Generated by scripts/build_k8s.sh; do not edit."
    echo "module kivebpf.local/etcdbuild"
    echo
    echo "go 1.24.0"
    echo
    echo "require go.etcd.io/etcd/server/v3 $ETCD_VERSION"
  } | write_if_changed "$dir/go.mod"
  printf 'package etcdbuild\n' | write_if_changed "$dir/doc.go"
  log "etcd $ETCD_VERSION: go build go.etcd.io/etcd/server/v3"
  local t0=$SECONDS
  (cd "$dir" && "${NICE[@]}" "$GO" build -trimpath -ldflags="-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3)
  stamp etcd
  log "etcd: built in $((SECONDS - t0))s"
}

# ---- coredns --------------------------------------------------------------
# Upstream's main (github.com/coredns/coredns) links ~60 plugins incl. cloud SDKs. We build a
# main with the plugins a kubeadm-style Corefile uses, plus a few handy ones; the order below is
# upstream plugin.cfg order (it defines plugin execution order).
COREDNS_PLUGINS=(reload debug ready health prometheus errors log loadbalance cache rewrite
  template hosts kubernetes file loop forward whoami)
build_coredns() {
  local dir="$SRC/coredns" p
  mkdir -p "$dir"
  {
    echo "// Generated by scripts/build_k8s.sh; do not edit."
    echo "module kivebpf.local/corednsbuild"
    echo
    echo "go 1.24.0"
    echo
    echo "require github.com/coredns/coredns $COREDNS_VERSION"
  } | write_if_changed "$dir/go.mod"
  {
    echo "// Generated by scripts/build_k8s.sh; do not edit."
    echo "package main"
    echo
    echo "import ("
    echo '	"github.com/coredns/coredns/core/dnsserver"'
    echo '	"github.com/coredns/coredns/coremain"'
    echo
    for p in "${COREDNS_PLUGINS[@]}"; do
      # directive name -> package dir (only `prometheus` differs upstream)
      [[ "$p" == prometheus ]] && p=metrics
      echo "	_ \"github.com/coredns/coredns/plugin/$p\""
    done
    echo ")"
    echo
    echo "func init() {"
    echo "	dnsserver.Directives = []string{"
    for p in "${COREDNS_PLUGINS[@]}"; do echo "		\"$p\","; done
    echo "	}"
    echo "}"
    echo
    echo "func main() { coremain.Run() }"
  } | write_if_changed "$dir/main.go"
  log "coredns $COREDNS_VERSION: go build (plugins: ${COREDNS_PLUGINS[*]})"
  local t0=$SECONDS
  (cd "$dir" && "${NICE[@]}" "$GO" build -trimpath -ldflags="-s -w" -o "$BIN/coredns" .)
  stamp coredns
  log "coredns: built in $((SECONDS - t0))s"
}

# ---- main -----------------------------------------------------------------
T0=$SECONDS
log "go: $("$GO" env GOVERSION); bin dir: $BIN; components: ${want[*]}"
kube_todo=()
other_todo=()
for c in "${want[@]}"; do
  if is_fresh "$c"; then log "$c: up to date ($(pin_of "$c"))"; continue; fi
  case "$c" in etcd|coredns) other_todo+=("$c") ;; *) kube_todo+=("$c") ;; esac
done
if [[ ${#kube_todo[@]} -gt 0 ]]; then build_kube "${kube_todo[@]}"; fi
for c in "${other_todo[@]+"${other_todo[@]}"}"; do
  case "$c" in etcd) build_etcd ;; coredns) build_coredns ;; esac
done
log "done in $((SECONDS - T0))s: $(cd "$BIN" && for c in "${want[@]}"; do printf '%s ' "$c"; done)"
