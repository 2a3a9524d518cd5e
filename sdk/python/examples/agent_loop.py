"""An agent loop whose model's tool calls run in clawbox.

The model here is a scripted stand-in (no network, no API key): it answers each turn
with tool calls in the shape chat-completion APIs use ({"name": ..., "arguments": {...}})
and finally with text. Swap ScriptedModel for a real model client and the loop is the
same: every call the model makes runs in a hardened sandbox (shell, files) or as a WASM
tool, and its result goes back into the conversation.

Run against a server (finds it like the CLI: CLAWBOX_HOST/PORT/AUTH_TOKEN, ~/.clawbox):

    PYTHONPATH=sdk/python python3 sdk/python/examples/agent_loop.py --image alpine
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import clawbox

TOOLS: List[Dict[str, Any]] = [
    {"name": "shell", "description": "Run a shell command in the sandbox", "parameters": {"cmd": "string"}},
    {"name": "write_file", "description": "Write a file in the sandbox", "parameters": {"path": "string", "content": "string"}},
    {"name": "read_file", "description": "Read a file of the sandbox", "parameters": {"path": "string"}},
    {"name": "wasm", "description": "Run a clawbox WASM tool", "parameters": {"tool": "string", "params": "object"}},
]
"""The tools the model is offered (schemas simplified)."""

Message = Dict[str, Any]


class ScriptedModel:
    """A stand-in for a model: each turn is a function of the conversation so far that
    returns an assistant message, either ``{"tool_calls": [...]}`` or ``{"content": text}``."""

    def __init__(self, turns: Sequence[Callable[[List[Message]], Message]]) -> None:
        self.turns = list(turns)
        self.calls = 0

    def complete(self, messages: List[Message], tools: List[Dict[str, Any]]) -> Message:
        """The next assistant message."""
        if self.calls >= len(self.turns):
            return {"role": "assistant", "content": "I have nothing more to do."}
        msg = dict(self.turns[self.calls](messages))
        self.calls += 1
        msg["role"] = "assistant"
        return msg


def run_tool(client: clawbox.Client, sandbox: clawbox.Sandbox, name: str, args: Mapping[str, Any]) -> Dict[str, Any]:
    """Runs one tool call in clawbox and returns its result as JSON for the model. A
    refusal (policy, limits, bad input) is a result too: the model should see it."""
    try:
        if name == "shell":
            r = sandbox.exec(str(args["cmd"]), timeout_ms=60000)
            return {"exit_code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr, "timed_out": r.timed_out}
        if name == "write_file":
            w = sandbox.write_file(str(args["path"]), str(args["content"]))
            return {"written": w.path, "size": w.size}
        if name == "read_file":
            return {"content": sandbox.read_file(str(args["path"])).decode("utf-8", "replace")}
        if name == "wasm":
            x = client.execute(str(args["tool"]), args.get("params"))
            return {"status": x.status, "output": x.output, "error": x.error}
        return {"error": f"unknown tool {name!r}"}
    except clawbox.ClawboxError as e:
        return {"error": e.message, "code": e.code}


def run_agent(client: clawbox.Client, model: ScriptedModel, task: str, image: str = "", max_turns: int = 10, labels: Optional[Mapping[str, str]] = None) -> List[Message]:
    """Runs the loop in a fresh sandbox (killed at the end) and returns the conversation;
    its last message is the model's answer."""
    messages: List[Message] = [{"role": "user", "content": task}]
    with client.spawn(image, ["sleep", "3600"], task=task, labels=labels) as sandbox:
        for _ in range(max_turns):
            reply = model.complete(messages, TOOLS)
            messages.append(reply)
            calls = reply.get("tool_calls") or []
            if not calls:
                break
            for i, call in enumerate(calls):
                result = run_tool(client, sandbox, call["name"], call.get("arguments") or {})
                messages.append({"role": "tool", "tool_call_id": call.get("id", str(i)), "content": json.dumps(result)})
    return messages


def last_tool_result(messages: List[Message]) -> Dict[str, Any]:
    """The decoded result of the conversation's last tool call."""
    for m in reversed(messages):
        if m["role"] == "tool":
            return json.loads(m["content"])
    return {}


def demo_model() -> ScriptedModel:
    """A model that writes a script, runs it, checks a WASM tool and reports."""
    script = "n=0; for w in alpha beta gamma; do n=$((n+1)); done; echo words=$n\n"
    return ScriptedModel([
        lambda m: {"tool_calls": [{"id": "1", "name": "write_file", "arguments": {"path": "/tmp/count.sh", "content": script}}]},
        lambda m: {"tool_calls": [{"id": "2", "name": "shell", "arguments": {"cmd": "sh /tmp/count.sh"}}]},
        lambda m: {"tool_calls": [{"id": "3", "name": "wasm", "arguments": {"tool": "echo", "params": {"seen": last_tool_result(m)["stdout"].strip()}}}]},
        lambda m: {"content": "The script printed " + json.dumps(last_tool_result(m)["output"])},
    ])


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the demo model against the server found by Client.from_env."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image", default="", help="sandbox image (default: the server's)")
    p.add_argument("--label", action="append", default=[], metavar="K=V", help="a label for the sandbox")
    a = p.parse_args(argv)
    labels = dict(kv.split("=", 1) for kv in a.label)
    client = clawbox.Client.from_env()
    messages = run_agent(client, demo_model(), "Count the words alpha beta gamma", image=a.image, labels=labels)
    for m in messages:
        print(f"{m['role']:>9}: {m.get('content') or json.dumps(m.get('tool_calls'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
