"""The git-native forge on real bare remotes: the shared conformance suite plus local-only behaviour."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import pytest

from agentmesh.core.model import StatusContext
from agentmesh.forge.base import Conflict, NotFound
from agentmesh.forge.local.api import LocalForge
from agentmesh.forge.local.bootstrap import DEFAULT_LABELS, init_repository
from agentmesh.forge.local.schema import InvalidName, check_branch_name
from agentmesh.git.cache import CacheClone
from agentmesh.git.run import Git
from tests.support import git, git_daemon, git_http, remote_refs
from tests.support.conformance import *  # noqa: F403
from tests.support.conformance import _open_pull


def make_forge(url: str, root: Path, user: str) -> LocalForge:
    """A LocalForge for one agent with its own cache clone, as on its own host."""
    runner = Git(author_name=user, author_email=f"{user}@test.invalid", timeout=30)
    return LocalForge(CacheClone(runner, root / f"cache-{user}.git", url).ensure(), user=user)


def new_remote(path: Path) -> Path:
    init_repository(Git(), path, {"README.md": "# test mesh\n", "src/app.txt": "v1\n"})
    return path


@dataclass
class LocalForgeEnv:
    forge: LocalForge
    remote: Path
    work: Path
    base: str = "main"
    reviewer: str = "reviewer-bot"

    def push_branch(self, name: str, files: dict[str, str]) -> str:
        git("fetch", "--quiet", "--prune", "origin", "+refs/heads/*:refs/remotes/origin/*", cwd=self.work)
        exists = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"refs/remotes/origin/{name}"],
                                cwd=self.work, capture_output=True).returncode == 0
        start = f"origin/{name}" if exists else f"origin/{self.base}"
        git("checkout", "--quiet", "--detach", start, cwd=self.work)  # no local branch: names may D/F-clash
        for path, text in files.items():
            target = self.work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        git("add", "-A", cwd=self.work)
        git("commit", "--quiet", "--allow-empty", "-m", f"update {name}", cwd=self.work)
        git("push", "--quiet", "origin", f"+HEAD:refs/heads/{name}", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)


def make_env(url: str, remote: Path, tmp_path: Path, user: str = "alice") -> LocalForgeEnv:
    work = tmp_path / f"work-{user}"
    git("clone", "--quiet", url, str(work))
    return LocalForgeEnv(make_forge(url, tmp_path, user), remote, work)


@pytest.fixture
def forge_env(tmp_path):
    remote = new_remote(tmp_path / "remote.git")
    return make_env(remote.as_uri(), remote, tmp_path)


# --- races between real processes ------------------------------------------------------------


def _create_issues(url: str, root: str, user: str, count: int, barrier, results) -> None:
    forge = make_forge(url, Path(root), user)
    barrier.wait()
    results.put([forge.create_issue(f"{user} issue {i}").number for i in range(count)])


def _edit_issue(url: str, root: str, user: str, number: int, barrier, results) -> None:
    forge = make_forge(url, Path(root), user)
    barrier.wait()
    for i in range(4):
        forge.comment(number, f"{user} comment {i}")
    forge.add_labels(number, [f"by-{user}"])
    forge.remove_labels(number, ["task"])
    results.put(user)


def _run_processes(target, args_per_process: list[tuple]) -> list:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(args_per_process))
    results = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, barrier, results)) for args in args_per_process]
    for proc in procs:
        proc.start()
    collected = [results.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    return collected


@pytest.mark.slow
def test_parallel_creators_get_distinct_numbers(tmp_path):
    remote = new_remote(tmp_path / "remote.git")
    url = remote.as_uri()
    per_process = 10
    batches = _run_processes(_create_issues, [(url, str(tmp_path), f"agent-{i}", per_process) for i in range(8)])
    numbers = [n for batch in batches for n in batch]
    assert len(numbers) == 8 * per_process
    assert sorted(numbers) == list(range(1, 8 * per_process + 1))  # distinct, none lost, no gaps
    listed = make_forge(url, tmp_path, "reader").list_issues()
    assert sorted(i.number for i in listed) == sorted(numbers)


@pytest.mark.slow
def test_concurrent_comments_and_labels_all_survive(tmp_path):
    remote = new_remote(tmp_path / "remote.git")
    url = remote.as_uri()
    issue = make_forge(url, tmp_path, "owner").create_issue("busy issue", labels=["task", "bug"])
    users = [f"agent-{i}" for i in range(4)]
    _run_processes(_edit_issue, [(url, str(tmp_path), user, issue.number) for user in users])

    forge = make_forge(url, tmp_path, "reader")
    bodies = [c.body for c in forge.list_comments(issue.number)]
    assert sorted(bodies) == sorted(f"{u} comment {i}" for u in users for i in range(4))
    assert len({c.id for c in forge.list_comments(issue.number)}) == len(bodies)
    assert set(forge.get_issue(issue.number).labels) == {"bug", *(f"by-{u}" for u in users)}
    assert {f"by-{u}" for u in users} <= set(forge.list_labels())


# --- merges -----------------------------------------------------------------------------------


def test_conflicting_merge_leaves_base_untouched(forge_env):
    forge = forge_env.forge
    head = forge_env.push_branch("feature/conflict", {"src/app.txt": "from the PR\n"})
    pull = forge.create_pull(head="feature/conflict", base="main", title="Change app")
    base_before = forge_env.push_branch("main", {"src/app.txt": "from main\n"})
    with pytest.raises(Conflict, match=r"conflicts with main in: src/app.txt"):
        forge.merge_pull(pull.number, sha=head)
    assert remote_refs(forge_env.remote, "refs/heads/main")["refs/heads/main"] == base_before
    assert forge.get_pull(pull.number).state == "open"


def test_merge_commit_and_squash_shapes(forge_env):
    forge = forge_env.forge
    for method, parents in (("merge", 2), ("squash", 1)):
        branch = f"feature/{method}"
        forge_env.push_branch(branch, {f"{method}.txt": "1\n"})
        head = forge_env.push_branch(branch, {f"{method}.txt": "2\n"})
        base = remote_refs(forge_env.remote, "refs/heads/main")["refs/heads/main"]
        pull = forge.create_pull(head=branch, base="main", title=f"Use {method}")
        forge.merge_pull(pull.number, sha=head, method=method)
        merged = forge.get_pull(pull.number)
        tip = remote_refs(forge_env.remote, "refs/heads/main")["refs/heads/main"]
        assert merged.merge_sha == tip
        parent_line = git("rev-list", "--parents", "-n", "1", tip, cwd=forge_env.remote).split()
        assert parent_line[1:] == ([base, head] if parents == 2 else [base])
        forge.merge_pull(pull.number, sha=head)  # repeating a finished merge is a no-op


def test_closing_keywords_close_issues_on_merge(forge_env):
    forge = forge_env.forge
    fixed = forge.create_issue("fixed by the PR")
    resolved = forge.create_issue("resolved by the PR")
    untouched = forge.create_issue("only mentioned")
    head = forge_env.push_branch("feature/fix", {"fix.txt": "fixed\n"})
    body = f"FIXES #{fixed.number}, resolves #{resolved.number}; see #{untouched.number}. Closes #99999."
    pull = forge.create_pull(head="feature/fix", base="main", title="Fix things", body=body)
    forge.merge_pull(pull.number, sha=head)
    assert forge.get_pull(pull.number).state == "merged"
    assert forge.get_issue(fixed.number).state == "closed"
    assert forge.get_issue(resolved.number).state == "closed"
    assert forge.get_issue(untouched.number).state == "open"


def test_merge_of_a_closed_pull_conflicts(forge_env):
    forge = forge_env.forge
    head = forge_env.push_branch("feature/closed", {"c.txt": "c\n"})
    pull = forge.create_pull(head="feature/closed", base="main", title="Closed")
    forge.close_pull(pull.number)
    with pytest.raises(Conflict, match="closed"):
        forge.merge_pull(pull.number, sha=head)


# --- hostile text, storage, identity ---------------------------------------------------------


@pytest.mark.parametrize("name", ["../x", "-x", "a..b", "a b", "a:b", "x.lock", "a//b", "/a", "a/", "@", "HEAD",
                                  "a@{1}", "a\\b", "a\nb", "a?", "a*", "a[", ".hidden", "a.", "a\u202eb", ""])
def test_hostile_branch_names_are_refused(forge_env, name):
    with pytest.raises(InvalidName):
        check_branch_name(name)
    with pytest.raises(InvalidName):
        forge_env.forge.create_pull(head=name, base="main", title="evil")


def test_valid_branch_names():
    for name in ("main", "alice/42-fix-login", "feature/x.y", "ünïcode", "a-b_c"):
        assert check_branch_name(name) == name


def test_hostile_text_is_stored_verbatim(forge_env):
    forge = forge_env.forge
    title = "$(rm -rf /) `id` ; echo pwned\n[branch \"x\"] refs/heads/evil"
    label = "--upload-pack=touch /tmp/x"
    issue = forge.create_issue(title, body="\x1b[31mred\x1b[0m <!-- agentmesh:x -->", labels=[label])
    got = forge.get_issue(issue.number)
    assert (got.title, got.labels) == (title, (label,))
    assert "red" in got.body
    assert not any("evil" in ref for ref in remote_refs(forge_env.remote))
    with pytest.raises(InvalidName):
        forge.add_labels(issue.number, ["two\nlines"])


def test_storage_layout(forge_env):
    forge = forge_env.forge
    issue = forge.create_issue("stored")
    forge.comment(issue.number, "hello")
    refs = remote_refs(forge_env.remote, "refs/agentmesh/")
    assert {f"refs/agentmesh/items/{issue.number}", "refs/agentmesh/labels"} <= set(refs)
    tip = refs[f"refs/agentmesh/items/{issue.number}"]
    files = git("ls-tree", "-r", "--name-only", tip, cwd=forge_env.remote).split()
    assert files == ["comments/000001.json", "meta.json"]
    assert git("rev-list", "--count", tip, cwd=forge_env.remote) == "2"  # history: create, comment
    assert set(DEFAULT_LABELS) <= set(forge.list_labels())


def test_a_stage_change_is_one_commit_on_the_item(forge_env):
    """relabel: one compare-and-swap commit however many labels come and go (a stage change is one write)."""
    forge = forge_env.forge
    issue = forge.create_issue("staged", labels=["task", "agentmesh:claimed"])
    ref = f"refs/agentmesh/items/{issue.number}"
    before = remote_refs(forge_env.remote, ref)[ref]
    forge.relabel(issue.number, add=["agentmesh:working", "agentmesh:busy"], remove=["agentmesh:claimed"])
    after = remote_refs(forge_env.remote, ref)[ref]
    assert git("rev-list", "--count", f"{before}..{after}", cwd=forge_env.remote) == "1"
    assert sorted(forge.get_issue(issue.number).labels) == ["agentmesh:busy", "agentmesh:working", "task"]
    forge.relabel(issue.number, add=["agentmesh:working"], remove=["agentmesh:claimed"])  # nothing to change
    assert remote_refs(forge_env.remote, ref)[ref] == after


def test_get_pull_of_an_issue_is_not_found(forge_env):
    issue = forge_env.forge.create_issue("not a PR")
    with pytest.raises(NotFound):
        forge_env.forge.get_pull(issue.number)


def test_create_pull_needs_the_head_branch(forge_env):
    with pytest.raises(NotFound, match="does not exist"):
        forge_env.forge.create_pull(head="feature/never-pushed", base="main", title="x")


def test_permission_roster(forge_env):
    forge = forge_env.forge
    assert forge.permission("anyone") == "write"
    forge.set_permission("bob", "read")
    assert forge.permission("bob") == "read"
    assert forge.permission("anyone") == "write"


def test_two_agents_see_each_other(forge_env, tmp_path):
    alice = forge_env.forge
    bob = make_forge(forge_env.remote.as_uri(), tmp_path, "bob")
    issue = alice.create_issue("shared")
    bob.comment(issue.number, "bob was here")
    alice.add_labels(issue.number, ["agentmesh:claimed"])
    assert [(c.author, c.body) for c in alice.list_comments(issue.number)] == [("bob", "bob was here")]
    assert bob.list_issues(labels=["agentmesh:claimed"])[0].number == issue.number


# --- transports ----------------------------------------------------------------------------------


def _round_trip(env: LocalForgeEnv) -> None:
    forge = env.forge
    issue = forge.create_issue("over the wire", labels=["task"])
    forge.comment(issue.number, "a comment")
    head = env.push_branch("feature/wire", {"wire.txt": "wire\n"})
    pull = forge.create_pull(head="feature/wire", base="main", title="Wire", body=f"Closes #{issue.number}")
    forge.submit_review(pull.number, event="approve", body="ok", commit_id=head)
    forge.set_status(head, context="ci", state="success")
    forge.merge_pull(pull.number, sha=head)
    assert forge.get_issue(issue.number).state == "closed"
    assert [p.number for p in forge.list_pulls(state="merged")] == [pull.number]
    assert forge.read_file("wire.txt", "main") == "wire\n"
    assert forge.ci_status(head).state == "success"
    forge.delete_branch("feature/wire")
    assert "refs/heads/feature/wire" not in remote_refs(env.remote, "refs/heads/")


def test_works_over_git_daemon(tmp_path):
    served = tmp_path / "served"
    remote = new_remote(served / "mesh.git")
    with git_daemon(served) as base_url:
        _round_trip(make_env(f"{base_url}/mesh.git", remote, tmp_path))


def test_works_over_smart_http(tmp_path):
    served = tmp_path / "served"
    remote = new_remote(served / "mesh.git")
    git("config", "http.receivepack", "true", cwd=remote)
    with git_http(served) as (base_url, _):
        _round_trip(make_env(f"{base_url}/mesh.git", remote, tmp_path))


def _create_pull(url: str, root: str, user: str, head: str, barrier, results) -> None:
    forge = make_forge(url, Path(root), user)
    barrier.wait()
    results.put(forge.create_pull(head=head, base="main", title=f"by {user}").number)


@pytest.mark.slow
def test_racing_pull_creators_for_one_head_share_one_pull(forge_env, tmp_path):
    forge_env.push_branch("feature/race", {"race.txt": "race\n"})
    url = forge_env.remote.as_uri()
    numbers = _run_processes(_create_pull, [(url, str(tmp_path), f"agent-{i}", "feature/race") for i in range(4)])
    assert len(set(numbers)) == 1
    assert [p.number for p in forge_env.forge.list_pulls(state="all")] == numbers[:1]


def test_a_pull_created_between_the_listing_and_the_create_is_adopted(forge_env, tmp_path):
    """The interleaving the race above hits by luck, forced: bob's PR lands right after ada listed
    the open PRs and found none. ada must adopt it, not open a second PR for the same head."""
    forge_env.push_branch("feature/between", {"b.txt": "b\n"})
    url = forge_env.remote.as_uri()
    bob = make_forge(url, tmp_path, "bob")

    class Ada(LocalForge):
        raced = False

        def find_pull_for_head(self, head: str):
            found = super().find_pull_for_head(head)
            if not self.raced:
                self.raced = True
                bob.create_pull(head=head, base="main", title="by bob")
            return found

    plain = make_forge(url, tmp_path, "ada")
    ada = Ada(plain.cache, user="ada")
    pull = ada.create_pull(head="feature/between", base="main", title="by ada")
    assert [p.number for p in forge_env.forge.list_pulls(state="all")] == [pull.number]
    assert pull.title == "by bob"


def test_new_pull_for_a_head_after_the_old_one_closed(forge_env):
    forge = forge_env.forge
    forge_env.push_branch("feature/again", {"a.txt": "a\n"})
    first = forge.create_pull(head="feature/again", base="main", title="first")
    forge.close_pull(first.number)
    second = forge.create_pull(head="feature/again", base="main", title="second")
    assert second.number != first.number
    forge.delete_branch("feature/again")
    forge_env.push_branch("feature/again/nested", {"b.txt": "b\n"})  # a D/F neighbour of the old head
    assert forge.create_pull(head="feature/again/nested", base="main", title="nested").state == "open"


def test_open_forge_chooses_by_kind(tmp_path):
    from agentmesh.agent.mesh import Mesh
    from agentmesh.core.errors import ConfigError
    from agentmesh.host.config import HostConfig

    remote = new_remote(tmp_path / "remote.git")

    def mesh(**forge):
        return Mesh(HostConfig(agent="host1-a", remote=remote.as_uri(), state_dir=tmp_path / "state", forge=forge),
                    env={})

    local = mesh().open_forge()
    assert isinstance(local, LocalForge) and local.current_user() == "host1-a"
    assert local.create_issue("via the factory").number == 1
    assert mesh(kind="gitea", url="https://gitea.invalid", repo="o/r").open_forge().kind == "gitea"
    assert mesh(kind="github", repo="o/r").open_forge().kind == "github"
    with pytest.raises(ConfigError, match=r"forge\.url"):
        mesh(kind="gitea", repo="o/r").open_forge()


def test_a_corrupt_item_does_not_hide_the_others(forge_env):
    from agentmesh.forge.local.schema import CorruptItem

    forge = forge_env.forge
    good = forge.create_issue("good")
    remote = forge_env.remote
    for number, meta in ((2, "not json"), (3, '{"kind": "pull", "head": "--upload-pack=x", "base": "main"}')):
        blob = git("hash-object", "-w", "--stdin", cwd=remote, input=meta)
        tree = git("mktree", cwd=remote, input=f"100644 blob {blob}\tmeta.json\n")
        commit = git("commit-tree", tree, "-m", "vandal", cwd=remote)
        git("update-ref", f"refs/agentmesh/items/{number}", commit, cwd=remote)
    assert [i.number for i in forge.list_issues()] == [good.number]
    assert forge.list_pulls() == []
    with pytest.raises(CorruptItem):
        forge.get_issue(3)
    assert forge.create_issue("after the vandal").number == 4


def test_list_issues_since_uses_the_injected_clock(tmp_path):
    from datetime import datetime, timedelta

    remote = new_remote(tmp_path / "remote.git")
    now = [datetime(2026, 1, 1, 12, 0, tzinfo=UTC)]
    forge = LocalForge(make_forge(remote.as_uri(), tmp_path, "alice").cache, user="alice", clock=lambda: now[0])
    old = forge.create_issue("old")
    now[0] += timedelta(hours=2)
    new = forge.create_issue("new")
    assert forge.get_issue(new.number).created_at == "2026-01-01T14:00:00Z"
    since = datetime(2026, 1, 1, 13, 0, tzinfo=UTC)
    assert [i.number for i in forge.list_issues(since=since)] == [new.number]
    forge.comment(old.number, "bump")  # a comment updates the issue
    assert [i.number for i in forge.list_issues(since=since)] == [old.number, new.number]


@pytest.mark.parametrize("stamp", ["2026-01-01T14:00:00", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59-14:00",
                                   "0001-01-01T00:00:00+14:00", "1e20", "NaN"])
def test_an_item_dated_out_of_range_is_listed_not_a_crash(forge_env, stamp):
    # an item is whatever its pusher wrote: a date with no offset (once compared with an aware one), out of
    # datetime's range, or none at all is no date to filter on, never an exception in every listing
    from datetime import datetime

    forge, remote = forge_env.forge, forge_env.remote
    meta = json.dumps({"version": 1, "kind": "issue", "title": "dated", "body": "", "state": "open", "labels": [],
                       "assignees": [], "author": "mallory", "created_at": stamp, "updated_at": stamp})
    blob = git("hash-object", "-w", "--stdin", cwd=remote, input=meta)
    tree = git("mktree", cwd=remote, input=f"100644 blob {blob}\tmeta.json\n")
    git("update-ref", "refs/agentmesh/items/1", git("commit-tree", tree, "-m", "vandal", cwd=remote), cwd=remote)
    since = datetime(2026, 1, 1, 13, 0, tzinfo=UTC)
    assert [(i.number, i.updated_at) for i in forge.list_issues(since=since)] == [(1, stamp)]


def _merge(url: str, root: str, user: str, number: int, sha: str, barrier, results) -> None:
    forge = make_forge(url, Path(root), user)
    barrier.wait()
    forge.merge_pull(number, sha=sha)
    results.put(number)


@pytest.mark.slow
def test_racing_merges_into_one_base_all_land(forge_env, tmp_path):
    forge = forge_env.forge
    jobs = []
    for i in range(3):
        head = forge_env.push_branch(f"feature/m{i}", {f"m{i}.txt": f"{i}\n"})
        jobs.append((forge.create_pull(head=f"feature/m{i}", base="main", title=f"m{i}").number, head))
    url = forge_env.remote.as_uri()
    _run_processes(_merge, [(url, str(tmp_path), f"merger-{i}", n, sha) for i, (n, sha) in enumerate(jobs)])
    assert {p.number for p in forge.list_pulls(state="merged")} == {n for n, _ in jobs}
    for i in range(3):
        assert forge.read_file(f"m{i}.txt", "main") == f"{i}\n"


# --- a review and its status in one push ---------------------------------------------------------------------

# pre-receive: logs each push's refs on one line; once (the trigger file), when a push carries a status, points
# that status ref elsewhere first, the way a concurrent status write would, out of the push's quarantine
LOG_AND_MOVE_STATUS = """#!{python}
import os, pathlib, subprocess, sys
refs = [line.split()[2] for line in sys.stdin]
with open({log!r}, "a") as log:
    log.write(" ".join(refs) + "\\n")
