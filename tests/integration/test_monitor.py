"""monitor-prs in-process on the local forge: gates, stale approvals, protected paths, dead
reviewers, human PRs, and no double reviews."""

from __future__ import annotations

import yaml

from agentmesh.agent.claim_task import claim_task
from agentmesh.agent.monitor import monitor_prs
from agentmesh.core.vocab import Label
from agentmesh.forge.local import LocalForge
from tests.support import (
    FakeClock,
    agent_forge,
    agent_mesh,
    collaborator_pull,
    demo_body,
    git,
    journal_entries,
    local_forge_remote,
    path_only_env,
    python_syntax_gate,
    remote_refs,
)


def policy(**extra) -> str:
    data = {"review": {"ring": ["a", "b", "c"]}, "merge": {"auto": True},
            "gates": [python_syntax_gate()]}
    data.update(extra)
    return yaml.safe_dump(data)


class Mesh:
    """Agents of one remote, each with its own host state, run in-process."""

    def __init__(self, tmp_path, mesh_yaml: str):
        self.tmp = tmp_path
        self.remote = local_forge_remote(tmp_path / "remote.git", mesh_yaml)
        self.human = agent_forge(agent_mesh(self.remote, tmp_path / "humans", "human"))
        self.clocks: dict[str, FakeClock] = {}

    def mesh(self, agent):
        return agent_mesh(self.remote, self.tmp / "hosts", agent, clock=self.clocks.get(agent))

    def monitor(self, agent, forge_class=LocalForge):
        mesh = self.mesh(agent)
        return monitor_prs(mesh, forge_class(mesh.cache, user=agent), env=path_only_env())

    def work(self, agent, title, path, content):
        number = self.human.create_issue(title, demo_body(path, content), ["task"]).number
        mesh = self.mesh(agent)
        report = claim_task(mesh, agent_forge(mesh), env=path_only_env())
        assert ("pr-opened", number) in [(e.event, e.issue) for e in report.events], report.events
        return next(p for p in self.human.list_pulls(state="all") if p.body.startswith(f"Closes #{number}\n"))


def kinds(report) -> list[tuple[str, int | None]]:
    return [(e.event, e.pr) for e in report.events]


def test_a_failing_gate_requests_changes_and_a_fixed_push_is_reviewed_again(tmp_path):
    m = Mesh(tmp_path, policy())
    for agent in "abc":
        m.monitor(agent)
    pull = m.work("a", "Broken module", "pkg/broken.py", "def broken(:\n")
    review = m.monitor("b")
    assert ("changes-requested", pull.number) in kinds(review)
    [first] = m.human.list_reviews(pull.number)
    assert first.author == "b" and first.state == "CHANGES_REQUESTED" and first.commit_id == pull.head_sha
    assert "python syntax" in first.body and "SyntaxError" in first.body
    assert ("waiting", pull.number) in kinds(m.monitor("a"))  # changes requested: no merge
    # the author pushes a fix to its work branch: the old verdict is stale
    work = tmp_path / "fix"
    git("clone", "--quiet", "--branch", pull.head, str(m.remote), str(work))
    (work / "pkg" / "broken.py").write_text("def fixed():\n    return 1\n")
    git("commit", "--quiet", "-am", "Fix syntax\n\nAgentmesh-Agent: a", cwd=work)
    git("push", "--quiet", "origin", pull.head, cwd=work)
    again = m.monitor("b")
    assert ("approved", pull.number) in kinds(again)
    reviews = m.human.list_reviews(pull.number)
    assert [r.state for r in reviews] == ["CHANGES_REQUESTED", "APPROVED"]
    assert reviews[1].commit_id != pull.head_sha
    assert m.monitor("b").events == []  # that head is reviewed: nothing more to do
    merged = m.monitor("a")
    assert ("merged", pull.number) in kinds(merged)
    assert m.human.get_pull(pull.number).state == "merged"


def test_protected_paths_are_never_approved(tmp_path):
    m = Mesh(tmp_path, policy())
    for agent in "abc":
        m.monitor(agent)
    # claim-task never pushes such a change (tests/e2e/test_protected_paths.py): someone else did
    number = m.human.create_issue("Change CI", "by hand", []).number
    pull = collaborator_pull(m.remote, tmp_path / "collaborator", m.human.cache, agent="a", issue=number,
                             path=".github/workflows/ci.yml", content="on: push\n")
    first = m.monitor("b")
    assert ("needs-human", pull.number) in kinds(first)
    m.monitor("b")
    m.monitor("c")
    assert m.human.list_reviews(pull.number) == []
    assert Label.NEEDS_HUMAN in m.human.get_pull(pull.number).labels
    assert len(m.human.list_comments(pull.number)) == 1
    m.monitor("a")
    assert m.human.get_pull(pull.number).state == "open"


