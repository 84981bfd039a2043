import pytest

from agentmesh.core.markers import marker_text, pull_marker
from agentmesh.core.model import PullRequest, Review, StatusContext
from agentmesh.core.review import (
    GateResult,
    counted_approvals,
    failing_checks,
    gate_files,
    glob_match,
    head_reviews,
    merge_decision,
    mesh_pull,
    protected_changes,
    protected_hits,
    reviewers_for,
    ring_order,
    unmet_checks,
    verdict,
)

RING = ["a", "b", "c"]
SHA = "1" * 40


def test_the_next_live_agent_reviews():
    assert reviewers_for(RING, "a", alive={"a", "b", "c"}, count=1) == ["b"]
    assert reviewers_for(RING, "c", alive={"a", "b", "c"}, count=1) == ["a"]
    assert reviewers_for(RING, "a", alive={"a", "c"}, count=1) == ["c"]  # b is dead: skipped
    assert reviewers_for(RING, "a", alive={"a"}, count=1) == []  # nobody left
    assert reviewers_for(RING, "a", alive=set(RING), count=5) == ["b", "c"]  # never the author
    assert reviewers_for(RING, "a", alive=set(RING), count=1, exclude={"b"}) == ["c"]  # the claim holder
    assert reviewers_for(RING, "human", alive=set(RING), count=1) == ["a"]
    assert ring_order([], ["c", "a", "b", "a"]) == ["a", "b", "c"]
    assert ring_order(["c", "a", "c"], ["x"]) == ["c", "a"]


def pull(author: str, body: str) -> PullRequest:
    return PullRequest(1, "t", body, "open", "a/1-x", "main", SHA, author=author)


def test_only_agents_prs_are_mesh_prs():
    body = marker_text(pull_marker("a", 1, SHA))
    assert mesh_pull(pull("a", body), ring=RING, bot_users=()).agent == "a"
    assert mesh_pull(pull("bot", body), ring=RING, bot_users=("bot",)).agent == "a"
    assert mesh_pull(pull("mallory", body), ring=RING, bot_users=("bot",)) is None  # forged marker
    # with a roster, only the agent's roster login counts: bot_users is for meshes without one
    assert mesh_pull(pull("bot", body), ring=RING, bot_users=("bot",), logins={"a": "a-bot"}) is None
    assert mesh_pull(pull("A-Bot", body), ring=RING, bot_users=(), logins={"a": "a-bot"}).agent == "a"
    assert mesh_pull(pull("a", "no marker"), ring=RING, bot_users=()) is None
    assert mesh_pull(pull("z", marker_text(pull_marker("z", 1, SHA))), ring=RING, bot_users=()) is None


def test_with_roster_logins_a_mesh_pr_is_opened_by_the_agents_login():
    """Not by an account merely named like the agent (Gitea/GitHub, issue 14)."""
    body = marker_text(pull_marker("a", 1, SHA))
    logins = {"a": "a-bot", "b": "b-bot"}
    assert mesh_pull(pull("a-bot", body), ring=RING, bot_users=(), logins=logins).agent == "a"
    assert mesh_pull(pull("A-Bot", body), ring=RING, bot_users=(), logins=logins).agent == "a"
    assert mesh_pull(pull("a", body), ring=RING, bot_users=(), logins=logins) is None
    assert mesh_pull(pull("b-bot", body), ring=RING, bot_users=(), logins=logins) is None  # b's account
    assert mesh_pull(pull("c", marker_text(pull_marker("c", 1, SHA))), ring=RING, bot_users=(), logins=logins) is None


def test_approvals_are_bound_to_the_head():
    reviews = [Review(1, "b", "APPROVED", "0" * 40), Review(2, "c", "CHANGES_REQUESTED", SHA),
               Review(3, "c", "APPROVED", SHA), Review(4, "a", "APPROVED", SHA), Review(5, "x", "APPROVED", SHA)]
    head = head_reviews(reviews, SHA)
    assert head.approved_by == {"c", "a", "x"} and head.changes_requested_by == set()
    assert "b" not in head.reviewed_by  # b approved an older head: stale
    assert counted_approvals(head, author="a", claimer="c", reviewers=RING) == set()
    assert counted_approvals(head, author="a", claimer="a", reviewers=RING) == {"c"}


@pytest.mark.parametrize("pattern,path,hit", [
    (".agentmesh/**", ".agentmesh/mesh.yaml", True),
    (".agentmesh/**", "x/.agentmesh/mesh.yaml", False),
    (".github/**", ".github/workflows/ci.yml", True),
    ("CODEOWNERS", "CODEOWNERS", True),
    ("CODEOWNERS", "docs/CODEOWNERS", True),
    ("ai-memory/lessons/**", "ai-memory/lessons/a.md", True),
    ("ai-memory/lessons/**", "ai-memory/agents/a/journal.jsonl", False),
    ("*.pem", "keys/server.pem", True),
    ("src/*.py", "src/a/b.py", False),
    ("src/**/*.py", "src/a/b.py", True),
    ("src/**/*.py", "src/b.py", True),
])
def test_globs(pattern, path, hit):
    assert glob_match(pattern, path) is hit


def test_protected_hits():
    assert protected_hits(["a.py", ".gitea/x.yml"], [".gitea/**"]) == [".gitea/x.yml"]
    assert protected_hits(["a.py", "b*.py", "bx.py"], [], files={"b*.py"}) == ["b*.py"]  # files are literal


