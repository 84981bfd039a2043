"""Rework on the local forge, in-process: monitor-prs asks, claim-task re-runs the executor on the
PR's head, pushes with the fence, and a human takes over once `rework.max` is spent."""

from __future__ import annotations

import sys

import yaml

from agentmesh.agent.claim_task import claim_task
from agentmesh.agent.monitor import monitor_prs
from agentmesh.agent.rework import ReworkRequests
from agentmesh.core.memory import parse_lesson
from agentmesh.core.vocab import Label
from agentmesh.forge.local import LocalForge
from tests.support import agent_forge, agent_mesh, git, local_forge_remote, path_only_env, python_syntax_gate

# Writes broken Python on the first run; once the task file carries review feedback, writes
# what `FIX` says: "fixed" (valid code), "still-broken" (another syntax error), "protected" (valid
# code and a `.gitattributes`) or "nothing".
EXECUTOR = """
import pathlib, sys
task, worktree = pathlib.Path(sys.argv[1]).read_text(), pathlib.Path(sys.argv[2])
target = worktree / "pkg" / "mod.py"
target.parent.mkdir(exist_ok=True)
if "## Review feedback" not in task:
    target.write_text("def broken(:\\n")
elif sys.argv[3] == "fixed":
    target.write_text("def fixed():\\n    return 1\\n")
elif sys.argv[3] == "still-broken":
    target.write_text("def still(:\\n")
elif sys.argv[3] == "protected":
    target.write_text("def fixed():\\n    return 1\\n")
    (worktree / ".gitattributes").write_text("*.py filter=rework-evil\\n")
"""


# approves anything: these tests are about what happens after a review, not about what it checks
PASS_GATE = {"name": "pass", "run": ["true"], "timeout_seconds": 60}


class Mesh:
    def __init__(self, tmp_path, fix: str, **policy):
        data = {"review": {"ring": ["a", "b"]}, "merge": {"auto": True},
                "gates": [python_syntax_gate()], **policy}
        self.tmp = tmp_path
        self.remote = local_forge_remote(tmp_path / "remote.git", yaml.safe_dump(data))
        self.human = agent_forge(agent_mesh(self.remote, tmp_path / "humans", "human"))
        self.executor = {"kind": "command", "sandbox": "off",
                         "command": [sys.executable, "-c", EXECUTOR, "{task_file}", "{worktree}", fix]}

    def mesh(self, agent):
        return agent_mesh(self.remote, self.tmp / "hosts", agent, executor=self.executor)

    def monitor(self, agent):
        mesh = self.mesh(agent)
        report = monitor_prs(mesh, LocalForge(mesh.cache, user=agent), env=path_only_env())
        return [(e.event, e.pr) for e in report.events]

    def tick(self, agent):
        mesh = self.mesh(agent)
        report = claim_task(mesh, agent_forge(mesh), env=path_only_env())
        return [(e.event, e.issue) for e in report.events]

    def broken_pull(self):
        """a's PR with a syntax error, and b's request for changes on it."""
        self.monitor("a"), self.monitor("b")
        number = self.human.create_issue("Add a module", "Add pkg/mod.py", ["task"]).number
        assert ("pr-opened", number) in self.tick("a")
        [pull] = self.human.list_pulls(state="open")
        assert ("changes-requested", pull.number) in self.monitor("b")
        return number, pull


