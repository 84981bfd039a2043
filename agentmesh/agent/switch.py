"""A mesh-wide switch on a branch of its own that only grows: the kill switch (agent/halt.py) and the
budget pause (agent/pause.py), one mechanism (ADR 0014, 0015).

Setting it pushes a signed commit (the reason in its message) on top of the branch's head,
resuming a signed resume commit; each is a compare-and-swap push of a commit on the empty tree (no
files: no forge runs CI on it), and nothing deletes the branch. The switch is set while its head is
anything but a resume commit, and, with a roster, one that a roster agent or maintainer signed: a
writer can set it but not clear it (a forged halt or pause stops, a forged resume does not resume).
A missing branch is not set: forbidding its deletion is the job of branch protection or the hook.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from agentmesh.agent.mesh import Mesh
from agentmesh.core.errors import TemporaryError, UserError
from agentmesh.core.sanitize import clean_text
from agentmesh.git.branch_edit import swap_ref
from agentmesh.git.remote import ls_refs

HISTORY = 20  # first parents searched for the reason under a resume that does not count
FORGED_CLEAR = "the resume on top is not signed by a roster agent or maintainer"


@dataclass(frozen=True)
class Switch:
    ref: str  # refs/heads/agentmesh/<name>
    set_subject: str
    clear_subject: str  # a resume commit's
    what: str  # the kill switch
    clear_command: str  # resume
    set_hint: str  # why a push that sets it may be refused, and what to do instead

    @property
    def branch(self) -> str:
        return self.ref.removeprefix("refs/heads/")


def first_line(text: str) -> str:
    lines = [line.strip() for line in clean_text(text, 2000).splitlines() if line.strip()]
    return " ".join(lines[0].split())[:200] if lines else "(no reason given)"


def signed_text(mesh: Mesh, what: str) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return f"{what}\n\nby {mesh.host.agent} on {mesh.host.host} at {stamp}\n"


def _subject(message: str) -> str:
    return message.partition("\n")[0].strip()


def reason_of(switch: Switch, message: str) -> str:
    """The reason in a set commit's message (any other commit's first line: it sets the switch too)."""
    subject, _, body = message.partition("\n")
    return first_line(body if subject.strip() == switch.set_subject else message)


def fetched(mesh: Mesh, switch: Switch, sha: str) -> bool:
    """Whether the switch's commit `sha` is in the cache clone, fetching the branch once if it is not."""
    if not mesh.cache.has_object(sha):
        mesh.cache.fetch([switch.ref])
    return mesh.cache.has_object(sha)


def switch_reason(mesh: Mesh, switch: Switch, sha: str) -> str | None:
    """Why the switch whose head is `sha` is set, or None when its head is a resume that counts."""
    if not fetched(mesh, switch, sha):
        return "(reason not readable: the ref moved)"
    text = mesh.cache.commit_message(sha)
    message = text.split("\n\n", 1)[1] if "\n\n" in text else ""
    if _subject(message) != switch.clear_subject:
        return reason_of(switch, message)
    identity = mesh.identity
    if not identity.enforced or identity.signer(sha) is not None:
        return None
    below = mesh.cache.log_messages(sha, "--first-parent", f"--max-count={HISTORY}")
    was = next((m for _, m in below if _subject(m) != switch.clear_subject), None)
    return f"{reason_of(switch, was) if was is not None else '(no reason given)'} ({FORGED_CLEAR})"


def _on_top(mesh: Mesh, switch: Switch, current: str | None, message: str) -> str:
    """A signed commit of `message` on the empty tree whose parent is the switch's head `current`, so
    the branch only ever moves forward."""
    if current is not None and not fetched(mesh, switch, current):
        raise TemporaryError(f"{switch.ref} moved while it was read; try again")
    cache = mesh.cache
    return cache.commit_tree(cache.empty_tree(), [current] if current is not None else [], message)


def set_switch(mesh: Mesh, switch: Switch, reason: str, *, keep_same: bool = False) -> str | None:
    """Set the switch with `reason`, or update the reason when it is set; returns the commit pushed.
    `keep_same`: push nothing when it is set with this very reason already (None then)."""
    message = f"{switch.set_subject}\n\n{signed_text(mesh, reason)}"

    def build(current: str | None) -> str | None:
        if keep_same and current is not None and switch_reason(mesh, switch, current) == first_line(reason):
            return current
        return _on_top(mesh, switch, current, message)

    before, after = swap_ref(mesh.cache, switch.ref, build, refused_hint=switch.set_hint)
    return None if after == before else after


def clear_switch(mesh: Mesh, switch: Switch) -> tuple[str | None, str | None]:
    """Clear the switch with a resume commit on top of the head this command read: a set meanwhile stays.
    (the reason that was cleared, None when it was not set; the commit pushed, None when none was)."""
    seen = ls_refs(mesh.git, mesh.remote, [switch.ref]).get(switch.ref)
    reason = switch_reason(mesh, switch, seen) if seen is not None else None
    if reason is None:
        return None, None
    message = f"{switch.clear_subject}\n\n{signed_text(mesh, 'resumed')}"

    def clear(current: str | None) -> str | None:
        if current == seen:
            return _on_top(mesh, switch, current, message)
        again = switch_reason(mesh, switch, current) if current is not None else None
        if again is not None:
            raise UserError(f"{switch.what} was set again while resuming ({again}); "
                            f"run {switch.clear_command} again to clear it")
        return current  # cleared (or removed) by someone else meanwhile: nothing to push

    before, after = swap_ref(mesh.cache, switch.ref, clear, refused_hint="no push access to agentmesh/*?")
    return reason, None if after == before else after