def test_a_dead_reviewer_is_skipped(tmp_path):
    m = Mesh(tmp_path, policy())
    m.clocks["c"] = clock = FakeClock()
    for agent in "abc":
        m.monitor(agent)
    pull = m.work("a", "Module", "pkg/m.py", "X = 1\n")
    assert m.monitor("c").events == []  # b is alive and a's reviewer
    clock.advance(1800 + 300 + 1)  # b's presence stays unchanged past lease + grace, by c's clock
    m.monitor("a")  # a refreshes its presence: still alive
    review = m.monitor("c")
    assert ("approved", pull.number) in kinds(review)
    assert [r.author for r in m.human.list_reviews(pull.number)] == ["c"]


def test_human_prs_are_never_auto_approved(tmp_path):
    m = Mesh(tmp_path, policy())
    work = tmp_path / "human"
    git("clone", "--quiet", str(m.remote), str(work))
    (work / "feature.py").write_text("X = 1\n")
    git("checkout", "--quiet", "-b", "feature/x", cwd=work)
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "feature", cwd=work)
    git("push", "--quiet", "origin", "feature/x", cwd=work)
    plain = m.human.create_pull(head="feature/x", base="main", title="Human work", body="Closes #1")
    sha = "0" * 40
    mallory = LocalForge(m.human.cache, user="mallory")
    forged = mallory.create_pull(head="feature/x", base="main", title="Forged",
                                 body=f"Closes #1\n<!-- agentmesh:pr/a/1/{sha} -->")
    for agent in "abcabc":
        m.monitor(agent)
    for pull in (plain, forged):
        assert m.human.list_reviews(pull.number) == []
        assert m.human.get_pull(pull.number).state == "open"


class CountingForge(LocalForge):
    calls: list[str] = []  # noqa: RUF012 - shared on purpose: counts every instance's calls

    def submit_review(self, number, **kwargs):
        CountingForge.calls.append(f"review #{number}")
        return super().submit_review(number, **kwargs)

    def submit_review_with_status(self, number, **kwargs):
        CountingForge.calls.append(f"review #{number}")
        return super().submit_review_with_status(number, **kwargs)

    def comment(self, number, body):
        CountingForge.calls.append(f"comment #{number}")
        return super().comment(number, body)


def test_a_reviewed_head_is_not_reviewed_again(tmp_path):
    m = Mesh(tmp_path, policy(merge={"auto": False}))
    for agent in "abc":
        m.monitor(agent)
    pull = m.work("a", "Module", "pkg/m.py", "X = 1\n")
    CountingForge.calls = []
    for _ in range(3):
        m.monitor("b", CountingForge)
        m.monitor("a", CountingForge)
    assert CountingForge.calls == [f"review #{pull.number}"]
    assert m.human.get_pull(pull.number).state == "open"  # merge.auto is off


def test_cleanup_after_a_pr_closed_without_merge_returns_the_issue(tmp_path):
    m = Mesh(tmp_path, policy())
    pull = m.work("a", "Module", "pkg/m.py", "X = 1\n")
    issue = int(pull.body.split("#")[1].split()[0])
    m.human.close_pull(pull.number)
    report = m.monitor("a")
    assert ("returned", pull.number) in kinds(report)
    assert not remote_refs(m.remote, "refs/heads/claim/")
    assert not [r for r in remote_refs(m.remote) if r.startswith("refs/heads/a/")]
    again = claim_task(m.mesh("b"), agent_forge(m.mesh("b")), env=path_only_env())
    assert ("claimed", issue) in [(e.event, e.issue) for e in again.events]


def test_dry_run_reports_the_plan_and_changes_nothing(tmp_path):
    m = Mesh(tmp_path, policy())
    for agent in "abc":
        m.monitor(agent)
    pull = m.work("a", "Good module", "pkg/good.py", "X = 1\n")
    before = remote_refs(m.remote)
    mesh = m.mesh("b")
    planned = monitor_prs(mesh, LocalForge(mesh.cache, user="b"), env=path_only_env(), dry_run=True)
    assert planned.status == "dry-run" and kinds(planned) == [("would-review", pull.number)]
    assert [a["act"] for a in planned.to_json()["plan"]] == ["review"]
    assert remote_refs(m.remote) == before and m.human.list_reviews(pull.number) == []
    assert ("approved", pull.number) in kinds(m.monitor("b"))  # what the plan said is what apply does
    mesh = m.mesh("a")
    planned = monitor_prs(mesh, LocalForge(mesh.cache, user="a"), env=path_only_env(), dry_run=True)
    assert kinds(planned) == [("would-merge", pull.number)]
    assert m.human.get_pull(pull.number).state == "open"


