#!/usr/bin/env bash
# up.sh [R]: start the single-node test Kubernetes cluster (v1.34.4) in the
# scratch directory R (default $CLAWBOX_K8S_ROOT), all on 127.0.0.1:
#   etcd :2379/:2380, kube-apiserver :6443, kube-scheduler :10259 and
#   kube-controller-manager :10257 on the host; containerd (a second instance of
#   Debian's, socket R/containerd/containerd.sock) and kubelet :10250/:10248 in
#   a private mount namespace (node-ns.sh).
# Binaries come from build.sh's cache (run it first). Pods get only "lo"
# (CNI lo-ip), a podIP of 127.0.0.1 and the locally imported images
# (import-image.sh). Every PID goes to R/pids/<name>; down.sh stops them.
# Waits (with deadlines) for node Ready and the default ServiceAccount, then
# prints the exports below and writes them to R/env:
#   CLAWBOX_TEST_KUBECONFIG CLAWBOX_TEST_K8S_CONTAINERD CLAWBOX_TEST_K8S_ROOT
#   CLAWBOX_TEST_K8S_NODE CLAWBOX_TEST_K8S_HOSTPATHS CLAWBOX_TEST_KUBECTL
# R/hostpaths is a shared bind mount: directories, sockets and mounts made under
# it on the host, also after up.sh, are visible to kubelet for hostPath volumes.
# On failure it prints the tail of every log and exits non-zero; the caller's
# down.sh (e.g. in a trap) cleans up. Timeouts: CLAWBOX_K8S_UP_TIMEOUT seconds
# per step (default 120).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
R=${1:-${CLAWBOX_K8S_ROOT:-}}
[ -n "$R" ] || { echo "usage: up.sh R (or set CLAWBOX_K8S_ROOT)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "up.sh: must run as root" >&2; exit 1; }
mkdir -p "$R"
R=$(cd "$R" && pwd)
B=${CLAWBOX_K8S_BIN:-${CLAWBOX_K8S_CACHE:-/var/cache/clawbox/k8s}/v1.34.4/bin}
TMO=${CLAWBOX_K8S_UP_TIMEOUT:-120}
P=$R/pki L=$R/logs
for b in etcd kube-apiserver kube-scheduler kube-controller-manager kubelet kubectl pause lo-ip loopback; do
  [ -x "$B/$b" ] || { echo "up.sh: $B/$b missing: run scripts/k8s/build.sh first" >&2; exit 1; }
done
for f in "$R"/pids/*; do
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && { echo "up.sh: $(basename "$f") (pid $(cat "$f")) still runs: run down.sh $R first" >&2; exit 1; }
done
busy=$(ss -Hltn '( sport = :2379 or sport = :2380 or sport = :6443 or sport = :10248 or sport = :10250 or sport = :10257 or sport = :10259 )' || true)
[ -z "$busy" ] || { echo "up.sh: ports in use (another cluster up?):" >&2; echo "$busy" >&2; exit 1; }

T0=$(date +%s.%N)
el() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
logs() {
  local f
  for f in "$L"/*.log; do
    [ -f "$f" ] || continue
    echo "===== tail -n 40 $f" >&2
    tail -n 40 "$f" >&2
  done
}
# shellcheck disable=SC2154
trap 'rc=$?; if [ $rc != 0 ]; then echo "up.sh: FAILED (rc=$rc) at +$(el)s; logs follow; run down.sh $R to clean up" >&2; logs; fi' EXIT
start() { # name cmd...: start a daemon, record its PID
  local n=$1
  shift
  nohup "$@" > "$L/$n.log" 2>&1 &
  echo $! > "$R/pids/$n"
}
alive() { [ -f "$R/pids/$1" ] && kill -0 "$(cat "$R/pids/$1")" 2>/dev/null; }
waitfor() { # what pidname cmd...: poll cmd until it succeeds, the daemon dies or the deadline passes
  local what=$1 pn=$2 deadline=$((SECONDS + TMO))
  shift 2
  until "$@" >/dev/null 2>&1; do
    alive "$pn" || { echo "up.sh: $pn exited while waiting for $what" >&2; return 1; }
    [ $SECONDS -lt $deadline ] || { echo "up.sh: $what not ready after ${TMO}s" >&2; return 1; }
    sleep 0.1
  done
  echo "up.sh: $what ready at +$(el)s" >&2
}

# Fresh state every time; the PKI is kept (its kubeconfigs' paths stay valid).
rm -rf "$R/pids" "$R/logs" "$R/run" "$R/etcd" "$R/containerd" "$R/kubelet" "$R/ns" "$R/cni" "$R/kcm-flexvolume" "$R/env"
mkdir -p "$R/pids" "$L" "$R/run" "$R/containerd" "$R/kubelet/volume-plugins" "$R/kubelet/pod-logs" \
  "$R/cni/bin" "$R/cni/net.d" "$R/images" "$R/hostpaths" "$R/kcm-flexvolume"
sed "s|@R@|$R|g" "$here/containerd.toml.in" > "$R/containerd/config.toml"
sed "s|@R@|$R|g" "$here/kubelet-config.yaml.in" > "$R/kubelet/config.yaml"
# The conflist must exist before containerd starts (it reloads a half-written one).
cp "$here/lo-only.conflist" "$R/cni/net.d/10-lo-only.conflist"
cp "$B/lo-ip" "$B/loopback" "$R/cni/bin/"
[ -f "$P/admin.kubeconfig" ] || { "$here/gen-pki.sh" "$P"; echo "up.sh: PKI generated at +$(el)s" >&2; }
"$here/mkimage.sh" "$B/pause" localhost/pause:local "$R/images/pause.tar" 2>/dev/null

start etcd "$B/etcd" --name t --data-dir "$R/etcd" --unsafe-no-fsync \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster t=http://127.0.0.1:2380

# Mount points of the node namespace's redirected directories: empty dirs on
# the host, created only if missing (down.sh removes exactly those).
for d in /var/lib/kubelet /var/log/containers /var/lib/cni /run/containerd; do
  [ -d "$d" ] || { mkdir -p "$d"; echo "$d" >> "$R/run/created-dirs"; }
done
# R/hostpaths: shared, so host mounts made under it later propagate into the
# node namespace (a slave copy). Only needed where / itself is not shared.
if ! mountpoint -q "$R/hostpaths"; then
  mount --bind "$R/hostpaths" "$R/hostpaths"
  echo "$R/hostpaths" >> "$R/run/host-mounts"
fi
mount --make-shared "$R/hostpaths"
unshare --mount --propagation slave "$here/node-ns.sh" "$R" "$B"

waitfor etcd etcd curl -fs http://127.0.0.1:2379/health
start kube-apiserver "$B/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port=6443 --endpoint-reconciler-type=none \
  --tls-cert-file="$P/api.crt" --tls-private-key-file="$P/api.key" --client-ca-file="$P/ca.crt" \
  --token-auth-file="$P/tokens.csv" --authorization-mode=Node,RBAC --allow-privileged=true \
  --kubelet-client-certificate="$P/kubelet-client.crt" --kubelet-client-key="$P/kubelet-client.key" \
  --kubelet-preferred-address-types=Hostname,InternalIP \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
  --service-cluster-ip-range=10.0.0.0/24
waitfor containerd containerd ctr -a "$R/containerd/containerd.sock" version
"$here/import-image.sh" "$R" "$R/images/pause.tar" >/dev/null
echo "up.sh: pause image imported at +$(el)s" >&2
waitfor kube-apiserver kube-apiserver curl -fs --cacert "$P/ca.crt" https://127.0.0.1:6443/readyz
start kube-scheduler "$B/kube-scheduler" --kubeconfig="$P/scheduler.kubeconfig" \
  --authentication-kubeconfig="$P/scheduler.kubeconfig" --authorization-kubeconfig="$P/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port=10259 --leader-elect=false
start kube-controller-manager "$B/kube-controller-manager" --kubeconfig="$P/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$P/controller-manager.kubeconfig" --authorization-kubeconfig="$P/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port=10257 --leader-elect=false \
  --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt" \
  --flex-volume-plugin-dir="$R/kcm-flexvolume" \
  --cluster-signing-cert-file="$P/ca.crt" --cluster-signing-key-file="$P/ca.key" \
  --use-service-account-credentials=true
K=("$B/kubectl" --kubeconfig="$P/admin.kubeconfig")
waitfor node-registered kubelet "${K[@]}" get node 127.0.0.1
waitfor node-Ready kubelet "${K[@]}" wait --for=condition=Ready node/127.0.0.1 --timeout=1s
waitfor default-serviceaccount kube-controller-manager "${K[@]}" -n default get serviceaccount default
for n in etcd kube-apiserver containerd kubelet kube-scheduler kube-controller-manager; do
  alive "$n" || { echo "up.sh: $n exited" >&2; exit 1; }
done

cat > "$R/env" <<ENV
export CLAWBOX_TEST_KUBECONFIG=$P/admin.kubeconfig
export CLAWBOX_TEST_K8S_CONTAINERD=$R/containerd/containerd.sock
export CLAWBOX_TEST_K8S_ROOT=$R
export CLAWBOX_TEST_K8S_NODE=127.0.0.1
export CLAWBOX_TEST_K8S_HOSTPATHS=$R/hostpaths
export CLAWBOX_TEST_KUBECTL=$B/kubectl
ENV
echo "up.sh: cluster up in $(el)s (binaries $B)" >&2
cat "$R/env"
