"""The old scripts' lock branches as claim-task, monitor-prs, status and migrate see them (core/legacy.py),
and, while migrating (`migration.lock_branches`), the lock branches agentmesh's claims hold for them.

One listing of the remote's branches; the tips of the few work-shaped branches without an agentmesh
claim are read from the cache clone (fetched only when missing), and the closed PRs of a candidate
without an open PR are asked for by its branch, never by listing every PR.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from agentmesh.agent.mesh import Mesh
from agentmesh.core.errors import RemoteUnavailable, TemporaryError
from agentmesh.core.legacy import (
    LegacyLock,
    legacy_locks,
    lock_candidates,
    mesh_lock_branch,
    mesh_lock_message,
    mesh_locks_to_sync,
    without_open_pulls,
)
from agentmesh.core.model import PullRequest
from agentmesh.core.slug import parse_work_branch
from agentmesh.forge.base import Forge
from agentmesh.git.remote import RefUpdate, RemoteRefs, ls_refs, push
from agentmesh.git.run import GitError

BRANCHES = "refs/heads/"


def branches_of(listing: RemoteRefs) -> dict[str, str]:
    """The branches (name -> sha) of a listing of `refs/heads/`."""
    return {ref.removeprefix(BRANCHES): sha for ref, sha in listing.refs.items() if ref.startswith(BRANCHES)}


def within_branches(listing: RemoteRefs, prefix: str) -> RemoteRefs | None:
    """`listing` (of `refs/heads/`) for a reader of the refs under `prefix` when it holds them, else None:
    the claim and presence prefixes are configurable, and a listing that does not hold a prefix would
    read as "none there"."""
    return listing if prefix.startswith(BRANCHES) else None


def remote_branches(mesh: Mesh, listing: RemoteRefs | None = None) -> dict[str, str]:
    """Every branch on the remote (name -> sha), from one complete listing (`listing`: of `refs/heads/`,
    when the caller made one)."""
    return branches_of(listing or ls_refs(mesh.git, mesh.remote, [BRANCHES]))


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
                   branches: Mapping[str, str] | None = None) -> dict[int, LegacyLock]:
    """issue -> the old scripts' lock holding it. `pulls`: the open PRs, already listed; the PRs of a
    candidate without an open one are asked for by its branch."""
    branches = remote_branches(mesh) if branches is None else branches
    shaped = [b for b in branches if (parsed := parse_work_branch(b)) is not None and parsed[1] not in claimed]
    if not shaped:
        return {}
    candidates = lock_candidates(branches, claimed=claimed, tips=tip_messages(mesh, branches, shaped))
    closed = [p for branch in without_open_pulls(candidates, pulls)
              for p in forge.pulls_for_head(branch, base=mesh.base_branch)]
    return legacy_locks(candidates, branches, [*pulls, *closed])


def legacy_lock_of(mesh: Mesh, forge: Forge, issue: int) -> LegacyLock | None:
    """The old scripts' lock on `issue` now, if any: its branches only are looked at, from a new listing."""
    branches = {b: sha for b, sha in remote_branches(mesh).items()
                if (parsed := parse_work_branch(b)) is not None and parsed[1] == issue}
    if not branches:
        return None
    return observe_legacy(mesh, forge, claimed=(), pulls=forge.list_pulls(state="open"),
                          branches=branches).get(issue)


def create_mesh_locks(mesh: Mesh, issues: Collection[int]) -> None:
    """This agent's lock branches for `issues`, each created only where none is (compare-and-swap; one that is
    there already is this agent's own: only it names them), on the base head with its tree, so a script that
    opens a PR of it opens an empty one. Raises TemporaryError when one is not there after the push."""
    if not issues:
        return
    base = mesh.base_head
    tree = mesh.cache.tree_of(base)
    updates = [RefUpdate(f"refs/heads/{mesh_lock_branch(mesh.host.agent, n)}",
                         mesh.cache.commit_tree(tree, [base], mesh_lock_message(mesh.host.agent, n)), None)
               for n in issues]
    result = push(mesh.git, mesh.cache.path, mesh.remote, updates)
    if not result.ok:
        there = ls_refs(mesh.git, mesh.remote, [u.ref for u in updates]).refs
        missing = [u.ref for u in updates if u.ref not in there]
        if missing:
            raise TemporaryError(f"lock branch not created: {', '.join(missing)}")


def drop_mesh_locks(mesh: Mesh, locks: Mapping[int, str] | Collection[int]) -> None:
    """Delete this agent's lock branches: issue -> the sha seen (pinned to it), or issues (read first)."""
    refs = {n: f"refs/heads/{mesh_lock_branch(mesh.host.agent, n)}" for n in locks}
    if not isinstance(locks, Mapping):
        there = ls_refs(mesh.git, mesh.remote, list(refs.values())).refs
        locks = {n: there[ref] for n, ref in refs.items() if ref in there}
    if locks:
        push(mesh.git, mesh.cache.path, mesh.remote, [RefUpdate(refs[n], None, sha) for n, sha in locks.items()])


def sync_mesh_locks(mesh: Mesh, held: Collection[int], branches: Mapping[str, str]) -> None:
    """A lock branch for each claim this agent holds, none for a claim it no longer holds (released by a run
    that died, by monitor-prs, ...), from the tick's listing `branches`."""
    missing, stale = mesh_locks_to_sync(mesh.host.agent, held, branches)
    create_mesh_locks(mesh, missing)
    drop_mesh_locks(mesh, stale)
