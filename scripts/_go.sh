# Finds a Go >= 1.24 for the test tooling built from the Go module proxy (Kubernetes, helm):
# $GO if set, the machine's go, or a toolchain fetched from the proxy into .cache/go. Sourced by
# scripts/build_k8s.sh and scripts/build_helm.sh after they define REPO, log and die.

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
