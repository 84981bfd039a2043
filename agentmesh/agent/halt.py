"""The kill switch: stop every agent (or this host's) from claiming and running executors.

Three switches, any one of which halts:
- the branch `agentmesh/halt` (`refs/heads/agentmesh/halt`): the whole mesh.
  It only grows: `agentmesh halt` pushes a signed halt commit (the reason in
  its message) on top of its head, `agentmesh resume` a signed resume commit,
  each a compare-and-swap push; nothing deletes it. The mesh is halted while
  its head is anything but a resume commit, and, with a roster, one that a
  roster agent or maintainer signed: a writer can stop the mesh but not
  restart it (a forged halt halts, a forged resume does not resume). A
  missing branch is not a halt: forbidding its deletion is the job of branch
  protection or the pre-receive hook (docs/forges.md). It needs no commit on
  the default branch, so agents need no push access there. Agents read it
  from the listing of HEAD that every command makes anyway;
- an open issue labelled `agentmesh:halt`: the whole mesh, for people who can
  label issues but not push;
- `<state>/HALT`: this host only (`agentmesh halt --local`).

`.agentmesh/HALT` on the default branch, the switch of earlier versions, is
still honoured, but nothing writes it any more: a human removes it by a PR.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from agentmesh.agent.mesh import Mesh
from agentmesh.core.errors import TemporaryError, UserError
from agentmesh.core.sanitize import clean_text
from agentmesh.core.vocab import Label
from agentmesh.forge.base import Forge
from agentmesh.git.branch_edit import swap_ref
from agentmesh.git.remote import RemoteRefs, ls_refs
from agentmesh.host.config import HALT_REF
from agentmesh.host.files import write_atomic

HALT_FILE = ".agentmesh/HALT"  # read only, for meshes halted by an earlier version
HALT_BRANCH = HALT_REF.removeprefix("refs/heads/")
HALT_SUBJECT = "agentmesh: halt [skip ci]"
RESUME_SUBJECT = "agentmesh: resume [skip ci]"
HISTORY = 20  # first parents searched for the reason under a resume that does not count
FORGED_RESUME = "the resume on top is not signed by a roster agent or maintainer"


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


def _signed_text(mesh: Mesh, what: str) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return f"{what}\n\nby {mesh.host.agent} on {mesh.host.host} at {stamp}\n"


def _subject(message: str) -> str:
    return message.partition("\n")[0].strip()


def reason_of(message: str) -> str:
    """The reason in a halt commit's message (any other commit's first line: it halts too)."""
    subject, _, body = message.partition("\n")
    return _first_line(body if subject.strip() == HALT_SUBJECT else message)


def _fetched(mesh: Mesh, sha: str) -> bool:
    """Whether the switch's commit `sha` is in the cache clone, fetching the branch once if it is not."""
    if not mesh.cache.has_object(sha):
        mesh.cache.fetch([HALT_REF])
    return mesh.cache.has_object(sha)


def switch_reason(mesh: Mesh, sha: str) -> str | None:
    """Why the switch whose head is `sha` halts the mesh, or None when its head is a resume that counts."""
    if not _fetched(mesh, sha):
        return "(reason not readable: the ref moved)"
    text = mesh.cache.commit_message(sha)
    message = text.split("\n\n", 1)[1] if "\n\n" in text else ""
    if _subject(message) != RESUME_SUBJECT:
        return reason_of(message)
    identity = mesh.identity
    if not identity.enforced or identity.signer(sha) is not None:
        return None
    below = mesh.cache.log_messages(sha, "--first-parent", f"--max-count={HISTORY}")
    halted = next((m for _, m in below if _subject(m) != RESUME_SUBJECT), None)
    return f"{reason_of(halted) if halted is not None else '(no reason given)'} ({FORGED_RESUME})"


def halt_reason(mesh: Mesh, forge: Forge, *, listing: RemoteRefs | None = None, issues: bool = True) -> str | None:
    """Why the mesh (or this host) is halted, or None when agents may work. `listing`: a fresh listing of
    the halt ref (a running executor's watch re-reads it; the command's own listing is read once);
    `issues`: whether to list the halt issues too (a watch does so only every few checks)."""
    local = local_halt(mesh)
    if local:
        return local
    sha = (listing or mesh.remote_refs).get(HALT_REF)
    reason = switch_reason(mesh, sha) if sha is not None else None
    if reason is not None:
        return f"mesh halted (branch {HALT_BRANCH}): {reason}"
    text = mesh.read_base_file(HALT_FILE)
    if text is not None:
        return f"mesh halted ({HALT_FILE} on {mesh.base_branch}): {_first_line(text)}"
    halting = forge.list_issues(state="open", labels=[Label.HALT]) if issues else []
    if halting:
        first = halting[0]
        return f"mesh halted by issue #{first.number} labelled {Label.HALT}: {_first_line(first.title)}"
    return None


def _on_top(mesh: Mesh, current: str | None, message: str) -> str:
    """A signed commit of `message` on the empty tree (no files: no forge runs CI on it) whose parent is
    the switch's head `current`, so the branch only ever moves forward."""
    if current is not None and not _fetched(mesh, current):
        raise TemporaryError(f"{HALT_REF} moved while it was read; try again")
    cache = mesh.cache
    return cache.commit_tree(cache.empty_tree(), [current] if current is not None else [], message)


def halt(mesh: Mesh, reason: str, *, local: bool) -> str:
    """Set the switch, or update its reason when it is set; returns where."""
    if local:
        path = local_halt_path(mesh)
        write_atomic(path, _signed_text(mesh, reason.strip() or "halted"))
        return str(path)
    message = f"{HALT_SUBJECT}\n\n{_signed_text(mesh, reason.strip() or 'halted')}"
    swap_ref(mesh.cache, HALT_REF, lambda current: _on_top(mesh, current, message),
             refused_hint="no push access to agentmesh/*? open an issue labelled agentmesh:halt instead")
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
    seen = ls_refs(mesh.git, mesh.remote, [HALT_REF]).get(HALT_REF)
    reason = switch_reason(mesh, seen) if seen is not None else None
    if reason is not None:
        message = f"{RESUME_SUBJECT}\n\n{_signed_text(mesh, 'resumed')}"

        def clear(current: str | None) -> str | None:
            if current == seen:
                return _on_top(mesh, current, message)
            again = switch_reason(mesh, current) if current is not None else None
            if again is not None:
                raise UserError(f"the kill switch was set again while resuming ({again}); run resume again to clear it")
            return current  # resumed (or removed) by someone else meanwhile: nothing to push

        swap_ref(mesh.cache, HALT_REF, clear, refused_hint="no push access to agentmesh/*?")
    return Resumed(reason, _old_switch(mesh))


def _old_switch(mesh: Mesh) -> str | None:
    """An `.agentmesh/HALT` of an earlier version, which resume leaves to a human (it writes nothing to
    the default branch)."""
    if mesh.read_base_file(HALT_FILE) is not None:
        return f"{HALT_FILE} on {mesh.base_branch} still halts the mesh: remove it through a PR"
    return None
