"""`verified_signers` (one `ssh-keygen -Y verify` per signed commit, the principal found from the signature's key)
says what git's own check says (`signers`: `git log %G? %GS`, two ssh-keygens per commit) of every commit an
attacker could push: unsigned, signed by a key the roster does not list, a signature lifted onto other bytes,
two signatures, garbage, an oversized header, another namespace, a key listed for two principals."""

from __future__ import annotations

import subprocess

import pytest

from agentmesh.git.objects import with_signature
from agentmesh.git.run import Git, GitError
from agentmesh.git.signing import (
    allowed_signers,
    ensure_allowed_signers,
    ensure_key,
    signers,
    split_signed,
    verified_signers,
    write_signed_commit,
)
from tests.integration.test_signed_commits import by_git, make_signer
from tests.support import git
from tests.support.gitcount import counting_git

WHEN = "1700000000 +0000"


def write_object(repo, data: bytes) -> str:
    return subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--stdin", "--literally"], cwd=repo,
                          input=data, capture_output=True, check=True).stdout.decode().strip()


def read_object(repo, sha: str) -> bytes:
    return subprocess.run(["git", "cat-file", "commit", sha], cwd=repo, capture_output=True, check=True).stdout


def commits(repo, shas) -> dict[str, bytes]:
    """The commits as the run's cat-file reader reads them."""
    return {sha: read_object(repo, sha) for sha in shas}


def gits_check(runner, repo, shas, allowed) -> dict[str, str | None]:
    """git's own check of each commit (`signers`). Its `git log` feeds ssh-keygen the payload on a pipe: a
    signature ssh-keygen refuses before reading it (garbage) can kill git with SIGPIPE (exit -13, now and then),
    and a commit git cannot parse ("bogus commit object") fails it outright: no signer, in both."""
    found: dict[str, str | None] = {}
    for sha in shas:
        found[sha] = None
        for _ in range(5):
            try:
                found[sha] = signers(runner, repo, [sha], allowed)[sha]
                break
            except GitError as exc:
                if exc.returncode != -13:
                    break
    return found


def keygen_shim(folder, before: str):
    """`folder`, holding an `ssh-keygen` that runs the shell line `before`, then the real one."""
    folder.mkdir()
    real = subprocess.run(["sh", "-c", "command -v ssh-keygen"], capture_output=True, text=True).stdout.strip()
    (folder / "ssh-keygen").write_text(f'#!/bin/sh\n{before}\nexec {real} "$@"\n')
    (folder / "ssh-keygen").chmod(0o755)
    return folder


@pytest.fixture
def corpus(tmp_path):
    runner, repo = make_signer(tmp_path)
    ada = ensure_key(runner.signing_key, "ada")
    stranger_key = tmp_path / "stranger" / "id_ed25519"
    ensure_key(stranger_key, "stranger")
    stranger = Git(author_name="ada", author_email="ada@x.invalid", signing_key=stranger_key)
    tree = runner.run("hash-object", "-t", "tree", "-w", "--stdin", cwd=repo, input="").stdout.strip()
    good = write_signed_commit(runner, repo, tree, [], "claim: #5 by ada\n", when=WHEN)
    by_git_itself = by_git(runner, repo, tree, [good], "git's own -S\n", WHEN)
    unsigned = runner.run("commit-tree", tree, "-m", "unsigned", cwd=repo).stdout.strip()
    foreign = write_signed_commit(stranger, repo, tree, [], "claim: #5 by ada\n", when=WHEN)
    payload, signature = split_signed(read_object(repo, good))
    lifted = write_object(repo, with_signature(payload.replace(b"#5", b"#6"), signature))
    twice = write_object(repo, with_signature(with_signature(payload, signature), signature))
    garbage = write_object(repo, with_signature(payload, b"-----BEGIN SSH SIGNATURE-----\nAAAA\n"
                                                         b"-----END SSH SIGNATURE-----\n"))
    oversized = write_object(repo, with_signature(payload, signature + b"x" * 9000))
    other_namespace = subprocess.run(["ssh-keygen", "-Y", "sign", "-n", "file", "-f", str(runner.signing_key)],
                                     input=payload, capture_output=True, check=True).stdout
    namespaced = write_object(repo, with_signature(payload, other_namespace))
    shas = [good, by_git_itself, unsigned, foreign, lifted, twice, garbage, oversized, namespaced]
    return runner, repo, ada, shas


