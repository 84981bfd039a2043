"""One ssh-keygen signs a push's commits (git/signing.SigningSession, git/cache.py `signing`): each commit is
the very one `git commit-tree -S` writes, a commit may be the parent of the next, git verifies them all, the
host's own-signed record holds each, and nothing is left behind."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentmesh.agent.claim_task import claim_task
from agentmesh.core.errors import TemporaryError
from agentmesh.core.record import replace
from agentmesh.core.vocab import Event, Label, Stage
from agentmesh.forge.base import MergeFence, PullFence, Relabel
from agentmesh.git.cache import CacheClone
from agentmesh.git.remote import RefUpdate
from agentmesh.git.signing import (
    SigningSession,
    allowed_signers,
    ensure_allowed_signers,
    ensure_key,
    own_signed,
    write_signed_commit,
)
from tests.integration.test_signed_commits import by_git, make_signer
from tests.support import agent_forge, agent_mesh, demo_body, git, local_forge_remote, remote_refs

WHEN = "1700000000 +0000"


@pytest.fixture
def signer(tmp_path):
    return make_signer(tmp_path)


@pytest.fixture
def keygens(tmp_path, monkeypatch):
    """The ssh-keygen processes started: a shim first on PATH (agentmesh passes PATH on) logs each."""
    shim = tmp_path / "shim"
    shim.mkdir()
    log = tmp_path / "keygen.log"
    (shim / "ssh-keygen").write_text(f"#!/bin/sh\necho \"$*\" >> '{log}'\nexec /usr/bin/ssh-keygen \"$@\"\n")
    (shim / "ssh-keygen").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")

    def signing() -> int:
        lines = log.read_text().splitlines() if log.exists() else []
        return sum(1 for line in lines if line.startswith("-Y sign"))
    return signing


def test_a_chain_and_its_siblings_from_one_process(signer, tmp_path, keygens):
    runner, repo = signer
    tree = runner.run("hash-object", "-t", "tree", "-w", "--stdin", cwd=repo, input="").stdout.strip()
    folder = tmp_path / "state" / ".signing"
    folder.mkdir(parents=True, mode=0o700)
    session = SigningSession(runner, folder, 4)
    try:
        root = write_signed_commit(runner, repo, tree, [], "root\n", when=WHEN, session=session)
        child = write_signed_commit(runner, repo, tree, [root], "child\n", when=WHEN, session=session)
        merge = write_signed_commit(runner, repo, tree, [root, child], "merge\n", when=WHEN, session=session)
        other = write_signed_commit(runner, repo, tree, [], "other \u00d7\n", when=WHEN, session=session)
    finally:
        session.close()
    assert keygens() == 1
    assert not folder.exists()  # the FIFOs and signatures are gone
    shas = [root, child, merge, other]
    assert shas == [by_git(runner, repo, tree, [], "root\n", WHEN), by_git(runner, repo, tree, [root], "child\n", WHEN),
                    by_git(runner, repo, tree, [root, child], "merge\n", WHEN),
                    by_git(runner, repo, tree, [], "other \u00d7\n", WHEN)]
    key = ensure_key(runner.signing_key, "ada")
    allowed = ensure_allowed_signers(tmp_path / "signers", allowed_signers([("ada", key)]))
    checked = runner.run("-c", f"gpg.ssh.allowedSignersFile={allowed}", "log", "--no-walk=unsorted",
                         "--format=%H %G?", *shas, cwd=repo).stdout.split("\n")
    assert [line for line in checked if line] == [f"{sha} G" for sha in shas]
    assert set(own_signed(repo, shas)) == set(shas)


def test_past_its_slots_and_after_its_end_commits_are_signed_one_by_one(signer, tmp_path, keygens):
    runner, repo = signer
    tree = runner.run("hash-object", "-t", "tree", "-w", "--stdin", cwd=repo, input="").stdout.strip()
    folder = tmp_path / ".signing"
    folder.mkdir(mode=0o700)
    session = SigningSession(runner, folder, 1)
    first = write_signed_commit(runner, repo, tree, [], "1\n", when=WHEN, session=session)
    second = write_signed_commit(runner, repo, tree, [first], "2\n", when=WHEN, session=session)
    session.close()
    third = write_signed_commit(runner, repo, tree, [second], "3\n", when=WHEN, session=session)
    assert third == by_git(runner, repo, tree, [second], "3\n", WHEN)
    assert keygens() == 3 + 1  # the session's, two alone, and git's for `by_git`


def test_a_session_never_used_is_stopped_and_removed(signer, tmp_path):
    runner, _ = signer
    folder = tmp_path / ".signing"
    folder.mkdir(mode=0o700)
    session = SigningSession(runner, folder, 3)
    proc = session._proc
    assert proc is not None and proc.poll() is None  # waiting on its first FIFO
    session.close()
    assert proc.poll() is not None and not folder.exists()
    session.close()  # twice is harmless


def test_the_cache_signs_a_push_with_one_process_in_a_private_folder(signer, tmp_path, keygens):
    runner, repo = signer
    cache = CacheClone(runner, repo, str(repo))
    tree = cache.empty_tree()
    with cache.signing(8):
        folders = [p for p in repo.parent.iterdir() if p.name.startswith(".signing-")]
        assert len(folders) == 1 and folders[0].stat().st_mode & 0o777 == 0o700
        first = cache.commit_tree(tree, [], "a\n")
        second = cache.commit_tree(tree, [first], "b\n")
    assert keygens() == 1
    assert not folders[0].exists()
    assert cache.run("rev-list", second).stdout.split() == [second, first]


def test_a_signature_that_does_not_come_in_time_is_temporary(signer, tmp_path, monkeypatch):
    runner, repo = signer
    shim = tmp_path / "slow"
    shim.mkdir()
    (shim / "ssh-keygen").write_text("#!/bin/sh\nexec sleep 30\n")  # never reads its FIFOs
    (shim / "ssh-keygen").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")
    slow = replace(runner, timeout=0.3)
    folder = tmp_path / ".signing"
    folder.mkdir(mode=0o700)
    session = SigningSession(slow, folder, 2)
    proc = session._proc
    tree = runner.run("hash-object", "-t", "tree", "-w", "--stdin", cwd=repo, input="").stdout.strip()
    with pytest.raises(TemporaryError, match="did not sign within"):
        write_signed_commit(slow, repo, tree, [], "x\n", when=WHEN, session=session)
    assert proc is not None and proc.poll() is not None  # stopped
    session.close()


JOURNAL = "refs/heads/test/journal"


class JournalPullFence(PullFence):
    """The PR's head branch and a journal commit built in the push's own listing, as agent/jobs.WorkFence's."""

    def __init__(self, cache, branch: str, commit: str):
        self.cache = cache
        self.refs = (f"refs/heads/{branch}", JOURNAL)
        self.head_sha = commit

    def updates(self, listed, number):
        journal = self.cache.commit_tree(self.cache.empty_tree(), [], f"journal: pr #{number}\n")
        return [RefUpdate(self.refs[0], self.head_sha, listed.get(self.refs[0])),
                RefUpdate(JOURNAL, journal, listed.get(JOURNAL))]

    def landed(self, number):
        pass


