"""Routes that need no Docker: health, discovery, tools, credentials, policy, audit,
errors, the Unix socket."""

from __future__ import annotations

import json
import os
import re
import threading

import pytest

import clawbox
from conftest import CRED, REPO, SECRET, poll


def test_health_with_and_without_token(server, client):
    h = client.health()
    assert h.status in ("ok", "degraded")
    assert h.version and "wasm_engine" in h.components  # components are reported with a token
    anon = clawbox.Client(server.url).health()
    assert anon.status == h.status and anon.version == ""


def test_from_env_reads_home_and_port(server):
    c = clawbox.Client.from_env(env=server.env())
    assert c.base_url == server.url
    assert c.health().version  # the token from $CLAWBOX_HOME/token was accepted


def test_from_env_precedence_and_errors(server, tmp_path):
    env = server.env()
    env["CLAWBOX_AUTH_TOKEN"] = "wrong"
    with pytest.raises(clawbox.Unauthenticated) as ei:
        clawbox.Client.from_env(env=env).list_tools()
    assert ei.value.code == "auth_required" and ei.value.status == 401
    env = server.env()
    env["CLAWBOX_HOST"], env["CLAWBOX_PORT"] = "0.0.0.0", "1"
    assert clawbox.Client.from_env(env=env).base_url == "http://127.0.0.1:1"
    env["CLAWBOX_PORT"] = "http"
    with pytest.raises(ValueError, match="CLAWBOX_PORT"):
        clawbox.Client.from_env(env=env)
    # ~/.clawbox when CLAWBOX_HOME is unset, with an inline auth_token winning over the file.
    (tmp_path / ".clawbox").mkdir()
    (tmp_path / ".clawbox" / "config.toml").write_text(
        f'[server]\nhost = "127.0.0.1" # loopback\nport = {server.port}\nauth_token = "{server.token}"\n')
    c = clawbox.Client.from_env(env={"HOME": str(tmp_path)})
    assert c.base_url == server.url and c.health().version
    (tmp_path / ".clawbox" / "config.toml").write_text("[server]\nport = 1\n")
    with pytest.raises(ValueError, match="no API token"):
        clawbox.Client.from_env(env={"HOME": str(tmp_path)})


def test_unreachable():
    with pytest.raises(clawbox.Unreachable) as ei:
        clawbox.Client("http://127.0.0.1:1", token="x").health()
    assert ei.value.code == "unreachable" and "127.0.0.1:1" in str(ei.value)
    with pytest.raises(clawbox.Unreachable):
        clawbox.Client("http://x", token="x", unix_socket="/nonexistent/clawbox.sock").health()


def test_unix_socket(server):
    c = clawbox.Client("http://localhost", token=server.token, unix_socket=server.sock)
    assert c.health().version


def test_openapi_and_metrics(client):
    doc = client.openapi()
    assert doc["openapi"].startswith("3.1") and "/containers/spawn" in doc["paths"]
    assert "clawbox_" in client.metrics()


def test_error_mapping(client, server):
    with pytest.raises(clawbox.NotFound) as ei:
        client.tool("no-such-tool")
    assert ei.value.code == "tool_not_found" and ei.value.status == 404 and ei.value.message
    with pytest.raises(clawbox.NotFound) as ei:
        client.container("clawbox-00000000-0000-0000-0000-000000000000")
    assert ei.value.code == "not_found"
    with pytest.raises(clawbox.InvalidRequest) as ei:
        client.check_policy("not a url")
    assert ei.value.code == "invalid_request"
    with pytest.raises(clawbox.MethodNotAllowed):
        client._t.json("DELETE", "/health")
    with pytest.raises(clawbox.InvalidRequest) as ei:
        client._t.json("POST", "/execute", raw=b"{", content_type="application/json")
    assert ei.value.code == "invalid_json"


