"""Signed identity: every commit an agent writes is SSH-signed, and verification names its signer only
through the roster on the base branch. Read back from the remote with git plumbing."""

from __future__ import annotations

import shutil
import stat
import subprocess

import pytest

from agentmesh.core.errors import ConfigError
from agentmesh.core.identity import PublicKey
from agentmesh.git.signing import ensure_key
from agentmesh.host.roster import ROSTER_PATH, parse_roster, roster_entry
from tests.support import (
    agent_forge,
    agent_mesh,
    git,
    human_commit,
    local_forge_remote,
    remote_refs,
    roster_yaml,
)


def test_the_signing_key_is_private_stable_and_fingerprinted_as_ssh_keygen_does(tmp_path):
    private = tmp_path / "state" / "identity" / "id_ed25519"
    key = ensure_key(private, "ada")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(private.parent.stat().st_mode) == 0o700
    assert ensure_key(private, "ada") == key
    listed = subprocess.run(["ssh-keygen", "-l", "-f", str(private) + ".pub"], capture_output=True, text=True,
                            check=True).stdout.split()
    assert listed[1] == key.fingerprint
    assert roster_entry("ada", key).startswith(f"- name: ada\n  key: {key.line}\n")


@pytest.mark.parametrize("text, problem", [
    ("agents: [{name: ada, key: 'ssh-rsa AAAAB3NzaC1yc2E'}]", "agents.0.key"),
    ("agents: [{name: ada, key: 'ssh-ed25519 AAAA'}]", "agents.0.key"),
    ("agents: [{name: 'a b', key: 'ssh-ed25519 AAAA'}]", "agents.0.name"),
    ("agents: []\nowners: []", "owners"),
    ("maintainers: [{login: 'x y'}]", "maintainers.0.login"),
    ("agents: [", "not valid YAML"),
])
def test_a_malformed_roster_is_one_config_error_naming_the_field(text, problem):
    with pytest.raises(ConfigError) as raised:
        parse_roster(text)
    assert problem in str(raised.value) and "\n" not in str(raised.value)


def test_a_roster_naming_an_agent_or_a_key_twice_is_refused(tmp_path):
    key = ensure_key(tmp_path / "k", "ada").line
    with pytest.raises(ConfigError, match="agent name listed twice: ada"):
        parse_roster(f"agents: [{{name: ada, key: '{key}'}}, {{name: ada, key: '{key}'}}]")
    with pytest.raises(ConfigError, match="key listed twice"):
        parse_roster(f"agents: [{{name: ada, key: '{key}'}}, {{name: bob, key: '{key}'}}]")


