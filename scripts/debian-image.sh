#!/usr/bin/env bash
# Builds the Debian root filesystem the end-to-end tests run unmodified programs in
# (curl, wget, git, python3 with requests, pip), with debootstrap from the host's
# Debian mirror and suite, and packs it as a tarball for `docker import`.
#
# The tarball is cached under $CLAWBOX_TEST_CACHE (default /var/cache/clawbox-test)
# as debian-<hash>.tar, <hash> being a content hash of this script (which holds the
# package list), the suite and the mirror: the first run builds it (minutes), every
# later run only prints its path. Prints the tarball's path on stdout, the only line
# it writes there; progress goes to stderr. Fails (non-zero, a clear message) if the
# image cannot be built.
#
# Usage: scripts/debian-image.sh            # build if missing, print the path
#        scripts/debian-image.sh --path     # print the path it would have, build nothing
set -euo pipefail

PACKAGES="ca-certificates curl wget git python3 python3-requests python3-pip"

die() { printf 'scripts/debian-image.sh: %s\n' "$*" >&2; exit 1; }
say() { printf 'debian-image: %s\n' "$*" >&2; }

# The host's suite and mirror, from deb822 sources (sources.list.d/*.sources) or the
# one-line format (sources.list): the first http(s) Debian entry that is not security.
host_source() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    awk '
      /^[[:space:]]*$/ { if (uri != "" && suite != "" && uri !~ /security/) { print uri, suite; exit } uri=""; suite=""; next }
      tolower($1) == "uris:"   { uri=$2 }
      tolower($1) == "suites:" { suite=$2 }
      END { if (uri != "" && suite != "" && uri !~ /security/) print uri, suite }
    ' "$f" | head -1
  done
  if [ -r /etc/apt/sources.list ]; then
    awk '$1 == "deb" { i=2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($i ~ /debian/ && $i !~ /security/) { print $i, $(i+1); exit } }' /etc/apt/sources.list
  fi
}

read -r MIRROR SUITE < <(host_source | head -1) || true
MIRROR=${DEBIAN_MIRROR:-${MIRROR:-}}
SUITE=${DEBIAN_SUITE:-${SUITE:-}}
if [ -z "$SUITE" ] && [ -r /etc/os-release ]; then
  SUITE=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
fi
[ -n "$MIRROR" ] || MIRROR=http://deb.debian.org/debian
[ -n "$SUITE" ] || die "cannot tell the host's Debian suite (set DEBIAN_SUITE)"

CACHE=${CLAWBOX_TEST_CACHE:-/var/cache/clawbox-test}
HASH=$( { cat "$0"; echo "$SUITE $MIRROR $(dpkg --print-architecture 2>/dev/null || uname -m)"; } | sha256sum | cut -c1-16)
OUT="$CACHE/debian-$HASH.tar"

if [ "${1:-}" = "--path" ]; then
  echo "$OUT"
  exit 0
fi
if [ -s "$OUT" ]; then
  say "cached: $OUT"
  echo "$OUT"
  exit 0
fi

[ "$(id -u)" = 0 ] || die "need root to debootstrap the test image (or build it once as root: sudo $0)"
if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; } ||
    die "cannot install debootstrap (apt-get install debootstrap)"
fi
mkdir -p "$CACHE" || die "cannot create $CACHE"

WORK=$(mktemp -d "$CACHE/.build-XXXXXX")
cleanup() {
  # A failed debootstrap can leave /proc or /sys mounted in the root.
  for m in proc sys dev/pts dev; do umount -l "$WORK/root/$m" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
ROOT="$WORK/root"

say "building $OUT: debootstrap --variant=minbase $SUITE from $MIRROR with: $PACKAGES"
start=$(date +%s)
if ! debootstrap --variant=minbase --include="${PACKAGES// /,}" \
  --exclude=man-db,manpages,info,install-info "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
  tail -n 30 "$WORK/debootstrap.log" >&2
  die "debootstrap failed (log above): the end-to-end test image cannot be built"
fi

# Keep it small: no package lists or caches, docs, man pages, locales (but C.UTF-8).
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/* "$ROOT"/var/cache/debconf/*-old \
  "$ROOT"/var/log/* "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* \
  "$ROOT"/usr/share/lintian "$ROOT"/usr/share/linda "$ROOT"/tmp/* "$ROOT"/root/.cache
find "$ROOT"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} + 2>/dev/null || true
find "$ROOT" -xdev -name '__pycache__' -type d -prune -exec rm -rf {} + 2>/dev/null || true
# The container engine provides these.
rm -f "$ROOT"/etc/hostname "$ROOT"/etc/resolv.conf
# Sanity: every program the tests run is there and starts.
for prog in curl wget git python3 pip3; do
  [ -x "$ROOT/usr/bin/$prog" ] || die "debootstrap finished but /usr/bin/$prog is missing from the image"
done
chroot "$ROOT" python3 -c 'import requests, pip' || die "python3 in the image cannot import requests and pip"

tar --numeric-owner --xattrs -C "$ROOT" -cf "$WORK/image.tar" . || die "cannot pack $ROOT"
mv "$WORK/image.tar" "$OUT"
say "built $OUT ($(du -h "$OUT" | cut -f1)) in $(( $(date +%s) - start ))s"
echo "$OUT"