def test_a_change_request_is_reworked_once_then_approved_and_merged(tmp_path):
    m = Mesh(tmp_path, fix="fixed")
    number, pull = m.broken_pull()
    assert ("rework-queued", pull.number) in m.monitor("a")
    assert m.monitor("a").count(("rework-queued", pull.number)) == 0  # asked once per head
    tick = m.tick("a")
    assert ("reworked", number) in tick, tick
    task = (tmp_path / "hosts" / "a" / "tasks" / f"issue-{number}.md").read_text()
    assert "### Review by b: changes requested" in task and "SyntaxError" in task
    reworked = m.human.get_pull(pull.number)
    assert reworked.head_sha != pull.head_sha
    message = git("cat-file", "commit", reworked.head_sha, cwd=m.remote)
    assert "Agentmesh-Agent: a\n" in message and "Agentmesh-Rework: 1" in message
    assert git("rev-parse", f"{reworked.head_sha}^", cwd=m.remote) == pull.head_sha  # on top of the head
    assert [c.body for c in m.human.list_comments(pull.number) if "pushed rework 1 of 1" in c.body]
    assert not ReworkRequests(tmp_path / "hosts" / "a").path(number).exists()
    assert ("approved", pull.number) in m.monitor("b")
    merged = m.monitor("a")
    assert ("merged", pull.number) in merged
    assert m.human.get_issue(number).state == "closed"
    # what was learned is proposed as a memory PR, which only a human may approve
    [lesson_pr] = [p for p in m.human.list_pulls(state="open") if "agentmesh:memory" in p.labels]
    assert ("lesson-proposed", lesson_pr.number) in merged
    assert lesson_pr.head == f"a/lessons/{number}-add-a-module"
    path = f"ai-memory/lessons/{number}-add-a-module.md"
    lesson = parse_lesson(path, git("cat-file", "blob", f"{lesson_pr.head_sha}:{path}", cwd=m.remote))
    assert lesson.tags == ("task", "pkg") and lesson.paths == ("pkg/mod.py",) and lesson.agent == "a"
    assert lesson.source == f"#{number}, PR #{pull.number}" and lesson.expires > lesson.created
    assert "SyntaxError" in lesson.body and "`pkg/mod.py`" in lesson.body
    assert ("needs-human", lesson_pr.number) in m.monitor("b")  # a protected path
    assert m.human.list_reviews(lesson_pr.number) == []
    m.monitor("a")  # the rerun proposes nothing twice
    assert len([p for p in m.human.list_pulls(state="all") if "agentmesh:memory" in p.labels]) == 1
    # once a human merged it, the next task on that file gets the lesson in its task file
    m.human.merge_pull(lesson_pr.number, sha=lesson_pr.head_sha)
    follow_up = m.human.create_issue("Extend the module", "Add a helper to pkg/mod.py", ["task"]).number
    m.tick("a")
    task = (tmp_path / "hosts" / "a" / "tasks" / f"issue-{follow_up}.md").read_text()
    memory = task.split("## Memory", 1)[1]
    assert "### Lesson: Add a module" in memory and f"ai-memory/lessons/{number}-add-a-module.md" in memory
    assert "matched: tag task, paths" in memory
    assert "Recent work on the same files" in memory and f"a pr-opened #{number}" in memory


def test_a_pr_still_failing_after_rework_max_goes_to_a_human(tmp_path):
    m = Mesh(tmp_path, fix="still-broken")
    number, pull = m.broken_pull()
    m.monitor("a")
    assert ("reworked", number) in m.tick("a")
    assert ("changes-requested", pull.number) in m.monitor("b")  # the new head, reviewed again
    assert ("needs-human", pull.number) in m.monitor("a")
    assert Label.NEEDS_HUMAN in m.human.get_pull(pull.number).labels
    head = m.human.get_pull(pull.number).head_sha
    m.monitor("a"), m.tick("a"), m.monitor("b")
    assert m.human.get_pull(pull.number).head_sha == head  # nobody touches it any more
    exhausted = [c for c in m.human.list_comments(pull.number) if "rework.max: 1" in c.body]
    assert len(exhausted) == 1


def test_a_rework_that_changes_nothing_hands_over_at_once(tmp_path):
    m = Mesh(tmp_path, fix="nothing", rework={"max": 3})
    number, pull = m.broken_pull()
    m.monitor("a")
    tick = m.tick("a")
    assert ("needs-human", number) in tick
    assert m.human.get_pull(pull.number).head_sha == pull.head_sha
    assert Label.NEEDS_HUMAN in m.human.get_pull(pull.number).labels
    assert [c for c in m.human.list_comments(pull.number) if "the executor made no change" in c.body]
    assert m.human.get_pull(pull.number).state == "open"
    assert m.human.get_issue(number).state == "open"


