"""The pure decisions behind claim-task's and monitor-prs' plans, on tables of facts."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from agentmesh.core.model import PullRequest
from agentmesh.core.plan import (
    Adopt,
    CleanUpClosed,
    CleanUpMerged,
    DropRework,
    GiveUp,
    HandOver,
    Merge,
    QueueRework,
    Reclaim,
    Release,
    Renew,
    ReportCI,
    RequestReview,
    Resume,
    Rework,
    Wait,
    Withdraw,
)
from agentmesh.core.pulls import FinishedClaim, OwnPull, cleanup_heads, plan_cleanup, plan_own_pull, review_due
from agentmesh.core.reconcile import HeldClaim, ReworkAsk, idle_reason, plan_reconcile, seats_taken
from agentmesh.core.vocab import BLOCKING_LABELS, Act, Label, Stage, Would
from agentmesh.forge.local.bootstrap import DEFAULT_LABELS

# --- claim-task: reconcile ---------------------------------------------------------------------

OPEN = HeldClaim(issue=1, sha="c1", attempt=1, branch="a/1-x", issue_open=True)
IN_REVIEW = replace(OPEN, pull=7, pull_head="h7")
ASK = ReworkAsk(pull=7, head="h7", round=1, feedback=(("Review by b", "fix it"),))


@pytest.mark.parametrize("held, allowed, expected", [
    (replace(OPEN, issue_open=None), True, (Release, "issue not found")),
    (replace(OPEN, issue_open=False), True, (Release, "issue is closed")),
    (IN_REVIEW, True, (Renew, "in review")),
    (replace(IN_REVIEW, rework=ASK), True, (Rework, "round 1")),
    (replace(IN_REVIEW, rework=ASK), False, (Renew, "in review")),  # no budget: the request waits
    (replace(OPEN, pushed_head="c" * 40), True, (Adopt, "a/1-x")),
    (OPEN, True, (Resume, "a crashed run published nothing yet")),
    (OPEN, False, (Release, "budget exhausted (caps); nothing was published")),
])
def test_one_claim(held, allowed, expected):
    [action] = plan_reconcile([held], seats=1, executors_allowed=allowed, budget="caps")
    assert (type(action), action.detail) == expected
    assert action.issue == 1


@pytest.mark.parametrize("ask, handed_over", [
    (replace(ASK, head="old"), False),  # the head moved on since the review
    (replace(ASK, pull=6), False),  # another PR
    (ASK, True),  # a human took the PR
])
def test_a_stale_rework_request_is_dropped_and_the_claim_renewed(ask, handed_over):
    held = replace(IN_REVIEW, rework=ask, pull_handed_over=handed_over)
    actions = plan_reconcile([held], seats=1, executors_allowed=True)
    assert [type(a) for a in actions] == [DropRework, Renew]
    assert actions[0].head == ask.head


def test_the_closed_issue_release_removes_the_worktree_and_the_missing_one_does_not():
    gone, closed = plan_reconcile([replace(OPEN, issue_open=None), replace(OPEN, issue=2, issue_open=False)],
                                  seats=1, executors_allowed=True)
    assert (gone.branch, closed.branch) == ("", "a/1-x")


def test_seats_bound_resumes_and_reworks_and_the_rest_is_released():
    claims = [replace(IN_REVIEW, rework=ASK), replace(OPEN, issue=2), replace(OPEN, issue=3),
              replace(IN_REVIEW, issue=4, pull=8, pull_head="h8")]
    actions = plan_reconcile(claims, seats=2, executors_allowed=True)
    assert [(type(a), a.issue) for a in actions] == [(Rework, 1), (Resume, 2), (Release, 3), (Renew, 4)]
    assert actions[2].detail == "more claims than seats"
    assert seats_taken(actions) == 2


def test_a_rework_without_a_seat_keeps_the_claim_in_review():
    actions = plan_reconcile([replace(OPEN, issue=2), replace(IN_REVIEW, rework=ASK)], seats=1,
                             executors_allowed=True)
    assert [type(a) for a in actions] == [Resume, Renew]


@pytest.mark.parametrize("allowed, paused, candidates, free, reason", [
    (False, False, 3, 1, "budget exhausted"),
    (False, True, 3, 1, "spending paused"),  # a pause says so, whatever the caps
    (True, False, 3, 1, "3 candidate(s), none claimed"),
    (True, False, 3, 0, "all seats busy"),
    (True, False, 0, 1, "no eligible issue"),
])
def test_idle_reason(allowed, paused, candidates, free, reason):
    assert idle_reason(claims_allowed=allowed, paused=paused, candidates=candidates, free_seats=free) == reason


# --- monitor-prs: cleanup ----------------------------------------------------------------------


def pull(number: int, head: str, state: str, issue: int = 9) -> PullRequest:
    return PullRequest(number=number, title="t", body=f"<!-- agentmesh:pr/a/{issue}/{'c' * 40} -->", state=state,
                       head=head, head_sha="s", base="main", author="a")


def test_cleanup_follows_the_newest_pr_of_each_branch():
    mine = [FinishedClaim(1, "c1", "a/1-x", 1), FinishedClaim(2, "c2", "a/2-y", 2), FinishedClaim(3, "c3", "a/3-z", 1),
            FinishedClaim(4, "c4", "a/4-w", 1)]
    pulls = [pull(10, "a/1-x", "closed"), pull(11, "a/1-x", "merged"), pull(12, "a/2-y", "closed"),
             pull(13, "a/3-z", "merged"), pull(14, "a/3-z", "open")]
    actions = plan_cleanup(mine, pulls, branches=())
    assert [(type(a), a.issue, a.pr) for a in actions] == [(CleanUpMerged, 1, 11), (CleanUpClosed, 2, 12)]
    assert actions[1].attempt == 2  # 3 has an open PR again; 4 has none in the listing: both left alone


@pytest.mark.parametrize(("claimed", "branches", "open_heads", "expected"), [
    ((), (), (), []),  # an idle agent asks for nothing, however many PRs were ever closed
    ((), ("bob/1-x", "main", "agentmesh/halt"), (), []),  # other agents' and the mesh's branches
    (("ada/1-x",), (), (), ["ada/1-x"]),  # a claimed branch already deleted: its PR still counts
    ((), ("ada/2-y", "ada/lessons/2-y"), ("ada/2-y",), ["ada/lessons/2-y"]),  # an open PR: in review
    (("ada/3-z",), ("ada/3-z", "adam/4-w"), (), ["ada/3-z"]),  # `adam/` is not `ada/`
])
def test_cleanup_asks_for_the_prs_of_this_agents_branches_without_an_open_pr(claimed, branches, open_heads,
                                                                              expected):
    assert cleanup_heads("ada", claimed=claimed, branches=branches, open_heads=open_heads) == expected


def test_cleanup_is_driven_by_the_remote_not_by_the_claim():
    """A claim released (or reaped) before its PR merged leaves the branch: cleanup still runs, for
    the issue the PR's marker names, and a PR whose branch and claim are both gone is done."""
    pulls = [pull(20, "a/5-x", "merged", issue=5), pull(21, "a/6-y", "closed", issue=6), pull(22, "a/7-z", "merged")]
    actions = plan_cleanup([], pulls, branches={"a/5-x", "a/6-y"})
    assert [(type(a), a.issue, a.pr, a.sha) for a in actions] == [(CleanUpMerged, 5, 20, None),
                                                                   (CleanUpClosed, 6, 21, None)]


