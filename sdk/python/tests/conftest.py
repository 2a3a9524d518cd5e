"""Session fixtures: a real clawbox server built from this repository, a loopback
upstream, and (when Docker answers) a labelled busybox test image."""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SDK = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(SDK))
sys.path.insert(0, SDK)

import clawbox  # noqa: E402

RUN_ID = secrets.token_hex(4)
LABEL = {"clawbox-pytest": RUN_ID}
CRED = "pydemo"
SECRET = "py-s3cret-value-" + RUN_ID


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(what: str, timeout: float, fn: Any) -> Any:
    """Calls fn until it returns a true value, failing after timeout seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - reported on failure
            last = e
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last!r})")


class _Echo(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace") if n else ""
        self.server.seen.append({"path": self.path, "headers": dict(self.headers), "body": body})  # type: ignore[attr-defined]
        out = json.dumps({"method": self.command, "path": self.path, "body": body,
                          "authorization": self.headers.get("Authorization", "")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *a: Any) -> None:
        pass


@pytest.fixture(scope="session")
def upstream() -> Iterator[Any]:
    """A loopback HTTP server that answers with what it received (seen: every request)."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    srv.seen = []  # type: ignore[attr-defined]
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    t.join(10)


@pytest.fixture(scope="session")
def binary() -> Iterator[str]:
    """The clawbox binary, built once per session (or $CLAWBOX_BIN when set); removed
    at the end."""
    if os.environ.get("CLAWBOX_BIN"):
        yield os.environ["CLAWBOX_BIN"]
        return
    d = tempfile.mkdtemp(prefix="cbpybin")
    try:
        out = os.path.join(d, "clawbox")
        env = dict(os.environ, CGO_ENABLED="0")
        r = subprocess.run(["go", "build", "-o", out, "./cmd/clawbox"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            pytest.fail(f"go build ./cmd/clawbox failed:\n{r.stderr}")
        yield out
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _set(cfg: str, key: str, value: str) -> str:
    new, n = re.subn(rf"(?m)^#?\s*{re.escape(key)} = .*$", f"{key} = {value}", cfg, count=1)
    assert n == 1, f"config has no key {key}"
    return new


class Server:
    """A running clawbox server of the session."""

    def __init__(self, home: str, port: int, sock: str, token: str, log: str) -> None:
        self.home, self.port, self.sock, self.token, self.log = home, port, sock, token, log
        self.url = f"http://127.0.0.1:{port}"
        self.registry_port = 0

    def client(self, **kw: Any) -> clawbox.Client:
        """A client with the server's token."""
        return clawbox.Client(self.url, token=self.token, **kw)

    def env(self) -> Dict[str, str]:
        """An environment in which Client.from_env finds this server."""
        e = {k: v for k, v in os.environ.items() if not k.startswith("CLAWBOX_")}
        e.update(CLAWBOX_HOME=self.home, CLAWBOX_PORT=str(self.port))
        return e


@pytest.fixture(scope="session")
def server(binary: str, upstream: Any) -> Iterator[Server]:
    """`clawbox init` in a private CLAWBOX_HOME, a free loopback port, `clawbox serve`;
    stopped at the end (sandboxes it spawned are killed)."""
    # Short: the sandboxes' socket paths under it must fit in 107 bytes.
    tmp = tempfile.mkdtemp(prefix="cbpy", dir="/tmp")
    home = os.path.join(tmp, "home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAWBOX_")}
    env["CLAWBOX_HOME"] = home
    r = subprocess.run([binary, "init"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    port = free_port()
    sock = os.path.join(tmp, "api.sock")
    up = f"http://127.0.0.1:{upstream.server_address[1]}"
    cfgp = os.path.join(home, "config.toml")
    with open(cfgp) as f:
        cfg = f.read()
    cfg = _set(cfg, "port", str(port))
    cfg = _set(cfg, "unix_socket", json.dumps(sock))
    cfg = _set(cfg, "allow_private_cidrs", '["127.0.0.0/8"]')
    cfg = _set(cfg, "network_allowlist", json.dumps([up]))
    cfg = _set(cfg, "allowed_credentials", json.dumps([CRED]))
    cfg = _set(cfg, "kill_on_shutdown", "true")
    reg_port = free_port()  # for the registry fixture: pulls from it are allowed
    cfg = _set(cfg, "allowed_images", json.dumps(["clawbox/", f"127.0.0.1:{reg_port}/"]))
    with open(cfgp, "w") as f:
        f.write(cfg)
    log = os.path.join(tmp, "serve.log")
    logf = open(log, "wb")
    proc = subprocess.Popen([binary, "serve"], env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    token = clawbox.read_token_file(os.path.join(home, "token"))
    srv = Server(home, port, sock, token, log)
    srv.registry_port = reg_port
    try:
        c = srv.client(timeout=5)

        def up_() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"clawbox serve exited {proc.returncode}:\n{open(log).read()}")
            return c.health().status in ("ok", "degraded")

        try:
            poll("clawbox serve to answer /health", 120, up_)
        except AssertionError:
            raise AssertionError(f"server did not come up; its log:\n{open(log).read()}") from None
        yield srv
    finally:
        try:
            c = srv.client(timeout=30)
            for info in c.list_containers(labels=LABEL):
                if not info.finished:
                    c.kill(info.container_id, workspace=True)
        except clawbox.ClawboxError:
            pass
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        logf.close()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def client(server: Server) -> clawbox.Client:
    """A client of the session's server."""
    return server.client()


def _docker_answers() -> str:
    try:
        r = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"docker: {e}"
    return "" if r.returncode == 0 and r.stdout.strip() else f"no Docker daemon answers: {r.stderr.strip()}"


APPLETS = ["sh", "echo", "sleep", "cat", "true", "false", "id", "ls", "env", "printf", "wc", "head"]


@pytest.fixture(scope="session")
def image(server: Server) -> Iterator[str]:
    """A labelled test image: Debian's static busybox, imported (no registry); removed
    at the end. Skips the test when no Docker daemon answers."""
    why = _docker_answers()
    if why:
        pytest.skip(why)
    bb = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(bb):
        pytest.fail("the container tests build their image from Debian's busybox-static: apt-get install busybox-static")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tw:
        for d, mode in (("bin", 0o755), ("etc", 0o755), ("dev", 0o755), ("proc", 0o755), ("sys", 0o755), ("run", 0o755), ("tmp", 0o1777)):
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode = tarfile.DIRTYPE, mode
            tw.addfile(ti)
        with open(bb, "rb") as f:
            data = f.read()
        ti = tarfile.TarInfo("bin/busybox")
        ti.size, ti.mode = len(data), 0o755
        tw.addfile(ti, io.BytesIO(data))
        for a in APPLETS:
            ti = tarfile.TarInfo("bin/" + a)
            ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, "busybox", 0o777
            tw.addfile(ti)
    ref = f"clawbox/pytest-{RUN_ID}:latest"
    r = subprocess.run(
        ["docker", "import", "-c", "LABEL clawbox.test=1", "-c", 'CMD ["/bin/sh"]', "-c", "ENV PATH=/bin", "-", ref],
        input=buf.getvalue(), capture_output=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr.decode()
    try:
        yield ref
    finally:
        subprocess.run(["docker", "rmi", "-f", ref], capture_output=True, timeout=120)


@pytest.fixture
def sandbox(client: clawbox.Client, image: str) -> Iterator[clawbox.Sandbox]:
    """A running sandbox of the test image (sleeping), killed after the test."""
    with client.spawn(image, ["sleep", "600"], labels=LABEL, task="pytest", timeout_ms=300000) as sb:
        yield sb


@pytest.fixture(scope="session")
def registry(server: Server, image: str) -> Iterator[str]:
    """Debian's docker-registry on loopback holding the test image; yields the pushed
    reference (removed from the engine at the end). Skips without docker-registry."""
    binp = "/usr/bin/docker-registry"
    if not os.path.exists(binp):
        pytest.skip("no /usr/bin/docker-registry: apt-get install docker-registry")
    from pathlib import Path

    d = Path(tempfile.mkdtemp(prefix="cbpyreg"))
    addr = f"127.0.0.1:{server.registry_port}"
    cfg = d / "config.yml"
    cfg.write_text(f"version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {d / 'data'}\n"
                   f"  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  secret: {secrets.token_hex(16)}\n")
    proc = subprocess.Popen([binp, "serve", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"})
    ref = f"{addr}/clawbox-pytest/busybox:{RUN_ID}"
    try:
        import urllib.request

        poll("the registry to answer", 30, lambda: urllib.request.urlopen(f"http://{addr}/v2/", timeout=2).status == 200)
        for args in (["tag", image, ref], ["push", ref], ["rmi", ref]):
            r = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)
            assert r.returncode == 0, f"docker {' '.join(args)}: {r.stderr}"
        yield ref
    finally:
        subprocess.run(["docker", "rmi", "-f", ref], capture_output=True, timeout=120)
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        shutil.rmtree(d, ignore_errors=True)
