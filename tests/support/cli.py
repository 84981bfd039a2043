"""The one way tests run the agentmesh command line: a real `python -m agentmesh` process.

A subprocess, not click's in-process runner, so that exit codes, stderr, signals and crash logs are
the ones a user sees. The child's environment is the test's minus any AGENTMESH_* setting of the
machine running the tests; crash logs and the default state directory (XDG_STATE_HOME) are in the
test's own folder instead of the shared /tmp and ~/.local/state, so parallel tests never meet.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import yaml

from tests.support import REPO, agent_forge, agent_mesh, demo_body, local_forge_remote


def cli_env(folder: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMESH_")}
    env.update(AGENTMESH_CRASH_DIR=str(folder), XDG_STATE_HOME=str(folder / "state"))
    env.update(extra or {})
    return env


def cli_argv(*args: str, script: str | None = None) -> list[str]:
    """`python -m agentmesh ARGS`, or `python scripts/<script>.py ARGS` for the cron entry points."""
    entry = [str(REPO / "scripts" / f"{script}.py")] if script else ["-m", "agentmesh"]
    return [sys.executable, *entry, *args]


def run_cli(*args: str, cwd: Path, env: Mapping[str, str] | None = None, input: str | None = None,
            timeout: float = 120, script: str | None = None) -> subprocess.CompletedProcess:
    """Run agentmesh in `cwd` (which also holds its crash logs and state) to completion; `env` adds variables."""
    return subprocess.run(cli_argv(*args, script=script), input=input, capture_output=True, text=True,
                          env=cli_env(cwd, env), cwd=cwd, timeout=timeout)


def start_cli(*args: str, cwd: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start agentmesh in `cwd` as run_cli would, for tests that signal it or race it."""
    return subprocess.Popen(cli_argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env(cwd, env), cwd=cwd)


def ok_json(result: subprocess.CompletedProcess):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def write_host_config(tmp_path: Path, remote: Path, agent: str, executor: dict | None = None) -> Path:
    """configs/<agent>.yaml: one agent on its own host (state under hosts/<agent>)."""
    path = tmp_path / "configs" / f"{agent}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({
        "agent": agent, "host": f"host-{agent}", "remote": str(remote), "state_dir": str(tmp_path / "hosts" / agent),
        "executor": executor or {"kind": "demo"},
    }))
    return path


def run_json(config: Path, *args: str) -> dict:
    """`agentmesh --config CONFIG ARGS --json`, which must succeed; its JSON answer."""
    return ok_json(run_cli("--config", str(config), *args, "--json", cwd=config.parent))


RING_YAML = yaml.safe_dump({"review": {"ring": ["a", "b", "c"]}, "merge": {"auto": True}})


def cron_ring_pull(tmp_path: Path, title: str, path: str, text: str):
    """Three agents (a, b, c) as cron runs them on a local forge, a review ring with auto-merge; each ran
    monitor-prs once, then a opened its PR for a human's issue asking for `path` with `text`:
    (the remote, the configs by agent, the human's forge, the issue's number)."""
    remote = local_forge_remote(tmp_path / "remote.git", RING_YAML)
    configs = {agent: write_host_config(tmp_path, remote, agent) for agent in "abc"}
    for config in configs.values():
        run_json(config, "monitor-prs")
    human = agent_forge(agent_mesh(remote, tmp_path / "humans", "human"))
    number = human.create_issue(title, demo_body(path, text), ["task"]).number
    assert "pr-opened" in [e["event"] for e in run_json(configs["a"], "claim-task")["events"]]
    return remote, configs, human, number
