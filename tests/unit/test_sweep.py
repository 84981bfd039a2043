"""Which orphan branches are swept, judged by this observer's own clock (core/sweep.py)."""

from __future__ import annotations

from agentmesh.core.lease import Clock
from agentmesh.core.slug import is_lesson_branch, parse_work_branch, work_branch
from agentmesh.core.sweep import STALE_PREFIX, SWEEP_PREFIX, StalePull, orphan_branches, plan_stale_pulls, plan_sweep

BRANCHES = {"main": "m", "ada/1-fix": "s1", "ada/2-pr": "s2", "bob/3-claimed": "s3", "ada/lessons/x": "s4",
            "carol/4-human": "s5", "claim/5": "s6", "ada/6-fix-a2": "s7"}


def orphans() -> dict[str, str]:
    return orphan_branches(BRANCHES, agents={"ada", "bob"}, open_heads={"ada/2-pr"}, claimed={"bob/3-claimed"})


def test_orphans_are_the_agents_branches_with_no_open_pr_and_no_claim():
    # carol is no agent of the mesh: a human's branch that looks like a work branch is never touched
    assert orphans() == {"ada/1-fix": "s1", "ada/lessons/x": "s4", "ada/6-fix-a2": "s7"}


def test_a_branch_is_swept_only_after_lease_and_grace_unchanged_by_this_hosts_clock():
    t0 = Clock(wall=1000.0, mono=50.0, boot_id="b")
    sweeps, seen = plan_sweep(orphans(), {}, t0, lease_seconds=60, grace_seconds=15)
    assert sweeps == []
    later = Clock(wall=1076.0, mono=126.0, boot_id="b")
    sweeps, _ = plan_sweep(orphans(), seen, later, lease_seconds=60, grace_seconds=15)
    assert [(s.branch, s.issue, s.sha) for s in sweeps] == [
        ("ada/1-fix", 1, "s1"), ("ada/6-fix-a2", 6, "s7"), ("ada/lessons/x", None, "s4")]


def test_a_wall_clock_jump_cannot_sweep_early_and_a_moved_branch_restarts_its_clock():
    t0 = Clock(wall=1000.0, mono=50.0, boot_id="b")
    _, seen = plan_sweep(orphans(), {}, t0, lease_seconds=60, grace_seconds=15)
    jumped = Clock(wall=1000.0 + 3600, mono=60.0, boot_id="b")  # +1 h of skew, 10 s of real time
    sweeps, seen = plan_sweep(orphans(), seen, jumped, lease_seconds=60, grace_seconds=15)
    assert sweeps == []
    moved = {**orphans(), "ada/1-fix": "new"}
    later = Clock(wall=1000.0 + 3700, mono=140.0, boot_id="b")
    sweeps, seen = plan_sweep(moved, seen, later, lease_seconds=60, grace_seconds=15)
    assert "ada/1-fix" not in {s.branch for s in sweeps}
    assert seen[SWEEP_PREFIX + "ada/1-fix"].sha == "new"


def test_a_branch_that_got_a_pr_is_forgotten():
    t0 = Clock(wall=1000.0, mono=50.0, boot_id="b")
    _, seen = plan_sweep({"ada/1-fix": "s1"}, {"refs/claims/1": None}, t0, lease_seconds=60,  # type: ignore[dict-item]
                         grace_seconds=15)
    _, seen = plan_sweep({}, seen, t0, lease_seconds=60, grace_seconds=15)
    assert SWEEP_PREFIX + "ada/1-fix" not in seen and "refs/claims/1" in seen  # claims' observations kept


def test_later_attempts_get_their_own_branch():
    first, second = work_branch("ada", 7, "Fix the thing"), work_branch("ada", 7, "Fix the thing", attempt=2)
    assert (first, second) == ("ada/7-fix-the-thing", "ada/7-fix-the-thing-a2")
    long = work_branch("ada", 7, "x" * 80, attempt=12)
    assert parse_work_branch(long) == ("ada", 7) and long.endswith("-a12")
    assert is_lesson_branch("ada/lessons/some-lesson") and not is_lesson_branch("ada/7-x")


def test_a_stale_pr_is_withdrawn_only_after_lease_and_grace_at_one_head_by_this_hosts_clock():
    stale = [StalePull(pull=9, issue=3, head="h1", author="ada")]
    t0 = Clock(wall=1000.0, mono=50.0, boot_id="b")
    withdrawals, seen = plan_stale_pulls(stale, {SWEEP_PREFIX + "x": None}, t0,  # type: ignore[dict-item]
                                         lease_seconds=60, grace_seconds=15)
    assert withdrawals == [] and SWEEP_PREFIX + "x" in seen  # the sweeps' observations are kept
    jumped = Clock(wall=1000.0 + 3600, mono=60.0, boot_id="b")  # skew cannot withdraw early
    assert plan_stale_pulls(stale, seen, jumped, lease_seconds=60, grace_seconds=15)[0] == []
    pushed = [StalePull(pull=9, issue=3, head="h2", author="ada")]  # a new head restarts the clock
    later = Clock(wall=1000.0 + 3700, mono=140.0, boot_id="b")
    assert plan_stale_pulls(pushed, seen, later, lease_seconds=60, grace_seconds=15)[0] == []
    [withdraw] = plan_stale_pulls(stale, seen, later, lease_seconds=60, grace_seconds=15)[0]
    assert (withdraw.pr, withdraw.issue, withdraw.head, withdraw.sha, withdraw.issue_closed) == (9, 3, "h1", None, True)
    assert "`ada` has been away for 90s" in withdraw.detail
    assert STALE_PREFIX + "9" not in plan_stale_pulls([], seen, later, lease_seconds=60, grace_seconds=15)[1]
