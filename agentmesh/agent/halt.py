"""The kill switch: stop every agent (or this host's) from claiming and running executors.

Three switches, any one of which halts:
- the branch `agentmesh/halt` (`refs/heads/agentmesh/halt`): the whole mesh,
  a switch that only grows (agent/switch.py): `agentmesh halt` pushes a
  signed halt commit on top, `agentmesh resume` a signed resume commit; a
  forged halt halts, a forged resume does not resume. It needs no commit on
  the default branch, so agents need no push access there. Agents read it
  from the listing of HEAD that every command makes anyway;
- an open issue labelled `agentmesh:halt`: the whole mesh, for people who can
  label issues but not push;
- `<state>/HALT`: this host only (`agentmesh halt --local`).

`.agentmesh/HALT` on the default branch, the switch of earlier versions, is
still honoured, but nothing writes it any more: a human removes it by a PR.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agentmesh.agent.mesh import Mesh
from agentmesh.agent.switch import Switch, clear_switch, first_line, set_switch, signed_text, switch_reason
from agentmesh.core.model import Issue
from agentmesh.core.vocab import Label
from agentmesh.forge.base import Forge
from agentmesh.git.remote import RemoteRefs
from agentmesh.host.basics import LEGACY_HALT_FILE
from agentmesh.host.config import HALT_REF
from agentmesh.host.files import write_atomic

HALT_FILE = LEGACY_HALT_FILE  # read only, for meshes halted by an earlier version
HALT_BRANCH = HALT_REF.removeprefix("refs/heads/")
HALT_SUBJECT = "agentmesh: halt [skip ci]"
RESUME_SUBJECT = "agentmesh: resume [skip ci]"
KILL_SWITCH = Switch(HALT_REF, HALT_SUBJECT, RESUME_SUBJECT, "the kill switch", "resume",
                     set_hint="no push access to agentmesh/*? open an issue labelled agentmesh:halt instead")


def local_halt_path(mesh: Mesh) -> Path:
    return mesh.state.local_halt


def local_halt(mesh: Mesh) -> str | None:
    """Why this host is halted by its local file, or None. Cheap: polled while an executor runs."""
    path = local_halt_path(mesh)
    try:
        return f"halted on this host ({path}): {first_line(path.read_text(errors='replace'))}"
    except FileNotFoundError:
        return None
    except OSError as exc:  # unreadable but present still means halt
        return f"halted on this host ({path}, unreadable: {exc.strerror})"


def halt_reason(mesh: Mesh, forge: Forge) -> str | None:
    """Why the mesh (or this host) is halted, or None when agents may work. (A running executor's watch
    reads the switch and the halt issues itself, agent/watch.py.)"""
    return switch_halt(mesh) or halt_issue(forge)


def switch_halt(mesh: Mesh, *, listing: RemoteRefs | None = None) -> str | None:
    """Why this host or the mesh is halted by a switch other than an issue (no forge request), or None."""
    local = local_halt(mesh)
    if local:
        return local
    sha = (listing or mesh.remote_refs).get(HALT_REF)
    reason = switch_reason(mesh, KILL_SWITCH, sha) if sha is not None else None
    if reason is not None:
        return f"mesh halted (branch {HALT_BRANCH}): {reason}"
    text = mesh.read_base_file(HALT_FILE)
    if text is not None:
        return f"mesh halted ({HALT_FILE} on {mesh.base_branch}): {first_line(text)}"
    return None


def halt_issue(forge: Forge, open_issues: Sequence[Issue] | None = None) -> str | None:
    """Why an open issue labelled halt halts the mesh, or None. `open_issues`: every open issue, when the
    run has listed them already (claim-task reuses its listing, so the check costs no request)."""
    if open_issues is None:
        halting = forge.list_issues(state="open", labels=[Label.HALT])
    else:
        halting = [i for i in open_issues if Label.HALT in i.labels]
    if halting:
        first = halting[0]
        return f"mesh halted by issue #{first.number} labelled {Label.HALT}: {first_line(first.title)}"
    return None


def halt(mesh: Mesh, reason: str, *, local: bool) -> str:
    """Set the switch, or update its reason when it is set; returns where."""
    if local:
        path = local_halt_path(mesh)
        write_atomic(path, signed_text(mesh, reason.strip() or "halted"))
        return str(path)
    set_switch(mesh, KILL_SWITCH, reason.strip() or "halted")
    return f"branch {HALT_BRANCH}"


@dataclass(frozen=True)
class Resumed:
    cleared: str | None  # the reason of the switch that was cleared; None: it was not set
    still: str | None  # a switch resume does not clear that still halts, or None


def resume(mesh: Mesh, *, local: bool) -> Resumed:
    """Clear the switch with a resume commit on top of the halt this command read: a halt set meanwhile
    stays."""
    if local:
        path = local_halt_path(mesh)
        reason = local_halt(mesh)
        path.unlink(missing_ok=True)
        return Resumed(reason, None)
    cleared, _ = clear_switch(mesh, KILL_SWITCH)
    return Resumed(cleared, _old_switch(mesh))


def _old_switch(mesh: Mesh) -> str | None:
    """An `.agentmesh/HALT` of an earlier version, which resume leaves to a human (it writes nothing to
    the default branch)."""
    if mesh.read_base_file(HALT_FILE) is not None:
        return f"{HALT_FILE} on {mesh.base_branch} still halts the mesh: remove it through a PR"
    return None
