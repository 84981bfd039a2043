"""The switch-over from the old cron scripts, pure: their lock branches (core/legacy.py), selection and
the sweep honouring them, and what `agentmesh migrate` imports (core/migrate.py)."""

from __future__ import annotations

import pytest

from agentmesh.core.legacy import (
    LegacyLock,
    legacy_locks,
    lock_candidates,
    mesh_lock_branch,
    mesh_lock_message,
    mesh_locks_to_sync,
    without_open_pulls,
)
from agentmesh.core.markers import marker_text, pull_marker
from agentmesh.core.migrate import (
    MEMORY_NOTE,
    NOTE_HEADER,
    Skipped,
    migration_step,
    plan_import,
    still_missing,
    target_path,
)
from agentmesh.core.model import Issue, PullRequest
from agentmesh.core.select import Reason, Why, rank_issues
from agentmesh.core.slug import parse_work_branch, work_branch
from agentmesh.core.sweep import orphan_branches
from agentmesh.core.vocab import MigrateStep

OURS = "Fix it\n\nAgentmesh-Issue: 4\nAgentmesh-Agent: ada\nAgentmesh-Claim: c0ffee\n"
BRANCHES = {"main": "m", "ada/1-fix-login": "s1", "bob/2-docs": "s2", "ada/3-claimed": "s3", "ada/4-mine": "s4",
            "ada/lessons/x": "s5", "carol/5-closed-pr": "s6", "dave/6-merged-pr": "s7", "eve/7-open-pr": "s8",
            "ada/8-other-issue-trailer": "s9"}
TIPS = {"ada/4-mine": OURS, "ada/8-other-issue-trailer": OURS, "bob/2-docs": "lock\n"}


def pull(number, head, state):
    return PullRequest(number, "t", "", state, head, "main", "x")


PULLS = [pull(10, "carol/5-closed-pr", "closed"), pull(11, "dave/6-merged-pr", "merged"),
         pull(12, "eve/7-open-pr", "closed"), pull(13, "eve/7-open-pr", "open")]


def test_lock_candidates_are_work_shaped_branches_that_are_not_agentmeshs():
    assert lock_candidates(BRANCHES, claimed={3}, tips=TIPS) == {
        "ada/1-fix-login": ("ada", 1), "bob/2-docs": ("bob", 2), "carol/5-closed-pr": ("carol", 5),
        "dave/6-merged-pr": ("dave", 6), "eve/7-open-pr": ("eve", 7),
        # a trailer naming another issue does not make a branch agentmesh's work on this one
        "ada/8-other-issue-trailer": ("ada", 8)}


@pytest.mark.parametrize("pulls, expected", [
    # no PR at all, or an open one: held; only closed or merged PRs: released
    (PULLS, {1: LegacyLock(1, "ada", "ada/1-fix-login", "s1"), 2: LegacyLock(2, "bob", "bob/2-docs", "s2"),
             7: LegacyLock(7, "eve", "eve/7-open-pr", "s8", 13),
             8: LegacyLock(8, "ada", "ada/8-other-issue-trailer", "s9")}),
    ([], {1: LegacyLock(1, "ada", "ada/1-fix-login", "s1"), 2: LegacyLock(2, "bob", "bob/2-docs", "s2"),
          5: LegacyLock(5, "carol", "carol/5-closed-pr", "s6"), 6: LegacyLock(6, "dave", "dave/6-merged-pr", "s7"),
          7: LegacyLock(7, "eve", "eve/7-open-pr", "s8"), 8: LegacyLock(8, "ada", "ada/8-other-issue-trailer", "s9")}),
])
def test_legacy_locks_hold_until_their_pr_closes(pulls, expected):
    candidates = lock_candidates(BRANCHES, claimed={3}, tips=TIPS)
    assert legacy_locks(candidates, BRANCHES, pulls) == expected


def test_a_branch_whose_pr_carries_agentmeshs_marker_for_its_issue_is_no_lock():
    branches = {"ada/1-x": "a", "ada/2-y": "b"}
    marked = [PullRequest(5, "t", f"Closes #1\n\n{marker_text(pull_marker('ada', 1, 'c' * 40))}", "open", "ada/1-x",
                          "main", "a"),
              PullRequest(6, "t", marker_text(pull_marker("ada", 1, "c" * 40)), "open", "ada/2-y", "main", "b")]
    assert legacy_locks(lock_candidates(branches, claimed=(), tips={}), branches, marked) == {
        2: LegacyLock(2, "ada", "ada/2-y", "b", 6)}  # a marker for another issue does not count


def test_two_locks_on_one_issue_show_the_first_branch():
    branches = {"zed/9-b": "z", "amy/9-a": "a"}
    assert legacy_locks(lock_candidates(branches, claimed=(), tips={}), branches, []) == {
        9: LegacyLock(9, "amy", "amy/9-a", "a")}


def test_closed_pulls_are_needed_only_for_a_candidate_without_an_open_pr():
    assert without_open_pulls({"eve/7-open-pr": ("eve", 7)}, PULLS) == []
    assert without_open_pulls({"eve/7-open-pr": ("eve", 7), "bob/2-docs": ("bob", 2)}, PULLS) == ["bob/2-docs"]
    assert without_open_pulls({}, []) == []


def test_selection_skips_a_legacy_held_issue():
    issues = [Issue(n, f"issue {n}", "", "open", ("task",), "someone", (), "2024-05-31T00:00:00Z") for n in (1, 2)]
    selection = rank_issues(issues, agent="ada", eligible_labels=["task"], now=0.0, legacy={1: "bob/1-x"})
    assert [c.number for c in selection.candidates] == [2]
    assert [(e.number, e.reasons) for e in selection.excluded] == [(1, (Reason(Why.LEGACY_LOCK, "bob/1-x"),))]


