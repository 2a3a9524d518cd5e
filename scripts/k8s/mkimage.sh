#!/usr/bin/env bash
# mkimage.sh BINARY IMAGE-NAME OUT.tar: a one-layer OCI image archive (for
# `ctr images import`) holding the static BINARY as /<basename>, which is also
# the entrypoint. No Docker, no registry: tar and sha256sum only.
set -euo pipefail
bin=$1 name=$2 out=$3
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
base=$(basename "$bin")
mkdir -p "$w/rootfs" "$w/oci/blobs/sha256"
install -m 0755 "$bin" "$w/rootfs/$base"
tar --owner=0 --group=0 --numeric-owner --mtime=@0 --sort=name -C "$w/rootfs" -cf "$w/layer.tar" .
blob() { local d; d=$(sha256sum "$1" | cut -d' ' -f1); cp "$1" "$w/oci/blobs/sha256/$d"; echo "$d"; }
L=$(blob "$w/layer.tar")
LS=$(stat -c %s "$w/layer.tar")
printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/%s"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "$base" "$L" > "$w/config.json"
C=$(blob "$w/config.json")
CS=$(stat -c %s "$w/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%d}]}' \
  "$C" "$CS" "$L" "$LS" > "$w/manifest.json"
M=$(blob "$w/manifest.json")
MS=$(stat -c %s "$w/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
  "$M" "$MS" "$name" "${name##*:}" > "$w/oci/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' > "$w/oci/oci-layout"
mkdir -p "$(dirname "$out")"
tar -C "$w/oci" -cf "$out" oci-layout index.json blobs
echo "mkimage.sh: $out: $name manifest sha256:$M" >&2
