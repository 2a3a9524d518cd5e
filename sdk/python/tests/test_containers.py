"""Container routes against a real Docker daemon (skipped with the reason without one)."""

from __future__ import annotations

import json
import os

import pytest

import clawbox
from conftest import CRED, LABEL, SECRET, poll


def test_spawn_get_list_extend_kill(client, image):
    sb = client.spawn(image, ["sleep", "600"], labels=LABEL, task="pytest lifecycle", timeout_ms=120000)
    try:
        assert sb.id.startswith("clawbox-") and sb.status == "running"
        assert sb.info.labels == LABEL and "clawbox/pytest-" in sb.info.image
        assert sb.refresh().status == "running"
        ids = [c.container_id for c in client.list_containers(status="running", labels=LABEL)]
        assert sb.id in ids
        assert sb.id not in [c.container_id for c in client.list_containers(labels={"clawbox-pytest": "other"})]
        before = sb.info.deadline
        info = sb.extend(300000)
        assert info.deadline and info.deadline != before
        assert client.sandbox(sb.id).id == sb.id
    finally:
        k = sb.kill()
    assert k.container_id == sb.id and k.status == "killed"
    assert sb.kill().status == "killed"  # idempotent
    assert sb.wait(timeout=60).finished


def test_context_manager_kills_on_exit(client, image):
    with client.spawn(image, ["sleep", "600"], labels=LABEL) as sb:
        assert sb.status == "running"
    assert client.container(sb.id).status == "killed"
    with pytest.raises(RuntimeError):
        with client.spawn(image, ["sleep", "600"], labels=LABEL) as sb2:
            raise RuntimeError("boom")
    assert client.container(sb2.id).status == "killed"


def test_wait_logs_and_follow(client, image):
    sb = client.spawn(image, ["sh", "-c", "echo out; echo err >&2; sleep 1; echo more; exit 3"], labels=LABEL)
    frames = list(sb.follow_logs())
    assert frames[-1].stream == "status" and frames[-1].exit_code == 3, frames
    out = "".join(f.data for f in frames if f.stream == "stdout")
    assert "out\n" in out and "more\n" in out
    assert "err\n" in "".join(f.data for f in frames if f.stream == "stderr")
    info = sb.wait(timeout=60)
    assert info.status == "failed" and info.exit_code == 3
    logs = sb.logs()
    assert logs.stdout == "out\nmore\n" and logs.stderr == "err\n" and not logs.truncated


def test_spawn_refusals(client, image):
    with pytest.raises(clawbox.PolicyDenied) as ei:
        client.spawn("forbidden.example/evil:1", ["true"], labels=LABEL)
    assert ei.value.code == "image_not_allowed"
    with pytest.raises(clawbox.InvalidRequest) as ei:
        client.spawn(image, ["true"], labels={"clawbox.x": "y"})
    assert ei.value.code == "invalid_request" and ei.value.details


def test_exec(sandbox):
    r = sandbox.exec(["sh", "-c", "echo hi; echo oops >&2; exit 3"])
    assert (r.stdout, r.stderr, r.exit_code, r.ended_by) == ("hi\n", "oops\n", 3, "exit")
    r = sandbox.exec("cat", stdin="from stdin")
    assert r.stdout == "from stdin" and r.exit_code == 0
    r = sandbox.exec(["cat"], stdin=b"\xff\x00bin")
    assert r.stdout_bytes == b"\xff\x00bin"
    r = sandbox.exec("echo $GREETING; pwd", env={"GREETING": "hello"}, workdir="/tmp")
    assert r.stdout == "hello\n/tmp\n"
    r = sandbox.exec(["sleep", "30"], timeout_ms=300)
    assert r.timed_out and r.ended_by == "exec_timeout"
    with pytest.raises(clawbox.InvalidRequest):
        sandbox.exec([])


def test_exec_stream(sandbox):
    chunks = []
    with sandbox.exec_stream(["sh", "-c", "echo one; echo two >&2; exit 5"]) as st:
        for c in st:
            chunks.append(c)
    assert st.exit is not None and st.exit.exit_code == 5 and st.exit.ended_by == "exit"
    assert b"".join(c.data for c in chunks if c.stream == "stdout") == b"one\n"
    assert b"".join(c.data for c in chunks if c.stream == "stderr") == b"two\n"
    out, err = [], []
    ex = sandbox.exec_stream("printf 'a\\377b'; echo e >&2").wait(stdout=out.append, stderr=err.append)
    assert ex.exit_code == 0 and b"".join(out) == b"a\xffb" and b"".join(err) == b"e\n"


def test_exec_on_finished_sandbox(client, image):
    sb = client.spawn(image, ["true"], labels=LABEL)
    sb.wait(timeout=60)
    with pytest.raises(clawbox.Conflict) as ei:
        sb.exec("echo hi")
    assert ei.value.code == "conflict" and ei.value.status == 409 and "not running" in ei.value.message
    with pytest.raises(clawbox.Conflict):
        sb.exec_stream("echo hi")


def test_files(sandbox):
    w = sandbox.write_file("/tmp/py/hello.txt", "hello file\n")
    assert w.path == "/tmp/py/hello.txt" and w.size == 11
    assert sandbox.read_file("/tmp/py/hello.txt") == b"hello file\n"
    blob = bytes(range(256)) * 40
    w = sandbox.write_file("/tmp/py/run.sh", blob, mode=0o700)
    assert w.mode & 0o777 == 0o700
    assert sandbox.read_file("/tmp/py/run.sh") == blob
    ls = sandbox.list_files("/tmp/py")
    ents = {e.name: e for e in ls.entries}
    assert set(ents) == {"hello.txt", "run.sh"} and ents["run.sh"].size == len(blob) and not ents["run.sh"].is_dir
    assert sandbox.exec("cat /tmp/py/hello.txt").stdout == "hello file\n"
    sandbox.remove_file("/tmp/py/hello.txt")
    with pytest.raises(clawbox.NotFound):
        sandbox.read_file("/tmp/py/hello.txt")
    sandbox.remove_file("/tmp/py", recursive=True)
    with pytest.raises(clawbox.NotFound):
        sandbox.list_files("/tmp/py")


