"""Discovery of the server and token, like the CLI and the Go SDK's client.FromEnv."""

from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, Mapping, Optional, Tuple

__all__ = ["discover", "read_token_file", "server_url", "DEFAULT_HOST", "DEFAULT_PORT"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9800

_KEY = re.compile(r"^([A-Za-z0-9_-]+|\"[^\"]*\")\s*=\s*(.*)$")


def _value(s: str, where: str) -> Any:
    s = s.strip()
    if s.startswith('"'):
        end = 1
        while end < len(s):
            if s[end] == "\\":
                end += 2
                continue
            if s[end] == '"':
                break
            end += 1
        return json.loads(s[: end + 1])
    if s.startswith("'"):
        end = s.index("'", 1)
        return s[1:end]
    s = s.split("#", 1)[0].strip()
    if s in ("true", "false"):
        return s == "true"
    try:
        return int(s.replace("_", ""))
    except ValueError:
        return s  # arrays, floats, dates: not needed for discovery


def parse_server_section(text: str, where: str) -> Dict[str, Any]:
    """Returns the simple keys of the ``[server]`` table of a clawbox config.toml (the
    standard library has no TOML parser before Python 3.11; discovery needs only strings
    and integers of one table)."""
    out: Dict[str, Any] = {}
    table = ""
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            table = line.strip("[] \t").split("#", 1)[0].strip()
            continue
        if table != "server":
            continue
        m = _KEY.match(line)
        if not m:
            continue
        key = m.group(1).strip('"')
        try:
            out[key] = _value(m.group(2), where)
        except (ValueError, IndexError) as e:
            raise ValueError(f"config {where}:{n}: server.{key}: {e}") from None
    return out


def server_url(host: str, port: int) -> str:
    """The URL a client dials for a server listening on host:port."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host in ("::", "[::]"):
        host = "::1"
    host = host.strip("[]")
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def read_token_file(path: str) -> str:
    """Reads an API token file (one token, surrounding white space ignored)."""
    try:
        with open(path, encoding="utf-8") as f:
            tok = f.read().strip()
    except FileNotFoundError:
        raise ValueError(f"server.auth_token_file: {path} does not exist: run `clawbox init` or set CLAWBOX_AUTH_TOKEN") from None
    if not tok:
        raise ValueError(f"server.auth_token_file: {path} is empty")
    if any(c in tok for c in " \t\r\n"):
        raise ValueError(f"server.auth_token_file: {path} must hold a single token")
    return tok


def _home(env: Mapping[str, str]) -> str:
    h = env.get("HOME") or os.path.expanduser("~")
    if not h or h == "~":
        raise ValueError("cannot find the home directory (set CLAWBOX_HOME)")
    return h


def _expand(p: str, env: Mapping[str, str]) -> str:
    if p == "~" or p.startswith("~/"):
        return os.path.join(_home(env), p[2:]) if p != "~" else _home(env)
    return p


def discover(env: Optional[Mapping[str, str]] = None, config_file: str = "") -> Tuple[str, str, str]:
    """Returns (base URL, token, unix socket "") as the CLI finds them: CLAWBOX_HOST,
    CLAWBOX_PORT and CLAWBOX_AUTH_TOKEN, then server.host, server.port, server.auth_token
    and server.auth_token_file of config.toml in CLAWBOX_HOME (default ~/.clawbox)."""
    e: Mapping[str, str] = os.environ if env is None else env
    explicit = bool(config_file)
    if not explicit:
        d = e.get("CLAWBOX_HOME") or ""
        d = _expand(d, e) if d else os.path.join(_home(e), ".clawbox")
        config_file = os.path.join(d, "config.toml")
    cfg: Dict[str, Any] = {}
    try:
        with open(config_file, encoding="utf-8") as f:
            cfg = parse_server_section(f.read(), config_file)
    except FileNotFoundError:
        if explicit:
            raise ValueError(f"config {config_file} does not exist") from None
    host = str(cfg.get("host", DEFAULT_HOST))
    port = cfg.get("port", DEFAULT_PORT)
    if e.get("CLAWBOX_HOST"):
        host = e["CLAWBOX_HOST"]
    if e.get("CLAWBOX_PORT"):
        v = e["CLAWBOX_PORT"]
        try:
            port = int(v)
        except ValueError:
            port = -1
        if not 1 <= port <= 65535:
            raise ValueError(f"CLAWBOX_PORT={v!r}: not a port number")
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"config {config_file}: server.port={port!r}: not a port number")
    token = e.get("CLAWBOX_AUTH_TOKEN") or ""
    if not token:
        if cfg.get("auth_token"):
            token = str(cfg["auth_token"])
        else:
            p = _expand(str(cfg.get("auth_token_file", "token")), e)
            if not os.path.isabs(p):
                p = os.path.join(os.path.dirname(config_file), p)
            try:
                token = read_token_file(p)
            except ValueError as err:
                raise ValueError(f"no API token: looked in CLAWBOX_AUTH_TOKEN, server.auth_token and server.auth_token_file of {config_file}: {err}") from None
    return server_url(host, port), token, ""