class JournalMergeFence(MergeFence):
    """Two journal commits, the second the child of the first: a chain inside the merge's push."""

    def __init__(self, cache):
        self.cache = cache
        self.refs = (JOURNAL,)

    def updates(self, listed):
        first = self.cache.commit_tree(self.cache.empty_tree(), [listed[JOURNAL]], "journal: merged\n")
        second = self.cache.commit_tree(self.cache.empty_tree(), [first], "journal: closed\n")
        return [RefUpdate(JOURNAL, second, listed[JOURNAL])]

    def landed(self):
        pass


def test_a_pr_creation_push_and_a_merge_push_each_start_one_ssh_keygen(tmp_path, keygens):
    remote = local_forge_remote(tmp_path / "remote.git")
    mesh = agent_mesh(remote, tmp_path / "hosts", "ada")
    forge = agent_forge(mesh)
    base = mesh.base_head
    commit = mesh.cache.commit_tree(mesh.cache.tree_of(base), [base], "work\n")
    issue = forge.create_issue("Do it", labels=[Stage.WORKING]).number
    before = keygens()
    stages = Relabel(issue, add=(Stage.REVIEW,), remove=(Stage.WORKING,))
    pull = forge.create_fenced_pull(JournalPullFence(mesh.cache, "ada/1-do-it", commit), head="ada/1-do-it",
                                    base=mesh.base_branch, title="Do it (#1)", body=f"Closes #{issue}",
                                    labels=[Label.PR], relabel=[stages])
    assert pull is not None
    assert keygens() == before + 1  # the PR, the issue's stage and the journal
    assert forge.merge_fenced_pull(JournalMergeFence(mesh.cache), pull.number, sha=commit)
    assert keygens() == before + 2  # the merge, the PR, the issue closed and two chained journal commits
    assert forge.get_issue(issue).state == "closed" and forge.get_pull(pull.number).state == "merged"

    new = git("rev-list", "--author=ada", *remote_refs(remote).values(), "--not", commit, cwd=remote).split()
    key = ensure_key(mesh.git.signing_key, "ada")
    allowed = ensure_allowed_signers(tmp_path / "signers", allowed_signers([("ada", key)]))
    checked = git("-c", f"gpg.ssh.allowedSignersFile={allowed}", "log", "--no-walk=unsorted", "--format=%G? %s",
                  *new, cwd=remote).splitlines()
    assert len(checked) >= 8 and [line for line in checked if not line.startswith("G ")] == [], checked
    journal = git("log", "--format=%s", JOURNAL, cwd=remote).splitlines()
    assert journal == ["journal: closed", "journal: merged", "journal: pr #2"]
    assert set(own_signed(mesh.cache.path, new)) >= set(git("rev-list", JOURNAL, cwd=remote).split())


