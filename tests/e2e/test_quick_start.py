"""The quick start of docs/local-forge.md, run as written: its issue is one the default executor does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support import REPO, agent_forge, agent_mesh, git
from tests.support.cli import cli_env

DOC = REPO / "docs" / "local-forge.md"


def quick_start_script() -> str:
    """The `$ ` commands of the quick start's console block, with their here-documents, as one shell script."""
    block = re.search(r"## Quick start\n.*?````console\n(.*?)````", DOC.read_text(), re.S)
    assert block, "no console block under ## Quick start"
    script, heredoc = [], None
    for line in block.group(1).splitlines():
        if heredoc is not None:
            script.append(line)
            heredoc = None if line == heredoc else heredoc
        elif line.startswith("$ "):
            script.append(line[2:])
            marker = re.search(r"<<'(\w+)'", line)
            heredoc = marker.group(1) if marker else None
    return "\n".join(["set -eu", *script]) + "\n"


def test_the_local_forge_quick_start_runs_to_a_merged_pr(tmp_path):
    remote = tmp_path / "srv" / "mesh.git"
    remote.parent.mkdir()
    script = quick_start_script().replace("/srv/mesh.git", str(remote))
    assert "claim-task" in script and "pr merge 2" in script
    env = cli_env(tmp_path, {"PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])})
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pr-opened #1 PR #2" in done.stdout and "merged PR #2" in done.stdout
    forge = agent_forge(agent_mesh(remote, tmp_path / "inspector", "inspector"))
    assert forge.get_issue(1).state == "closed" and forge.get_pull(2).state == "merged"
    assert git("show", "main:docs/hello.md", cwd=remote) == "Hello from the mesh."
