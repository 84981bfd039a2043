"""A signed commit written without git (git/signing.py: one ssh-keygen) is the very commit `git commit-tree -S`
writes: the same bytes, hence the same sha, and git verifies its signature. Ed25519 signatures are
deterministic, so the two can be compared byte for byte at a fixed time."""

from __future__ import annotations

import pytest

from agentmesh.git.objects import git_now, plain_ident
from agentmesh.git.run import Git
from agentmesh.git.signing import (
    PendingSignature,
    allowed_signers,
    ensure_allowed_signers,
    ensure_key,
    signers,
    write_signed_commit,
)
from tests.support import git


def make_signer(tmp_path):
    """A runner that signs as ada with a new key, and a bare repository: (the runner, the repository)."""
    key = tmp_path / "identity" / "id_ed25519"
    ensure_key(key, "ada")
    repo = tmp_path / "repo.git"
    git("init", "--quiet", "--bare", str(repo))
    return Git(author_name="ada", author_email="ada@host-1.agentmesh.invalid", signing_key=key), repo


@pytest.fixture
def signer(tmp_path):
    return make_signer(tmp_path)


def by_git(runner: Git, repo, tree: str, parents: list[str], message: str, when: str) -> str:
    """What `Git.commit_tree` writes (`git commit-tree -S`), at the time `when`."""
    signing = ("-c", "gpg.format=ssh", "-c", f"user.signingKey={runner.signing_key}")
    args = [*signing, "commit-tree", "-S", tree, *(a for p in parents for a in ("-p", p))]
    date = f"@{when}"
    return runner.run(*args, cwd=repo, input=message,
                      env={"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}).stdout.strip()


@pytest.mark.parametrize("when", ["1700000000 +0000", "1800000000 -0930", "1234567890 +0545"])
def test_the_same_commit_as_git_commit_tree_signs(signer, when):
    runner, repo = signer
    key = runner.signing_key
    assert key is not None
    tree = runner.run("hash-object", "-t", "tree", "-w", "--stdin", cwd=repo, input="").stdout.strip()
    message = "claim: #5 by ada [skip ci]\n\nAgentmesh-Issue: 5\nAgentmesh-Nonce: 00ff\n"
    root = by_git(runner, repo, tree, [], "root\n", when)
    for parents, text in (([], message), ([root], message), ([root, root], "caf\u00e9 \u00d7 no newline")):
        ours = write_signed_commit(runner, repo, tree, parents, text, when=when)
        assert ours == by_git(runner, repo, tree, parents, text, when), (parents, text)
    allowed = ensure_allowed_signers(repo.parent / "signers", allowed_signers([("ada", ensure_key(key, "ada"))]))
    assert signers(runner, repo, [ours], allowed) == {ours: "ada"}  # git's own check of the signature


def test_it_leaves_to_git_what_git_would_write_otherwise(signer, tmp_path):
    runner, repo = signer
    tree = runner.run("hash-object", "-t", "tree", "-w", "--stdin", cwd=repo, input="").stdout.strip()
    unsigned = Git(author_name="ada", author_email="ada@h.agentmesh.invalid")
    crud = Git(author_name="ada.", author_email="ada@h.agentmesh.invalid", signing_key=runner.signing_key)
    gone = Git(author_name="ada", author_email="ada@h.agentmesh.invalid", signing_key=tmp_path / "no-such-key")
    for other in (unsigned, crud, gone):
        assert write_signed_commit(other, repo, tree, [], "x\n") is None


def test_a_signature_started_ahead_signs_the_same_commit(signer, tmp_path):
    """The claim path starts ssh-keygen before it knows the commit (cli/fast.py, `presign`): the same bytes
    and sha as git's, from that process; used once, and only for the key it was started with."""
    runner, repo = signer
    when = "1700000000 +0000"
    tree = runner.run("hash-object", "-t", "tree", "-w", "--stdin", cwd=repo, input="").stdout.strip()
    pending = PendingSignature(runner)
    ours = write_signed_commit(runner, repo, tree, [], "claim\n", when=when, pending=pending)
    assert ours == by_git(runner, repo, tree, [], "claim\n", when)
    assert pending.sign(runner, b"again") is None  # spent
    other_key = tmp_path / "other" / "id_ed25519"
    ensure_key(other_key, "bob")
    bob = Git(author_name="bob", author_email="bob@h.agentmesh.invalid", signing_key=other_key)
    stale = PendingSignature(runner)  # ada's ssh-keygen is never used for bob's commit
    assert write_signed_commit(bob, repo, tree, [], "b\n", when=when, pending=stale) == \
        by_git(bob, repo, tree, [], "b\n", when)
    gone = Git(author_name="ada", author_email="ada@h.agentmesh.invalid", signing_key=tmp_path / "no-such-key")
    assert write_signed_commit(gone, repo, tree, [], "x\n", pending=PendingSignature(gone)) is None


def test_a_signature_never_used_is_stopped(signer):
    runner, _ = signer
    pending = PendingSignature(runner)
    proc = pending._proc
    assert proc is not None and proc.poll() is None  # waiting for what it signs
    pending.abandon()
    assert proc.poll() is not None  # killed and reaped: nothing outlives the command
    pending.abandon()  # twice is harmless


@pytest.mark.parametrize("name, email, plain", [
    ("ada", "ada@host-1.agentmesh.invalid", True), ("a-1", "a-1@h.x", True), ("ada", "ada@h.", False),
    (".ada", "a@h", False), ("a da", "a@h", False), ("ada", "<a@h>", False), ("ada\n", "a@h", False),
    ("", "a@h", False),
])
def test_plain_idents_only(name, email, plain):
    assert (plain_ident(name, email) is not None) is plain


def test_git_now_is_seconds_and_the_local_offset(monkeypatch):
    import time

    monkeypatch.setenv("TZ", "Asia/Kathmandu")
    time.tzset()
    try:
        assert git_now(1700000000.9) == "1700000000 +0545"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