trigger = pathlib.Path({trigger!r})
moved = [ref for ref in refs if ref.startswith("refs/agentmesh/statuses/")]
if moved and trigger.exists():
    trigger.unlink()
    env = {{k: v for k, v in os.environ.items() if not k.startswith(("GIT_QUARANTINE", "GIT_OBJECT", "GIT_ALTERNATE"))}}
    subprocess.run(["git", "update-ref", moved[0], "refs/heads/main"], env=env, check=True)
"""


@pytest.mark.parametrize("raced", [False, True], ids=["alone", "status-moved-mid-push"])
def test_a_review_and_its_status_land_in_one_push(forge_env, tmp_path, raced):
    forge = forge_env.forge
    pull = _open_pull(forge_env)
    forge.set_status(pull.head_sha, context="agentmesh/tests", state="success")
    log, trigger = tmp_path / "pushes.log", tmp_path / "trigger"
    hook = forge_env.remote / "hooks" / "pre-receive"
    hook.write_text(LOG_AND_MOVE_STATUS.format(python=sys.executable, log=str(log), trigger=str(trigger)))
    hook.chmod(0o755)
    if raced:
        trigger.touch()
    forge.submit_review_with_status(pull.number, event="approve", body="ok", commit_id=pull.head_sha,
                                    status=StatusContext("agentmesh/review", "success", "approve by alice"))
    status_ref, pull_ref = f"refs/agentmesh/statuses/{pull.head_sha}", f"refs/agentmesh/items/{pull.number}"
    pushes = [line.split() for line in log.read_text().splitlines()]
    assert all(sorted(refs) == sorted([pull_ref, status_ref]) for refs in pushes)  # never one without the other
    assert len(pushes) == (2 if raced else 1)  # the push the moved status refused, then the one rebuilt on it
    assert not trigger.exists()
    # from the remote: the review and the status both there; a moved status was built on, not overwritten blind
    tip = remote_refs(forge_env.remote, "refs/agentmesh/statuses/")[status_ref]
    doc = json.loads(git("show", f"{tip}:statuses.json", cwd=forge_env.remote))
    expected = {"agentmesh/review"} if raced else {"agentmesh/tests", "agentmesh/review"}
    assert set(doc["contexts"]) == expected
    if raced:
        assert git("rev-parse", f"{tip}^", cwd=forge_env.remote) == git("rev-parse", "main", cwd=forge_env.remote)
    assert [r.state for r in LocalForge(forge.cache, user="bob").list_reviews(pull.number)] == ["APPROVED"]
