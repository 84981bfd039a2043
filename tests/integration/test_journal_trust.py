"""With a roster, a journal line counts only if the commit that wrote it is signed by the writer whose
directory holds it (an agent, or a maintainer's `maintainer.<login>`), and the entry names that writer:
on each writer's journal branch, the shared memory branch and the default branch's old journals alike.
Real bare remotes, real signatures; the forged lines stay on the remote (read with git plumbing) and
are only left out of what readers count."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from agentmesh.core.memory import journal_file, utc_ts
from agentmesh.git.signing import ensure_key
from agentmesh.host.roster import ROSTER_PATH
from tests.support import agent_mesh, git, human_commit, local_forge_remote, roster_yaml
from tests.support.gitcount import counting_git

MEMORY = "agentmesh/memory"  # where earlier versions wrote every agent's journal


def own(agent: str) -> str:
    """The agent's own journal branch."""
    return f"agentmesh/journals/{agent}"


def line(ident: str, agent: str, cost: float, event: str = "executed") -> str:
    return json.dumps({"id": ident, "ts": utc_ts(time.time()), "agent": agent, "host": "h", "event": event,
                       "issue": 1, "pr": None, "outcome": "", "duration_s": 0, "cost_usd": cost, "summary": ""})


def month() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


def file_on(remote, branch: str, path: str) -> str:
    return git("cat-file", "blob", f"{branch}:{path}", cwd=remote) + "\n"


def append(remote, branch: str, agent: str, text: str, *, sign_with=None, message="journal") -> str:
    """Someone with push access appends `text` to `agent`'s journal file on `branch` (signed by
    `sign_with`'s key, or unsigned)."""
    path = journal_file(agent, month())
    exists = bool(git("branch", "--list", branch, cwd=remote))
    names = git("ls-tree", "-r", "--name-only", branch, cwd=remote).split() if exists else []
    before = file_on(remote, branch, path) if path in names else ""
    return human_commit(remote, {path: before + text + "\n"}, branch=branch, sign_with=sign_with, message=message,
                        base=None if exists else "main")


def mesh_with_roster(tmp_path, *agents: str):
    remote = local_forge_remote(tmp_path / "remote.git")
    meshes = {a: agent_mesh(remote, tmp_path / "hosts", a) for a in agents}
    human_commit(remote, {ROSTER_PATH: roster_yaml(list(meshes.values()))}, message="roster")
    return remote, meshes


def spend(tmp_path, remote, agent="reader"):
    read = agent_mesh(remote, tmp_path / "readers", agent).journal().read(datetime.now(UTC).date())
    return {e.id: (e.agent, e.cost_usd) for e in read.entries}, read.ignored


def flush(mesh, cost: float) -> None:
    journal = mesh.journal()
    journal.record("executed", issue=1, cost_usd=cost)
    assert journal.flush() == 1


def test_a_line_an_outsider_pushed_into_an_agents_file_is_ignored_and_her_own_lines_count(tmp_path):
    remote, meshes = mesh_with_roster(tmp_path, "ada", "bob")
    flush(meshes["ada"], 1.5)
    outsider = tmp_path / "outsider" / "id_ed25519"
    ensure_key(outsider, "mallory")
    append(remote, own("ada"), "ada", line("forged-1", "ada", 1e6), sign_with=outsider)
    path = journal_file("ada", month())
    assert "forged-1" in file_on(remote, own("ada"), path)  # on the remote, in ada's file
    found, ignored = spend(tmp_path, remote)
    assert sorted(found.values()) == [("ada", 1.5)] and ignored == 1
    # ada writes again: her commit carries the forged line along, which still does not count
    flush(meshes["ada"], 2.0)
    assert file_on(remote, own("ada"), path).count("forged-1") == 1
    found, ignored = spend(tmp_path, remote)
    assert sorted(found.values()) == [("ada", 1.5), ("ada", 2.0)] and ignored == 1