# --- monitor-prs: own PRs (the merge decision, on a table) ----------------------------------------

GREEN = OwnPull(pull=5, issue=1, head="h", handed_over=False, approvals=1, required=1, auto_merge=True, me="a",
                claimer="a", claim="c1", branch="a/1-x")


@pytest.mark.parametrize("seen, kinds, wait_reason", [
    (GREEN, [Merge], None),
    (replace(GREEN, handed_over=True), [], None),
    (replace(GREEN, head_is_ours=False), [HandOver], None),
    (replace(GREEN, auto_merge=False), [Wait], "merge.auto is off"),
    (replace(GREEN, approvals=0), [Wait], "0 of 1 approvals on the current head"),
    (replace(GREEN, approvals=0, missing_reviewers=("b",)), [RequestReview, Wait], "0 of 1 approvals"),
    (replace(GREEN, ci_pending=True), [Wait], "CI is pending"),
    (replace(GREEN, protected=(".agentmesh/mesh.yaml",)), [Wait], "touches protected paths"),
    (replace(GREEN, failing_ci=("ci/test",)), [ReportCI, Wait, QueueRework], "CI is failure"),
    (replace(GREEN, changes_requested=True), [Wait, QueueRework], "changes requested on the current head"),
    (replace(GREEN, changes_requested=True, rework_queued=True), [Wait], "changes requested"),
    (replace(GREEN, changes_requested=True, reworks_done=1), [Wait, GiveUp], "changes requested"),
    (replace(GREEN, failing_ci=("ci/test",), reworks_done=2, rework_max=3), [ReportCI, Wait, QueueRework], "CI"),
    # a required check the forge does not report (yet) is not green: the PR waits, no rework is asked for
    (replace(GREEN, unmet_checks=("ci/tests (missing)",)), [Wait], "required checks not green: ci/tests (missing)"),
    (replace(GREEN, unmet_checks=("ci/tests (pending)",), ci_pending=True), [Wait], "CI is pending"),
    (replace(GREEN, unmet_checks=("ci/tests (failure)",), failing_ci=("ci/tests",)), [ReportCI, Wait, QueueRework],
     "CI is failure"),
    (replace(GREEN, unmet_checks=("ci/tests (missing)",), approvals=0), [Wait], "0 of 1 approvals"),
])
def test_own_pull(seen, kinds, wait_reason):
    actions = plan_own_pull(seen)
    assert [type(a) for a in actions] == kinds
    assert all((a.issue, a.pr) == (1, 5) for a in actions)
    if wait_reason is not None:
        [wait] = [a for a in actions if isinstance(a, Wait)]
        assert wait.detail.startswith(wait_reason)