@pytest.mark.parametrize("run, named", [
    (["python3", "check.py"], {"python3", "check.py"}),
    (["./ci/lint.sh", "--strict", "src/"], {"ci/lint.sh", "src"}),
    (["sh", "-c", "python3 'tools/a.py' && ./b.sh;"], {"sh", "python3", "tools/a.py", "b.sh"}),
    (["ruff", "check", "--config=ci/ruff.toml", "."], {"ruff", "check", "ci/ruff.toml"}),
    (["python3", "-m", "ci.check", "-q"], {"python3", "ci.check", "ci/check.py", "ci/check/__init__.py",
                                          "ci/check/__main__.py"}),
    (["/usr/bin/python3", "../outside.py", "~/x.py", "$HOME/y.py", "a/../b.py", "-", "--"], set()),
])
def test_gate_files_names_every_path_a_gate_command_spells(run, named):
    assert gate_files([run]) == named


def test_protected_changes_add_gate_files_the_policy_and_the_roster_to_the_patterns():
    changed = ["check.py", "sub/check.py", ".agentmesh/mesh.yaml", ".agentmesh/roster.yaml", "x.yml", "docs/a.md"]
    assert protected_changes(changed, ["*.yml"], [["python3", "check.py"]]) == [
        "check.py", ".agentmesh/mesh.yaml", ".agentmesh/roster.yaml", "x.yml"]
    assert protected_changes(["check.py"], [], []) == []  # no gate names it: an ordinary file


def test_the_default_policy_protects_what_an_outside_issue_could_abuse():
    from agentmesh.host.config import MeshPolicy

    patterns = MeshPolicy().protected_paths
    for path in (".forgejo/workflows/x.yml", ".gitea/workflows/x.yml", ".github/workflows/x.yml", ".gitattributes",
                 "sub/.gitattributes", ".gitmodules", "ai-memory/agents/ada/journal/2026-01.jsonl",
                 "ai-memory/lessons/x.md", ".agentmesh/roster.yaml", "CODEOWNERS"):
        assert protected_hits([path], patterns) == [path], path
    assert protected_hits(["src/app.py", "ai-memory/README.md"], patterns) == []


def test_verdict_shows_each_gate_and_the_failing_tail():
    event, body = verdict([GateResult("lint", True, "ok"), GateResult("tests", False, "exit 1", "x" * 5000 + "BOOM")])
    assert event == "request_changes"
    assert "✓ **lint**" in body and "✗ **tests**: exit 1" in body and body.rstrip().endswith("BOOM\n```")
    assert len(body) < 2500
    assert verdict([GateResult("lint", True, "ok")])[0] == "approve"


def test_merge_decision():
    ok = {"auto": True, "approvals": 1, "required": 1, "ci_state": "success", "protected": [],
          "changes_requested": False}
    assert merge_decision(**ok).merge
    assert merge_decision(**{**ok, "ci_state": "none"}).merge
    for change in ({"auto": False}, {"approvals": 0}, {"ci_state": "pending"}, {"ci_state": "failure"},
                   {"protected": [".github/x"]}, {"changes_requested": True}, {"unmet_checks": ["ci/tests (missing)"]},
                   {"ci_state": "none", "unmet_checks": ["ci/tests (missing)"]}):
        assert not merge_decision(**{**ok, **change}).merge, change
    waiting = merge_decision(**ok, unmet_checks=["ci/tests (missing)", "lint (pending)"])
    assert waiting.reason == "required checks not green: ci/tests (missing), lint (pending)"


def ctx(name, state):
    return StatusContext(name, state)


@pytest.mark.parametrize("contexts, required, unmet", [
    ([], [], []),  # no CI at all and nothing required: nothing to wait for
    ([], ["ci/tests"], ["ci/tests (missing)"]),  # no CI at all is not green once a check is required
    ([ctx("lint", "success")], ["ci/tests"], ["ci/tests (missing)"]),  # another context does not stand in
    ([ctx("ci/tests", "success")], ["ci/tests"], []),
    ([ctx("ci/tests", "pending")], ["ci/tests"], ["ci/tests (pending)"]),
    ([ctx("ci/tests", "failure")], ["ci/tests"], ["ci/tests (failure)"]),
    ([ctx("ci/tests", "error")], ["ci/tests"], ["ci/tests (error)"]),
    ([ctx("CI/Tests", "success")], ["ci/tests"], ["ci/tests (missing)"]),  # names are exact
    ([ctx("ci/tests", "success"), ctx("ci/tests", "failure")], ["ci/tests"], ["ci/tests (failure)"]),  # both kinds
    ([ctx("ci/tests", "success"), ctx("lint", "pending")], ["ci/tests", "lint", "build"],
     ["lint (pending)", "build (missing)"]),
    ([ctx("ci/tests", "failure")], [], []),  # not required: red CI is judged as CI, not as a required check
])
def test_unmet_checks(contexts, required, unmet):
    assert unmet_checks(contexts, required) == unmet


@pytest.mark.parametrize("contexts, required, failing", [
    ([], [], []),
    ([], ["ci/tests"], []),  # missing: the wait `pr ship` skips
    ([ctx("ci/tests", "pending")], ["ci/tests"], []),
    ([ctx("ci/tests", "failure")], ["ci/tests"], ["ci/tests (failure)"]),
    ([ctx("ci/tests", "error"), ctx("lint", "pending")], ["ci/tests", "lint"], ["ci/tests (error)"]),
    ([ctx("ci/tests", "success"), ctx("ci/tests", "failure")], ["ci/tests"], ["ci/tests (failure)"]),
    ([ctx("lint", "failure")], ["ci/tests"], []),  # a failing check nobody requires does not stop a ship
])
def test_failing_checks_stop_a_ship_and_pending_ones_do_not(contexts, required, failing):
    assert failing_checks(contexts, required) == failing
