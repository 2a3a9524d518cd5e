"""clawbox: the Python SDK of the sandbox AI agents run their code in.

Quick use::

    import clawbox
    client = clawbox.Client.from_env()
    with client.spawn("alpine", ["sleep", "300"]) as sb:
        print(sb.exec("echo hi").stdout)

See :class:`Client`, :class:`Sandbox`, the exceptions in :mod:`clawbox.errors`, the wire
types in :mod:`clawbox.types` and, for code inside a sandbox, :mod:`clawbox.door`.
"""

from . import door, errors, types
from ._config import read_token_file, server_url
from ._http import UnixHTTPConnection
from .client import DEFAULT_TIMEOUT, AuditStream, Client, ExecStream, Sandbox
from .errors import (
    ClawboxError,
    Conflict,
    InternalError,
    InvalidRequest,
    LeakDetected,
    MethodNotAllowed,
    NoAnswer,
    NotFound,
    PolicyDenied,
    ProtocolError,
    RateLimited,
    ResourceExhausted,
    Timeout,
    ToolFailed,
    Unauthenticated,
    Unavailable,
    Unreachable,
)

__version__ = "0.1.0"
"""The SDK's version."""

__all__ = [
    "Client", "Sandbox", "ExecStream", "AuditStream", "DEFAULT_TIMEOUT", "UnixHTTPConnection",
    "read_token_file", "server_url", "door", "errors", "types",
    "ClawboxError", "Conflict", "InternalError", "InvalidRequest", "LeakDetected",
    "MethodNotAllowed", "NoAnswer", "NotFound", "PolicyDenied", "ProtocolError",
    "RateLimited", "ResourceExhausted", "Timeout", "ToolFailed", "Unauthenticated",
    "Unavailable", "Unreachable",
]
