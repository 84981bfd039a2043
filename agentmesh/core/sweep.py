"""Which branches are orphans to sweep: work and lesson branches of the mesh's agents that have no
open PR and no claim, seen unchanged by this host for longer than lease + grace.

The clock is this observer's own (docs/design/protocol.md, "observer-elapsed time"), so a skewed or
paused agent cannot make a branch look old; and a branch that gets a PR or a claim meanwhile is
forgotten, its clock restarted. Pure: the listings and the time come in, the plan goes out.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from agentmesh.core.lease import Clock, Observation, observed_seconds, update_observations
from agentmesh.core.plan import Sweep
from agentmesh.core.slug import is_lesson_branch, parse_work_branch

SWEEP_PREFIX = "sweep:"  # observations of orphan candidates, beside the claims' in one file


def orphan_branches(branches: Mapping[str, str], *, agents: Collection[str], open_heads: Collection[str],
                    claimed: Collection[str], held: Collection[str] = ()) -> dict[str, str]:
    """branch -> sha of the mesh agents' work and lesson branches with no open PR and no claim. `held`: the
    old scripts' lock branches (core/legacy.py), never swept: deleting one would free its issue to both."""
    found = {}
    for branch, sha in branches.items():
        if branch in held:
            continue
        work = parse_work_branch(branch)
        owner = work[0] if work else branch.split("/", 1)[0] if is_lesson_branch(branch) else None
        if owner in agents and branch not in open_heads and branch not in claimed:
            found[branch] = sha
    return found


def plan_sweep(orphans: Mapping[str, str], observations: Mapping[str, Observation], now: Clock, *,
               lease_seconds: int, grace_seconds: int) -> tuple[list[Sweep], dict[str, Observation]]:
    """The sweeps due, and the observations to save (from a complete listing only)."""
    updated = update_observations(observations, {SWEEP_PREFIX + b: sha for b, sha in orphans.items()}, now,
                                  SWEEP_PREFIX)
    sweeps = []
    for branch, sha in sorted(orphans.items()):
        seen = observed_seconds(updated[SWEEP_PREFIX + branch], now)
        if seen > lease_seconds + grace_seconds:
            work = parse_work_branch(branch)
            sweeps.append(Sweep(issue=work[1] if work else None, branch=branch, sha=sha,
                                detail=f"no PR and no claim for {seen:.0f}s"))
    return sweeps, updated
