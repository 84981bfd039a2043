"""`CacheClone.ref_records` reads the mirror's refs from their files and the commits through the run's `cat-file`,
with no `for-each-ref`: it must say what `git for-each-ref` says of every commit a remote can hold (signed,
unsigned, a message with or without its last newline, empty, not UTF-8, an odd committer line, a ref to a tree)."""

from __future__ import annotations

import subprocess

from agentmesh.git.cache import CacheClone
from agentmesh.git.objects import commit_data, with_signature
from agentmesh.git.run import Git
from agentmesh.git.signing import ensure_key, write_signed_commit
from tests.support import git
from tests.support.gitcount import counting_git

WHEN = "1700000000 +0000"
GARBAGE = b"-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n"


def by_for_each_ref(repo, patterns) -> dict[str, tuple[str, str, int | None]]:
    """What ref_records said before, in one `git for-each-ref`: the reference."""
    out = subprocess.run(["git", "for-each-ref",
                          "--format=%(refname)%00%(objectname)%00%(committerdate:unix)%00%(contents)%1e", *patterns],
                         cwd=repo, capture_output=True, check=True).stdout.decode("utf-8", "replace")
    found = {}
    for record in out.split("\x1e"):
        record = record.lstrip("\n")
        if record:
            ref, sha, stamp, message = record.split("\x00", 3)
            found[ref] = (sha, message, int(stamp) if stamp.isdigit() else None)
    return found


def write(repo, kind: str, data: bytes) -> str:
    return subprocess.run(["git", "hash-object", "-t", kind, "-w", "--stdin", "--literally"], cwd=repo, input=data,
                          capture_output=True, check=True).stdout.decode().strip()


def test_it_says_what_for_each_ref_says(tmp_path):
    key = tmp_path / "identity" / "id_ed25519"
    ensure_key(key, "ada")
    runner = Git(author_name="ada", author_email="ada@x.invalid", signing_key=key)
    cache = CacheClone(Git(), tmp_path / "cache.git", "unused").ensure()
    repo = cache.path
    tree = write(repo, "tree", b"")
    ident = "ada <ada@x.invalid>"
    shapes = {
        "signed": write_signed_commit(runner, repo, tree, [], "claim: #5 by ada\n\nAgentmesh-Host: h\n", when=WHEN),
        "plain": write(repo, "commit", commit_data(tree, [], ident, WHEN, "presence\n\nhost: x\n")),
        "no-newline": write(repo, "commit", commit_data(tree, [], ident, WHEN, "no newline at the end")),
        "empty": write(repo, "commit", commit_data(tree, [], ident, WHEN, "")),
        "latin-1": write(repo, "commit", commit_data(tree, [], ident, WHEN, "x").replace(b"\n\nx", b"\n\ncaf\xe9\n")),
        "odd-committer": write(repo, "commit", commit_data(tree, [], ident, WHEN, "odd\n").replace(
            b"committer ada <ada@x.invalid> 1700000000 +0000", b"committer ada <ada@x.invalid> soon +0000")),
        "garbage-signature": write(repo, "commit",
                                   with_signature(commit_data(tree, [], ident, WHEN, "sig\n"), GARBAGE)),
        "tree": tree,
    }
    for name, sha in shapes.items():
        git("update-ref", f"refs/mirror/heads/claim/{name}", sha, cwd=repo)
    git("update-ref", "refs/mirror/heads/agentmesh/agents/ada", shapes["plain"], cwd=repo)
    git("pack-refs", "--all", cwd=repo)  # some packed, some loose: both are read
    git("update-ref", "refs/mirror/heads/claim/loose", shapes["signed"], cwd=repo)
    patterns = ["refs/mirror/heads/claim/", "refs/mirror/heads/agentmesh/agents/"]
    expected = by_for_each_ref(repo, patterns)
    assert len(expected) == len(shapes) + 2
    with counting_git(tmp_path / "count") as count:
        found = cache.ref_records(patterns)
        times = cache.commit_times("refs/mirror/heads/claim/")
    assert found == expected
    assert times == {ref: stamp for ref, (_, _, stamp) in expected.items() if "/claim/" in ref and stamp is not None}
    assert count.commands()["for-each-ref"] == 0, count.argvs()  # the files and the run's cat-file alone


def test_a_ref_whose_object_is_missing_is_left_out(tmp_path):
    cache = CacheClone(Git(), tmp_path / "cache.git", "unused").ensure()
    tree = write(cache.path, "tree", b"")
    (cache.path / "refs" / "mirror" / "heads" / "claim").mkdir(parents=True)
    (cache.path / "refs" / "mirror" / "heads" / "claim" / "7").write_text("1" * 40 + "\n")  # a killed fetch's ref
    git("update-ref", "refs/mirror/heads/claim/8", tree, cwd=cache.path)
    assert cache.ref_records(["refs/mirror/heads/claim/"]) == {"refs/mirror/heads/claim/8": (tree, "", None)}
