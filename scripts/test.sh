#!/usr/bin/env bash
# The whole clawbox test suite, as the README documents it and CI runs it:
# prerequisites (a Docker daemon, Debian's busybox-static for test images, the
# debootstrapped Debian image of the end-to-end tests), format,
# vet, staticcheck, go.mod drift, and every test with the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }
die() { printf 'scripts/test.sh: %s\n' "$*" >&2; exit 1; }

apt_install() {
  [ "$(id -u)" = 0 ] || die "need root to install $* (or install it yourself: apt-get install $*)"
  if [ -z "${APT_UPDATED:-}" ]; then
    apt-get update -qq >/dev/null || die "apt-get update failed"
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || die "apt-get install $* failed"
}

log "prerequisites"
command -v go >/dev/null || die "Go is not installed (need Go 1.26 or later)"
go version

# Docker: use the running daemon; otherwise install Debian's docker.io and start it.
if ! docker info >/dev/null 2>&1; then
  echo "no Docker daemon answers: installing and starting one"
  command -v dockerd >/dev/null || apt_install docker.io
  if ! docker info >/dev/null 2>&1; then
    (dockerd >/tmp/clawbox-dockerd.log 2>&1 &)
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  fi
  docker info >/dev/null 2>&1 || die "cannot start a Docker daemon (see /tmp/clawbox-dockerd.log); the container tests need one"
fi
docker version --format 'Docker Engine {{.Server.Version}} (API {{.Server.APIVersion}})'

# Test images are built locally from Debian's static busybox (no registry is reachable).
if ! dpkg -s busybox-static >/dev/null 2>&1; then
  apt_install busybox-static
fi
# The Python SDK's tests run with pytest (Debian's python3-pytest, for /usr/bin/python3).
PYTHON=python3
if ! "$PYTHON" -c 'import pytest' >/dev/null 2>&1; then
  dpkg -s python3-pytest >/dev/null 2>&1 || apt_install python3-pytest
  PYTHON=/usr/bin/python3
fi
# Image pull tests push to and pull from Debian's docker-registry, run on loopback.
if ! dpkg -s docker-registry >/dev/null 2>&1; then
  apt_install docker-registry
fi

# The dashboard's browser test (internal/ui) drives Debian's chromium headless.
if ! command -v chromium >/dev/null; then
  apt_install chromium
fi
echo "Chromium: $(chromium --version 2>/dev/null | head -1)"

# gVisor: the container escape, isolation and door tests also run under runsc.
# Install Debian's runsc and register it with the engine: merge a "runsc" entry into
# the "runtimes" of daemon.json (other keys are kept) and reload dockerd with SIGHUP,
# which re-reads runtimes without restarting it (running containers are untouched).
# RUNSC_TESTS=require makes those tests fail, not skip, if runsc is still missing.
if ! command -v runsc >/dev/null; then
  apt_install runsc
fi
daemon_json="${DOCKER_DAEMON_JSON:-/etc/docker/daemon.json}"
runsc_runtime() { docker info --format '{{range $name, $_ := .Runtimes}}{{$name}} {{end}}' 2>/dev/null | grep -qw runsc; }
if ! runsc_runtime; then
  [ "$(id -u)" = 0 ] || die "need root to register runsc in $daemon_json (or register it yourself, see README: gVisor)"
  mkdir -p "$(dirname "$daemon_json")"
  python3 - "$daemon_json" "$(command -v runsc)" <<'PY' || die "cannot update $daemon_json"
import json, os, sys, tempfile
path, runsc = sys.argv[1], sys.argv[2]
try:
    with open(path) as f:
        cfg = json.load(f)
except FileNotFoundError:
    cfg = {}
want = {"path": runsc, "runtimeArgs": ["--platform=ptrace", "--network=none", "--host-uds=open"]}
runtimes = cfg.setdefault("runtimes", {})
if runtimes.get("runsc") != want:
    runtimes["runsc"] = want
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".daemon.json.")
    with os.fdopen(fd, "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
PY
  pid=$(pidof dockerd || true)
  [ -n "$pid" ] || die "runsc is registered in $daemon_json but no dockerd process to reload: restart the Docker daemon"
  kill -HUP $pid
  for _ in $(seq 1 30); do runsc_runtime && break; sleep 1; done
  runsc_runtime || die "dockerd did not load the runsc runtime from $daemon_json after SIGHUP (see its log)"
fi
echo "gVisor: $(runsc --version 2>/dev/null | head -1), registered with the engine"
export RUNSC_TESTS=require

# The end-to-end tests run unmodified programs (curl, wget, git, python3 with
# requests, pip) from a Debian image built with debootstrap and cached by a content
# hash under /var/cache/clawbox-test: built once (minutes), reused after. A failed
# build fails the suite; the tests fail, not skip, when the tarball is missing.
echo "Debian test image (scripts/debian-image.sh; the first build takes minutes)"
CLAWBOX_TEST_DEBIAN_TARBALL=$(bash scripts/debian-image.sh) ||
  die "cannot build the Debian test image with debootstrap (see the messages above); the end-to-end tests need it"
[ -s "$CLAWBOX_TEST_DEBIAN_TARBALL" ] || die "scripts/debian-image.sh printed no tarball ($CLAWBOX_TEST_DEBIAN_TARBALL)"
echo "Debian test image: $CLAWBOX_TEST_DEBIAN_TARBALL"
export CLAWBOX_TEST_DEBIAN_TARBALL

# Kubernetes: a real single-node cluster (v1.34.4) for the Kubernetes backend's
# tests, from the recipe in scripts/k8s: its binaries are built from the Go
# module proxy once per version and cached under /var/cache/clawbox/k8s (12-22
# minutes the first time, seconds after); Debian's containerd (a second instance,
# its own root and socket) runs the Pods. Everything listens on 127.0.0.1; it is
# stopped by PID when this script exits, also on failure.
log "Kubernetes test cluster (scripts/k8s; the first build takes 12-22 minutes)"
[ "$(id -u)" = 0 ] || die "the test Kubernetes cluster needs root"
{ command -v containerd && command -v ctr && command -v runc; } >/dev/null || apt_install containerd runc
for tool in openssl curl unshare ss; do
  command -v $tool >/dev/null || die "$tool is needed for the Kubernetes test cluster"
done
bash scripts/k8s/build.sh >/dev/null || die "cannot build the Kubernetes test cluster's binaries (scripts/k8s/build.sh)"
K8S_ROOT=$(mktemp -d /tmp/clawbox-k8s.XXXXXX)
k8s_down() { bash scripts/k8s/down.sh "$K8S_ROOT" || true; grep -q " $K8S_ROOT" /proc/self/mountinfo || rm -rf "$K8S_ROOT"; }
trap k8s_down EXIT
bash scripts/k8s/up.sh "$K8S_ROOT" >/dev/null || die "the Kubernetes test cluster did not start (its logs are above)"
. "$K8S_ROOT/env"
export KUBERNETES_TESTS=require

log "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
[ -z "$unformatted" ] || { echo "$unformatted"; die "gofmt would change the files above"; }

log "go mod tidy (drift)"
go mod tidy -diff || die "go.mod/go.sum are not tidy: run go mod tidy"

log "go vet"
go vet ./...

log "staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

log "go test -race"
go test -race -count=1 -timeout 30m ./...

log "python SDK tests"
(cd sdk/python && "$PYTHON" -m pytest -q)

log "fuzz targets, briefly"
bash scripts/fuzz.sh

log "benchmarks compile and run once"
go test -run '^$' -bench . -benchtime 1x ./... >/dev/null

echo
echo "all checks passed"