def test_a_line_naming_another_agent_counts_for_no_one_even_signed_by_its_directorys_agent(tmp_path):
    remote, meshes = mesh_with_roster(tmp_path, "ada", "bob")
    flush(meshes["bob"], 0.5)
    append(remote, own("bob"), "bob", line("as-ada", "ada", 1e6), sign_with=meshes["bob"].signing_key)
    # and bob's key writing into ada's directory does not make it ada's either, on her branch
    flush(meshes["ada"], 0.25)
    append(remote, own("ada"), "ada", line("into-ada", "ada", 1e6), sign_with=meshes["bob"].signing_key)
    # nor on his own: a writer's branch is read for its own directory only
    append(remote, own("bob"), "ada", line("ada-on-bob", "ada", 1e6), sign_with=meshes["bob"].signing_key)
    # nor on the shared branch of earlier versions
    append(remote, MEMORY, "ada", line("shared-ada", "ada", 1e6), sign_with=meshes["bob"].signing_key)
    found, ignored = spend(tmp_path, remote)
    assert sorted(found.values()) == [("ada", 0.25), ("bob", 0.5)] and ignored == 3


def test_an_unsigned_line_and_a_merge_that_adds_one_are_ignored(tmp_path):
    remote, meshes = mesh_with_roster(tmp_path, "ada")
    flush(meshes["ada"], 1.0)
    append(remote, own("ada"), "ada", line("unsigned", "ada", 1e6))
    found, ignored = spend(tmp_path, remote)
    assert sorted(found.values()) == [("ada", 1.0)] and ignored == 1

    # an "evil merge": two of ada's own signed commits joined by a merge whose tree adds a line
    remote2, meshes2 = mesh_with_roster(tmp_path / "two", "ada")
    flush(meshes2["ada"], 1.0)
    first = git("rev-parse", own("ada"), cwd=remote2)
    flush(meshes2["ada"], 2.0)
    second = git("rev-parse", own("ada"), cwd=remote2)
    path = journal_file("ada", month())
    work = tmp_path / "merger"
    git("clone", "--quiet", "--branch", own("ada"), str(remote2), str(work))
    git("checkout", "--quiet", "-b", "side", first, cwd=work)
    git("commit", "--quiet", "--allow-empty", "-m", "side", cwd=work)
    git("checkout", "--quiet", own("ada"), cwd=work)
    git("merge", "--quiet", "--no-ff", "--no-commit", "side", cwd=work)
    (work / path).write_text((work / path).read_text() + line("merged-in", "ada", 1e6) + "\n")
    git("add", path, cwd=work)
    git("commit", "--quiet", "-m", "merge", cwd=work)
    git("push", "--quiet", "origin", f"HEAD:refs/heads/{own('ada')}", cwd=work)
    assert len(git("log", "-1", "--format=%P", own("ada"), cwd=remote2).split()) == 2
    assert git("merge-base", "--is-ancestor", second, own("ada"), cwd=remote2) == ""
    found, ignored = spend(tmp_path / "two", remote2)
    assert sorted(found.values()) == [("ada", 1.0), ("ada", 2.0)] and ignored == 1


def test_old_journals_on_the_default_branch_count_only_if_signed_by_their_agent(tmp_path):
    """Journals that earlier versions committed to main unsigned stop counting once a roster exists."""
    remote = local_forge_remote(tmp_path / "remote.git")
    ada = agent_mesh(remote, tmp_path / "hosts", "ada")
    append(remote, "main", "ada", line("old-unsigned", "ada", 3.0))
    append(remote, "main", "ada", line("old-signed", "ada", 4.0), sign_with=ada.signing_key)
    found, ignored = spend(tmp_path, remote)  # no roster yet: as before, every line counts
    assert sorted(found) == ["old-signed", "old-unsigned"] and ignored == 0
    human_commit(remote, {ROSTER_PATH: roster_yaml([ada])}, message="roster")
    found, ignored = spend(tmp_path, remote)
    assert sorted(found) == ["old-signed"] and ignored == 1


