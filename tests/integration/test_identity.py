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
