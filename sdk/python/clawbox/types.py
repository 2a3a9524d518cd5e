"""Wire types of the clawbox API, as dataclasses.

Each type mirrors the Go type of the same name in the ``api`` package; fields keep the
JSON names. Times are kept as the RFC 3339 strings the server sends. Every type has
``from_dict`` (unknown keys are ignored, so newer servers stay readable) and ``raw``, the
decoded JSON it came from.
"""

from __future__ import annotations

import base64
import dataclasses
import sys
import typing
from typing import Any, Dict, List, Optional, Type, TypeVar

__all__ = [
    "ContainerInfo",
    "ContainerWorkspace",
    "ContainerLogs",
    "KillResponse",
    "LogFrame",
    "ExecExit",
    "ExecResult",
    "ExecOutput",
    "FileEntry",
    "FileList",
    "FileWritten",
    "HealthResponse",
    "ComponentHealth",
    "Image",
    "PullProgress",
    "PolicyCheckResponse",
    "Credential",
    "AuditRecord",
    "ExecuteResponse",
    "ExecutionMetadata",
    "LogEntry",
    "SanitizationReport",
    "ToolInfo",
    "ToolLoadError",
    "ToolStatus",
    "ToolRegisterResponse",
    "ToolReloadResponse",
    "ProxyResponse",
    "FINAL_STATUSES",
]

T = TypeVar("T", bound="_Wire")

FINAL_STATUSES = frozenset({"completed", "failed", "timed_out", "killed", "lost"})
"""The container statuses a sandbox ends in."""


def _convert(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union:
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value) if len(inner) == 1 else value
    if origin in (list, List) and args and isinstance(value, list):
        return [_convert(args[0], v) for v in value]
    if origin in (dict, Dict) and len(args) == 2 and isinstance(value, dict):
        return {k: _convert(args[1], v) for k, v in value.items()}
    if isinstance(tp, type) and issubclass(tp, _Wire) and isinstance(value, dict):
        return tp.from_dict(value)
    return value


class _Wire:
    """Base of the wire dataclasses: decoding from JSON."""

    @classmethod
    def from_dict(cls: Type[T], d: Dict[str, Any]) -> T:
        """Builds the type from its decoded JSON object."""
        hints = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))
        kw: Dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name == "raw":
                continue
            key = f.metadata.get("json", f.name)
            if key in d:
                kw[f.name] = _convert(hints[f.name], d[key])
        obj = cls(**kw)
        obj.raw = d  # type: ignore[attr-defined]
        return obj


def _raw() -> Any:
    return dataclasses.field(default_factory=dict, repr=False, compare=False)


@dataclasses.dataclass
class ContainerWorkspace(_Wire):
    """A sandbox's workspace: where it is mounted, its quota and what it uses."""

    path: str = ""
    quota_bytes: int = 0
    used_bytes: int = 0
    raw: Dict[str, Any] = _raw()


@dataclasses.dataclass
class ContainerInfo(_Wire):
    """One container sandbox (spawn, list, get, extend)."""

    container_id: str = ""
    status: str = ""
    policy: str = ""
    image: str = ""
    created_at: str = ""
    task_summary: str = ""
    labels: Dict[str, str] = dataclasses.field(default_factory=dict)
    proxy_socket: str = ""
    deadline: Optional[str] = None
    exit_code: Optional[int] = None
    oom_killed: bool = False
    paused: bool = False
    #: True when the spawn claimed a started sandbox from a warm pool.
    warm: bool = False
    finished_at: Optional[str] = None
    expires_at: Optional[str] = None
    workspace: Optional[ContainerWorkspace] = None
    raw: Dict[str, Any] = _raw()

    @property
    def finished(self) -> bool:
        """Whether the sandbox is in a final status."""
        return self.status in FINAL_STATUSES


@dataclasses.dataclass
class ContainerLogs(_Wire):
    """A sandbox's kept stdout and stderr (GET /containers/{id}/logs)."""

    container_id: str = ""
    stdout: str = ""
    stderr: str = ""
    truncated: bool = False
    raw: Dict[str, Any] = _raw()


@dataclasses.dataclass
class KillResponse(_Wire):
    """The answer of DELETE /containers/{id}: the final status and output."""

    container_id: str = ""
    status: str = ""
    exit_code: Optional[int] = None
    output: Optional[str] = None
    raw: Dict[str, Any] = _raw()


@dataclasses.dataclass
class LogFrame(_Wire):
    """One frame of a followed log: ``stream`` is "stdout"/"stderr" with ``data``, or
    "status" (the last frame, with ``status`` and ``exit_code``), or "error"."""

    stream: str = ""
    data: str = ""
    status: str = ""
    exit_code: Optional[int] = None
    error: str = ""
    raw: Dict[str, Any] = _raw()


