"""The clawbox API client and its sandbox objects."""

from __future__ import annotations

import base64
import json
import time
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Union

from ._config import discover
from ._http import Response, Transport
from .errors import ClawboxError, ProtocolError, error_from_body
from .types import (
    AuditRecord,
    ContainerInfo,
    ContainerLogs,
    Credential,
    ExecExit,
    ExecOutput,
    ExecResult,
    ExecuteResponse,
    FileList,
    FileWritten,
    HealthResponse,
    Image,
    KillResponse,
    LogFrame,
    PolicyCheckResponse,
    PullProgress,
    ToolInfo,
    ToolRegisterResponse,
    ToolReloadResponse,
    ToolStatus,
)

__all__ = ["Client", "Sandbox", "ExecStream", "AuditStream", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 60.0
"""Seconds a request may take unless the client is given another timeout."""

_q = __import__("urllib.parse", fromlist=["quote"]).quote


def _seg(s: str) -> str:
    return _q(s, safe="")


def _drop_none(d: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


class Client:
    """A client of one clawbox server.

    Args:
        base_url: the server's URL, e.g. ``http://127.0.0.1:9800``.
        token: the API bearer token.
        timeout: seconds a request may take (None: no limit); streams have none.
        unix_socket: connect to this Unix socket (``server.unix_socket``) instead of the
            URL's host and port.

    Use :meth:`from_env` to find the server and token like the CLI does.
    """

    def __init__(self, base_url: str = "http://127.0.0.1:9800", token: str = "", timeout: Optional[float] = DEFAULT_TIMEOUT, unix_socket: str = "") -> None:
        self._t = Transport(base_url, token=token, timeout=timeout, unix_socket=unix_socket)

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None, config_file: str = "", timeout: Optional[float] = DEFAULT_TIMEOUT) -> "Client":
        """Finds the server and token like the CLI: ``CLAWBOX_HOST``, ``CLAWBOX_PORT`` and
        ``CLAWBOX_AUTH_TOKEN``, then ``server.host``, ``server.port``, ``server.auth_token``
        and ``server.auth_token_file`` of ``config.toml`` in ``CLAWBOX_HOME`` (default
        ``~/.clawbox``). ``env`` replaces os.environ; ``config_file`` names the config.
        Raises ValueError when no token is found or a value is bad."""
        url, token, _ = discover(env, config_file)
        return cls(url, token=token, timeout=timeout)

    @property
    def base_url(self) -> str:
        """The server's URL."""
        return self._t.base_url

    # --- health, metadata -----------------------------------------------------------

    def health(self) -> HealthResponse:
        """GET /health: the server's status and, with a valid token, its components."""
        return HealthResponse.from_dict(self._t.json("GET", "/health"))

    def openapi(self) -> Dict[str, Any]:
        """GET /openapi.json: the API's OpenAPI 3.1 document."""
        return self._t.json("GET", "/openapi.json")

    def metrics(self) -> str:
        """GET /metrics: the Prometheus metrics as text."""
        return self._t.request("GET", "/metrics").read().decode()

    # --- WASM tools -------------------------------------------------------------------

    def execute(
        self,
        tool: str,
        params: Any = None,
        allowlist: Optional[Sequence[str]] = None,
        credentials: Optional[Sequence[str]] = None,
        timeout_ms: Optional[int] = None,
        memory_mb: Optional[int] = None,
    ) -> ExecuteResponse:
        """POST /execute: runs a WASM tool with ``params`` (any JSON value). The
        capabilities narrow what the tool's manifest allows. A run that fails inside the
        tool answers with ``status`` "error"; refusals raise."""
        body: Dict[str, Any] = {"tool": tool}
        if params is not None:
            body["params"] = params
        caps: Dict[str, Any] = {}
        if allowlist is not None:
            caps["network"] = {"allowlist": list(allowlist)}
        if credentials is not None:
            caps["credentials"] = list(credentials)
        res = _drop_none({"timeout_ms": timeout_ms, "memory_mb": memory_mb})
        if res:
            caps["resources"] = res
        if caps:
            body["capabilities"] = caps
        return ExecuteResponse.from_dict(self._t.json("POST", "/execute", body=body, timeout=None))

    def list_tools(self) -> List[ToolInfo]:
        """GET /tools: the loaded tools with their manifests."""
        return [ToolInfo.from_dict(d) for d in self._t.json("GET", "/tools") or []]

    def tool(self, name: str) -> ToolInfo:
        """GET /tools/{name}: one tool (NotFound for an unknown one)."""
        return ToolInfo.from_dict(self._t.json("GET", f"/tools/{_seg(name)}"))

    def tool_status(self, name: str) -> ToolStatus:
        """GET /tools/{name}/status: whether its module is loaded, or why not."""
        return ToolStatus.from_dict(self._t.json("GET", f"/tools/{_seg(name)}/status"))

    def register_tool(self, manifest: Mapping[str, Any]) -> ToolRegisterResponse:
        """POST /tools/register: registers (or replaces) a tool's manifest, e.g.
        ``{"tool": {"name": "echo", "description": "...", "version": "1"},
        "network": {"allowlist": []}}``."""
        return ToolRegisterResponse.from_dict(self._t.json("POST", "/tools/register", body=dict(manifest)))

    def reload_tools(self) -> ToolReloadResponse:
        """POST /tools/reload: reloads the tool directory now."""
        return ToolReloadResponse.from_dict(self._t.json("POST", "/tools/reload", timeout=None))

    # --- container sandboxes ----------------------------------------------------------

    def spawn(
        self,
        image: str = "",
        command: Optional[Sequence[str]] = None,
        *,
        task: str = "",
        labels: Optional[Mapping[str, str]] = None,
        env: Optional[Mapping[str, str]] = None,
        policy: str = "",
        allowlist: Optional[Sequence[str]] = None,
        credentials: Optional[Sequence[str]] = None,
        timeout_ms: Optional[int] = None,
        memory_mb: Optional[int] = None,
        cpu_shares: Optional[int] = None,
        cpus: Optional[float] = None,
        max_output_bytes: Optional[int] = None,
        workspace: bool = False,
    ) -> "Sandbox":
        """POST /containers/spawn: starts a hardened container sandbox and returns it.

        ``image`` empty means the server's default; ``command`` overrides the image's CMD;
        ``allowlist`` narrows the server's egress rules; ``credentials`` names the
        credentials the door may inject. Use the result as a context manager to kill the
        sandbox on exit."""
        body: Dict[str, Any] = {}
        for k, v in (("task", task), ("image", image), ("policy", policy)):
            if v:
                body[k] = v
        if labels:
            body["labels"] = dict(labels)
        if env:
            body["env"] = dict(env)
        if command is not None:
            body["command"] = list(command)
        caps: Dict[str, Any] = {}
        if allowlist is not None:
            caps["network"] = {"allowlist": list(allowlist)}
        if credentials is not None:
            caps["credentials"] = list(credentials)
        res = _drop_none({"timeout_ms": timeout_ms, "memory_mb": memory_mb, "cpu_shares": cpu_shares, "cpus": cpus, "max_output_bytes": max_output_bytes})
        if res:
            caps["resources"] = res
        if workspace:
            caps["workspace"] = True
        if caps:
            body["capabilities"] = caps
        info = ContainerInfo.from_dict(self._t.json("POST", "/containers/spawn", body=body, timeout=None))
        return Sandbox(self, info)

    def sandbox(self, container_id: str) -> "Sandbox":
        """GET /containers/{id}: the sandbox with this id (NotFound if there is none)."""
        return Sandbox(self, self.container(container_id))

    def container(self, container_id: str) -> ContainerInfo:
        """GET /containers/{id}: one sandbox's record."""
        return ContainerInfo.from_dict(self._t.json("GET", f"/containers/{_seg(container_id)}"))

    def list_containers(self, status: str = "", labels: Optional[Mapping[str, str]] = None) -> List[ContainerInfo]:
        """GET /containers: sandboxes, newest first, optionally only those in ``status``
        and carrying every one of ``labels``."""
        q: List[Any] = []
        if status:
            q.append(("status", status))
        for k in sorted(labels or {}):
            q.append(("label", f"{k}={labels[k]}"))  # type: ignore[index]
        d = self._t.json("GET", "/containers", query=q or None)
        return [ContainerInfo.from_dict(c) for c in (d or {}).get("containers") or []]

    def kill(self, container_id: str, workspace: bool = False) -> KillResponse:
        """DELETE /containers/{id}: kills a sandbox (idempotent); ``workspace=True`` also
        removes its workspace."""
        q = {"workspace": "true"} if workspace else None
        return KillResponse.from_dict(self._t.json("DELETE", f"/containers/{_seg(container_id)}", query=q, timeout=None))

    def extend(self, container_id: str, timeout_ms: int) -> ContainerInfo:
        """PATCH /containers/{id}: sets a running sandbox's deadline to ``timeout_ms``
        from now (it may shorten or extend its lifetime)."""
        return ContainerInfo.from_dict(self._t.json("PATCH", f"/containers/{_seg(container_id)}", body={"timeout_ms": timeout_ms}))

    def wait(self, container_id: str, timeout: Optional[float] = None) -> ContainerInfo:
        """Polls a sandbox until it is in a final status and returns its record; raises
        TimeoutError after ``timeout`` seconds (None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = 0.05
        while True:
            info = self.container(container_id)
            if info.finished:
                return info
            if deadline is not None and time.monotonic() + interval > deadline:
                raise TimeoutError(f"sandbox {container_id} still {info.status} after {timeout}s")
            time.sleep(interval)
            interval = min(interval * 2, 1.0)

    def logs(self, container_id: str) -> ContainerLogs:
        """GET /containers/{id}/logs: a sandbox's kept stdout and stderr."""
        return ContainerLogs.from_dict(self._t.json("GET", f"/containers/{_seg(container_id)}/logs"))

    def follow_logs(self, container_id: str) -> Iterator[LogFrame]:
        """GET /containers/{id}/logs?follow=true: yields the output frames as they come;
        the last frame has ``stream`` "status" once the sandbox stopped (or "error").
        Close the generator to stop early."""
        r = self._t.request("GET", f"/containers/{_seg(container_id)}/logs", query={"follow": "true"}, timeout=None)
        try:
            for line in r.lines():
                if line:
                    yield LogFrame.from_dict(_decode(line, "log frame"))
        finally:
            r.close()

    # --- exec and files ---------------------------------------------------------------

    @staticmethod
    def _exec_body(cmd: Union[str, Sequence[str]], env: Optional[Mapping[str, str]], workdir: str, timeout_ms: int, stdin: Union[None, str, bytes]) -> Dict[str, Any]:
        if isinstance(cmd, str):
            cmd = ["/bin/sh", "-c", cmd]
        body: Dict[str, Any] = {"cmd": list(cmd)}
        if env:
            body["env"] = dict(env)
        if workdir:
            body["workdir"] = workdir
        if timeout_ms:
            body["timeout_ms"] = timeout_ms
        if isinstance(stdin, bytes):
            body["stdin_base64"] = base64.b64encode(stdin).decode()
        elif stdin is not None:
            body["stdin"] = stdin
        return body

    def exec(
        self,
        container_id: str,
        cmd: Union[str, Sequence[str]],
        *,
        env: Optional[Mapping[str, str]] = None,
        workdir: str = "",
        timeout_ms: int = 0,
        stdin: Union[None, str, bytes] = None,
    ) -> ExecResult:
        """POST /containers/{id}/exec?stream=false: runs a command in a running sandbox
        and returns its exit and whole output. A string ``cmd`` runs with /bin/sh -c. A
        non-zero exit is a result, not an error."""
        body = self._exec_body(cmd, env, workdir, timeout_ms, stdin)
        d = self._t.json("POST", f"/containers/{_seg(container_id)}/exec", query={"stream": "false"}, body=body, timeout=None)
        return ExecResult.from_dict(d)

    def exec_stream(
        self,
        container_id: str,
        cmd: Union[str, Sequence[str]],
        *,
        env: Optional[Mapping[str, str]] = None,
        workdir: str = "",
        timeout_ms: int = 0,
        stdin: Union[None, str, bytes] = None,
    ) -> "ExecStream":
        """POST /containers/{id}/exec: runs a command and streams its output. Iterate the
        result for :class:`ExecOutput` chunks; afterwards its ``exit`` holds the
        :class:`ExecExit` (or call :meth:`ExecStream.wait`)."""
        body = self._exec_body(cmd, env, workdir, timeout_ms, stdin)
        r = self._t.request("POST", f"/containers/{_seg(container_id)}/exec", body=body, timeout=None)
        return ExecStream(r)

    def write_file(self, container_id: str, path: str, data: Union[str, bytes], mode: int = 0) -> FileWritten:
        """PUT /containers/{id}/files: writes ``data`` to ``path`` in a running sandbox
        (as the sandbox user; ``mode`` like 0o755, 0 for the default)."""
        if isinstance(data, str):
            data = data.encode()
        q = {"path": path}
        if mode:
            q["mode"] = f"{mode:04o}"
        d = self._t.json("PUT", f"/containers/{_seg(container_id)}/files", query=q, raw=data, content_type="application/octet-stream", timeout=None)
        return FileWritten.from_dict(d)

    def read_file(self, container_id: str, path: str) -> bytes:
        """GET /containers/{id}/files?path=...: a file's content."""
        r = self._t.request("GET", f"/containers/{_seg(container_id)}/files", query={"path": path}, timeout=None)
        want = r.headers.get("Content-Length")
        b = r.read()
        if want is not None and want.isdigit() and len(b) != int(want):
            raise ProtocolError(f"read {path}: got {len(b)} of {want} bytes")
        return b

    def list_files(self, container_id: str, path: str) -> FileList:
        """GET /containers/{id}/files?path=...&list=true: a directory's entries."""
        return FileList.from_dict(self._t.json("GET", f"/containers/{_seg(container_id)}/files", query={"path": path, "list": "true"}))

    def remove_file(self, container_id: str, path: str, recursive: bool = False) -> None:
        """DELETE /containers/{id}/files: removes a file (a directory with recursive)."""
        q = {"path": path}
        if recursive:
            q["recursive"] = "true"
        self._t.request("DELETE", f"/containers/{_seg(container_id)}/files", query=q).read()

    # --- images -----------------------------------------------------------------------

    def list_images(self) -> List[Image]:
        """GET /images: the local images that containers.allowed_images allows."""
        d = self._t.json("GET", "/images")
        return [Image.from_dict(i) for i in (d or {}).get("images") or []]

    def pull_image(self, image: str, progress: Optional[Callable[[PullProgress], None]] = None) -> PullProgress:
        """POST /images/pull: pulls an allowed image, calling ``progress`` with each
        frame, and returns the final frame (``done``, ``image_id``, ``digest``). A failed
        pull raises the error class of the final frame's code."""
        r = self._t.request("POST", "/images/pull", body={"image": image}, timeout=None)
        try:
            for line in r.lines():
                if not line:
                    continue
                f = PullProgress.from_dict(_decode(line, "pull progress"))
                if progress is not None:
                    progress(f)
                if f.error:
                    raise error_from_body(r.status, {"code": f.code or "internal_error", "error": f.error})
                if f.done:
                    return f
        finally:
            r.close()
        raise ProtocolError("the pull stream ended before its final frame")

    # --- credentials ------------------------------------------------------------------

    def list_credentials(self) -> List[Credential]:
        """GET /credentials: names and bindings, never values."""
        d = self._t.json("GET", "/credentials")
        return [Credential.from_dict(c) for c in (d or {}).get("credentials") or []]

    def put_credential(
        self,
        name: str,
        value: str,
        host: str,
        *,
        header: str = "",
        prefix: Optional[str] = None,
        path_prefix: str = "",
        methods: Optional[Sequence[str]] = None,
        port: int = 0,
        allow_http: bool = False,
        placeholder: bool = False,
        placeholder_query: bool = False,
    ) -> Credential:
        """PUT /credentials/{name}: creates or replaces a credential bound to ``host``.
        The value is write-only: the answer and every later read omit it."""
        body: Dict[str, Any] = {"value": value, "host": host}
        if header:
            body["header"] = header
        if prefix is not None:
            body["prefix"] = prefix
        if path_prefix:
            body["path_prefix"] = path_prefix
        if methods:
            body["methods"] = list(methods)
        if port:
            body["port"] = port
        for k, v in (("allow_http", allow_http), ("placeholder", placeholder), ("placeholder_query", placeholder_query)):
            if v:
                body[k] = True
        return Credential.from_dict(self._t.json("PUT", f"/credentials/{_seg(name)}", body=body))

    def delete_credential(self, name: str) -> None:
        """DELETE /credentials/{name}: deletes a credential (NotFound if there is none)."""
        self._t.request("DELETE", f"/credentials/{_seg(name)}").read()

    # --- policy and audit -------------------------------------------------------------

    def check_policy(self, url: str, method: str = "", container_id: str = "", tool: str = "", door: str = "") -> PolicyCheckResponse:
        """POST /policy/check: what the gateway would decide for a request from this
        sandbox, this tool, or (neither) a new spawn; nothing is sent. ``door`` is the
        way it would come: "proxy" (default), "forward" or "connect"."""
        body = {k: v for k, v in (("url", url), ("method", method), ("container_id", container_id), ("tool", tool), ("door", door)) if v}
        body["url"] = url
        return PolicyCheckResponse.from_dict(self._t.json("POST", "/policy/check", body=body))

    @staticmethod
    def _audit_query(container_id: str, tool: str, decision: str, kind: str, since: str) -> Dict[str, str]:
        return {k: v for k, v in (("container_id", container_id), ("tool", tool), ("decision", decision), ("kind", kind), ("since", since)) if v}

    def audit(self, container_id: str = "", tool: str = "", decision: str = "", kind: str = "", since: str = "", limit: int = 0) -> List[AuditRecord]:
        """GET /audit: audit records matching every filter given. ``decision`` is allowed,
        blocked, leak, rate_limited or error; ``kind`` request, lifecycle, execution or gap;
        ``since`` an RFC 3339 time or a duration such as "15m"."""
        q = self._audit_query(container_id, tool, decision, kind, since)
        if limit:
            q["limit"] = str(limit)
        d = self._t.json("GET", "/audit", query=q or None)
        return [AuditRecord.from_dict(r) for r in (d or {}).get("records") or []]

    def audit_stream(self, container_id: str = "", tool: str = "", decision: str = "", kind: str = "", since: str = "", read_timeout: Optional[float] = None) -> "AuditStream":
        """GET /audit/stream: an iterator of audit records as they are written (Server-Sent
        Events), with the filters of :meth:`audit`. It runs until closed (``close()`` or a
        ``with`` block); ``read_timeout`` ends a read that waits longer with TimeoutError."""
        q = self._audit_query(container_id, tool, decision, kind, since)
        r = self._t.request("GET", "/audit/stream", query=q or None, timeout=read_timeout)
        return AuditStream(r)


def _decode(line: bytes, what: str) -> Dict[str, Any]:
    try:
        d = json.loads(line)
    except ValueError as e:
        raise ProtocolError(f"cannot decode {what} {line[:200]!r}: {e}") from None
    if not isinstance(d, dict):
        raise ProtocolError(f"{what} is not a JSON object: {line[:200]!r}")
    return d


class ExecStream:
    """The output of a streamed exec: iterate it for :class:`ExecOutput` chunks. Once the
    iteration ends, ``exit`` holds how the command ended. An error frame raises its
    error class; a stream that ends without an exit raises ProtocolError."""

    def __init__(self, resp: Response) -> None:
        self._r = resp
        self._it = self._frames()
        self.exit: Optional[ExecExit] = None

    def _frames(self) -> Iterator[ExecOutput]:
        try:
            for line in self._r.lines():
                if not line:
                    continue
                f = _decode(line, "exec frame")
                if f.get("error") is not None:
                    e = f["error"]
                    raise error_from_body(200, e if isinstance(e, dict) else {"code": "internal_error", "error": str(e)})
                if "exit_code" in f or "ended_by" in f:
                    self.exit = ExecExit.from_dict(f)
                    return
                if f.get("data_base64"):
                    data = base64.b64decode(f["data_base64"])
                else:
                    data = str(f.get("data", "")).encode()
                yield ExecOutput(stream=str(f.get("stream", "stdout")), data=data)
            raise ProtocolError("the exec stream ended before the command's exit was reported")
        finally:
            self._r.close()

    def __iter__(self) -> Iterator[ExecOutput]:
        return self._it

    def __next__(self) -> ExecOutput:
        return next(self._it)

    def wait(self, stdout: Optional[Callable[[bytes], Any]] = None, stderr: Optional[Callable[[bytes], Any]] = None) -> ExecExit:
        """Reads the rest of the stream, handing chunks to ``stdout`` / ``stderr`` (for
        example ``sys.stdout.buffer.write``), and returns the exit."""
        for chunk in self._it:
            fn = stderr if chunk.stream == "stderr" else stdout
            if fn is not None:
                fn(chunk.data)
        if self.exit is None:
            raise ProtocolError("the exec stream ended before the command's exit was reported")
        return self.exit

    def close(self) -> None:
        """Stops reading and closes the connection (idempotent)."""
        self._it.close()  # type: ignore[attr-defined]
        self._r.close()

    def __enter__(self) -> "ExecStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AuditStream:
    """A live stream of audit records: iterate it; close it (or use ``with``) to stop."""

    def __init__(self, resp: Response) -> None:
        self._r = resp
        self._it = self._events()
        self._closed = False

    def _events(self) -> Iterator[AuditRecord]:
        data: List[str] = []
        try:
            for raw in self._r.lines():
                line = raw.decode("utf-8", "replace")
                if line == "":
                    if data:
                        yield AuditRecord.from_dict(_decode("\n".join(data).encode(), "audit event"))
                        data = []
                elif line.startswith("data:"):
                    v = line[5:]
                    data.append(v[1:] if v.startswith(" ") else v)
        finally:
            self._r.close()

    def __iter__(self) -> Iterator[AuditRecord]:
        return self._it

    def __next__(self) -> AuditRecord:
        return next(self._it)

    def close(self) -> None:
        """Closes the stream (idempotent; safe from another thread to end a blocked read)."""
        self._closed = True
        self._r.close()

    def __enter__(self) -> "AuditStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Sandbox:
    """A container sandbox. ``info`` is its last known record (refresh with
    :meth:`refresh`). Used as a context manager, it is killed on exit."""

    def __init__(self, client: Client, info: ContainerInfo) -> None:
        self.client = client
        self.info = info

    @property
    def id(self) -> str:
        """The sandbox's id ("clawbox-<uuid>")."""
        return self.info.container_id

    @property
    def status(self) -> str:
        """The status of the last known record (see :meth:`refresh`)."""
        return self.info.status

    def refresh(self) -> ContainerInfo:
        """Reloads and returns the sandbox's record."""
        self.info = self.client.container(self.id)
        return self.info

    def exec(self, cmd: Union[str, Sequence[str]], **kw: Any) -> ExecResult:
        """Runs a command and returns its result (see :meth:`Client.exec`)."""
        return self.client.exec(self.id, cmd, **kw)

    def exec_stream(self, cmd: Union[str, Sequence[str]], **kw: Any) -> ExecStream:
        """Runs a command and streams its output (see :meth:`Client.exec_stream`)."""
        return self.client.exec_stream(self.id, cmd, **kw)

    def write_file(self, path: str, data: Union[str, bytes], mode: int = 0) -> FileWritten:
        """Writes a file in the sandbox (see :meth:`Client.write_file`)."""
        return self.client.write_file(self.id, path, data, mode)

    def read_file(self, path: str) -> bytes:
        """Reads a file of the sandbox."""
        return self.client.read_file(self.id, path)

    def list_files(self, path: str) -> FileList:
        """Lists a directory of the sandbox."""
        return self.client.list_files(self.id, path)

    def remove_file(self, path: str, recursive: bool = False) -> None:
        """Removes a file (or, recursive, a directory) of the sandbox."""
        self.client.remove_file(self.id, path, recursive)

    def logs(self) -> ContainerLogs:
        """The sandbox's kept stdout and stderr."""
        return self.client.logs(self.id)

    def follow_logs(self) -> Iterator[LogFrame]:
        """Yields the sandbox's output frames as they come, ending with a "status" frame."""
        return self.client.follow_logs(self.id)

    def extend(self, timeout_ms: int) -> ContainerInfo:
        """Sets the deadline to ``timeout_ms`` from now."""
        self.info = self.client.extend(self.id, timeout_ms)
        return self.info

    def kill(self, workspace: bool = False) -> KillResponse:
        """Kills the sandbox (idempotent) and returns its final status and output."""
        k = self.client.kill(self.id, workspace=workspace)
        self.info.status = k.status
        return k

    def wait(self, timeout: Optional[float] = None) -> ContainerInfo:
        """Waits until the sandbox ends and returns its final record."""
        self.info = self.client.wait(self.id, timeout)
        return self.info

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.kill()
        except ClawboxError:
            if exc[0] is None:
                raise

    def __repr__(self) -> str:
        return f"Sandbox({self.id!r}, status={self.status!r})"
