"""Which branches are orphans to sweep: work and lesson branches of the mesh's agents that have no
open PR and no claim, seen unchanged by this host for longer than lease + grace. And which of the
siblings' open PRs are stale: their issue is closed and their author has been away as long.

The clock is this observer's own (docs/design/protocol.md, "observer-elapsed time"), so a skewed or
paused agent cannot make a branch look old; and a branch that gets a PR or a claim meanwhile is
forgotten, its clock restarted. Pure: the listings and the time come in, the plan goes out.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from agentmesh.core.lease import Clock, Observation, observed_seconds, update_observations
from agentmesh.core.plan import Sweep, Withdraw
from agentmesh.core.record import Record
from agentmesh.core.slug import is_lesson_branch, parse_work_branch

SWEEP_PREFIX = "sweep:"  # observations of orphan candidates, beside the claims' in one file
STALE_PREFIX = "stale-pr:"  # observations of stale PRs, likewise


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


class StalePull(Record):
    """A sibling's open PR whose issue is closed, while its author shows no presence and holds no claim
    on the issue: the author would withdraw it on its next run, which may never come."""

    pull: int
    issue: int
    head: str
    author: str


def plan_stale_pulls(stale: Collection[StalePull], observations: Mapping[str, Observation], now: Clock, *,
                     lease_seconds: int, grace_seconds: int) -> tuple[list[Withdraw], dict[str, Observation]]:
    """The stale PRs to withdraw, seen so (at the same head) past lease + grace by this host's clock, and
    the observations to save. Closing one is always safe, its issue being closed; the wait leaves it to
    its author first."""
    updated = update_observations(observations, {f"{STALE_PREFIX}{p.pull}": p.head for p in stale}, now, STALE_PREFIX)
    withdrawals = []
    for pull in sorted(stale, key=lambda p: p.pull):
        seen = observed_seconds(updated[f"{STALE_PREFIX}{pull.pull}"], now)
        if seen > lease_seconds + grace_seconds:
            withdrawals.append(Withdraw(issue=pull.issue, pr=pull.pull, head=pull.head, sha=None, issue_closed=True,
                                        detail=f"its issue is closed and its author `{pull.author}` has been away "
                                               f"for {seen:.0f}s by this host's clock"))
    return withdrawals, updated