def test_door_from_the_host_side(client, server, image, upstream):
    """clawbox.door against a sandbox's real door (its host-side socket and token)."""
    port = upstream.server_address[1]
    client.put_credential(CRED, SECRET, "127.0.0.1", port=port, allow_http=True)
    with client.spawn(image, ["sleep", "600"], labels=LABEL, credentials=[CRED]) as sb:
        d = os.path.join(server.home, "proxies", sb.id)
        with open(os.path.join(d, "token")) as f:
            token = f.read().strip()
        door = clawbox.door.from_env({"CLAWBOX_PROXY_SOCKET": os.path.join(d, "proxy.sock"), "CLAWBOX_PROXY_TOKEN": token})
        r = door.get(f"http://127.0.0.1:{port}/hello")
        assert r.status_code == 200 and r.ok
        body = r.json()
        assert body["path"] == "/hello" and body["authorization"] == "Bearer [REDACTED]"
        assert any(s["headers"].get("Authorization") == "Bearer " + SECRET for s in upstream.seen)
        r = door.post(f"http://127.0.0.1:{port}/post", json={"k": "v"})
        assert r.json()["body"] == '{"k": "v"}' and r.json()["method"] == "POST"
        with pytest.raises(clawbox.PolicyDenied) as ei:
            door.get("http://127.0.0.1:9/")
        assert ei.value.code == "blocked_by_policy"
        with pytest.raises(clawbox.LeakDetected):
            door.post(f"http://127.0.0.1:{port}/leak", data="key=" + SECRET)
        with pytest.raises(clawbox.Unauthenticated):
            clawbox.door.Door(os.path.join(d, "proxy.sock"), "wrong").get(f"http://127.0.0.1:{port}/")
        # The request is in the audit trail, with the credential by name only.
        recs = poll("the door's audit record", 30, lambda: [r for r in client.audit(container_id=sb.id, kind="request", decision="allowed") if r.url.endswith("/hello")])
        assert recs[0].door == "proxy" and recs[0].credentials == [CRED] and SECRET not in json.dumps(recs[0].raw)
        chk = client.check_policy(f"http://127.0.0.1:{port}/x", container_id=sb.id)
        assert chk.allowed and chk.policy == "container " + sb.id
    with pytest.raises(clawbox.Unreachable):
        door.get(f"http://127.0.0.1:{port}/")


def test_door_env_errors(tmp_path):
    with pytest.raises(ValueError, match="CLAWBOX_PROXY_SOCKET"):
        clawbox.door.from_env({})
    with pytest.raises(ValueError, match="no token"):
        clawbox.door.from_env({"CLAWBOX_PROXY_SOCKET": "/x"})
    (tmp_path / "t").write_text("tok\n")
    d = clawbox.door.from_env({"CLAWBOX_PROXY_SOCKET": "/x", "CLAWBOX_PROXY_TOKEN_FILE": str(tmp_path / "t")})
    assert d.socket == "/x"


def test_images(client, image):
    imgs = client.list_images()
    assert any(image in i.repo_tags for i in imgs), [i.repo_tags for i in imgs]
    with pytest.raises(clawbox.PolicyDenied) as ei:
        client.pull_image("forbidden.example/evil:1")
    assert ei.value.code == "image_not_allowed"


def test_workspace_kept_until_killed_with_workspace(client, image):
    sb = client.spawn(image, ["sleep", "600"], labels=LABEL, workspace=True)
    try:
        assert sb.info.workspace is not None and sb.info.workspace.path == "/workspace"
        assert sb.info.workspace.quota_bytes > 0
        sb.write_file("/workspace/keep.txt", "kept")
        assert [e.name for e in sb.list_files("/workspace").entries] == ["keep.txt"]
    finally:
        k = sb.kill(workspace=True)
    assert k.status == "killed"
    assert client.container(sb.id).workspace is None


def test_door_rate_limits_refusals(client, server, image):
    """A sandbox that keeps being refused is rate limited (RateLimited, a ResourceExhausted)."""
    with client.spawn(image, ["sleep", "600"], labels=LABEL) as sb:
        d = os.path.join(server.home, "proxies", sb.id)
        with open(os.path.join(d, "token")) as f:
            door = clawbox.door.Door(os.path.join(d, "proxy.sock"), f.read().strip())
        codes = []
        for _ in range(60):
            try:
                door.get("http://127.0.0.1:9/")
            except clawbox.RateLimited as e:
                assert isinstance(e, clawbox.ResourceExhausted) and e.status == 429
                codes.append(e.code)
                break
            except clawbox.PolicyDenied as e:
                codes.append(e.code)
        assert codes[0] == "blocked_by_policy" and codes[-1] == "rate_limited", codes


def test_pull_image_streams_progress(client, registry):
    frames = []
    final = client.pull_image(registry, progress=frames.append)
    assert frames[0].status == "started" and frames[-1] is final
    assert final.done and final.image_id.startswith("sha256:") and "@sha256:" in final.digest
    assert any(registry in i.repo_tags for i in client.list_images())
    with pytest.raises(clawbox.NotFound) as ei:
        client.pull_image(registry.rsplit(":", 1)[0] + ":missing")
    assert ei.value.code == "image_not_found"
