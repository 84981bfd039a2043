"""The old cron scripts' locks, honoured during a switch-over to agentmesh.

The old `claim-task.py` locked an issue by pushing a branch `<agent>/<issue>-<slug>`, the same shape
as agentmesh's work branches, and worked on it until its PR closed. So that the two systems never
work on one issue at once, such a branch is a claim held by that agent until its PR closes:

- a branch of an issue that has an agentmesh claim is agentmesh's (the claim decides);
- a branch whose tip says it is agentmesh work on that issue (the `Agentmesh-Issue` trailer of every
  work commit) is agentmesh's: its orphans are swept by their own rule, never held as locks;
- a branch with a PR carrying agentmesh's marker for that issue is agentmesh's: monitor-prs judges it;
- any other such branch holds its issue while it has an open PR or no PR at all; once every PR of
  the branch is closed or merged, the lock is released (the old scripts may leave the branch behind).

A trailer is no proof (anyone can write one); it only says which rule a branch falls under, and a
wrong guess costs a skipped issue or, at worst, what the two systems did before.

The other way round (`migration.lock_branches`): while an agent holds a claim it also holds a lock
branch of the old scripts' shape, `<agent>/<issue>--agentmesh-claim`, which their check sees as the
issue taken. The slug starts with a dash, which no title's slug does (core/slug.py), so it is never a
work branch; its commit carries the `Agentmesh-Issue` trailer, so agentmesh never takes it for an old
script's lock. Pure: the listing, the tips' messages and the PRs come in.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from agentmesh.core.lease import parse_trailers
from agentmesh.core.markers import parse_pull_marker
from agentmesh.core.model import PullRequest
from agentmesh.core.slug import parse_work_branch


@dataclass(frozen=True)
class LegacyLock:
    issue: int
    agent: str
    branch: str
    sha: str
    pr: int | None = None  # its open PR, if it has one

    def to_json(self) -> dict:
        return {"issue": self.issue, "agent": self.agent, "branch": self.branch, "sha": self.sha, "pr": self.pr}


def lock_candidates(branches: Mapping[str, str], *, claimed: Collection[int],
                    tips: Mapping[str, str]) -> dict[str, tuple[str, int]]:
    """branch -> (agent, issue) of the work-shaped branches that are not agentmesh's: no agentmesh claim on
    their issue, and a tip (message in `tips`; unknown counts as not agentmesh's) that is no agentmesh
    work commit on that issue."""
    found = {}
    for branch in branches:
        parsed = parse_work_branch(branch)
        if parsed is None or parsed[1] in claimed:
            continue
        if parse_trailers(tips.get(branch, "")).get("issue") == str(parsed[1]):
            continue
        found[branch] = parsed
    return found


def legacy_locks(candidates: Mapping[str, tuple[str, int]], branches: Mapping[str, str],
                 pulls: Iterable[PullRequest]) -> dict[int, LegacyLock]:
    """issue -> the lock holding it: a candidate with an open PR or no PR at all among `pulls` (which must
    list closed PRs too for a branch without an open one), and no PR with agentmesh's marker for its
    issue. Of two locks on one issue, the first branch by name is shown; either holds it."""
    by_head: dict[str, list[PullRequest]] = {}
    for pull in pulls:
        by_head.setdefault(pull.head, []).append(pull)
    locks: dict[int, LegacyLock] = {}
    for branch in sorted(candidates):
        agent, issue = candidates[branch]
        its = by_head.get(branch, [])
        if any((marker := parse_pull_marker(p.body)) is not None and marker.issue == issue for p in its):
            continue
        open_pr = min((p.number for p in its if p.state == "open"), default=None)
        if its and open_pr is None:
            continue  # its PR closed: the old scripts are done with it
        locks.setdefault(issue, LegacyLock(issue, agent, branch, branches[branch], open_pr))
    return locks


def without_open_pulls(candidates: Mapping[str, tuple[str, int]], open_pulls: Iterable[PullRequest]) -> list[str]:
    """The candidates whose closed PRs deciding them needs: those without an open PR, by name."""
    heads = {p.head for p in open_pulls if p.state == "open"}
    return sorted(branch for branch in candidates if branch not in heads)


MESH_LOCK_SLUG = "-agentmesh-claim"  # after `<issue>-`: a leading dash, which no title's slug has


def mesh_lock_branch(agent: str, issue: int) -> str:
    """The lock branch `agent` holds for `issue` while migrating: `<agent>/<issue>--agentmesh-claim`."""
    return f"{agent}/{issue}-{MESH_LOCK_SLUG}"


def mesh_lock_message(agent: str, issue: int) -> str:
    return (f"agentmesh: {agent} holds a claim on #{issue}; the old scripts leave it alone\n\n"
            f"Agentmesh-Agent: {agent}\nAgentmesh-Issue: {issue}\n")


def mesh_locks_to_sync(agent: str, held: Collection[int],
                       branches: Mapping[str, str]) -> tuple[list[int], dict[int, str]]:
    """(the issues `agent` holds a claim on without its lock branch, issue -> sha of its lock branches whose
    claim is gone) in the listing `branches`."""
    mine: dict[int, str] = {}
    for branch, sha in branches.items():
        parsed = parse_work_branch(branch)
        if parsed is not None and parsed[0] == agent and branch == mesh_lock_branch(agent, parsed[1]):
            mine[parsed[1]] = sha
    return sorted(set(held) - set(mine)), {issue: sha for issue, sha in sorted(mine.items()) if issue not in held}