def test_every_go_error_code_has_a_class():
    """The Python catalogue is the Go one (api/errors.go): a new code needs a class."""
    with open(os.path.join(REPO, "api", "errors.go")) as f:
        go = set(re.findall(r'^\s*Code\w+\s*=\s*"([a-z_]+)"', f.read(), re.M))
    assert len(go) > 25
    assert go == set(clawbox.errors.CODE_CLASSES)
    e = clawbox.errors.error_from_body(403, {"error": "a key leaked", "code": "leak_detected", "details": {"credential": "x"}})
    assert isinstance(e, clawbox.LeakDetected) and isinstance(e, clawbox.PolicyDenied)
    assert (e.code, e.message, e.details, e.status) == ("leak_detected", "a key leaked", {"credential": "x"}, 403)
    assert isinstance(clawbox.errors.error_from_body(429, {"error": "slow", "code": "rate_limited"}), clawbox.RateLimited)
    assert type(clawbox.errors.error_from_body(502, "<html>")) is clawbox.InternalError


def test_tools_list_execute_register_reload(client):
    poll("the tools to load", 120, lambda: not client.tool_status("echo").loading and client.tool_status("http_request").sha256)
    names = [t.name for t in client.list_tools()]
    assert "echo" in names and "http_request" in names
    echo = client.tool("echo")
    assert echo.name == "echo" and echo.sha256
    st = client.tool_status("echo")
    assert st.name == "echo" and st.sha256 == echo.sha256
    r = client.execute("echo", {"hello": "python"})
    assert r.status == "ok", r
    assert r.output == {"hello": "python"} or "python" in json.dumps(r.output)
    assert r.metadata is not None and r.metadata.execution_time_ms >= 0
    with pytest.raises(clawbox.NotFound):
        client.execute("no-such-tool", {})
    reg = client.register_tool({"tool": {"name": "echo", "description": "echo, registered by pytest", "version": "9"},
                                "network": {"allowlist": []}})
    assert reg.tool == "echo" and reg.status == "registered"
    assert client.tool("echo").source == "registered"
    rl = client.reload_tools()
    assert "echo" in rl.tools and rl.reloaded >= 1


def test_credentials(client, upstream):
    port = upstream.server_address[1]
    c = client.put_credential(CRED, SECRET, "127.0.0.1", port=port, allow_http=True)
    assert c.name == CRED and c.host == "127.0.0.1" and c.port == port and c.allow_http
    assert SECRET not in json.dumps(c.raw)
    listed = {x.name: x for x in client.list_credentials()}
    assert CRED in listed and SECRET not in json.dumps(listed[CRED].raw)
    client.put_credential("pytmp", "v-" + SECRET, "example.com")
    client.delete_credential("pytmp")
    assert "pytmp" not in [x.name for x in client.list_credentials()]
    with pytest.raises(clawbox.NotFound):
        client.delete_credential("pytmp")


def test_policy_check(client, upstream):
    up = f"http://127.0.0.1:{upstream.server_address[1]}/x"
    ok = client.check_policy(up)
    assert ok.allowed and ok.policy == "server" and ok.rule and ok.door == "proxy"
    fw = client.check_policy(up, door="forward")
    assert fw.allowed and fw.door == "forward"
    no = client.check_policy("http://127.0.0.1:9/", method="POST")
    assert not no.allowed and no.reason
    t = client.check_policy("https://example.com/", tool="echo")
    assert not t.allowed and t.policy == "tool echo"


def test_audit_query_and_stream(client):
    poll("the echo tool to load", 120, lambda: client.tool_status("echo").sha256)
    got = []
    with client.audit_stream(tool="echo", kind="execution", read_timeout=60) as stream:
        def reader():
            for rec in stream:
                got.append(rec)
                return
        th = threading.Thread(target=reader)
        th.start()
        # The stream is subscribed once the answer's headers arrived: run the tool now.
        poll("the streamed execution record", 60, lambda: client.execute("echo", {"n": 1}) and (th.join(0.5) or got))
        th.join(30)
    assert got and got[0].kind == "execution" and got[0].tool == "echo"
    recs = client.audit(tool="echo", kind="execution", limit=2)
    assert 1 <= len(recs) <= 2 and all(r.tool == "echo" for r in recs)


def test_audit_stream_close_ends_blocked_read(client):
    stream = client.audit_stream(container_id="clawbox-none")
    done = threading.Event()

    def reader():
        for _ in stream:
            pass
        done.set()

    th = threading.Thread(target=reader)
    th.start()
    stream.close()
    th.join(30)
    assert done.is_set()
