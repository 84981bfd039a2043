"""The chaos judge on real remotes: a healthy one passes every invariant, and each deliberately
broken one (built with real git and the local forge API) fails the invariant it breaks.
A checker that cannot fail would be worse than none."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from filelock import FileLock

from agentmesh.core.vocab import Label
from agentmesh.ops.chaos.invariants import Invariant, Verdict, check_remote
from agentmesh.ops.chaos.leftovers import StopRecord, group_processes, scan_locks
from agentmesh.ops.chaos.remote import read_remote
from tests.support import agent_forge, agent_mesh, git, local_forge_remote

AGENTS = ["ada", "bob"]
MONTH = "2026-01"


class Remote:
    """A bare local-forge remote, a working clone to push from, and one forge client per agent."""

    def __init__(self, tmp_path: Path):
        self.path = local_forge_remote(tmp_path / "remote.git", "review: {ring: [ada, bob]}\n")
        self.work = tmp_path / "work"
        git("clone", "--quiet", str(self.path), str(self.work))
        self.forges = {a: agent_forge(agent_mesh(self.path, tmp_path / "hosts", a)) for a in [*AGENTS, "human"]}
        self.journal: dict[str, list[dict]] = {a: [] for a in AGENTS}
        self.roots = 0

    def push_branch(self, branch: str, files: dict[str, str], start: str | None = "origin/main") -> str:
        """Commit `files` on `branch` from `start` (None: a new root) and push it."""
        git("fetch", "--quiet", "origin", cwd=self.work)
        if start is None:
            self.roots += 1
            git("checkout", "--quiet", "--orphan", f"root-{self.roots}", cwd=self.work)
            git("rm", "-r", "-q", "-f", "--ignore-unmatch", ".", cwd=self.work)
        else:
            git("checkout", "--quiet", "-B", branch, start, cwd=self.work)
        for name, text in files.items():
            (self.work / name).parent.mkdir(parents=True, exist_ok=True)
            (self.work / name).write_text(text)
        git("add", "-A", cwd=self.work)
        git("commit", "--quiet", "--allow-empty", "-m", f"work on {branch}", cwd=self.work)
        git("push", "--quiet", "--force", "origin", f"HEAD:refs/heads/{branch}", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)

    def note(self, agent: str, event: str, *, issue: int | None = None, pr: int | None = None) -> None:
        n = sum(len(v) for v in self.journal.values()) + 1
        self.journal[agent].append({"id": f"{agent}-{n:04d}", "ts": f"{MONTH}-01T00:00:{n % 60:02d}Z",
                                    "agent": agent, "host": f"host-{agent}", "event": event, "issue": issue,
                                    "pr": pr, "outcome": "", "duration_s": 0.0, "cost_usd": None, "summary": ""})

    def work_cycle(self, author: str, reviewer: str, issue: int, slug: str) -> int:
        """What one agent and its ring sibling do for an issue: branch, PR, approval, merge, clean-up."""
        branch = f"{author}/{issue}-{slug}"
        head = self.push_branch(branch, {f"src/{slug}.py": f"# {slug}\n"})
        pull = self.forges[author].create_pull(head=branch, base="main", title=slug, body=f"Closes #{issue}\n")
        self.forges[reviewer].submit_review(pull.number, event="approve", body="LGTM", commit_id=head)
        self.forges[author].merge_pull(pull.number, sha=head)
        self.forges[author].delete_branch(branch)
        self.note(author, "claimed", issue=issue)
        self.note(author, "pr-opened", issue=issue, pr=pull.number)
        self.note(reviewer, "reviewed", issue=issue, pr=pull.number)
        self.note(author, "merged", issue=issue, pr=pull.number)
        self.note(author, "cleaned-up", issue=issue, pr=pull.number)
        return pull.number

    def write_journals(self, extra: dict[str, str] | None = None) -> None:
        """Each agent's journal on its own branch; `extra` files on ada's."""
        for agent, entries in self.journal.items():
            files = {f"ai-memory/agents/{agent}/journal/{MONTH}.jsonl": "".join(json.dumps(e) + "\n" for e in entries)}
            self.push_branch(f"agentmesh/journals/{agent}", {**files, **((extra or {}) if agent == "ada" else {})},
                             start=None)

    def verdicts(self) -> dict[Invariant, Verdict]:
        return {v.invariant: v for v in check_remote(read_remote(self.path), agents=AGENTS)}


@pytest.fixture
def remote(tmp_path) -> Remote:
    """Two issues worked to the end by a ring of two, journals on the memory branch: every invariant holds."""
    r = Remote(tmp_path)
    human = r.forges["human"]
    first = human.create_issue("First", "do it", ["task"]).number
    second = human.create_issue("Second", "do it too", ["task"]).number
    r.work_cycle("ada", "bob", first, "first")
    r.work_cycle("bob", "ada", second, "second")
    r.write_journals()
    return r


def failing(r: Remote) -> dict[Invariant, tuple[str, ...]]:
    return {i: v.problems for i, v in r.verdicts().items() if not v.ok}


def test_a_healthy_remote_passes_every_remote_invariant(remote):
    verdicts = remote.verdicts()
    assert failing(remote) == {}
    assert len(verdicts) == 9
    assert verdicts[Invariant.MAIN_ONLY_MERGES].figure == "2/2 commits on main are PR merges"
    assert verdicts[Invariant.SETTLED].figure == "2/2 issues settled: 2 closed, 0 parked"
    assert verdicts[Invariant.JOURNALS].figure.endswith("2/2 merged PRs journaled")


def test_two_merged_prs_for_one_issue(remote):
    pull = remote.work_cycle("bob", "ada", 1, "first-again")
    remote.write_journals()
    assert failing(remote) == {Invariant.ONE_MERGE: (f"#1: 2 merged PRs #3, #{pull}",)}


def test_an_open_pr_beside_a_merged_one_and_two_open_prs(remote):
    remote.push_branch("ada/1-late", {"src/late.py": "x\n"})
    late = remote.forges["ada"].create_pull(head="ada/1-late", base="main", title="late", body="Closes #1\n")
    number = remote.forges["human"].create_issue("Third", "", ["task"]).number
    for agent in AGENTS:
        remote.push_branch(f"{agent}/{number}-x", {f"src/{agent}.py": "x\n"})
        remote.forges[agent].create_pull(head=f"{agent}/{number}-x", base="main", title="x", body=f"Closes #{number}\n")
    problems = failing(remote)[Invariant.ONE_MERGE]
    assert problems == (f"#1: open PR(s) #{late.number} beside merged #3",
                        f"#{number}: 2 open PRs #{late.number + 2}, #{late.number + 3}")


def test_an_orphan_branch_and_a_claim_left_behind(remote):
    remote.push_branch("bob/7-left-behind", {"x.py": "x\n"})
    remote.push_branch("claim/2", {})
    problems = failing(remote)
    assert problems == {Invariant.NO_LEFTOVERS: ("claim refs/heads/claim/2", "orphan refs/heads/bob/7-left-behind")}


def test_a_stage_label_on_a_closed_issue(remote):
    remote.forges["ada"].add_labels(1, [Label.REVIEW])
    assert failing(remote) == {Invariant.NO_STAGE_ON_CLOSED: ("#1: agentmesh:review",)}


def test_an_open_issue_fails_until_it_is_parked_with_a_reason(remote):
    human = remote.forges["human"]
    number = human.create_issue("Stuck", "", ["task"]).number
    assert list(failing(remote)) == [Invariant.SETTLED]
    human.add_labels(number, [Label.DEAD_LETTER])
    assert list(failing(remote)) == [Invariant.SETTLED]  # a label without a word of why
    human.comment(number, "agentmesh: attempt 3 of 3 failed; waits for a human")
    assert failing(remote) == {}
    assert remote.verdicts()[Invariant.SETTLED].figure == "3/3 issues settled: 2 closed, 1 parked"


def test_a_merge_approved_only_on_an_older_head(remote):
    number = remote.forges["human"].create_issue("Third", "", ["task"]).number
    first = remote.push_branch(f"ada/{number}-third", {"src/third.py": "1\n"})
    branch = f"ada/{number}-third"
    pull = remote.forges["ada"].create_pull(head=branch, base="main", title="t", body=f"Closes #{number}")
    remote.forges["bob"].submit_review(pull.number, event="approve", body="ok", commit_id=first)
    second = remote.push_branch(f"ada/{number}-third", {"src/third.py": "2\n"}, start=f"origin/ada/{number}-third")
    remote.forges["ada"].merge_pull(pull.number, sha=second)
    remote.forges["ada"].delete_branch(f"ada/{number}-third")
    problems = failing(remote)
    approval = f"PR #{pull.number} by ada, merged head {second[:12]}: bob APPROVED on {first[:12]}"
    assert problems[Invariant.SIBLING_APPROVED] == (approval,)
    assert problems[Invariant.JOURNALS][-1] == (f"PR #{pull.number} (#{number}): no claimed, pr-opened, reviewed, "
                                                "merged, cleaned-up entry")


def test_main_that_lost_a_merge(remote):
    before = git("rev-parse", "refs/agentmesh/items/3:meta.json", cwd=remote.path)
    meta = json.loads(git("cat-file", "blob", before, cwd=remote.path))
    parent = git("rev-parse", f"{meta['merge_sha']}^1", cwd=remote.path)
    git("update-ref", "refs/heads/main", parent, cwd=remote.path)  # a force-push that dropped the merges
    problems = failing(remote)[Invariant.MAIN_HOLDS_MERGES]
    assert len(problems) == 2 and problems[0].startswith("PR #3 (merge ") and "src/first.py differ" in problems[0]


def test_a_direct_commit_on_main(remote):
    direct = remote.push_branch("main", {"ai-memory/agents/ada/journal/2026-01.jsonl": "{}\n"})
    assert failing(remote) == {Invariant.MAIN_ONLY_MERGES: (f"{direct[:12]} is no PR's merge: work on main",)}
    assert remote.verdicts()[Invariant.MAIN_ONLY_MERGES].figure == "2/3 commits on main are PR merges"


def test_journals_on_main_are_not_read_as_the_journal_branches(remote):
    git("push", "--quiet", "origin", ":refs/heads/agentmesh/journals/ada", ":refs/heads/agentmesh/journals/bob",
        cwd=remote.work)
    gaps = failing(remote)[Invariant.JOURNALS]
    assert gaps == ("PR #3 (#1): no claimed, pr-opened, reviewed, merged, cleaned-up entry",
                    "PR #4 (#2): no claimed, pr-opened, reviewed, merged, cleaned-up entry")


def test_journals_with_a_duplicate_id_a_bad_line_and_a_missing_review(remote):
    remote.journal["bob"] = [e for e in remote.journal["bob"] if e["event"] != "reviewed"]
    remote.journal["ada"].append(dict(remote.journal["ada"][0]))
    remote.write_journals({"ai-memory/agents/ada/journal/2026-02.jsonl": '{"id": "x", "ts"\n'})
    problems = failing(remote)[Invariant.JOURNALS]
    assert problems == ("ai-memory/agents/ada/journal/2026-02.jsonl:1: not a journal entry",
                        "id ada-0001 appears 2 times", "PR #3 (#1): no reviewed entry")


def test_the_memory_branch_of_earlier_versions_is_read_and_a_writer_branch_only_for_its_own_folder(remote):
    git("push", "--quiet", "origin", ":refs/heads/agentmesh/journals/bob", cwd=remote.work)
    bob = f"ai-memory/agents/bob/journal/{MONTH}.jsonl"
    remote.push_branch("agentmesh/journals/ada", {bob: "".join(json.dumps(e) + "\n" for e in remote.journal["bob"])},
                       start="origin/agentmesh/journals/ada")  # bob's lines on ada's branch count for nobody
    assert "PR #4 (#2): no claimed, pr-opened, merged, cleaned-up entry" in failing(remote)[Invariant.JOURNALS]
    remote.push_branch("agentmesh/memory", {bob: "".join(json.dumps(e) + "\n" for e in remote.journal["bob"])},
                       start=None)
    assert failing(remote) == {}


def test_refs_outside_the_expected_namespaces(remote):
    main = git("rev-parse", "refs/heads/main", cwd=remote.path)
    for ref in ("refs/heads/feature-x", "refs/tags/v1", "refs/agentmesh/other", "refs/heads/agentmesh/agents/zed",
                "refs/heads/agentmesh/journals/zed"):
        git("update-ref", ref, main, cwd=remote.path)
    problems = failing(remote)[Invariant.REF_NAMESPACES]
    assert [p.split()[0] for p in problems] == ["refs/agentmesh/other", "refs/heads/agentmesh/agents/zed",
                                                "refs/heads/agentmesh/journals/zed", "refs/heads/feature-x",
                                                "refs/tags/v1"]


def test_locks_a_killed_git_left_and_locks_still_held(tmp_path, remote):
    state = tmp_path / "state"
    (state / "cache-1.git" / "refs" / "heads").mkdir(parents=True)
    (state / "claim-task-1.lock").touch()  # a released filelock: its file stays, nobody holds it
    assert scan_locks([remote.path], [state]).verdict().ok
    (state / "cache-1.git" / "refs" / "heads" / "main.lock").touch()
    (remote.path / "packed-refs.lock").touch()
    with FileLock(str(state / "monitor-prs-1.lock")):
        result = scan_locks([remote.path], [state])
    assert not result.verdict().ok
    assert result.git_locks == (str(remote.path / "packed-refs.lock"),
                                str(state / "cache-1.git" / "refs" / "heads" / "main.lock"))
    assert result.held == (str(state / "monitor-prs-1.lock"),)
    assert scan_locks([remote.path], [state]).held == ()  # released when the holder lets go


def test_a_process_that_needed_sigkill_fails_the_stop():
    assert StopRecord(4, 30, (), ()).verdict().ok
    record = StopRecord(4, 30, ("bob daemon (pid 7)",), ("cy pgid 9",))
    assert not record.verdict().ok
    assert record.verdict().figure == "3/4 agent processes stopped within 30s; 1 executor(s) left running"
    server = StopRecord(4, 30, ("bob daemon (pid 7)",), (), ("12 T do_signal_stop: git receive-pack .",))
    assert server.verdict().problems[-1] == "git daemon child at the stop: 12 T do_signal_stop: git receive-pack ."
    assert StopRecord(4, 30, (), (), ("12 S -: git upload-pack .",)).verdict().ok  # in flight, nothing stuck


def test_a_stuck_process_is_described_by_its_state_and_command():
    """What a stuck agent waited on goes into the report (CI keeps no folder): a SIGSTOPped child shows `T`."""
    proc = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        os.kill(proc.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while not (found := group_processes(proc.pid)) or " T " not in found[0]:
            assert time.monotonic() < deadline, found
            time.sleep(0.02)
        assert found == [f"{proc.pid} T {found[0].split()[2]} sleep 30"]
        assert group_processes(proc.pid, skip=proc.pid) == []
    finally:
        proc.kill()
        proc.wait()