@dataclasses.dataclass
class ExecExit(_Wire):
    """How an exec ended. ``ended_by`` is "exit", "exec_timeout", "sandbox_deadline",
    "sandbox_ended" or "supervisor_lost"."""

    exit_code: int = 0
    signal: int = 0
    timed_out: bool = False
    ended_by: str = ""
    truncated: bool = False
    duration_ms: int = 0
    raw: Dict[str, Any] = _raw()


@dataclasses.dataclass
class ExecResult(ExecExit):
    """The answer of a non-streamed exec: the exit and the whole output."""

    stdout: str = ""
    stderr: str = ""
    stdout_base64: str = ""
    stderr_base64: str = ""

    @property
    def stdout_bytes(self) -> bytes:
        """stdout as bytes (decoded from stdout_base64 when it was not UTF-8)."""
        return base64.b64decode(self.stdout_base64) if self.stdout_base64 else self.stdout.encode()

    @property
    def stderr_bytes(self) -> bytes:
        """stderr as bytes (decoded from stderr_base64 when it was not UTF-8)."""
        return base64.b64decode(self.stderr_base64) if self.stderr_base64 else self.stderr.encode()


@dataclasses.dataclass
class ExecOutput:
    """A chunk of a streamed exec's output: ``stream`` is "stdout" or "stderr"."""

    stream: str
    data: bytes

    @property
    def text(self) -> str:
        """The chunk decoded as UTF-8 (invalid bytes replaced)."""
        return self.data.decode("utf-8", "replace")


@dataclasses.dataclass
class FileEntry(_Wire):
    """One entry of a directory listing; ``mode`` holds the permission bits."""

    name: str = ""
    size: int = 0
    mode: int = 0
    is_dir: bool = False
    is_symlink: bool = False
    is_special: bool = False
    mtime: str = ""
    raw: Dict[str, Any] = _raw()


@dataclasses.dataclass
class FileList(_Wire):
    """A directory listing of a sandbox."""

    path: str = ""
    entries: List[FileEntry] = dataclasses.field(default_factory=list)
    raw: Dict[str, Any] = _raw()


@dataclasses.dataclass
class FileWritten(_Wire):
    """The answer of a file write: where, how big, with which mode."""

    path: str = ""
    size: int = 0
    mode: int = 0
    raw: Dict[str, Any] = _raw()


@dataclasses.dataclass
class ComponentHealth(_Wire):
    """The state of one subsystem: "ok", "unavailable" or "error"."""

    status: str = ""
    detail: Any = None
    raw: Dict[str, Any] = _raw()


@dataclasses.dataclass
class HealthResponse(_Wire):
    """The answer of GET /health (only ``status`` without a valid token)."""

    status: str = ""
    version: str = ""
    uptime_seconds: int = 0
    docker_available: Optional[bool] = None
    wasm_engine_ready: Optional[bool] = None
    active_containers: Optional[int] = None
    components: Dict[str, ComponentHealth] = dataclasses.field(default_factory=dict)
    raw: Dict[str, Any] = _raw()


@dataclasses.dataclass
class Image(_Wire):
    """A local image that containers.allowed_images allows."""

    id: str = ""
    repo_tags: List[str] = dataclasses.field(default_factory=list)
    repo_digests: List[str] = dataclasses.field(default_factory=list)
    size: int = 0
    created: str = ""
    raw: Dict[str, Any] = _raw()


@dataclasses.dataclass
class PullProgress(_Wire):
    """One frame of an image pull: progress, then ``done`` or ``error`` with ``code``."""

    status: str = ""
    id: str = ""
    current: int = 0
    total: int = 0
    done: bool = False
    image: str = ""
    image_id: str = ""
    digest: str = ""
    error: str = ""
    code: str = ""
    raw: Dict[str, Any] = _raw()


@dataclasses.dataclass
class PolicyCheckResponse(_Wire):
    """What the gateway would decide for a request, and which rule decided. ``door`` is
    the door checked ("proxy", "forward", "connect"); ``tunnel``, for an allowed
    "connect", is "intercept" or "passthrough"."""

    allowed: bool = False
    rule: str = ""
    reason: str = ""
    policy: str = ""
    rules: List[str] = dataclasses.field(default_factory=list)
    door: str = ""
    tunnel: str = ""
    raw: Dict[str, Any] = _raw()


@dataclasses.dataclass
class Credential(_Wire):
    """A stored credential: its name and binding, never its value."""

    name: str = ""
    host: str = ""
    header: str = ""
    prefix: str = ""
    path_prefix: str = ""
    methods: List[str] = dataclasses.field(default_factory=list)
    port: int = 0
    allow_http: bool = False
    placeholder: bool = False
    placeholder_query: bool = False
    updated_at: str = ""
    raw: Dict[str, Any] = _raw()