def test_a_rework_that_touches_a_protected_path_is_not_pushed_and_hands_over(tmp_path):
    m = Mesh(tmp_path, fix="protected", rework={"max": 3})
    number, pull = m.broken_pull()
    m.monitor("a")
    assert ("needs-human", number) in m.tick("a")
    after = m.human.get_pull(pull.number)
    assert after.head_sha == pull.head_sha and Label.NEEDS_HUMAN in after.labels
    [comment] = [c for c in m.human.list_comments(pull.number) if "protected" in c.body]
    assert "`.gitattributes`" in comment.body and "not pushed" in comment.body
    assert git("log", "--all", "--format=%H", "--", ".gitattributes", cwd=m.remote) == ""  # nowhere on the remote


def test_rework_max_zero_hands_a_change_request_to_a_human(tmp_path):
    m = Mesh(tmp_path, fix="fixed", rework={"max": 0})
    number, pull = m.broken_pull()
    assert ("needs-human", pull.number) in m.monitor("a")
    assert not ReworkRequests(tmp_path / "hosts" / "a").path(number).exists()
    assert ("reworked", number) not in m.tick("a")


def test_failing_ci_is_reworked_with_the_failing_checks_in_the_task(tmp_path):
    m = Mesh(tmp_path, fix="fixed", gates=[PASS_GATE])
    m.monitor("a"), m.monitor("b")
    number = m.human.create_issue("Add a module", "Add pkg/mod.py", ["task"]).number
    m.tick("a")
    [pull] = m.human.list_pulls(state="open")
    m.human.set_status(pull.head_sha, context="ci/tests", state="failure", description="3 tests failed")
    seen = m.monitor("a")
    assert ("ci-failed", pull.number) in seen and ("rework-queued", pull.number) in seen
    assert ("reworked", number) in m.tick("a")
    task = (tmp_path / "hosts" / "a" / "tasks" / f"issue-{number}.md").read_text()
    assert "### CI: failing checks" in task and "ci/tests: failure (3 tests failed)" in task


def test_a_human_push_after_the_request_voids_it(tmp_path):
    m = Mesh(tmp_path, fix="fixed")
    number, pull = m.broken_pull()
    m.monitor("a")
    work = tmp_path / "human-fix"
    git("clone", "--quiet", "--branch", pull.head, str(m.remote), str(work))
    (work / "pkg" / "mod.py").write_text("def by_hand():\n    return 2\n")
    git("commit", "--quiet", "-am", "Fix it by hand", cwd=work)
    git("push", "--quiet", "origin", pull.head, cwd=work)
    tick = m.tick("a")
    assert ("reworked", number) not in tick and ("in-review", number) in tick
    assert not ReworkRequests(tmp_path / "hosts" / "a").path(number).exists()
    assert git("log", "-1", "--format=%s", pull.head, cwd=m.remote) == "Fix it by hand"
    assert ("handed-over", pull.number) in m.monitor("a")


def test_a_maintainers_change_request_blocks_the_merge_and_a_drive_by_one_does_not(tmp_path):
    m = Mesh(tmp_path, fix="fixed", gates=[PASS_GATE], rework={"max": 0})
    m.monitor("a"), m.monitor("b")
    m.human.set_permission("visitor", "read")
    m.human.create_issue("Add a module", "Add pkg/mod.py", ["task"])
    m.tick("a")
    [pull] = m.human.list_pulls(state="open")
    visitor = LocalForge(m.human.cache, user="visitor")
    visitor.submit_review(pull.number, event="request_changes", body="no", commit_id=pull.head_sha)
    m.human.submit_review(pull.number, event="request_changes", body="rename it", commit_id=pull.head_sha)
    assert ("approved", pull.number) in m.monitor("b")
    assert ("needs-human", pull.number) in m.monitor("a")  # the maintainer's request stands
    assert m.human.get_pull(pull.number).state == "open"

    m2 = Mesh(tmp_path / "second", fix="fixed", gates=[PASS_GATE])
    m2.monitor("a"), m2.monitor("b")
    m2.human.set_permission("visitor", "read")
    m2.human.create_issue("Add a module", "Add pkg/mod.py", ["task"])
    m2.tick("a")
    [pull] = m2.human.list_pulls(state="open")
    LocalForge(m2.human.cache, user="visitor").submit_review(pull.number, event="request_changes", body="no",
                                                            commit_id=pull.head_sha)
    assert ("approved", pull.number) in m2.monitor("b")
    assert ("merged", pull.number) in m2.monitor("a")