# pre-receive: logs each push's refs on one line; with REFUSE, refuses any push that touches a journal branch
PUSH_LOG = """#!/bin/sh
refs=""
while read old new ref; do refs="$refs $ref"; done
echo "$refs" >> {log}
case "$refs" in *refs/heads/agentmesh/journals/*) [ -e {refuse} ] && {{ echo "no journals here"; exit 1; }};; esac
exit 0
"""


def pushes_of_review(m: Mesh, refuse_journals: bool):
    for agent in "abc":
        m.monitor(agent)
    pull = m.work("a", "Module", "pkg/m.py", "X = 1\n")
    log, refuse = m.tmp / "pushes.log", m.tmp / "refuse"
    hook = m.remote / "hooks" / "pre-receive"
    hook.write_text(PUSH_LOG.format(log=log, refuse=refuse))
    hook.chmod(0o755)
    if refuse_journals:
        refuse.touch()
    report = m.monitor("b")
    assert ("approved", pull.number) in kinds(report)
    return [set(line.split()) for line in log.read_text().splitlines()], pull, report


def test_a_review_carries_its_status_and_the_reviewers_journal_in_one_push(tmp_path):
    m = Mesh(tmp_path, policy())
    pushes, pull, _ = pushes_of_review(m, refuse_journals=False)
    item, status = f"refs/agentmesh/items/{pull.number}", f"refs/agentmesh/statuses/{pull.head_sha}"
    journal = "refs/heads/agentmesh/journals/b"
    assert [p for p in pushes if item in p] == [{item, status, journal}]  # one push: the review, status, journal
    assert not [p for p in pushes if journal in p and item not in p]  # and no journal push of its own after it
    # read from the remote: the reviewer's journal has the review's line, and the status says who approved
    entries = [e for e in journal_entries(m.remote) if e.agent == "b"]
    assert ("reviewed", pull.number) in [(e.event, e.pr) for e in entries]
    assert m.human.ci_status(pull.head_sha).contexts[0].description == "approve by b"


def test_a_journal_the_remote_refuses_does_not_hold_the_review_back(tmp_path):
    m = Mesh(tmp_path, policy())
    pushes, pull, _ = pushes_of_review(m, refuse_journals=True)
    item, status = f"refs/agentmesh/items/{pull.number}", f"refs/agentmesh/statuses/{pull.head_sha}"
    journal = "refs/heads/agentmesh/journals/b"
    assert [p for p in pushes if item in p] == [{item, status, journal}, {item, status}]  # refused, then alone
    assert [r.state for r in m.human.list_reviews(pull.number)] == ["APPROVED"]
    assert m.human.ci_status(pull.head_sha).state == "success"
    assert ("reviewed", pull.number) not in [(e.event, e.pr) for e in journal_entries(m.remote)]


# pre-receive: refuses every push that sets a commit status (on the local forge, every review's push)
REFUSE_STATUSES = """#!/bin/sh
while read old new ref; do
    case "$ref" in refs/agentmesh/statuses/*) echo "no statuses here"; exit 1;; esac
done
"""


def test_a_review_the_remote_refuses_is_taken_back_and_the_run_goes_on(tmp_path):
    m = Mesh(tmp_path, policy())
    for agent in "abc":
        m.monitor(agent)
    pull = m.work("a", "Module", "pkg/m.py", "X = 1\n")
    hook = m.remote / "hooks" / "pre-receive"
    hook.write_text(REFUSE_STATUSES)
    hook.chmod(0o755)
    report = m.monitor("b")
    [warning] = [e for e in report.events if e.event == "warning" and e.pr == pull.number]
    assert "review was refused" in warning.detail and "no statuses here" in warning.detail
    assert m.human.list_reviews(pull.number) == []  # read from the remote: nothing landed
    # the line announced before the push was taken back: neither published by the run's flush nor left queued
    assert ("reviewed", pull.number) not in [(e.event, e.pr) for e in journal_entries(m.remote)]
    assert not list(m.mesh("b").journal().outbox.glob("*.json"))
