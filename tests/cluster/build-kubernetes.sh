#!/usr/bin/env bash
# Builds the Kubernetes server binaries from Debian's source package, once per version.
# The result is cached outside the checkout: $TASKYARD_CACHE/kubernetes-<version>/bin.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/common.sh"

K8S_VERSION=1.20.2
out="$TASKYARD_CACHE/kubernetes-$K8S_VERSION"
components=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

have_all() {
  for c in "${components[@]}"; do [ -x "$out/bin/$c" ] || return 1; done
}
if have_all; then
  log "kubernetes $K8S_VERSION binaries cached in $out/bin"
  exit 0
fi

work="$TASKYARD_CACHE/kubernetes-src"
rm -rf "$work" && mkdir -p "$work"
cd "$work"

# deb-src entries mirror the machine's own deb entries, so no host is named here.
src_list=/etc/apt/sources.list.d/taskyard-deb-src.sources
if [ ! -f "$src_list" ]; then
  sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$src_list"
  apt-get update -qq
fi
log "downloading Debian's kubernetes source package"
apt-get source --download-only kubernetes >/dev/null 2>&1
tar xzf kubernetes_*"really${K8S_VERSION}.orig.tar.gz"
tree="$work/kubernetes-$K8S_VERSION"

# reflect2 v1.0.1 (vendored) breaks with Go >= 1.18 map iteration: kube-apiserver crashes on the
# first custom-resource write. Apply the fix reflect2 v1.0.2 made: a caller-allocated iterator
# with the runtime's full hiter layout.
python3 "$here/lib/patch_reflect2.py" "$tree/vendor/github.com/modern-go/reflect2"

mkdir -p "$work/gopath/src/k8s.io"
ln -sfn "$tree" "$work/gopath/src/k8s.io/kubernetes"
log "building ${components[*]} (15-20 minutes cold)"
(
  cd "$work/gopath/src/k8s.io/kubernetes"
  export GOPATH="$work/gopath" CGO_ENABLED=0 GOFLAGS=-mod=vendor GOCACHE="$TASKYARD_CACHE/go-build"
  make WHAT="$(printf 'cmd/%s ' "${components[@]}")" >"$work/build.log" 2>&1 \
    || { tail -50 "$work/build.log"; die "kubernetes build failed (log: $work/build.log)"; }
)
mkdir -p "$out/bin"
for c in "${components[@]}"; do cp "$tree/_output/bin/$c" "$out/bin/$c"; done
rm -rf "$work"
log "kubernetes $K8S_VERSION binaries ready in $out/bin"
