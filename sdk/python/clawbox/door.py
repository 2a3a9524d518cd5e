"""Requests from inside a sandbox through its egress door.

A sandbox (policy "container") reaches the network only through the door: an HTTP server
on the Unix socket named by ``CLAWBOX_PROXY_SOCKET``, authenticated with the sandbox's
token (``CLAWBOX_PROXY_TOKEN``, or the file named by ``CLAWBOX_PROXY_TOKEN_FILE``).
``POST /proxy`` forwards one request; the gateway applies the sandbox's policy, injects
credentials and records the request. Example, in a sandbox::

    from clawbox import door
    r = door.get("https://api.github.com/repos/clawbox/clawbox")
    print(r.status_code, r.json())
"""

from __future__ import annotations

import base64
import json as _json
import os
from typing import Any, Mapping, Optional, Union

from ._http import Transport
from .types import ProxyResponse

__all__ = ["Door", "from_env", "request", "get", "post", "put", "patch", "delete", "head"]

ENV_SOCKET = "CLAWBOX_PROXY_SOCKET"
ENV_TOKEN = "CLAWBOX_PROXY_TOKEN"
ENV_TOKEN_FILE = "CLAWBOX_PROXY_TOKEN_FILE"


class Door:
    """A client of a sandbox's door at ``socket`` with ``token``. Refusals raise the error
    class of the gateway's code (PolicyDenied, LeakDetected, RateLimited, ...)."""

    def __init__(self, socket: str, token: str, timeout: Optional[float] = 60.0) -> None:
        if not socket:
            raise ValueError("door: no socket path")
        if not token:
            raise ValueError("door: no token")
        self.socket = socket
        self._t = Transport("http://door", token=token, timeout=timeout, unix_socket=socket)

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Optional[Mapping[str, str]] = None,
        data: Union[None, str, bytes] = None,
        json: Any = None,
    ) -> ProxyResponse:
        """Sends one request through the door and returns the upstream's answer. ``data``
        is the body (text or bytes); ``json`` encodes a body as JSON (and sets its
        Content-Type unless ``headers`` does)."""
        body: dict = {"url": url, "method": method.upper()}
        h = dict(headers or {})
        if json is not None:
            if data is not None:
                raise ValueError("door: give data or json, not both")
            data = _json.dumps(json)
            if not any(k.lower() == "content-type" for k in h):
                h["Content-Type"] = "application/json"
        if h:
            body["headers"] = h
        if isinstance(data, bytes):
            try:
                body["body"] = data.decode("utf-8")
            except UnicodeDecodeError:
                body["body_base64"] = base64.b64encode(data).decode()
        elif data is not None:
            body["body"] = data
        return ProxyResponse.from_dict(self._t.json("POST", "/proxy", body=body))

    def get(self, url: str, **kw: Any) -> ProxyResponse:
        """GET through the door."""
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> ProxyResponse:
        """POST through the door."""
        return self.request("POST", url, **kw)

    def put(self, url: str, **kw: Any) -> ProxyResponse:
        """PUT through the door."""
        return self.request("PUT", url, **kw)

    def patch(self, url: str, **kw: Any) -> ProxyResponse:
        """PATCH through the door."""
        return self.request("PATCH", url, **kw)

    def delete(self, url: str, **kw: Any) -> ProxyResponse:
        """DELETE through the door."""
        return self.request("DELETE", url, **kw)

    def head(self, url: str, **kw: Any) -> ProxyResponse:
        """HEAD through the door."""
        return self.request("HEAD", url, **kw)


def from_env(env: Optional[Mapping[str, str]] = None, timeout: Optional[float] = 60.0) -> Door:
    """The sandbox's door, from ``CLAWBOX_PROXY_SOCKET`` and ``CLAWBOX_PROXY_TOKEN`` (or
    ``CLAWBOX_PROXY_TOKEN_FILE``). Raises ValueError outside a sandbox with a door."""
    e = os.environ if env is None else env
    sock = e.get(ENV_SOCKET, "")
    if not sock:
        raise ValueError(f'door: {ENV_SOCKET} is not set: run inside a clawbox sandbox with a door (policy "container")')
    token = e.get(ENV_TOKEN, "")
    if not token:
        path = e.get(ENV_TOKEN_FILE, "")
        if not path:
            raise ValueError(f"door: no token: neither {ENV_TOKEN} nor {ENV_TOKEN_FILE} is set")
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
        if not token:
            raise ValueError(f"door: token file {path} is empty")
    return Door(sock, token, timeout=timeout)


def request(method: str, url: str, **kw: Any) -> ProxyResponse:
    """Sends one request through the door found with :func:`from_env`."""
    return from_env().request(method, url, **kw)


def get(url: str, **kw: Any) -> ProxyResponse:
    """GET through this sandbox's door."""
    return request("GET", url, **kw)


def post(url: str, **kw: Any) -> ProxyResponse:
    """POST through this sandbox's door."""
    return request("POST", url, **kw)


def put(url: str, **kw: Any) -> ProxyResponse:
    """PUT through this sandbox's door."""
    return request("PUT", url, **kw)


def patch(url: str, **kw: Any) -> ProxyResponse:
    """PATCH through this sandbox's door."""
    return request("PATCH", url, **kw)


def delete(url: str, **kw: Any) -> ProxyResponse:
    """DELETE through this sandbox's door."""
    return request("DELETE", url, **kw)


def head(url: str, **kw: Any) -> ProxyResponse:
    """HEAD through this sandbox's door."""
    return request("HEAD", url, **kw)
