"""Exceptions raised by the clawbox SDK.

Every error the server answers with is ``{"error": message, "code": code, "details": ...}``;
the SDK raises the subclass of :class:`ClawboxError` for the code's family, with
``code``, ``message``, ``details`` and the HTTP ``status``. A server that cannot be reached
raises :class:`Unreachable`.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Type

__all__ = [
    "ClawboxError",
    "InvalidRequest",
    "Unauthenticated",
    "NotFound",
    "MethodNotAllowed",
    "Conflict",
    "PolicyDenied",
    "LeakDetected",
    "ResourceExhausted",
    "RateLimited",
    "Unavailable",
    "Timeout",
    "ToolFailed",
    "InternalError",
    "Unreachable",
    "NoAnswer",
    "ProtocolError",
    "error_from_body",
    "CODE_CLASSES",
]


class ClawboxError(Exception):
    """Base class of every error of the SDK.

    Attributes:
        code: the stable error code (``"not_found"``, ``"policy_denied"``, ...).
        message: a human-readable description, safe to show.
        details: optional structured context (for example the offending field).
        status: the HTTP status the server answered with (0 when there was none).
    """

    def __init__(self, message: str, code: str = "internal_error", details: Any = None, status: int = 0) -> None:
        super().__init__(f"{code}: {message}" if code else message)
        self.code = code
        self.message = message
        self.details = details
        self.status = status


class InvalidRequest(ClawboxError):
    """The request was refused as malformed: invalid_json, invalid_request,
    request_too_large, unsupported_media_type, invalid_module, module_limit_exceeded,
    protocol_not_supported (a door's CONNECT tunnel that is not TLS or not HTTP)."""


class Unauthenticated(ClawboxError):
    """A missing or wrong token: auth_required (API), unauthorized (a door's POST /proxy)
    or proxy_auth_required (a door's forward or CONNECT request)."""


class NotFound(ClawboxError):
    """An unknown route or object: not_found, tool_not_found, image_not_found."""


class MethodNotAllowed(ClawboxError):
    """The route does not take this method: method_not_allowed."""


class Conflict(ClawboxError):
    """The object already exists: conflict."""


class PolicyDenied(ClawboxError):
    """A policy refused the request: policy_denied, blocked_by_policy, image_not_allowed,
    private_address, host_not_allowed, origin_not_allowed, permission_denied,
    host_mismatch."""


class LeakDetected(PolicyDenied):
    """The egress gateway found a credential's value in an outgoing request: leak_detected."""


class ResourceExhausted(ClawboxError):
    """A capacity limit was reached: resource_exhausted, output_too_large, quota_exceeded."""


class RateLimited(ResourceExhausted):
    """A rate limit was reached: rate_limited."""


class Unavailable(ClawboxError):
    """A backend is not available or the server is busy: unavailable, busy, upstream_error.
    For busy, ``retry_after`` holds the server's Retry-After in seconds, if it sent one."""

    retry_after: Optional[float] = None


class Timeout(ClawboxError):
    """Something took too long: timeout, upstream_timeout."""


class ToolFailed(ClawboxError):
    """A WASM tool ran and failed: tool_failed."""


class InternalError(ClawboxError):
    """The server's own fault (internal_error), or an answer without a known code."""


class Unreachable(ClawboxError):
    """The server (or a door) could not be reached: nothing was sent.

    Attributes:
        url: where the SDK tried to connect.
        cause: the underlying OS error.
    """

    def __init__(self, url: str, cause: BaseException) -> None:
        super().__init__(
            f"cannot reach the clawbox server at {url}: {cause} (is it running? start it with: clawbox serve)",
            code="unreachable",
        )
        self.url = url
        self.cause = cause


class NoAnswer(Timeout):
    """The server accepted the request but did not answer in time (code ``no_answer``)."""


class ProtocolError(ClawboxError):
    """The server's answer could not be decoded, or a stream ended before its final frame
    (code ``protocol_error``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="protocol_error")


CODE_CLASSES: Dict[str, Type[ClawboxError]] = {
    "invalid_json": InvalidRequest,
    "invalid_request": InvalidRequest,
    "request_too_large": InvalidRequest,
    "unsupported_media_type": InvalidRequest,
    "invalid_module": InvalidRequest,
    "module_limit_exceeded": InvalidRequest,
    "protocol_not_supported": InvalidRequest,
    "auth_required": Unauthenticated,
    "unauthorized": Unauthenticated,
    "proxy_auth_required": Unauthenticated,
    "not_found": NotFound,
    "tool_not_found": NotFound,
    "image_not_found": NotFound,
    "method_not_allowed": MethodNotAllowed,
    "conflict": Conflict,
    "policy_denied": PolicyDenied,
    "blocked_by_policy": PolicyDenied,
    "image_not_allowed": PolicyDenied,
    "private_address": PolicyDenied,
    "host_not_allowed": PolicyDenied,
    "origin_not_allowed": PolicyDenied,
    "permission_denied": PolicyDenied,
    "host_mismatch": PolicyDenied,
    "leak_detected": LeakDetected,
    "resource_exhausted": ResourceExhausted,
    "output_too_large": ResourceExhausted,
    "quota_exceeded": ResourceExhausted,
    "rate_limited": RateLimited,
    "busy": Unavailable,
    "unavailable": Unavailable,
    "upstream_error": Unavailable,
    "timeout": Timeout,
    "upstream_timeout": Timeout,
    "tool_failed": ToolFailed,
    "internal_error": InternalError,
}
"""Maps every stable error code of the API to the exception class raised for it."""


def error_from_body(status: int, body: Any, fallback: str = "") -> ClawboxError:
    """Returns the exception for an error answer: ``body`` is the decoded JSON body
    (or anything else, for an answer that is not an API error)."""
    if isinstance(body, dict) and isinstance(body.get("code"), str) and body["code"]:
        code = body["code"]
        cls = CODE_CLASSES.get(code, InternalError)
        return cls(str(body.get("error", "")), code=code, details=body.get("details"), status=status)
    return InternalError(fallback or f"server answered HTTP {status}", code="internal_error", status=status)
