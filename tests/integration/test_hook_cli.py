"""`agentmesh hook install|check|uninstall` on real bare repositories, and the installed hook judging
pushes over file:// and git daemon (tests/e2e/test_pre_receive_hook.py has the attacks)."""

from __future__ import annotations

import json
import subprocess
import sys

from agentmesh.agent.pause import PauseReport, pause, pause_reason
from agentmesh.host.roster import ROSTER_PATH
from tests.support import agent_mesh, git, git_daemon, human_commit, local_forge_remote, remote_refs, roster_yaml
from tests.support.cli import run_cli


def hook(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return run_cli("hook", *args, cwd=tmp_path)


def push(work, url: str, refspec: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "push", url, refspec], cwd=work, capture_output=True, text=True, timeout=60)


def test_install_writes_an_executable_hook_running_this_python_once(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    first = hook(tmp_path, "install", str(remote), "--json")
    assert first.returncode == 0, first.stderr
    installed = json.loads(first.stdout)
    assert installed["state"] == "installed" and installed["written"] is True
    script = remote / "hooks" / "pre-receive"
    text = script.read_text()
    assert script.stat().st_mode & 0o111 == 0o111
    assert f"exec {sys.executable} -I -m agentmesh hook pre-receive --ssh-keygen /" in text
    assert "no .agentmesh/roster.yaml on main: every push is accepted" in installed["trust"]
    again = hook(tmp_path, "install", str(remote))
    assert again.returncode == 0 and again.stdout.startswith("already installed: ") and script.read_text() == text
    checked = hook(tmp_path, "check", str(remote), "--json")
    assert checked.returncode == 0 and json.loads(checked.stdout)["ok"] is True


def test_install_refuses_what_is_not_a_bare_repository_and_a_foreign_hook_without_force(tmp_path):
    work = tmp_path / "work"
    git("init", "--quiet", str(work))
    for path, why in ((work, "is a working tree, not a bare repository"), (work / ".git", "is not a bare repository"),
                      (tmp_path, "is not a git repository")):
        done = hook(tmp_path, "install", str(path))
        assert done.returncode == 1 and why in done.stderr, done.stderr
    remote = local_forge_remote(tmp_path / "remote.git")
    theirs = remote / "hooks" / "pre-receive"
    theirs.write_text("#!/bin/sh\nexit 0\n")
    theirs.chmod(0o755)
    assert json.loads(hook(tmp_path, "check", str(remote), "--json").stdout)["state"] == "foreign"
    refused = hook(tmp_path, "install", str(remote))
    assert refused.returncode == 1 and "is another pre-receive hook" in refused.stderr
    assert theirs.read_text() == "#!/bin/sh\nexit 0\n"
    assert hook(tmp_path, "uninstall", str(remote)).returncode == 1 and theirs.exists()  # not ours to remove
    forced = hook(tmp_path, "install", str(remote), "--force")
    assert forced.returncode == 0, forced.stderr
    assert (remote / "hooks" / "pre-receive.before-agentmesh").read_text() == "#!/bin/sh\nexit 0\n"
    assert hook(tmp_path, "check", str(remote)).stdout.startswith("installed: ")


def test_check_and_uninstall(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    missing = hook(tmp_path, "check", str(remote))
    assert missing.returncode == 1 and missing.stdout.startswith("missing: ")
    hook(tmp_path, "install", str(remote))
    script = remote / "hooks" / "pre-receive"
    script.write_text(script.read_text().replace(sys.executable, str(tmp_path / "gone" / "python")))
    outdated = hook(tmp_path, "check", str(remote), "--json")
    assert outdated.returncode == 1 and json.loads(outdated.stdout)["state"] == "outdated"
    assert hook(tmp_path, "install", str(remote)).stdout.startswith("installed: ")  # refreshed
    removed = hook(tmp_path, "uninstall", str(remote), "--json")
    assert json.loads(removed.stdout)["removed"] is True and not script.exists()
    assert json.loads(hook(tmp_path, "uninstall", str(remote), "--json").stdout)["removed"] is False


def test_a_repository_that_moved_its_hooks_is_refused(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    git("config", "core.hooksPath", "/srv/hooks", cwd=remote)
    done = hook(tmp_path, "install", str(remote))
    assert done.returncode == 1 and "sets core.hooksPath=/srv/hooks" in done.stderr


def test_the_hook_judges_pushes_over_git_daemon_and_file_urls(tmp_path):
    """A roster on main, the hook installed: an unsigned commit to main and an unsigned claim are refused
    over git:// and file://, a work branch is taken; without a roster (bootstrap) everything is taken
    with one warning."""
    remote = local_forge_remote(tmp_path / "srv" / "remote.git")
    work = tmp_path / "work"
    git("clone", "--quiet", str(remote), str(work))
    hook(tmp_path, "install", str(remote))
    git("commit", "--quiet", "--allow-empty", "-m", "bootstrap", cwd=work)
    bootstrap = push(work, remote.as_uri(), "HEAD:refs/heads/main")
    assert bootstrap.returncode == 0, bootstrap.stderr
    assert "agentmesh hook: warning: no .agentmesh/roster.yaml on main: every push is accepted" in bootstrap.stderr

    ada = agent_mesh(remote, tmp_path / "hosts", "ada")
    human_commit(remote, {ROSTER_PATH: roster_yaml([ada])})
    git("pull", "--quiet", "--rebase", "origin", "main", cwd=work)
    git("commit", "--quiet", "--allow-empty", "-m", "claim: #1 by ada\n\nAgentmesh-Issue: 1\nAgentmesh-Agent: ada\n",
        cwd=work)
    main = git("rev-parse", "main", cwd=remote)
    with git_daemon(tmp_path / "srv") as base:
        for url in (f"{base}/remote.git", remote.as_uri()):
            to_main = push(work, url, "HEAD:refs/heads/main")
            assert to_main.returncode != 0 and "agentmesh hook: refused refs/heads/main: commit" in to_main.stderr
            claim = push(work, url, "HEAD:refs/heads/claim/1")
            assert "agentmesh hook: refused refs/heads/claim/1: commit" in claim.stderr
            branch = push(work, url, "HEAD:refs/heads/someone/1-idea")
            assert branch.returncode == 0, branch.stderr
    assert git("rev-parse", "main", cwd=remote) == main
    assert "refs/heads/claim/1" not in remote_refs(remote) and "refs/heads/someone/1-idea" in remote_refs(remote)
    rewound = push(work, remote.as_uri(), f"+{main}~1:refs/heads/main")
    assert "agentmesh hook: refused refs/heads/main: not a fast-forward" in rewound.stderr
    blob = git("hash-object", "-w", "--stdin", cwd=work, input="not a commit\n")
    odd = push(work, remote.as_uri(), f"{blob}:refs/agentmesh/labels2")
    assert f"agentmesh hook: refused refs/agentmesh/labels2: {blob[:12]} is not a commit" in odd.stderr, odd.stderr
    # the budget pause takes roster keys only, like the kill switch
    forged = push(work, remote.as_uri(), "HEAD:refs/heads/agentmesh/pause")
    assert "agentmesh hook: refused refs/heads/agentmesh/pause: commit" in forged.stderr, forged.stderr
    pause(ada, PauseReport("ada"), "freeze")  # the control: ada's own pause lands
    assert pause_reason(agent_mesh(remote, tmp_path / "hosts", "ada")) == \
        "spending paused (branch agentmesh/pause): freeze"
