#!/usr/bin/env bash
# import-image.sh R TAR...: import image archives (OCI layout, as mkimage.sh
# makes, or a `docker save` archive) into the test cluster's containerd
# (namespace k8s.io, where kubelet looks). Pods use them with
# imagePullPolicy: Never (or IfNotPresent) and a tag other than "latest".
set -euo pipefail
R=${1:?usage: import-image.sh R TAR...}
shift
[ $# -gt 0 ] || { echo "usage: import-image.sh R TAR..." >&2; exit 2; }
for t in "$@"; do
  ctr -a "$R/containerd/containerd.sock" -n k8s.io images import "$t"
done