def test_every_commit_an_agent_writes_is_signed_and_verifies_only_through_the_base_roster(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    ada = agent_mesh(remote, tmp_path / "hosts", "ada")
    bob = agent_mesh(remote, tmp_path / "hosts", "bob")
    stranger_key = tmp_path / "stranger"
    ensure_key(stranger_key, "mallory")
    assert not ada.identity.enforced  # no roster yet: nothing verifies
    human_commit(remote, {ROSTER_PATH: roster_yaml([ada])})
    claim = ada.claims().acquire(1, work_branch="ada/1-x").sha
    ada.presence().refresh()
    forge = agent_forge(ada)
    issue = forge.create_issue("Item", "body", [])
    forge.comment(issue.number, "hello")
    presence = remote_refs(remote, "refs/heads/agentmesh/agents/")["refs/heads/agentmesh/agents/ada"]
    item = remote_refs(remote, f"refs/agentmesh/items/{issue.number}")
    for sha in (claim, presence, *item.values()):
        assert git("cat-file", "commit", sha, cwd=remote).count("-----BEGIN SSH SIGNATURE-----") == 1

    unsigned = human_commit(remote, {"x.txt": "x"}, branch="main")
    foreign = human_commit(remote, {"y.txt": "y"}, branch="main", sign_with=stranger_key)
    bobs = bob.claims().acquire(2, work_branch="bob/2-x").sha
    observer = agent_mesh(remote, tmp_path / "hosts", "cy")
    observer.cache.fetch(["refs/heads/*"])
    assert observer.identity.enforced
    signed = observer.identity.signers([claim, presence, unsigned, foreign, bobs])
    assert signed == {claim: "ada", presence: "ada", unsigned: None, foreign: None, bobs: None}
    assert observer.identity.all_signed_by([claim, presence], "ada")
    assert not observer.identity.all_signed_by([claim, unsigned], "ada")
    assert not observer.identity.all_signed_by([], "ada")


def test_a_roster_changed_on_a_pr_head_grants_nothing(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    ada = agent_mesh(remote, tmp_path / "hosts", "ada")
    mallory_key = tmp_path / "mallory"
    mallory = ensure_key(mallory_key, "mallory")
    human_commit(remote, {ROSTER_PATH: roster_yaml([ada])})
    git("branch", "evil", "main", cwd=remote)
    forged = f"agents:\n- name: ada\n  key: {ada.public_key.line}\n- name: mallory\n  key: {mallory.line}\n"
    evil = human_commit(remote, {ROSTER_PATH: forged}, branch="evil", sign_with=mallory_key)
    observer = agent_mesh(remote, tmp_path / "hosts", "cy")
    observer.cache.fetch(["refs/heads/*"])
    assert [a.name for a in observer.roster.agents] == ["ada"]
    assert observer.identity.signer(evil) is None
    assert PublicKey.parse(mallory.line + " comment") == mallory


def test_good_signatures_are_remembered_for_later_runs_per_roster_and_bad_ones_never(tmp_path, monkeypatch):
    remote = local_forge_remote(tmp_path / "remote.git")
    ada = agent_mesh(remote, tmp_path / "hosts", "ada")
    human_commit(remote, {ROSTER_PATH: roster_yaml([ada])})
    claim = ada.claims().acquire(1, work_branch="ada/1-x").sha
    unsigned = human_commit(remote, {"x.txt": "x"})
    observer = agent_mesh(remote, tmp_path / "hosts", "cy")
    observer.cache.fetch(["refs/heads/*"])
    assert observer.identity.signers([claim, unsigned]) == {claim: "ada", unsigned: None}
    [remembered] = (tmp_path / "hosts" / "cy" / "identity").glob("verified-*")
    assert remembered.read_text() == f"{claim} ada\n" and stat.S_IMODE(remembered.stat().st_mode) == 0o600

    # later runs on a host where ssh-keygen cannot run: only a remembered signature still verifies
    tools = tmp_path / "git-only"
    tools.mkdir()
    (tools / "git").symlink_to(shutil.which("git"))
    monkeypatch.setenv("PATH", str(tools))
    later = agent_mesh(remote, tmp_path / "hosts", "cy")
    later.cache.fetch(["refs/heads/*"])
    assert later.identity.signers([claim, unsigned]) == {claim: "ada", unsigned: None}
    monkeypatch.undo()
    rotated = ensure_key(tmp_path / "ada-new", "ada")
    human_commit(remote, {ROSTER_PATH: f"agents:\n- name: ada\n  key: {rotated.line}\n"})
    after_rotation = agent_mesh(remote, tmp_path / "hosts", "cy")
    after_rotation.cache.fetch(["refs/heads/*"])
    assert after_rotation.identity.signer(claim) is None  # signed with ada's old key: nothing carried over


def _without_ssh_keygen(tmp_path, monkeypatch) -> None:
    tools = tmp_path / "git-only"
    tools.mkdir(exist_ok=True)
    if not (tools / "git").exists():
        (tools / "git").symlink_to(shutil.which("git"))
    monkeypatch.setenv("PATH", str(tools))


def test_a_hosts_own_commits_verify_without_ssh_keygen_and_forgeries_still_go_to_git(tmp_path, monkeypatch):
    """A commit this host signed is judged from its own record of the signature's key (git/signing.note_signed):
    no ssh-keygen. A commit claiming to be ours that we did not sign is checked by git, and refused."""
    remote = local_forge_remote(tmp_path / "remote.git")
    ada = agent_mesh(remote, tmp_path / "hosts", "ada")
    bob = agent_mesh(remote, tmp_path / "hosts", "bob")
    human_commit(remote, {ROSTER_PATH: roster_yaml([ada, bob])})
    claim = ada.claims().acquire(1, work_branch="ada/1-x").sha
    ada.presence().refresh()
    presence = remote_refs(remote, "refs/heads/agentmesh/agents/")["refs/heads/agentmesh/agents/ada"]
    # our claim's signature over other content; a commit signed by another roster key saying it is ada's
    text = git("cat-file", "commit", claim, cwd=remote) + "\n"
    copied = git("hash-object", "-t", "commit", "-w", "--stdin", cwd=remote,
                 input=text.replace("claim: #1 by ada", "claim: #2 by ada"))
    by_bob = human_commit(remote, {"x.txt": "x"}, message="claim: #3 by ada", sign_with=bob.signing_key)
    git("update-ref", "refs/heads/forged", copied, cwd=remote)

    later = agent_mesh(remote, tmp_path / "hosts", "ada")  # a later run on ada's host
    later.cache.fetch(["refs/heads/*"])
    observer = agent_mesh(remote, tmp_path / "hosts", "cy")
    observer.cache.fetch(["refs/heads/*"])
    assert later.identity.signers([copied, by_bob]) == {copied: None, by_bob: "bob"}  # git's check ran
    _without_ssh_keygen(tmp_path, monkeypatch)
    assert later.identity.signers([claim, presence]) == {claim: "ada", presence: "ada"}
    # remembered as a verification would have been, for the runs after
    [remembered] = (tmp_path / "hosts" / "ada" / "identity").glob("verified-*")
    assert set(remembered.read_text().splitlines()) == {f"{by_bob} bob", f"{claim} ada", f"{presence} ada"}
    # another host never has ada's record: there, only git's check (which cannot run here) would say
    assert observer.identity.signers([claim]) == {claim: None}


def test_a_hosts_own_record_follows_the_roster_of_the_check(tmp_path, monkeypatch):
    """The record says which key signed, not who: a key removed from the roster, or rotated out, makes the
    host's own commits count for no one, as git's check would."""
    remote = local_forge_remote(tmp_path / "remote.git")
    ada = agent_mesh(remote, tmp_path / "hosts", "ada")
    bob = agent_mesh(remote, tmp_path / "hosts", "bob")
    human_commit(remote, {ROSTER_PATH: roster_yaml([ada, bob])})
    claim = ada.claims().acquire(1, work_branch="ada/1-x").sha
    _without_ssh_keygen(tmp_path, monkeypatch)
    assert agent_mesh(remote, tmp_path / "hosts", "ada").identity.signer(claim) == "ada"
    monkeypatch.undo()

    human_commit(remote, {ROSTER_PATH: roster_yaml([bob])})  # ada removed
    removed = agent_mesh(remote, tmp_path / "hosts", "ada")
    assert removed.identity.enforced and removed.identity.signer(claim) is None
    rotated = ensure_key(tmp_path / "ada-new", "ada")
    human_commit(remote, {ROSTER_PATH: f"agents:\n- name: ada\n  key: {rotated.line}\n"})
    assert agent_mesh(remote, tmp_path / "hosts", "ada").identity.signer(claim) is None
    # the same key under another name: the roster of the check names it
    human_commit(remote, {ROSTER_PATH: f"agents:\n- name: ann\n  key: {ada.public_key.line}\n"})
    _without_ssh_keygen(tmp_path, monkeypatch)
    assert agent_mesh(remote, tmp_path / "hosts", "ada").identity.signer(claim) == "ann"


def test_the_record_of_own_signatures_names_the_signatures_key_and_stays_small(tmp_path):
    from agentmesh.git.signing import OWN_SIGNED, OWN_SIGNED_KEPT, note_signed, own_signed, signature_key

    key = ensure_key(tmp_path / "k", "ada")
    signature = subprocess.run(["ssh-keygen", "-Y", "sign", "-n", "git", "-f", str(tmp_path / "k")], input=b"data",
                               capture_output=True, check=True).stdout
    assert signature_key(signature) == key
    cut = signature.splitlines()
    for bad in (b"", b"garbage", b"\n".join(cut[:2] + cut[-1:]), signature.replace(b"SSH SIGNATURE", b"PGP SIGNATURE")):
        assert signature_key(bad) is None
    repo = tmp_path / "repo.git"
    repo.mkdir()
    note_signed(repo, "1" * 40, b"garbage")  # no key: no line
    assert not (repo / OWN_SIGNED).exists()
    shas = [f"{n:040x}" for n in range(2 * OWN_SIGNED_KEPT)]
    for sha in shas:
        note_signed(repo, sha, signature)
    lines = (repo / OWN_SIGNED).read_text().splitlines()
    assert OWN_SIGNED_KEPT <= len(lines) < 2 * OWN_SIGNED_KEPT and lines[-1] == f"{shas[-1]} {key.fingerprint}"
    assert stat.S_IMODE((repo / OWN_SIGNED).stat().st_mode) == 0o600
    assert own_signed(repo, [shas[0], shas[-1]]) == {shas[-1]: key.fingerprint}
