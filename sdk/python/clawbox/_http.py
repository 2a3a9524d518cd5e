"""HTTP transport of the SDK: http.client over TCP or a Unix socket, error mapping."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import urllib.parse
from typing import Any, Dict, Iterator, Optional, Tuple

from .errors import NoAnswer, ProtocolError, Unreachable, Unavailable, error_from_body

__all__ = ["UnixHTTPConnection", "Transport", "Response"]

MAX_ERROR_BODY = 1 << 20


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTPConnection that connects to a Unix socket instead of host:port (the
    server's ``server.unix_socket``, or a sandbox's door)."""

    def __init__(self, path: str, timeout: Optional[float] = None, host: str = "localhost") -> None:
        super().__init__(host, timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        """Connects to the Unix socket."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.timeout is not None:
            s.settimeout(self.timeout)
        try:
            s.connect(self.socket_path)
        except BaseException:
            s.close()
            raise
        self.sock = s


class Response:
    """An open successful response; iterate lines with :meth:`lines`, close with :meth:`close`."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        self._conn = conn
        self.resp = resp
        self.status = resp.status
        self.headers = resp.headers
        self._lock = threading.Lock()
        self._closed = False
        self._reading = 0

    def read(self) -> bytes:
        """Reads the whole body and closes the response."""
        try:
            return self.resp.read()
        finally:
            self.close()

    def json(self) -> Any:
        """Reads and decodes the whole body as JSON."""
        b = self.read()
        try:
            return json.loads(b) if b else None
        except ValueError as e:
            raise ProtocolError(f"cannot decode the server's answer: {e}") from None

    def lines(self, limit: int = 16 << 20) -> Iterator[bytes]:
        """Yields the body's lines without their line end, until the body ends (or
        :meth:`close` is called, from any thread)."""
        with self._lock:
            if self._closed:
                return
            self._reading += 1
        try:
            while True:
                try:
                    line = self.resp.readline(limit + 1)
                except (OSError, ValueError, http.client.HTTPException) as e:
                    if self._closed:
                        return
                    raise ProtocolError(f"the stream broke: {e!r}") from None
                if not line:
                    return
                if len(line) > limit and not line.endswith(b"\n"):
                    raise ProtocolError(f"a streamed line is over {limit} bytes")
                yield line.rstrip(b"\r\n")
        finally:
            with self._lock:
                self._reading -= 1
                release = self._closed and self._reading == 0
            if release:
                self._release()

    def close(self) -> None:
        """Closes the response and its connection (idempotent). From another thread it
        ends a blocked read: the socket is shut down and the reader releases it."""
        with self._lock:
            first = not self._closed
            self._closed = True
            reading = self._reading > 0
        if first:
            sock = self._conn.sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        if not reading:
            self._release()

    def _release(self) -> None:
        self.resp.close()
        self._conn.close()


class Transport:
    """Sends requests to one server: ``base_url`` (http://host:port) or a Unix socket."""

    def __init__(self, base_url: str, token: str = "", timeout: Optional[float] = 60.0, unix_socket: str = "") -> None:
        u = urllib.parse.urlsplit(base_url.rstrip("/"))
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"{base_url!r} is not an http(s) URL")
        self.base_url = base_url.rstrip("/")
        self._scheme = u.scheme
        self._host = u.hostname
        self._port = u.port
        self._prefix = u.path
        self.token = token
        self.timeout = timeout
        self.unix_socket = unix_socket

    def _connection(self, timeout: Optional[float]) -> http.client.HTTPConnection:
        if self.unix_socket:
            return UnixHTTPConnection(self.unix_socket, timeout=timeout)
        if self._scheme == "https":
            return http.client.HTTPSConnection(self._host, self._port, timeout=timeout)
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def where(self) -> str:
        """Where requests go, for messages."""
        return f"unix:{self.unix_socket}" if self.unix_socket else self.base_url

    def request(
        self,
        method: str,
        path: str,
        query: Optional[Any] = None,
        body: Any = None,
        raw: Optional[bytes] = None,
        content_type: str = "",
        timeout: Any = "default",
        headers: Optional[Dict[str, str]] = None,
    ) -> Response:
        """Sends one request and returns the open response of a 2xx answer; any other
        answer raises the error class of its code. ``timeout`` is the socket timeout in
        seconds (None: no timeout; "default": the transport's)."""
        if timeout == "default":
            timeout = self.timeout
        url = self._prefix + path
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        hdrs: Dict[str, str] = {"Accept": "application/json"}
        data: Optional[bytes] = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        elif raw is not None:
            data = raw
            hdrs["Content-Type"] = content_type or "application/octet-stream"
        if self.token:
            hdrs["Authorization"] = "Bearer " + self.token
        if headers:
            hdrs.update(headers)
        conn = self._connection(timeout)
        try:
            conn.connect()
        except OSError as e:
            conn.close()
            raise Unreachable(self.where(), e) from None
        try:
            conn.request(method, url, body=data, headers=hdrs)
            resp = conn.getresponse()
        except socket.timeout as e:
            conn.close()
            raise NoAnswer(f"the clawbox server at {self.where()} accepted the request but did not answer in time: {e}", code="no_answer") from None
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise Unreachable(self.where(), e) from None
        if 200 <= resp.status < 300:
            return Response(conn, resp)
        try:
            b = resp.read(MAX_ERROR_BODY)
        except (OSError, http.client.HTTPException):
            b = b""
        finally:
            conn.close()
        try:
            decoded: Any = json.loads(b)
        except ValueError:
            decoded = None
        err = error_from_body(resp.status, decoded, f"server answered HTTP {resp.status} {resp.reason}")
        if isinstance(err, Unavailable):
            ra = resp.headers.get("Retry-After")
            if ra:
                try:
                    err.retry_after = float(ra)
                except ValueError:
                    pass
        raise err

    def json(self, method: str, path: str, **kw: Any) -> Any:
        """Sends one request and returns the decoded JSON answer (None for no body)."""
        return self.request(method, path, **kw).json()


