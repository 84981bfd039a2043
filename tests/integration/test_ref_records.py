"""`CacheClone.ref_records` reads the mirror's refs from their files and the commits through the run's `cat-file`,
with no `for-each-ref`: it must say what `git for-each-ref` says of every commit a remote can hold (signed,
unsigned, a message with or without its last newline, empty, not UTF-8, an odd committer line, a ref to a tree)
but where it reads a commit's message whole, as the claims' fence does."""

from __future__ import annotations

import subprocess

from agentmesh.git.cache import CacheClone
from agentmesh.git.objects import commit_data, with_signature
from agentmesh.git.run import Git
from agentmesh.git.signing import ensure_key, write_signed_commit
from tests.support import agent_mesh, git, make_remote
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
    # committer lines anyone who can push may write: git reads the number after the first "> " (past the line's
    # end), as C's strtoumax reads it, and prints no date for one past its range (a Python int has none)
    committer = b"committer ada <ada@x.invalid> 1700000000 +0000"
    odd_lines = {
        "past-uintmax": b"committer ada <ada@x.invalid> 18446744073709551616 +0000",
        "past-float": b"committer ada <ada@x.invalid> " + b"9" * 400 + b" +0000",
        "uintmax-1": b"committer ada <ada@x.invalid> 18446744073709551614 +0000",
        "negative": b"committer ada <ada@x.invalid> -5 +0000",
        "plus-sign": b"committer ada <ada@x.invalid> +5 +0000",
        "trailing-field": b"committer ada <ada@x.invalid> 1700000000 +0000 extra",
        "no-zone": b"committer ada <ada@x.invalid> 1700000000",
        "zone-past-long": b"committer ada <ada@x.invalid> 1700000000 +99999999999999999999999",
        "no-email": b"committer ada 1700000000 +0000",
        "gt-in-name": b"committer a> b <x> 1700000000 +0000",
        "second-committer": committer + b"\ncommitter bob <b@x.invalid> 5 +0000",
    }
    for name, line in odd_lines.items():
        shapes[name] = write(repo, "commit", commit_data(tree, [], ident, WHEN, "odd\n").replace(committer, line))
    shapes["email-end-in-message"] = write(repo, "commit", commit_data(tree, [], ident, WHEN, "> 42 quoted\n").replace(
        committer, b"committer ada 1700000000 +0000"))
    shapes["committer-in-signature"] = write(repo, "commit", with_signature(
        commit_data(tree, [], ident, WHEN, "sig\n").replace(committer + b"\n", b""), b"x\ncommitter a <b> 7 +0000\n"))
    mergetag = b"\nmergetag object " + tree.encode() + b"\n type tree\n tag v1\n tagger t <t> 9 +0000\n \n v1\n"
    shapes["mergetag"] = write(repo, "commit", commit_data(tree, [], ident, WHEN, "merge\n").replace(
        committer, committer + mergetag.rstrip(b"\n")))
    for name, sha in shapes.items():
        git("update-ref", f"refs/mirror/heads/claim/{name}", sha, cwd=repo)
    git("update-ref", "refs/mirror/heads/agentmesh/agents/ada", shapes["plain"], cwd=repo)
    # names anyone may push: not UTF-8, or with a character Python's str.splitlines breaks a line at
    odd_names = ["caf\xe9".encode("latin-1"), "x\u2028y".encode(), "x\x85y".encode()]
    for name in odd_names:
        subprocess.run([b"git", b"update-ref", b"refs/mirror/heads/claim/packed-" + name, shapes["plain"].encode()],
                       cwd=repo, check=True)
    git("pack-refs", "--all", cwd=repo)  # some packed, some loose: both are read
    git("update-ref", "refs/mirror/heads/claim/loose", shapes["signed"], cwd=repo)
    for name in odd_names:
        subprocess.run([b"git", b"update-ref", b"refs/mirror/heads/claim/loose-" + name, shapes["plain"].encode()],
                       cwd=repo, check=True)
    patterns = ["refs/mirror/heads/claim/", "refs/mirror/heads/agentmesh/agents/"]
    expected = by_for_each_ref(repo, patterns)
    assert len(expected) == len(shapes) + 2 + 2 * len(odd_names)
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


def test_a_message_is_read_whole_where_for_each_ref_cuts_it(tmp_path):
    """git's `%(contents)` stops at a NUL and drops the blank lines the message starts with; ref_records keeps the
    message as the commit holds it, as `ClaimStore._claim_at` reads it: the observers and the fence judge one text."""
    cache = CacheClone(Git(), tmp_path / "cache.git", "unused").ensure()
    tree = write(cache.path, "tree", b"")
    ident = "ada <ada@x.invalid>"
    for name, message in {"nul": "claim\0Agentmesh-Agent: ada\n", "blank-first": "\n\nclaim\n"}.items():
        git("update-ref", f"refs/mirror/heads/claim/{name}",
            write(cache.path, "commit", commit_data(tree, [], ident, WHEN, message)), cwd=cache.path)
    found = cache.ref_records(["refs/mirror/heads/claim/"])
    assert {ref.rsplit("/", 1)[1]: message for ref, (_, message, _) in found.items()} == {
        "nul": "claim\0Agentmesh-Agent: ada\n", "blank-first": "\n\nclaim\n"}


def test_a_presence_commit_dated_past_gits_range_has_no_date(tmp_path):
    """Anyone who can push may date a presence commit 10^400: git prints no date for it, and so must the mirror's
    read (an int that large made `Presence.list` raise OverflowError, every run's that lists presence)."""
    remote = make_remote(tmp_path / "remote.git")
    presence = agent_mesh(remote, tmp_path / "hosts", "watcher").presence()
    tree = write(remote, "tree", b"")
    data = commit_data(tree, [], "mallory <m@x.invalid>", WHEN, "presence: mallory\n\nAgentmesh-Host: h\n")
    far = data.replace(b"> 1700000000 +0000", b"> " + b"9" * 400 + b" +0000")
    git("update-ref", presence.prefix + "mallory", write(remote, "commit", far), cwd=remote)
    assert [(view.agent, view.committed_at, view.committed_seconds) for view in presence.list()] == [
        ("mallory", None, None)]


def test_a_ref_named_in_no_utf_8_costs_no_fetch_a_run(tmp_path):
    """A presence ref pushed under a name that is not UTF-8: the mirror read of it must be named as the remote's
    listing names it, or every run that lists presence finds them apart and fetches (as the for-each-ref did not)."""
    remote = make_remote(tmp_path / "remote.git")
    presence = agent_mesh(remote, tmp_path / "hosts", "watcher").presence()
    head = git("rev-parse", "main", cwd=remote).strip()
    subprocess.run([b"git", b"update-ref", presence.prefix.encode() + b"caf\xe9", head.encode()], cwd=remote,
                   check=True)
    presence.list()  # fetches it into the mirror
    with counting_git(tmp_path / "count") as count:
        assert presence.list() == []  # no agent's name
    assert "fetch" not in count.commands(), count.argvs()
