#!/usr/bin/env bash
# down.sh [R]: stop the test cluster that up.sh started in R (default
# $CLAWBOX_K8S_ROOT) and undo what it did on the host. Idempotent; also cleans
# up after an up.sh that failed halfway. Kills only processes of this cluster:
# the PIDs in R/pids, the Pods' processes (in the kubepods cgroups, which only
# this kubelet uses), the containerd shims whose -address is R's containerd
# socket, and whatever else still runs in the node's mount namespace. Docker's
# containerd and its containers are never touched.
# Then removes the kubepods cgroups, unmounts the host mounts under R (the
# R/hostpaths bind) and removes the empty mount points up.sh created.
# R itself (PKI, images, logs) is kept; rm -rf it if you want.
set -euo pipefail
R=${1:-${CLAWBOX_K8S_ROOT:-}}
[ -n "$R" ] || { echo "usage: down.sh R (or set CLAWBOX_K8S_ROOT)" >&2; exit 2; }
[ -d "$R" ] || exit 0
R=$(cd "$R" && pwd)
B=${CLAWBOX_K8S_BIN:-${CLAWBOX_K8S_CACHE:-/var/cache/clawbox/k8s}/v1.34.4/bin}
P=$R/pids
T0=$(date +%s.%N)
el() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
pidof_() { [ -f "$P/$1" ] && cat "$P/$1"; }
alive() { local p; p=$(pidof_ "$1" 2>/dev/null) && kill -0 "$p" 2>/dev/null; }
stop() { # name [seconds]: SIGTERM, wait, SIGKILL
  local n=$1 wait=${2:-15} p i
  p=$(pidof_ "$n" 2>/dev/null) || return 0
  if kill -0 "$p" 2>/dev/null; then
    kill "$p" 2>/dev/null || true
    for ((i = 0; i < wait * 10; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then
      echo "down.sh: $n ($p) did not stop in ${wait}s, SIGKILL" >&2
      kill -9 "$p" 2>/dev/null || true
    fi
  fi
  rm -f "$P/$n"
}
kubepods() { local c; for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods /sys/fs/cgroup/unified/kubepods; do [ -d "$c" ] && echo "$c"; done; return 0; }

# 1. Controllers first (they would recreate Pods), then let kubelet stop the
#    Pods gracefully (bounded), then kubelet.
stop kube-controller-manager
stop kube-scheduler
if alive kube-apiserver && alive kubelet && [ -x "$B/kubectl" ]; then
  timeout 25 "$B/kubectl" --kubeconfig="$R/pki/admin.kubeconfig" delete pods --all -A \
    --grace-period=1 --wait=true --timeout=20s >/dev/null 2>&1 || true
fi
stop kubelet
echo "down.sh: controllers, Pods and kubelet stopped at +$(el)s" >&2

# 2. Whatever still runs of the Pods: every process in the kubepods cgroups.
for i in 1 2 3; do
  pids=$(kubepods | while read -r c; do find "$c" -name cgroup.procs -exec cat {} + 2>/dev/null; done | sort -un)
  [ -n "$pids" ] || break
  # shellcheck disable=SC2086
  kill -9 $pids 2>/dev/null || true
  sleep 0.2
done

# 3. containerd shims of this containerd (matched by their -address), by PID.
sock=$R/containerd/containerd.sock
shims() {
  local d
  for d in /proc/[0-9]*; do
    tr '\0' ' ' < "$d/cmdline" 2>/dev/null | grep -qE -- "^[^ ]*containerd-shim[^ ]* .*-address $sock( |$)" && echo "${d#/proc/}"
  done
  return 0
}
s=$(shims)
if [ -n "$s" ]; then
  # shellcheck disable=SC2086
  kill $s 2>/dev/null || true
  sleep 0.5
  s=$(shims)
  # shellcheck disable=SC2086
  [ -z "$s" ] || kill -9 $s 2>/dev/null || true
fi

# 4. The rest, by PID: containerd, apiserver, etcd, anything else recorded
#    (helpers such as smoke.sh's socket server).
stop containerd
# kube-apiserver sometimes lingers after "Stopped listening"; nothing of it is worth waiting for.
stop kube-apiserver 5
stop etcd
for f in "$P"/*; do [ -f "$f" ] && stop "$(basename "$f")" 5; done

# 5. Anything left in the node's mount namespace (the namespace dies with its
#    last process, and its mounts with it).
if [ -f "$R/run/node-mntns" ]; then
  ns=$(cat "$R/run/node-mntns")
  # never the host's own namespace
  { [ "$ns" != "$(readlink /proc/1/ns/mnt)" ] && [ "$ns" != "$(readlink /proc/self/ns/mnt)" ]; } || ns=none
  for i in 1 2 3 4 5; do
    left=""
    for d in /proc/[0-9]*; do
      [ "$(readlink "$d/ns/mnt" 2>/dev/null)" = "$ns" ] && left="$left ${d#/proc/}"
    done
    [ -n "$left" ] || break
    echo "down.sh: killing leftovers in the node mount namespace:$left" >&2
    # shellcheck disable=SC2086
    kill -9 $left 2>/dev/null || true
    sleep 0.3
  done
  rm -f "$R/run/node-mntns"
fi

# 6. cgroups kubelet created and does not remove (depth first).
for i in 1 2 3 4 5 6 7 8 9 10; do
  c=$(kubepods)
  [ -n "$c" ] || break
  for d in $c; do find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true; done
  [ -z "$(kubepods)" ] || sleep 0.3
done
[ -z "$(kubepods)" ] || echo "down.sh: WARNING: could not remove $(kubepods | tr '\n' ' ')" >&2

# 7. Host mounts under R (the R/hostpaths bind, and anything mounted under it
#    since), deepest first; then the mount points up.sh created.
for i in 1 2 3; do
  m=$(awk -v r="$R" '$5 == r || index($5, r "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r)
  [ -n "$m" ] || break
  for x in $m; do umount "$x" 2>/dev/null || umount -l "$x" 2>/dev/null || true; done
done
rm -f "$R/run/host-mounts"
if [ -f "$R/run/created-dirs" ]; then
  while read -r d; do rmdir "$d" 2>/dev/null || echo "down.sh: WARNING: $d not empty, left" >&2; done < "$R/run/created-dirs"
  rm -f "$R/run/created-dirs"
fi
rm -f "$R/env"
echo "down.sh: done in $(el)s" >&2
