"""The kill switch: stop every agent (or this host's) from claiming and running executors.

Three switches, any one of which halts:
- `.agentmesh/HALT` on the default branch: the whole mesh, set by `agentmesh
  halt` with a CAS commit (or by any human commit);
- an open issue labelled `agentmesh:halt`: the whole mesh, for people who can
  label issues but not push to the default branch;
- `<state>/HALT`: this host only (`agentmesh halt --local`).
"""

from __future__ import annotations

import time
from pathlib import Path

from agentmesh.agent.mesh import Mesh
from agentmesh.core.sanitize import clean_text
from agentmesh.core.vocab import Label
from agentmesh.forge.base import Forge
from agentmesh.git.branch_edit import edit_file_on_branch
from agentmesh.host.files import write_atomic

HALT_FILE = ".agentmesh/HALT"


def local_halt_path(mesh: Mesh) -> Path:
    return mesh.state.local_halt


def _first_line(text: str) -> str:
    lines = [line.strip() for line in clean_text(text, 2000).splitlines() if line.strip()]
    return " ".join(lines[0].split())[:200] if lines else "(no reason given)"


def local_halt(mesh: Mesh) -> str | None:
    """Why this host is halted by its local file, or None. Cheap: polled while an executor runs."""
    path = local_halt_path(mesh)
    try:
        return f"halted on this host ({path}): {_first_line(path.read_text(errors='replace'))}"
    except FileNotFoundError:
        return None
    except OSError as exc:  # unreadable but present still means halt
        return f"halted on this host ({path}, unreadable: {exc.strerror})"


def halt_reason(mesh: Mesh, forge: Forge) -> str | None:
    """Why the mesh (or this host) is halted, or None when agents may work."""
    local = local_halt(mesh)
    if local:
        return local
    text = mesh.read_base_file(HALT_FILE)
    if text is not None:
        return f"mesh halted ({HALT_FILE} on {mesh.base_branch}): {_first_line(text)}"
    halting = forge.list_issues(state="open", labels=[Label.HALT])
    if halting:
        first = halting[0]
        return f"mesh halted by issue #{first.number} labelled {Label.HALT}: {_first_line(first.title)}"
    return None


def _halt_text(mesh: Mesh, reason: str) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return f"{reason.strip() or 'halted'}\n\nby {mesh.host.agent} on {mesh.host.host} at {stamp}\n"


def halt(mesh: Mesh, reason: str, *, local: bool) -> str:
    """Set the switch; returns where. Setting it twice keeps the first reason."""
    if local:
        path = local_halt_path(mesh)
        if not path.exists():
            write_atomic(path, _halt_text(mesh, reason))
        return str(path)
    if mesh.read_base_file(HALT_FILE) is not None:
        return f"{HALT_FILE} on {mesh.base_branch} (already set)"
    edit_file_on_branch(mesh.cache, f"refs/heads/{mesh.base_branch}", HALT_FILE,
                        _halt_text(mesh, reason).encode(), f"agentmesh: halt [skip ci]\n\n{reason.strip()}\n",
                        refused_hint="a protected branch? use an issue labelled agentmesh:halt instead")
    return f"{HALT_FILE} on {mesh.base_branch}"


def resume(mesh: Mesh, *, local: bool) -> bool:
    """Clear the switch; returns whether anything was set."""
    if local:
        path = local_halt_path(mesh)
        existed = path.exists()
        path.unlink(missing_ok=True)
        return existed
    head = edit_file_on_branch(mesh.cache, f"refs/heads/{mesh.base_branch}", HALT_FILE, None,
                               "agentmesh: resume [skip ci]\n")
    return head is not None
