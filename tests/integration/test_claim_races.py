"""Real processes racing for claims on one real bare remote.

They hold invariants 1 and 3 of docs/design/protocol.md, "Invariants the tests hold".
"""

import multiprocessing
import random
from pathlib import Path

import pytest

from tests.support import git_daemon, make_remote, make_store, remote_refs

CTX = multiprocessing.get_context("fork")


def _same_issue_worker(url: str, root: str, agent: str, rounds: int, barrier, results) -> None:
    store = make_store(url, Path(root), agent)
    store.cache.fetch_default_branch()  # warm the cache so every round races on the push itself
    for round_ in range(rounds):
        barrier.wait(timeout=120)
        result = store.acquire(1000 + round_)
        results.put((round_, agent, result.won, result.holder.agent if result.holder else None, result.sha))


def _run_workers(target, args_for, count: int, timeout: float = 600) -> None:
    procs = [CTX.Process(target=target, args=args_for(i)) for i in range(count)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout)
    assert all(proc.exitcode == 0 for proc in procs), [proc.exitcode for proc in procs]


def _drain(queue, expected: int) -> list:
    return [queue.get(timeout=60) for _ in range(expected)]


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["file", "git"])
def test_many_processes_race_for_one_issue(tmp_path, transport):
    """32 processes claim the same issue each round: one winner, and every loser names it."""
    # Every round is a fresh 32-way race on one push: a lost compare-and-swap shows in the first rounds.
    agents, rounds = (32, 10) if transport == "file" else (16, 5)
    remote = make_remote(tmp_path / "srv" / "remote.git")
    barrier, results = CTX.Barrier(agents), CTX.Queue()

    def race(url):
        _run_workers(_same_issue_worker, lambda i: (url, str(tmp_path / "hosts"), f"agent-{i}", rounds, barrier,
                                                    results), agents)

    if transport == "file":
        race(f"file://{remote}")
    else:
        with git_daemon(tmp_path / "srv") as base:
            race(f"{base}/remote.git")
    outcomes = _drain(results, agents * rounds)
    claims = remote_refs(remote, "refs/heads/claim/")
    for round_ in range(rounds):
        this = [o for o in outcomes if o[0] == round_]
        winners = [o for o in this if o[2]]
        assert len(winners) == 1, f"round {round_}: {len(winners)} winners"
        winner, sha = winners[0][1], winners[0][4]
        assert all(o[3] == winner and o[4] == sha for o in this), f"round {round_}: a loser named another holder"
        assert claims[f"refs/heads/claim/{1000 + round_}"] == sha


def _many_issues_worker(url: str, root: str, agent: str, issues: list[int], results) -> None:
    store = make_store(url, Path(root), agent)
    store.cache.fetch_default_branch()
    order = issues[:]
    random.Random(agent).shuffle(order)
    seen = set()
    won = []
    for n, issue in enumerate(order):
        if n % 25 == 0:  # as claim-task does: skip what is visibly claimed
            seen |= {v.issue for v in store.list()}
        if issue in seen:
            continue
        result = store.acquire(issue)
        seen.add(issue)
        if result.won:
            assert not result.recovered
            won.append(issue)
    results.put((agent, won))


@pytest.mark.slow
def test_agents_race_over_many_issues(tmp_path):
    """16 agents race over 100 issues: every issue is claimed exactly once."""
    agents, issues = 16, list(range(1, 101))
    remote = make_remote(tmp_path / "remote.git")
    results = CTX.Queue()
    _run_workers(_many_issues_worker, lambda i: (str(remote), str(tmp_path / "hosts"), f"agent-{i}", issues,
                                                 results), agents)
    won = dict(_drain(results, agents))
    claimed = [issue for issues_won in won.values() for issue in issues_won]
    assert sorted(claimed) == issues  # each exactly once
    holders = {issue: agent for agent, issues_won in won.items() for issue in issues_won}
    on_remote = remote_refs(remote, "refs/heads/claim/")
    assert len(on_remote) == 100
    reader = make_store(str(remote), tmp_path / "reader", "reader")
    assert {v.issue: v.claim.agent for v in reader.list()} == holders