def test_the_sweep_never_deletes_a_legacy_lock():
    found = orphan_branches(BRANCHES, agents={"ada", "bob"}, open_heads=(), claimed=(), held={"ada/1-fix-login"})
    assert "ada/1-fix-login" not in found and "bob/2-docs" in found


# --- the other way round: agentmesh's claims as the old scripts' lock branches ---------------------------


def test_a_mesh_lock_branch_has_the_old_scripts_shape_and_is_no_work_branch():
    assert mesh_lock_branch("ada", 12) == "ada/12--agentmesh-claim"
    assert parse_work_branch("ada/12--agentmesh-claim") == ("ada", 12)  # what the old scripts' check matches
    assert all(work_branch("ada", 12, title, attempt) != "ada/12--agentmesh-claim"
               for title in ("agentmesh claim", "-agentmesh-claim", "", "--") for attempt in (1, 2))


def test_a_mesh_lock_is_agentmeshs_own_never_a_legacy_lock():
    branches = {"ada/4--agentmesh-claim": "s1"}
    tips = {"ada/4--agentmesh-claim": mesh_lock_message("ada", 4)}
    assert lock_candidates(branches, claimed=set(), tips=tips) == {}  # its claim released, the branch still there


@pytest.mark.parametrize("held, branches, expected", [
    ({4}, {}, ([4], {})),
    ({4}, {"ada/4--agentmesh-claim": "s1"}, ([], {})),
    (set(), {"ada/4--agentmesh-claim": "s1"}, ([], {4: "s1"})),
    ({4, 5}, {"ada/4--agentmesh-claim": "s1", "ada/6--agentmesh-claim": "s2", "ada/5-fix": "s3",
              "bob/5--agentmesh-claim": "s4", "ada/7-agentmesh-claim": "s5"}, ([5], {6: "s2"})),
])
def test_mesh_locks_to_sync(held, branches, expected):
    assert mesh_locks_to_sync("ada", held, branches) == expected


def test_the_sweep_keeps_a_claimed_issues_mesh_lock():
    branches = {"ada/4--agentmesh-claim": "s1", "ada/5--agentmesh-claim": "s2"}
    found = orphan_branches(branches, agents={"ada"}, open_heads=(), claimed={"ada/4--agentmesh-claim"})
    assert found == {"ada/5--agentmesh-claim": "s2"}


# --- the memory import ------------------------------------------------------------------------------


@pytest.mark.parametrize("source, target", [
    ("MEMORY.md", MEMORY_NOTE),
    ("memory/2026-11-20-14.md", "ai-memory/legacy/memory/2026-11-20-14.md"),
    ("memory/2026-11/20-14.log", "ai-memory/legacy/memory/2026-11/20-14.log"),
    ("memory", None),
    ("notes.md", None),
    ("memory/.hidden", None),
    ("memory/a b.md", None),
    ("memory/../x.md", None),
    ("sub/MEMORY.md", None),
])
def test_target_path(source, target):
    assert target_path(source) == target


def test_plan_import_maps_redacts_and_skips():
    token = "tok_" + "s3cr3tvalue1234567890"
    plan = plan_import({"MEMORY.md": b"# Notes\nUse make test.\n",
                        "memory/2026-11-20-14.md": f"pushed with {token}".encode(), "memory/blob.bin": b"\x00\x01",
                        "memory/latin.md": "caf\xe9".encode("latin-1"),
                        "memory/big.md": b"x" * (512 * 1024 + 1), "README.md": b"hi"}, known_secrets=[token])
    assert plan.files == {MEMORY_NOTE: NOTE_HEADER + "# Notes\nUse make test.\n",
                          "ai-memory/legacy/memory/2026-11-20-14.md": "pushed with [REDACTED]"}
    assert plan.skipped == (
        Skipped("README.md", "not MEMORY.md or a plain file name under memory/"),
        Skipped("memory/big.md", "larger than 524288 bytes"), Skipped("memory/blob.bin", "binary"),
        Skipped("memory/latin.md", "not UTF-8 text"))


def test_still_missing_never_overwrites_what_the_default_branch_has():
    files = {"a": "1", "b": "2"}
    assert still_missing(files, on_base={"a": True}) == {"b": "2"}
    assert still_missing(files, on_base={"a": True, "b": True}) == {}


MISSING = {"a": "1", "b": "2"}


@pytest.mark.parametrize("missing, on_branch, exists, state, step", [
    ({}, {}, True, "open", MigrateStep.NOTHING),  # merged and rerun: nothing left
    (MISSING, {}, False, None, MigrateStep.OPEN),
    (MISSING, {"a": "1", "b": "2"}, True, "open", MigrateStep.ADOPT),  # a rerun: the same PR
    (MISSING, {"a": "1", "b": "2"}, True, None, MigrateStep.ADOPT),  # pushed, crashed before the PR
    (MISSING, {"a": "1", "b": None}, True, "open", MigrateStep.ADD),  # new hourly logs since
    (MISSING, {"a": "old", "b": "2"}, True, None, MigrateStep.ADD),
    (MISSING, {}, True, "merged", MigrateStep.OPEN),  # new logs after the merge: rebuilt off the base
    (MISSING, {}, True, "closed", MigrateStep.REFUSED),  # a human said no
])
def test_migration_step(missing, on_branch, exists, state, step):
    assert migration_step(missing, on_branch=on_branch, branch_exists=exists, pull_state=state) is step