@pytest.mark.parametrize("seen, kind, detail", [
    (replace(GREEN, issue_open=False), Withdraw, "the issue was closed"),
    (replace(GREEN, claimer="b", claim=None), Withdraw, "the claim is held by b"),
    (replace(GREEN, claimer=None, claim=None), Reclaim, "the claim was lost"),
    (replace(GREEN, issue_open=False, handed_over=True), None, ""),  # a human's PR now: left alone
])
def test_one_issue_one_merge_the_fence_before_anything_else(seen, kind, detail):
    actions = plan_own_pull(seen)
    assert [type(a) for a in actions] == ([kind] if kind else [])
    if kind is Withdraw:
        assert actions[0].detail == detail and actions[0].sha == (seen.claim if not seen.issue_open else None)
        assert actions[0].issue_closed is not seen.issue_open


def test_a_queued_rework_is_the_next_round_with_its_feedback():
    seen = replace(GREEN, changes_requested=True, reworks_done=1, rework_max=2, feedback=(("r", "x"),))
    [_, queue] = plan_own_pull(seen)
    assert (queue.round, queue.head, queue.feedback) == (2, "h", (("r", "x"),))


@pytest.mark.parametrize("me, claimer, handed_over, due", [
    ("b", None, False, True),
    ("c", None, False, False),  # b is next in the ring
    ("b", "b", False, False),  # b claimed it: it never reviews what it worked on
    ("b", None, True, False),
    ("c", "b", False, True),  # b took over a's claim: the next one reviews
])
def test_review_due_follows_the_ring(me, claimer, handed_over, due):
    assert review_due(me=me, author="a", claimer=claimer, ring=["a", "b", "c"], alive={"a", "b", "c"}, required=1,
                      handed_over=handed_over) is due


# --- the vocabulary ----------------------------------------------------------------------------


def test_vocabulary_members_are_their_strings():
    assert Label.NEEDS_HUMAN == "agentmesh:needs-human" and json.dumps([Label.REVIEW]) == '["agentmesh:review"]'
    assert [s.label for s in Stage] == [Label.CLAIMED, Label.WORKING, Label.REVIEW, Label.FAILED]
    assert set(DEFAULT_LABELS) > BLOCKING_LABELS
    assert {w.value for w in Would} == {f"would-{a.value}" for a in Act}


def test_plans_print_as_json():
    [action] = plan_reconcile([replace(IN_REVIEW, rework=ASK)], seats=1, executors_allowed=True)
    data = action.to_json()
    assert data["act"] == "rework" and data["head"] == "h7" and data["round"] == 1
    json.dumps(data)


def test_actions_are_records_not_dataclasses():
    """Every tick imports the plan's ~23 action classes: as frozen dataclasses they cost ~3 M instructions each
    (docs/benchmarks.md, "What cron pays"); records cost next to nothing."""
    import dataclasses

    import agentmesh.core.plan as plan

    actions = [v for v in vars(plan).values() if isinstance(v, type) and issubclass(v, plan.Action)]
    assert len(actions) > 20
    assert not any(dataclasses.is_dataclass(a) for a in actions)
    assert Merge(issue=1, head="h").to_json() == {"act": "merge", "issue": 1, "head": "h"}