def test_without_a_roster_every_line_counts_as_before(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    flush(agent_mesh(remote, tmp_path / "hosts", "ada"), 1.0)
    append(remote, own("ada"), "ada", line("anyone", "ada", 5.0))
    append(remote, MEMORY, "bob", line("as-ada", "ada", 6.0), message="an earlier version's shared branch")
    found, ignored = spend(tmp_path, remote)
    assert sorted(found.values()) == [("ada", 1.0), ("ada", 5.0), ("ada", 6.0)] and ignored == 0


def test_journal_signatures_are_remembered_per_roster_across_runs(tmp_path):
    remote, meshes = mesh_with_roster(tmp_path, "ada", "bob")
    flush(meshes["ada"], 1.0)
    outsider = tmp_path / "outsider" / "id_ed25519"
    ensure_key(outsider, "mallory")
    append(remote, own("ada"), "ada", line("forged", "ada", 1e6), sign_with=outsider)
    assert spend(tmp_path, remote)[1] == 1
    identity = tmp_path / "readers" / "reader" / "identity"
    [kept] = identity.glob("journals-verified-*")  # apart from the churn of presence and claims
    lines = kept.read_text().splitlines()
    assert [v.split(" ", 1)[1] for v in lines] == ["ada"]  # ada's flush; the outsider's commit is not good
    assert spend(tmp_path, remote)[1] == 1 and kept.read_text().splitlines() == lines  # answered from the file
    # a new roster (bob leaves) is judged afresh, in a file of its own
    human_commit(remote, {ROSTER_PATH: roster_yaml([meshes["ada"]])}, message="roster: ada only")
    assert spend(tmp_path, remote)[1] == 1
    assert len(list(identity.glob("journals-verified-*"))) == 2


def test_a_maintainers_entries_go_to_a_journal_of_their_own_and_count_as_theirs(tmp_path):
    """A maintainer's host (its key is a maintainer's in the roster) writes `maintainer.<login>`: entries
    queued under the host's agent name before the roster knew them are published there too."""
    remote = local_forge_remote(tmp_path / "remote.git")
    ada = agent_mesh(remote, tmp_path / "hosts", "ada")
    ops = agent_mesh(remote, tmp_path / "hosts", "ops")
    queued = ops.journal()
    assert queued.agent == "ops"
    queued.record("cancelled", issue=4, key="cancelled-4")  # before the roster: queued as `ops`
    human_commit(remote, {ROSTER_PATH: roster_yaml([ada], maintainers=[
        {"login": "Grace", "key": ops.public_key.line}])}, message="roster")
    journal = agent_mesh(remote, tmp_path / "hosts", "ops").journal()
    assert journal.agent == "maintainer.grace"
    journal.record("merged", issue=5, outcome="shipped", key="shipped-5")
    assert journal.flush() == 2
    branch = own("maintainer.grace")
    names = git("ls-tree", "-r", "--name-only", branch, cwd=remote).split()
    assert names == [journal_file("maintainer.grace", month())]
    found, ignored = spend(tmp_path, remote)
    assert sorted((agent, e) for agent, e in found.values()) == [("maintainer.grace", None)] * 2 and ignored == 0
    # ada's key may not write it: her line in the maintainer's journal does not count
    append(remote, branch, "maintainer.grace", line("as-grace", "maintainer.grace", 1e6),
           sign_with=ada.signing_key)
    assert spend(tmp_path, remote)[1] == 1


def test_a_read_checks_every_writers_branch_in_one_log(tmp_path):
    remote, meshes = mesh_with_roster(tmp_path, "ada", "bob", "cy")
    for mesh in meshes.values():
        flush(mesh, 1.0)
    assert spend(tmp_path, remote)[1] == 0  # signatures verified once, and remembered
    with counting_git(tmp_path / "count") as count:
        found, ignored = spend(tmp_path, remote)
    assert len(found) == 3 and ignored == 0
    assert count.commands()["log"] == 1 and count.commands()["blame"] == 0