@dataclasses.dataclass
class AuditRecord(_Wire):
    """One audit record: an egress request, a lifecycle event, a tool execution or a gap."""

    time: str = ""
    kind: str = ""
    container_id: str = ""
    tool: str = ""
    request_id: str = ""
    door: str = ""
    passthrough: bool = False
    method: str = ""
    url: str = ""
    host: str = ""
    decision: str = ""
    rule: str = ""
    reason: str = ""
    credentials: List[str] = dataclasses.field(default_factory=list)
    status: int = 0
    bytes_out: int = 0
    bytes_in: int = 0
    latency_ms: int = 0
    event: str = ""
    exit_code: Optional[int] = None
    error: str = ""
    dropped: int = 0
    count: int = 0
    raw: Dict[str, Any] = _raw()


@dataclasses.dataclass
class LogEntry(_Wire):
    """A log line a tool wrote."""

    level: str = ""
    message: str = ""
    raw: Dict[str, Any] = _raw()


@dataclasses.dataclass
class SanitizationReport(_Wire):
    """What the output sanitizer found and did."""

    issues_found: int = 0
    actions_taken: List[str] = dataclasses.field(default_factory=list)
    raw: Dict[str, Any] = _raw()


@dataclasses.dataclass
class ExecutionMetadata(_Wire):
    """How a tool execution went: time, fuel, logs, sanitization."""

    execution_time_ms: int = 0
    fuel_consumed: int = 0
    logs: List[LogEntry] = dataclasses.field(default_factory=list)
    sanitization: Optional[SanitizationReport] = None
    raw: Dict[str, Any] = _raw()


@dataclasses.dataclass
class ExecuteResponse(_Wire):
    """The answer of POST /execute: ``status`` is "ok", "error", "timeout" or "blocked";
    ``output`` is the tool's decoded JSON output."""

    request_id: str = ""
    status: str = ""
    output: Any = None
    error: str = ""
    metadata: Optional[ExecutionMetadata] = None
    raw: Dict[str, Any] = _raw()


@dataclasses.dataclass
class ToolInfo(_Wire):
    """A loaded tool and its manifest (``tool``, ``network``, ``credentials``,
    ``resources``, ``input_schema``, ``output_schema`` as decoded JSON)."""

    tool: Dict[str, Any] = dataclasses.field(default_factory=dict)
    network: Optional[Dict[str, Any]] = None
    credentials: Optional[Dict[str, Any]] = None
    resources: Optional[Dict[str, Any]] = None
    input_schema: Any = None
    output_schema: Any = None
    source: str = ""
    sha256: str = ""
    reactor: bool = False
    loaded_at: str = ""
    raw: Dict[str, Any] = _raw()

    @property
    def name(self) -> str:
        """The tool's name (``tool.name`` of its manifest)."""
        return str(self.tool.get("name", ""))


@dataclasses.dataclass
class ToolLoadError(_Wire):
    """Why a tool's module could not be loaded."""

    name: str = ""
    file: str = ""
    error: str = ""
    code: str = ""
    sha256: str = ""
    raw: Dict[str, Any] = _raw()


@dataclasses.dataclass
class ToolStatus(_Wire):
    """Whether the module in the tool directory is loaded, or why not."""

    name: str = ""
    loading: bool = False
    watching: bool = False
    file_sha256: str = ""
    sha256: str = ""
    loaded_at: Optional[str] = None
    load_error: Optional[ToolLoadError] = None
    raw: Dict[str, Any] = _raw()


@dataclasses.dataclass
class ToolRegisterResponse(_Wire):
    """The answer of POST /tools/register."""

    status: str = ""
    tool: str = ""
    raw: Dict[str, Any] = _raw()


@dataclasses.dataclass
class ToolReloadResponse(_Wire):
    """The answer of POST /tools/reload: what loaded and what failed."""

    reloaded: int = 0
    tools: List[str] = dataclasses.field(default_factory=list)
    failed: List[ToolLoadError] = dataclasses.field(default_factory=list)
    raw: Dict[str, Any] = _raw()


@dataclasses.dataclass
class ProxyResponse(_Wire):
    """A door's answer: the upstream's status, headers (lower-case names) and body."""

    status: int = 0
    headers: Dict[str, str] = dataclasses.field(default_factory=dict)
    body: str = ""
    body_base64: str = ""
    truncated: bool = False
    raw: Dict[str, Any] = _raw()

    @property
    def status_code(self) -> int:
        """The upstream's status (``requests``-style name)."""
        return self.status

    @property
    def content(self) -> bytes:
        """The body as bytes."""
        return base64.b64decode(self.body_base64) if self.body_base64 else self.body.encode()

    @property
    def text(self) -> str:
        """The body as text."""
        return self.content.decode("utf-8", "replace")

    @property
    def ok(self) -> bool:
        """Whether the upstream's status is below 400."""
        return self.status < 400

    def json(self) -> Any:
        """The body decoded as JSON."""
        import json

        return json.loads(self.content)
