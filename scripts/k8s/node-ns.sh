#!/usr/bin/env bash
# node-ns.sh R BIN: the node half of the test cluster, run by up.sh as
#   unshare --mount --propagation slave node-ns.sh R BIN
# It starts containerd (a second instance, config R/containerd/config.toml) and
# kubelet in a mount namespace of their own, so that
#  - their mounts (kubelet's rshared root dir, tmpfs/projected volumes,
#    containerd's rootfs overlays and netns files) never appear on the host and
#    vanish with the namespace;
#  - kubelet's kernel-tunable check reads the values it wants from files bound
#    over /proc/sys/{vm/overcommit_memory,kernel/panic,kernel/panic_on_oops}
#    instead of rewriting the host's sysctls;
#  - the paths kubelet and libcni hard-code (/var/lib/kubelet for the
#    device-plugins socket, /var/log/containers, /var/lib/cni) and the shim
#    sockets under /run/containerd land in R/ns, not on the host.
# Propagation is "slave": mounts made on the host later (in shared mounts, such
# as R/hostpaths, which up.sh makes shared) appear here and so in new Pods'
# hostPath volumes; nothing made here goes back to the host.
# The script exits once both daemons run; the namespace lives on in them.
set -euo pipefail
R=$1 B=$2
N=$R/ns L=$R/logs
mkdir -p "$N/sysctl" "$N/var-lib-kubelet" "$N/var-log-containers" "$N/var-lib-cni"
echo 1 > "$N/sysctl/vm.overcommit_memory"
echo 10 > "$N/sysctl/kernel.panic"
echo 1 > "$N/sysctl/kernel.panic_on_oops"
mount --bind "$N/sysctl/vm.overcommit_memory" /proc/sys/vm/overcommit_memory
mount --bind "$N/sysctl/kernel.panic" /proc/sys/kernel/panic
mount --bind "$N/sysctl/kernel.panic_on_oops" /proc/sys/kernel/panic_on_oops
mount --bind "$N/var-lib-kubelet" /var/lib/kubelet
mount --bind "$N/var-log-containers" /var/log/containers
mount --bind "$N/var-lib-cni" /var/lib/cni
mount -t tmpfs -o mode=0700 clawbox-k8s-run-containerd /run/containerd
readlink /proc/self/ns/mnt > "$R/run/node-mntns"

nohup containerd --config "$R/containerd/config.toml" > "$L/containerd.log" 2>&1 &
echo $! > "$R/pids/containerd"
deadline=$((SECONDS + 60))
until ctr -a "$R/containerd/containerd.sock" version >/dev/null 2>&1; do
  kill -0 "$(cat "$R/pids/containerd")" 2>/dev/null || { echo "node-ns.sh: containerd exited" >&2; exit 1; }
  [ $SECONDS -lt $deadline ] || { echo "node-ns.sh: containerd not answering after 60s" >&2; exit 1; }
  sleep 0.1
done

nohup "$B/kubelet" --config="$R/kubelet/config.yaml" --kubeconfig="$R/pki/kubelet.kubeconfig" \
  --root-dir="$R/kubelet/root" --cert-dir="$R/kubelet/pki" --hostname-override=127.0.0.1 \
  > "$L/kubelet.log" 2>&1 &
echo $! > "$R/pids/kubelet"
