"""A real claim-task (or monitor-prs) process killed (SIGKILL) by the remote's own hook as one of its pushes arrives.

As `pre-receive` the hook also refuses that push (killed before it lands); as `post-receive` the push
has landed (killed after it, before the run could record anything of it). The trigger file holds the
pid to kill and is removed BEFORE the kill: the test wakes the moment its process dies, and must find
the hook spent (session 10's stop failed CI on a hook that unlinked after).
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from tests.support.cli import start_cli, write_host_config

# `condition`: a Python expression over the pushed line's `old`, `new` and `ref`, and `labels(sha)` (the
# labels of the local-forge item commit `sha`)
KILL_HOOK = """#!{python}
import json, os, pathlib, re, signal, subprocess, sys
trigger = pathlib.Path({trigger!r})


def labels(sha):
    shown = subprocess.run(["git", "show", sha + ":meta.json"], capture_output=True, text=True).stdout
    return json.loads(shown).get("labels", [])


for line in sys.stdin:
    old, new, ref = line.split()
    if trigger.exists() and ({condition}):
        pid = int(trigger.read_text())
        trigger.unlink()  # before the kill: the test wakes the moment its process dies
        os.kill(pid, signal.SIGKILL)
        sys.exit(1)
"""


def claim_task_killed_at_push(tmp_path: Path, remote: Path, hook: str, condition: str) -> Path:
    """Run agent `ada`'s claim-task as its own process until the remote's `hook` kills it at the first
    pushed ref for which `condition` holds; returns ada's host config, for the run that must finish
    the work. The hook stays installed, spent."""
    return killed_at_push(tmp_path, remote, hook, condition, "claim-task", write_host_config(tmp_path, remote, "ada"))


def killed_at_push(tmp_path: Path, remote: Path, hook: str, condition: str, command: str, config: Path) -> Path:
    """`command` (`claim-task`, `monitor-prs`) of the agent of host config `config`, run as its own process
    until the remote's `hook` kills it at the first pushed ref for which `condition` holds; returns `config`.
    The hook stays installed, spent."""
    trigger = tmp_path / "kill-pid"
    script = remote / "hooks" / hook
    script.write_text(KILL_HOOK.format(python=sys.executable, trigger=str(trigger), condition=condition))
    script.chmod(0o755)
    crashed = start_cli("--config", str(config), command, "--json", cwd=tmp_path)
    trigger.write_text(str(crashed.pid))
    crashed.communicate(timeout=120)
    assert crashed.returncode == -signal.SIGKILL and not trigger.exists()
    return config
