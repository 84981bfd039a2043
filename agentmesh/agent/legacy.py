"""The old scripts' lock branches as claim-task, monitor-prs, status and migrate see them (core/legacy.py).

One listing of the remote's branches; the tips of the few work-shaped branches without an agentmesh
claim are read from the cache clone (fetched only when missing), and closed PRs are listed only when
a candidate has no open PR.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from agentmesh.agent.mesh import Mesh
from agentmesh.core.errors import RemoteUnavailable
from agentmesh.core.legacy import LegacyLock, legacy_locks, lock_candidates, needs_closed_pulls
from agentmesh.core.model import PullRequest
from agentmesh.core.slug import parse_work_branch
from agentmesh.forge.base import Forge
from agentmesh.git.remote import ls_refs
from agentmesh.git.run import GitError


def remote_branches(mesh: Mesh) -> dict[str, str]:
    """Every branch on the remote (name -> sha), from one complete listing."""
    listing = ls_refs(mesh.git, mesh.remote, ["refs/heads/"])
    return {ref.removeprefix("refs/heads/"): sha for ref, sha in listing.refs.items() if ref.startswith("refs/heads/")}


def tip_messages(mesh: Mesh, branches: Mapping[str, str], names: Collection[str]) -> dict[str, str]:
    """branch -> its tip commit's text, for `names` (fetched into the cache clone when missing); a tip that
    cannot be read is left out. Two object reads at most, however many branches."""
    names = list(names)
    read = dict(zip(names, mesh.cache.cat_objects([branches[n] for n in names]), strict=True))
    missing = [n for n, obj in read.items() if obj is None]
    if missing:
        try:
            mesh.cache.fetch([f"refs/heads/{n}" for n in missing])
        except (GitError, RemoteUnavailable):
            # git says a branch deleted since the listing is "unreachable": its tip stays unknown, and the
            # branch a lock for this run only (the conservative side: an issue waits a run)
            pass
        else:
            read.update(zip(missing, mesh.cache.cat_objects([branches[n] for n in missing]), strict=True))
    return {n: obj.data.decode("utf-8", "replace") for n, obj in read.items()
            if obj is not None and obj.type == "commit"}


def observe_legacy(mesh: Mesh, forge: Forge, *, claimed: Collection[int], pulls: Sequence[PullRequest],
                   all_states: bool, branches: Mapping[str, str] | None = None) -> dict[int, LegacyLock]:
    """issue -> the old scripts' lock holding it. `pulls`: the PRs already listed, open ones only unless
    `all_states`; closed ones are listed here only when a candidate has no open PR."""
    branches = remote_branches(mesh) if branches is None else branches
    shaped = [b for b in branches if (parsed := parse_work_branch(b)) is not None and parsed[1] not in claimed]
    if not shaped:
        return {}
    candidates = lock_candidates(branches, claimed=claimed, tips=tip_messages(mesh, branches, shaped))
    if not all_states and needs_closed_pulls(candidates, pulls):
        pulls = forge.list_pulls(state="all")
    return legacy_locks(candidates, branches, pulls)
