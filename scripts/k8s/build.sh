#!/usr/bin/env bash
# build.sh: the test cluster's binaries, built once per Kubernetes version into
#   ${CLAWBOX_K8S_CACHE:-/var/cache/clawbox/k8s}/v1.34.4/bin
# - kube-apiserver, kubelet, kube-scheduler, kube-controller-manager, kubectl,
#   etcd: from the nested wrapper module test/k8s/node (12-22 min fresh on 2
#   cores; skipped when all six are present and runnable);
# - pause, lo-ip, unixecho: from test/k8s/tools (seconds, always rebuilt);
# - loopback: Debian's CNI plugin, from containernetworking-plugins via
#   apt-get download + dpkg -x (nothing installed; cached).
# Prints the bin directory on stdout, timings on stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
version=v1.34.4
bin=${CLAWBOX_K8S_CACHE:-/var/cache/clawbox/k8s}/$version/bin
bins="kube-apiserver kubelet kube-scheduler kube-controller-manager kubectl etcd"
mkdir -p "$bin"
t0=$(date +%s.%N)
el() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# One build at a time per cache (a second caller waits for the first).
exec 9>"$bin/.lock"
flock 9

runnable() {
  local b
  for b in $bins; do [ -x "$bin/$b" ] || return 1; done
  "$bin/kubectl" version --client >/dev/null 2>&1 || return 1
  "$bin/etcd" --version >/dev/null 2>&1 || return 1
  for b in kube-apiserver kubelet kube-scheduler kube-controller-manager; do
    "$bin/$b" --version >/dev/null 2>&1 || return 1
  done
}

if runnable; then
  echo "build.sh: k8s $version binaries cached in $bin (checked in $(el "$t0")s)" >&2
else
  echo "build.sh: building k8s $version into $bin (12-22 minutes on a fresh 2-core machine)" >&2
  t1=$(date +%s.%N)
  V="-X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=34"
  V="$V -X k8s.io/client-go/pkg/version.gitVersion=$version -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=34"
  tmp=$(mktemp -d "$bin/.build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  (cd "$repo/test/k8s/node" && CGO_ENABLED=0 go build -buildvcs=false -trimpath -ldflags "-s -w $V" -o "$tmp/" \
    ./cmd/kube-apiserver ./cmd/kubelet ./cmd/kube-scheduler ./cmd/kube-controller-manager ./cmd/kubectl ./cmd/etcd)
  for b in $bins; do mv -f "$tmp/$b" "$bin/$b"; done
  runnable || { echo "build.sh: built binaries do not run" >&2; exit 1; }
  echo "build.sh: k8s binaries built in $(el "$t1")s" >&2
fi

t1=$(date +%s.%N)
(cd "$repo/test/k8s/tools" && CGO_ENABLED=0 go build -buildvcs=false -trimpath -ldflags '-s -w' -o "$bin/" ./pause ./lo-ip ./unixecho)
echo "build.sh: pause, lo-ip, unixecho built in $(el "$t1")s" >&2

if [ ! -x "$bin/loopback" ]; then
  t1=$(date +%s.%N)
  d=$(mktemp -d)
  chmod 755 "$d"
  (cd "$d" && { apt-get download -qq containernetworking-plugins >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null && apt-get download -qq containernetworking-plugins >/dev/null; }; })
  dpkg -x "$d"/containernetworking-plugins_*.deb "$d/x"
  install -m 0755 "$d/x/usr/lib/cni/loopback" "$bin/loopback"
  rm -rf "$d"
  echo "build.sh: loopback CNI plugin extracted in $(el "$t1")s" >&2
fi
echo "build.sh: done in $(el "$t0")s" >&2
echo "$bin"