@pytest.mark.parametrize("principals", [["ada"], ["maintainer:root", "ada"]])
def test_it_says_what_gits_check_says_of_every_commit(corpus, principals, tmp_path):
    runner, repo, ada, shas = corpus
    allowed = ensure_allowed_signers(tmp_path / "signers", allowed_signers([(p, ada) for p in principals]))
    expected = gits_check(runner, repo, shas, allowed)
    good, by_git_itself, unsigned, foreign, lifted, twice, *bad = shas
    assert expected[good] == expected[by_git_itself] == expected[twice] == principals[0]  # twice: the first
    assert not any(expected[s] for s in (unsigned, foreign, lifted, *bad))
    assert verified_signers(runner, commits(repo, shas), allowed) == dict(expected)
    assert verified_signers(runner, {"0" * 40: None}, allowed) == {"0" * 40: None}  # missing: no signer


def test_one_ssh_keygen_per_signed_commit_of_a_listed_key_and_none_for_the_rest(corpus, tmp_path, monkeypatch):
    runner, repo, ada, shas = corpus
    allowed = ensure_allowed_signers(tmp_path / "signers", allowed_signers([("ada", ada)]))
    log = tmp_path / "ssh-keygen.log"
    shim = keygen_shim(tmp_path / "shim", f'echo "$2" >> {log}')
    objects = commits(repo, shas)
    assert verified_signers(runner, objects, allowed, program=str(shim / "ssh-keygen")) == \
        verified_signers(runner, objects, allowed)  # the push hook's `--ssh-keygen`: that program, same verdicts
    assert log.read_text().split() == ["verify"] * 5
    log.unlink()
    monkeypatch.setenv("PATH", f"{shim}:{git('--exec-path')}:/usr/bin:/bin")
    with counting_git(tmp_path / "count") as count:
        verified_signers(runner, objects, allowed)
    assert count.argvs() == []  # no git process: the objects come from the run's reader
    # good, git's -S, lifted, twice, namespaced: the key is ada's; unsigned, foreign, garbage, oversized: none
    assert log.read_text().split() == ["verify"] * 5


def test_a_header_split_as_git_splits_it_lines_end_at_newlines_only(tmp_path):
    """An attacker moves a good signature's header up, its last line ending in a carriage return: git reads the
    lines after it up to the newline as the signature's (here the parent line: to git a root commit, whose payload
    the signature does not verify); a reader splitting at the return too would read the signed payload back and
    say the agent signed it. And headers git leaves out of the payload (`gpgsig-sha256`, a bare `gpgsig`) are left
    out: git says the agent signed those."""
    runner, repo = make_signer(tmp_path)
    ada = ensure_key(runner.signing_key, "ada")
    tree = runner.run("hash-object", "-t", "tree", "-w", "--stdin", cwd=repo, input="").stdout.strip()
    root = write_signed_commit(runner, repo, tree, [], "root\n", when=WHEN)
    good = write_signed_commit(runner, repo, tree, [root], "claim: #5 by ada\n", when=WHEN)
    payload, signature = split_signed(read_object(repo, good))
    header, rest = payload.split(b"\n\n", 1)
    first, later = header.split(b"\n", 1)
    lines = signature.rstrip(b"\n").split(b"\n")
    block = b"gpgsig " + b"\n ".join(lines)  # the header without its last newline
    variants = [first + b"\n" + block + b"\r" + later + b"\n\n" + rest,  # the parent line hidden from git
                first + b"\ngpgsig-sha256 x\n y\n" + later + b"\n" + block + b"\n\n" + rest,
                first + b"\ngpgsig\n" + later + b"\n" + block + b"\n\n" + rest]
    shas = [write_object(repo, data) for data in variants]
    assert git("log", "-1", "--format=%P", shas[0], cwd=repo).strip() == ""  # to git: no parent
    allowed = ensure_allowed_signers(tmp_path / "signers", allowed_signers([("ada", ada)]))
    expected = gits_check(runner, repo, shas, allowed)
    assert [expected[sha] for sha in shas] == [None, "ada", "ada"]
    assert verified_signers(runner, commits(repo, shas), allowed) == dict(expected)


