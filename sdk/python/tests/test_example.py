"""The example agent loop, with its scripted model, against the real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import LABEL, SDK

sys.path.insert(0, os.path.join(SDK, "examples"))

import agent_loop  # noqa: E402


def test_agent_loop_runs_tool_calls_in_clawbox(client, image):
    messages = agent_loop.run_agent(client, agent_loop.demo_model(), "count words", image=image, labels=LABEL)
    tools = [json.loads(m["content"]) for m in messages if m["role"] == "tool"]
    assert tools[0]["written"] == "/tmp/count.sh" and tools[0]["size"] > 0
    assert tools[1]["exit_code"] == 0 and tools[1]["stdout"] == "words=3\n"
    assert tools[2]["status"] == "ok" and "words=3" in json.dumps(tools[2]["output"])
    assert messages[-1]["role"] == "assistant" and "words=3" in messages[-1]["content"]
    # The loop's sandbox was killed on the way out.
    mine = [c for c in client.list_containers(labels=LABEL) if c.task_summary == "count words"]
    assert mine and all(c.status == "killed" for c in mine)


def test_agent_loop_reports_refusals_to_the_model(client, image):
    model = agent_loop.ScriptedModel([
        lambda m: {"tool_calls": [{"name": "read_file", "arguments": {"path": "/nonexistent"}}, {"name": "wasm", "arguments": {"tool": "nope"}}]},
    ])
    messages = agent_loop.run_agent(client, model, "fail politely", image=image, labels=LABEL)
    results = [json.loads(m["content"]) for m in messages if m["role"] == "tool"]
    assert results[0]["code"] == "not_found" and results[1]["code"] == "tool_not_found"


def test_agent_loop_script(server, image):
    env = server.env()
    env["PYTHONPATH"] = SDK
    r = subprocess.run([sys.executable, os.path.join(SDK, "examples", "agent_loop.py"), "--image", image, "--label", "clawbox-pytest=" + LABEL["clawbox-pytest"]],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "words=3" in r.stdout.splitlines()[-1]
