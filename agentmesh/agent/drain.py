"""Give back the claims this agent holds but has not started working on (a clean shutdown)."""

from __future__ import annotations

from agentmesh.agent.mesh import Mesh
from agentmesh.agent.stages import set_stage
from agentmesh.core.errors import NotHolder
from agentmesh.forge.base import Forge
from agentmesh.git.remote import ls_refs
from agentmesh.host.lock import host_lock


def release_unworked(mesh: Mesh, forge: Forge) -> list[int]:
    """Release own claims with neither a pushed work branch nor a PR; the issues they were for.
    Holds claim-task's host lock, so no run of ours is working on them meanwhile."""
    with host_lock(mesh.state, "claim-task") as held:
        if not held:
            return []  # a claim-task is still running: it owns its claims
        store = mesh.claims()
        mine = [(v, v.claim) for v in store.mine() if v.claim is not None]
        if not mine:
            return []
        branches = {f"refs/heads/{claim.work_branch}" for _, claim in mine if claim.work_branch}
        pushed = ls_refs(mesh.git, mesh.remote, sorted(branches)).refs if branches else {}
        in_review = {p.head for p in forge.list_pulls(state="open")}
        released = []
        for view, claim in mine:
            branch = claim.work_branch
            if branch and (branch in in_review or pushed.get(f"refs/heads/{branch}") is not None):
                continue
            try:
                store.release(view.issue, view.sha)
            except NotHolder:
                continue
            set_stage(forge, view.issue, None)
            released.append(view.issue)
        return released