@pytest.mark.parametrize("seed", [1, 2])
def test_it_says_what_gits_check_says_of_headers_shuffled_and_rejoined(seed, tmp_path):
    """A good commit's lines moved, joined by `\\r`, `\\r\\n`, a space or another `gpgsig*` header: the same verdict
    as git's check (whose `git log` fails outright on a commit it cannot parse: those say no signer either)."""
    import random

    runner, repo = make_signer(tmp_path)
    ada = ensure_key(runner.signing_key, "ada")
    tree = runner.run("hash-object", "-t", "tree", "-w", "--stdin", cwd=repo, input="").stdout.strip()
    root = write_signed_commit(runner, repo, tree, [], "root\n", when=WHEN)
    lines = read_object(repo, write_signed_commit(runner, repo, tree, [root], "claim: #5\n", when=WHEN)).split(b"\n")
    rng = random.Random(seed)
    joins = [b"\n", b"\r", b"\r\n", b"\n ", b" \n", b"\ngpgsig-sha256 x\n", b"\ngpgsig\n", b""]
    variants = []
    for _ in range(30):
        shuffled = list(lines)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(shuffled) - 1)
            if rng.random() < 0.6:
                shuffled[at:at + 2] = [shuffled[at] + rng.choice(joins) + shuffled[at + 1]]
            else:
                shuffled.insert(rng.randrange(len(shuffled)), shuffled.pop(at))
        variants.append(b"\n".join(shuffled))
    allowed = ensure_allowed_signers(tmp_path / "signers", allowed_signers([("ada", ada)]))
    shas = list(dict.fromkeys(write_object(repo, data) for data in variants))
    expected = gits_check(runner, repo, shas, allowed)
    assert any(expected.values())  # some still good to git
    assert verified_signers(runner, commits(repo, shas), allowed) == expected


def test_ssh_keygen_never_sees_the_forge_token(corpus, tmp_path, monkeypatch):
    """ssh-keygen signs and verifies with git's environment less what only a push needs: the token, its user name
    and the askpass helper (it had them all, as git's own check gave them)."""
    runner, repo, ada, shas = corpus
    secret = "tok-" + "s3cr3t" * 4
    holder = Git(author_name="ada", author_email="ada@x.invalid", signing_key=runner.signing_key, token=secret,
                 username="agent", askpass=tmp_path / "askpass.sh")
    assert secret in holder.env().values()  # a push's git gets it, by design
    allowed = ensure_allowed_signers(tmp_path / "signers", allowed_signers([("ada", ada)]))
    seen = tmp_path / "env.log"
    shim = keygen_shim(tmp_path / "shim", f"env >> {seen}; echo --- >> {seen}")
    good = shas[0]
    assert verified_signers(holder, commits(repo, [good]), allowed, program=str(shim / "ssh-keygen")) == {good: "ada"}
    monkeypatch.setenv("PATH", f"{shim}:/usr/bin:/bin")  # the signer's ssh-keygen is found on PATH
    tree = holder.run("hash-object", "-t", "tree", "-w", "--stdin", cwd=repo, input="").stdout.strip()
    assert write_signed_commit(holder, repo, tree, [], "claim: #7 by ada\n", when=WHEN)
    logged = seen.read_text()
    assert logged.count("---") >= 2  # both ran through the shim: the verify and the sign
    assert secret not in logged and "AGENTMESH_GIT_TOKEN" not in logged and "GIT_ASKPASS" not in logged
    assert "AGENTMESH_GIT_USERNAME" not in logged
