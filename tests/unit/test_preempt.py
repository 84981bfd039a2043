"""Preemption (core/preempt.py): which of this agent's running jobs makes way for an urgent issue."""

from datetime import UTC, datetime

import pytest

from agentmesh.agent.preempt import Preemption
from agentmesh.core.errors import TemporaryError
from agentmesh.core.model import Issue
from agentmesh.core.preempt import Preempt, RunningJob, choose_preemption, counted_labels, is_urgent
from agentmesh.core.select import rank_issues

NOW = datetime(2024, 6, 1, tzinfo=UTC)
CRITICAL = ("priority:critical",)


def issue(number, *labels):
    return Issue(number, f"issue {number}", "", "open", ("task", *labels), "someone", (), "2024-05-31T00:00:00Z")


def ranked(*issues):
    return rank_issues(issues, agent="ada", eligible_labels=["task"], now=NOW).candidates


def job(number, score, *labels, rework=False):
    return RunningJob(number, score, frozenset(labels), rework)


CASES = [
    # (running, candidates, seats, expected victim/urgent or None)
    ([job(1, 15.0)], [issue(9, "priority:critical")], 1, (1, 9)),
    ([job(1, 15.0)], [issue(9, "PRIORITY:Critical ")], 1, (1, 9)),  # labels compare as in selection
    ([job(1, 15.0)], [issue(9, "priority:high")], 1, None),  # only a preempting label preempts
    ([job(1, 15.0)], [], 1, None),
    ([job(1, 15.0)], [issue(9, "priority:critical")], 2, None),  # a seat is free: the next claim takes it
    ([job(1, 30.0), job(2, 15.0)], [issue(9, "priority:critical")], 2, (2, 9)),  # the lowest-scored job
    ([job(1, 15.0), job(2, 15.0)], [issue(9, "priority:critical")], 2, (2, 9)),  # tie: the newest issue
    ([job(1, 40.0, "priority:critical")], [issue(9, "priority:critical")], 1, None),  # urgent jobs stay
    ([job(1, 15.0, rework=True)], [issue(9, "priority:critical")], 1, None),  # a rework keeps its claim
    ([job(1, 15.0, rework=True), job(2, 30.0)], [issue(9, "priority:critical")], 2, (2, 9)),
    ([job(1, 15.0)], [issue(8), issue(9, "priority:critical"), issue(7, "priority:critical")], 1, (1, 7)),
]


@pytest.mark.parametrize(("running", "issues", "seats", "expected"), CASES)
def test_choose_preemption(running, issues, seats, expected):
    decided = choose_preemption(running, ranked(*issues), seats=seats, preempting=CRITICAL)
    assert (None if decided is None else (decided.victim, decided.urgent)) == expected


def test_no_preempting_label_configured_turns_it_off():
    assert choose_preemption([job(1, 15.0)], ranked(issue(9, "priority:critical")), seats=1, preempting=()) is None


def test_the_configured_label_preempts_and_the_default_does_not():
    candidates = ranked(issue(9, "priority:critical"), issue(10, "hotfix"))
    decided = choose_preemption([job(1, 15.0)], candidates, seats=1, preempting=["hotfix"])
    assert isinstance(decided, Preempt) and (decided.victim, decided.urgent) == (1, 10)
    assert "#10" in decided.detail


@pytest.mark.parametrize(("labels", "urgent"), [
    (("task", "priority:critical"), True), (("Priority:Critical",), True), (("priority:high",), False), ((), False),
])
def test_is_urgent(labels, urgent):
    assert is_urgent(labels, CRITICAL) is urgent


TRUSTED = {"ada", "maintainer:grace"}.__contains__


@pytest.mark.parametrize(("labels", "setters", "counted"), [
    (("task", "priority:critical"), {"task": "eve", "priority:critical": "maintainer:grace"}, True),
    (("task", "priority:critical"), {"priority:critical": "ada"}, True),  # a roster agent
    (("task", "priority:critical"), {"priority:critical": "unverified:eve"}, False),  # an outsider
    (("task", "priority:critical"), {}, False),  # no one known set it (removed since, events unreadable)
    (("task", "Priority:Critical"), {"Priority:Critical": "unverified:eve"}, False),
    (("task", "priority:critical", "hotfix"), {"priority:critical": "unverified:eve", "hotfix": "ada"}, True),
])
def test_a_preempting_label_counts_only_from_a_maintainer_or_roster_agent(labels, setters, counted):
    preempting = ("priority:critical", "hotfix")
    kept, dropped = counted_labels(labels, preempting, setters, TRUSTED)
    assert "task" in kept and is_urgent(kept, preempting) is counted
    assert sorted(kept + dropped) == sorted(labels)
    decided = choose_preemption([job(1, 15.0)], ranked(issue(9, *kept)), seats=1, preempting=preempting)
    assert (decided is not None) is counted


# --- the seats' shared view (agent/preempt.py), on a fake clock ------------------------------------


def test_the_seats_read_once_per_heartbeat_and_only_the_victim_is_told():
    now, reads = [0.0], []

    def rank():
        reads.append(now[0])
        if len(reads) == 1:
            raise TemporaryError("forge down")
        return ranked(issue(9, "priority:critical"))

    seats = Preemption(seats=2, preempting=CRITICAL, rank=rank, every_seconds=10, now=lambda: now[0])
    seats.started(job(1, 30.0))
    now[0] = 10
    assert seats.due(1) is None and reads == []  # a seat is free: nothing is read
    seats.started(job(2, 15.0))
    assert seats.due(1) is None and reads == [10]  # the read failed: retried a heartbeat later
    now[0] = 15
    assert seats.due(2) is None and reads == [10]
    now[0] = 20
    assert seats.due(1) is None and reads == [10, 20]  # decided: job 2 makes way
    decided = seats.due(2)
    assert (decided.victim, decided.urgent) == (2, 9) and reads == [10, 20]  # told without another read
    assert seats.ended(1) is None
    assert seats.ended(2) == decided  # its seat claims #9
    assert seats.due(2) is None


def test_no_preempting_label_reads_nothing():
    seats = Preemption(seats=1, preempting=(), rank=lambda: pytest.fail("read"), every_seconds=0)
    seats.started(job(1, 15.0))
    assert seats.due(1) is None
