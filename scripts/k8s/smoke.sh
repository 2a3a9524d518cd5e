#!/usr/bin/env bash
# smoke.sh [R]: check the test cluster that up.sh started in R (default
# $CLAWBOX_K8S_ROOT) end to end:
#  1. builds a busybox image with Docker (FROM scratch + Debian's static
#     busybox + unixecho), `docker save`s it, removes it from Docker again and
#     imports the archive with import-image.sh;
#  2. in a namespace enforcing PodSecurity "restricted", runs a Pod with the
#     restricted securityContext (uid 1000, no capabilities, no privilege
#     escalation, RuntimeDefault seccomp, read-only root) that prints
#     `id` and its Cap/NoNewPrivs/Seccomp status, waits for Succeeded, prints
#     the logs and checks them;
#  3. in a namespace without PodSecurity labels (hostPath is not allowed under
#     baseline/restricted), checks with the same securityContext that
#     - a Unix socket served on the host in a hostPath dir under R/hostpaths,
#       mounted read-only, is reachable from the Pod (unixecho; busybox nc
#       has no -U);
#     - a tmpfs mounted on the host under R/hostpaths after up.sh is visible
#       in a new Pod's hostPath volume;
#     - a tmpfs mounted on the host while a Pod runs appears inside it with
#       mountPropagation: HostToContainer;
#     and measures Pod create -> Running.
# Cleans up its namespaces, the socket server and its mounts.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
R=${1:-${CLAWBOX_K8S_ROOT:-}}
[ -n "$R" ] || { echo "usage: smoke.sh R (or set CLAWBOX_K8S_ROOT)" >&2; exit 2; }
R=$(cd "$R" && pwd)
B=${CLAWBOX_K8S_BIN:-${CLAWBOX_K8S_CACHE:-/var/cache/clawbox/k8s}/v1.34.4/bin}
K=("$B/kubectl" --kubeconfig="$R/pki/admin.kubeconfig")
IMG=localhost/clawbox-busybox:smoke
H=$R/hostpaths
now() { date +%s.%N; }
dt() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
say() { echo "smoke.sh: $*" >&2; }
die() { say "FAIL: $*"; exit 1; }

cleanup() {
  "${K[@]}" delete namespace smoke-restricted smoke-hostpath --grace-period=1 --wait=false >/dev/null 2>&1 || true
  if [ -f "$R/pids/smoke-door" ]; then kill "$(cat "$R/pids/smoke-door")" 2>/dev/null || true; rm -f "$R/pids/smoke-door"; fi
  for m in "$H/smoke-late2/sub" "$H/smoke-late"; do mountpoint -q "$m" && umount "$m"; done
  rm -rf "$H/smoke-door" "$H/smoke-late" "$H/smoke-late2"
}
trap cleanup EXIT

phase() { "${K[@]}" -n "$1" get pod "$2" -o jsonpath='{.status.phase}' 2>/dev/null || true; }
wait_phase() { # ns pod phase seconds
  local deadline=$((SECONDS + $4)) p
  while :; do
    p=$(phase "$1" "$2")
    [ "$p" = "$3" ] && return 0
    case "$p" in Failed | Succeeded) [ "$p" = "$3" ] || { "${K[@]}" -n "$1" describe pod "$2" >&2; "${K[@]}" -n "$1" logs "$2" >&2 || true; die "pod $1/$2 is $p, wanted $3"; } ;; esac
    [ $SECONDS -lt $deadline ] || { "${K[@]}" -n "$1" describe pod "$2" >&2; die "pod $1/$2 not $3 after $4s (phase '$p')"; }
    sleep 0.1
  done
}
sc='securityContext:
      runAsUser: 1000
      runAsGroup: 1000
      runAsNonRoot: true
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
      seccompProfile: {type: RuntimeDefault}'
podspec='restartPolicy: Never
  automountServiceAccountToken: false
  enableServiceLinks: false
  dnsPolicy: Default
  terminationGracePeriodSeconds: 1'

# 1. Image: Docker build from scratch, docker save, import.
t=$(now)
ctx=$(mktemp -d)
mkdir -p "$ctx/bin"
cp "$(command -v busybox)" "$ctx/bin/busybox"
file "$ctx/bin/busybox" 2>/dev/null | grep -q 'statically linked' || die "busybox is not static (apt-get install busybox-static)"
cp "$B/unixecho" "$ctx/bin/unixecho"
for a in $(busybox --list); do [ "$a" = busybox ] || ln -s busybox "$ctx/bin/$a"; done
printf 'FROM scratch\nCOPY bin/ /bin/\nCMD ["/bin/sh"]\n' > "$ctx/Dockerfile"
o=$(docker build -q -t "$IMG" "$ctx" 2>&1) || { echo "$o" >&2; die "docker build failed"; }
mkdir -p "$R/images"
docker save -o "$R/images/busybox.tar" "$IMG"
docker rmi "$IMG" >/dev/null
rm -rf "$ctx"
"$here/import-image.sh" "$R" "$R/images/busybox.tar"
say "busybox image built (docker), saved and imported in $(dt "$t")s"