def test_a_claim_task_tick_signs_its_claim_and_its_work_with_the_pr_push_in_one_process_each(tmp_path, keygens):
    """The claim with the issue's `working` stage: one ssh-keygen; the work commit with the PR's push (the PR,
    the issue's `review` stage, the claim's renewal, the journal): one more."""
    remote = local_forge_remote(tmp_path / "remote.git")
    human = agent_forge(agent_mesh(remote, tmp_path / "hosts", "human"))
    issue = human.create_issue("Add notes", demo_body("notes.txt", "notes\n"), ["task"]).number
    mesh = agent_mesh(remote, tmp_path / "hosts", "ada")
    forge = agent_forge(mesh)
    before = keygens()
    report = claim_task(mesh, forge, env={"PATH": os.environ["PATH"]})
    events = [line.event for line in report.events]
    assert events[:4] == [Event.CLAIMED, Event.EXECUTED, Event.PUSHED, Event.PR_OPENED], events
    assert len(human.list_pulls(state="open")) == 1 and Stage.REVIEW in human.get_issue(issue).labels
    signed = git("rev-list", "--author=ada", *remote_refs(remote).values(), cwd=remote).split()
    assert len(signed) >= 6, signed  # claim, working, work, PR, review stage, claim renewal, journal...
    assert keygens() - before == 3, (keygens() - before, len(signed))  # and the presence's own push: one


def test_a_session_folder_a_killed_run_left_is_swept_by_the_next_session(signer, tmp_path):
    runner, repo = signer
    cache = CacheClone(runner, repo, str(repo))
    left, live = repo.parent / ".signing-left", repo.parent / ".signing-live"
    for folder in (left, live):
        folder.mkdir(mode=0o700)
        os.mkfifo(folder / "0", 0o600)
    os.utime(left, (1, 1))  # long ago
    with cache.signing(2):
        cache.commit_tree(cache.empty_tree(), [], "a\n")
    assert not left.exists() and live.exists()  # a live one may be another run's


def test_the_ssh_keygen_of_a_run_that_died_is_stopped_by_the_next_session(signer, tmp_path):
    """A run killed mid-push leaves its ssh-keygen waiting on a FIFO for ever: the next session stops it."""
    runner, repo = signer
    gone = _dead_pid()
    folder = repo.parent / f".signing-{gone}-abc"
    folder.mkdir(mode=0o700)
    orphan = SigningSession(runner, folder, 3)  # as the dead run left it
    assert orphan._proc is not None and orphan._proc.poll() is None
    time.sleep(0.5)  # waiting on its first FIFO by now
    cache = CacheClone(runner, repo, str(repo))
    with cache.signing(2):
        cache.commit_tree(cache.empty_tree(), [], "a\n")
    assert orphan._proc.wait(timeout=10) < 0 and not folder.exists()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


CHILD = """
import sys, time
from pathlib import Path
from agentmesh.git.run import Git
from agentmesh.git.signing import SigningSession
session = SigningSession(Git(author_name="ada", author_email="ada@h.agentmesh.invalid", signing_key=Path(sys.argv[1])),
                         Path(sys.argv[2]), 3)
print(session._proc.pid, flush=True)
time.sleep(60)
"""


def test_a_run_killed_mid_push_takes_its_ssh_keygen_with_it(signer, tmp_path):
    runner, _ = signer
    folder = tmp_path / ".signing"
    folder.mkdir(mode=0o700)
    run = subprocess.Popen([sys.executable, "-c", CHILD, str(runner.signing_key), str(folder)], stdout=subprocess.PIPE)
    assert run.stdout is not None
    keygen = int(run.stdout.readline())
    time.sleep(0.3)
    assert _running(keygen)
    run.kill()
    run.wait()
    deadline = time.monotonic() + 10
    while _running(keygen) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(keygen)


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
