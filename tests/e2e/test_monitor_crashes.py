"""Kill monitor-prs at each step with SIGKILL; the rerun converges without duplicates."""

from __future__ import annotations

import signal

import pytest

from agentmesh.core.vocab import Stage
from tests.support import (
    JOURNALS,
    git,
    journal_entries,
    remote_refs,
    wait_for,
)
from tests.support.cli import cron_ring_pull, run_json, start_cli


@pytest.fixture
def ring(tmp_path):
    remote, configs, forge, issue = cron_ring_pull(tmp_path, "Module", "pkg/m.py", "X = 1\n")
    [pull] = forge.list_pulls()
    return remote, configs, forge, issue, pull


def kill_at_push(tmp_path, remote, pattern: str, config, *args: str, landed: bool = True) -> None:
    """Run the command and SIGKILL it during a push whose refs match `pattern`: right after it landed,
    or (`landed=False`) while the remote holds it, never to take it."""
    flag = tmp_path / "hook-fired"
    hook = remote / "hooks" / ("post-receive" if landed else "pre-receive")
    hook.write_text(f"#!/bin/sh\nif grep -q '{pattern}'; then touch '{flag}'; sleep 20; exit 1; fi\n")
    hook.chmod(0o755)
    proc = start_cli("--config", str(config), *args, cwd=config.parent)
    try:
        wait_for(flag.exists, f"a push matching {pattern}")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        hook.unlink()
        flag.unlink(missing_ok=True)


def assert_converged(remote, forge, issue, pull) -> None:
    merged = forge.get_pull(pull.number)
    assert merged.state == "merged"
    assert [r.author for r in forge.list_reviews(pull.number)] == ["b"]
    assert forge.get_issue(issue).state == "closed"
    refs = sorted(remote_refs(remote, "refs/heads/"))
    assert [r for r in refs if not r.startswith(JOURNALS)] == [
        "refs/heads/agentmesh/agents/a", "refs/heads/agentmesh/agents/b", "refs/heads/agentmesh/agents/c",
        "refs/heads/main"]
    assert {r for r in refs if r.startswith(JOURNALS)} <= {JOURNALS + a for a in "abc"}  # each agent's own
    merges = git("log", "--format=%s", "--merges", "main", cwd=remote).splitlines()
    assert len(merges) == 1, merges
    assert git("rev-list", "--count", "--first-parent", "main", cwd=remote) == "2"  # the seed and the merge
    for number in (issue, pull.number):
        bodies = [c.body for c in forge.list_comments(number)]
        assert len(bodies) == len(set(bodies)), bodies


def reviewed_lines(remote, pull) -> list[str]:
    """The reviewer's journal lines about the PR's review, read from the remote."""
    return [e.event for e in journal_entries(remote)
            if e.agent == "b" and e.pr == pull.number and e.event == "reviewed"]


def test_killed_right_after_the_review(tmp_path, ring):
    remote, configs, forge, issue, pull = ring
    kill_at_push(tmp_path, remote, " refs/agentmesh/items/", configs["b"], "monitor-prs")
    assert [r.author for r in forge.list_reviews(pull.number)] == ["b"]  # the review landed
    # with its status and its journal line: one push (the run was killed before it marked the line sent)
    assert forge.ci_status(pull.head_sha).state == "success" and reviewed_lines(remote, pull) == ["reviewed"]
    rerun = run_json(configs["b"], "monitor-prs")
    # no second review (the killed run journaled its verdict before submitting it), nor a second line
    assert not [e for e in rerun["events"] if e["event"] in ("approved", "changes-requested")]
    assert [r.author for r in forge.list_reviews(pull.number)] == ["b"]
    assert reviewed_lines(remote, pull) == ["reviewed"]
    run_json(configs["a"], "monitor-prs")
    assert_converged(remote, forge, issue, pull)


def test_killed_while_the_remote_holds_the_review(tmp_path, ring):
    remote, configs, forge, issue, pull = ring
    kill_at_push(tmp_path, remote, " refs/agentmesh/items/", configs["b"], "monitor-prs", landed=False)
    # nothing of the push landed: no review, no status, no journal line
    assert forge.list_reviews(pull.number) == [] and forge.ci_status(pull.head_sha).contexts == ()
    assert reviewed_lines(remote, pull) == []
    run_json(configs["b"], "monitor-prs")  # the rerun reviews, once
    assert [r.author for r in forge.list_reviews(pull.number)] == ["b"] and reviewed_lines(remote, pull) == ["reviewed"]
    run_json(configs["a"], "monitor-prs")
    assert_converged(remote, forge, issue, pull)


def test_killed_before_the_merge(tmp_path, ring):
    remote, configs, forge, issue, pull = ring
    run_json(configs["b"], "monitor-prs")
    kill_at_push(tmp_path, remote, " refs/heads/main", configs["a"], "monitor-prs", landed=False)
    assert forge.get_pull(pull.number).state == "open"
    assert remote_refs(remote, "refs/heads/claim/")  # nothing of the merge landed
    rerun = run_json(configs["a"], "monitor-prs")
    assert [e["event"] for e in rerun["events"]][:2] == ["merged", "cleaned-up"]
    assert_converged(remote, forge, issue, pull)


def test_killed_right_after_the_merges_push(tmp_path, ring):
    """On the local forge the clean-up lands in the merge's own push (issue 16): killed the moment it landed,
    the claim, the branch and the issue's stage went with it, and so did the journal's `merged` and
    `cleaned-up` lines; the rerun has nothing left to do, and writes none of it twice. (The steps a REST
    forge takes apart are killed between in tests/integration/test_whole_life.py.)"""
    remote, configs, forge, issue, pull = ring
    run_json(configs["b"], "monitor-prs")
    kill_at_push(tmp_path, remote, " refs/heads/main", configs["a"], "monitor-prs")
    assert forge.get_pull(pull.number).state == "merged"
    assert remote_refs(remote, "refs/heads/claim/") == {} and remote_refs(remote, "refs/heads/a/") == {}
    assert not {s.value for s in Stage} & set(forge.get_issue(issue).labels)
    rerun = run_json(configs["a"], "monitor-prs")
    assert not [e for e in rerun["events"] if e["event"] in ("merged", "cleaned-up")], rerun["events"]
    assert_converged(remote, forge, issue, pull)
    lines = [e for e in journal_entries(remote) if e.pr == pull.number and e.event in ("merged", "cleaned-up")]
    assert sorted(e.event for e in lines) == ["cleaned-up", "merged"], lines