# 2. Restricted Pod.
"${K[@]}" apply -f - >/dev/null <<Y
apiVersion: v1
kind: Namespace
metadata:
  name: smoke-restricted
  labels: {pod-security.kubernetes.io/enforce: restricted}
---
apiVersion: v1
kind: Pod
metadata: {name: smoke-id, namespace: smoke-restricted}
spec:
  $podspec
  containers:
  - name: c
    image: $IMG
    imagePullPolicy: Never
    command: [/bin/sh, -c, "id; cat /proc/self/status | grep -E 'Cap|NoNewPrivs|Seccomp'; touch /x 2>&1 || true; echo interfaces: \$(ls /sys/class/net)"]
    $sc
Y
t=$(now)
wait_phase smoke-restricted smoke-id Succeeded 120
say "restricted pod: create -> Succeeded in $(dt "$t")s; kubectl logs:"
out=$("${K[@]}" -n smoke-restricted logs smoke-id)
echo "$out"
for want in 'uid=1000 gid=1000' 'CapEff:.0000000000000000' 'CapBnd:.0000000000000000' 'NoNewPrivs:.1' 'Seccomp:.2' 'Read-only file system' 'interfaces: lo$'; do
  echo "$out" | grep -qE "$want" || die "restricted pod output lacks /$want/"
done

# 3. hostPath: Unix socket (read-only mount) and mounts made on the host after up.sh.
mkdir -p "$H/smoke-door" "$H/smoke-late" "$H/smoke-late2"
chmod 0755 "$H" "$H/smoke-door"
nohup "$B/unixecho" -listen "$H/smoke-door/door.sock" > "$R/logs/smoke-door.log" 2>&1 &
echo $! > "$R/pids/smoke-door"
mount -t tmpfs -o size=1m,mode=0755 smoke-late "$H/smoke-late"
echo "mounted on the host after up.sh" > "$H/smoke-late/marker"
d=$((SECONDS + 10))
until [ -S "$H/smoke-door/door.sock" ]; do [ $SECONDS -lt $d ] || die "socket server did not start"; sleep 0.1; done
"${K[@]}" apply -f - >/dev/null <<Y
apiVersion: v1
kind: Namespace
metadata: {name: smoke-hostpath}
---
apiVersion: v1
kind: Pod
metadata: {name: smoke-door, namespace: smoke-hostpath}
spec:
  $podspec
  containers:
  - name: c
    image: $IMG
    imagePullPolicy: Never
    command: [/bin/sh, -c, "unixecho -dial /door/door.sock hello from pod; echo late: \$(cat /late/marker)"]
    $sc
    volumeMounts:
    - {name: door, mountPath: /door, readOnly: true}
    - {name: late, mountPath: /late, readOnly: true}
  volumes:
  - {name: door, hostPath: {path: $H/smoke-door, type: Directory}}
  - {name: late, hostPath: {path: $H/smoke-late, type: Directory}}
---
apiVersion: v1
kind: Pod
metadata: {name: smoke-late2, namespace: smoke-hostpath}
spec:
  $podspec
  containers:
  - name: c
    image: $IMG
    imagePullPolicy: Never
    command: [/bin/sh, -c, "for i in \$(seq 300); do [ -f /late2/sub/marker ] && { echo late2: \$(cat /late2/sub/marker); exit 0; }; sleep 0.1; done; echo late2: not visible; exit 1"]
    $sc
    volumeMounts:
    - {name: late2, mountPath: /late2, readOnly: true, mountPropagation: HostToContainer}
  volumes:
  - {name: late2, hostPath: {path: $H/smoke-late2, type: Directory}}
Y
t=$(now)
wait_phase smoke-hostpath smoke-late2 Running 120
say "pod create -> Running in $(dt "$t")s (smoke-late2)"
mkdir -p "$H/smoke-late2/sub"
mount -t tmpfs -o size=1m,mode=0755 smoke-late2 "$H/smoke-late2/sub"
echo "mounted on the host while the pod ran" > "$H/smoke-late2/sub/marker"
wait_phase smoke-hostpath smoke-door Succeeded 120
out=$("${K[@]}" -n smoke-hostpath logs smoke-door)
echo "$out"
echo "$out" | grep -q 'reply="echo: hello from pod"' || die "socket not reachable from the pod"
echo "$out" | grep -q 'late: mounted on the host after up.sh' || die "host mount made after up.sh not visible in a new pod"
say "host side of the socket: $(cat "$R/logs/smoke-door.log")"
wait_phase smoke-hostpath smoke-late2 Succeeded 60
out=$("${K[@]}" -n smoke-hostpath logs smoke-late2)
echo "$out"
echo "$out" | grep -q 'late2: mounted on the host while the pod ran' || die "host mount made while the pod ran not visible (HostToContainer)"
say "PASS"
