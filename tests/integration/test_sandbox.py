"""The sandbox has nothing to leak: executors and gates as real processes, in bwrap and without it.

A fake HOME under tmp_path stands for the agent user's: its `~/.ssh`, `~/.config/agentmesh/env`
(the token, as docs/operations.md suggests), the state dir under `~/.local/state` and a program
installed with `pip --user` next to them. The test never touches the real HOME; it only checks that
the sandbox does not show it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agentmesh.agent.executor import ExecutorSpec, Private, bwrap_available, run
from tests.support import git, make_remote

HAVE_BWRAP = bwrap_available() is None
needs_bwrap = pytest.mark.skipif(not HAVE_BWRAP, reason=f"bubblewrap unavailable: {bwrap_available()}")
TOKEN = "ghp" + "_" + "K4v" * 12
PSEUDO_FS = {"tmpfs", "proc", "devpts", "devtmpfs", "mqueue"}  # the sandbox's own, not the host's files


class Host:
    """An agent user's files under tmp_path, laid out as on a real host."""

    def __init__(self, tmp_path: Path):
        self.home = tmp_path / "home" / "agent"
        self.ssh_key = self.home / ".ssh" / "id_ed25519"
        self.env_file = self.home / ".config" / "agentmesh" / "env"
        self.state = self.home / ".local" / "state" / "agentmesh" / "alice"
        self.etc = tmp_path / "etc" / "agentmesh"
        self.config = self.etc / "agentmesh.yaml"
        self.config_env = self.etc / "env"
        for path, text in [(self.ssh_key, "-----BEGIN OPENSSH PRIVATE KEY-----\n"),
                           (self.env_file, f"AGENTMESH_TOKEN={TOKEN}\n"),
                           (self.state / "logs" / "old.log", "another task's log\n"),
                           (self.state / "bin" / "askpass.sh", "#!/bin/sh\n"), (self.config, "agent: alice\n"),
                           (self.config_env, f"AGENTMESH_TOKEN={TOKEN}\n"), (self.home / "notes.txt", "private\n")]:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        repo = make_remote(tmp_path / "remote.git")
        self.cache = self.state / "cache.git"
        git("clone", "--quiet", "--bare", str(repo), str(self.cache))
        self.worktree = self.state / "worktrees" / "alice--1-task"
        git("--git-dir", str(self.cache), "worktree", "add", "--quiet", str(self.worktree), "main")
        self.task = self.state / "tasks" / "issue-1.md"
        self.task.parent.mkdir(parents=True)
        self.task.write_text("# the task\n")
        # a program installed with `pip install --user`: in ~/.local/bin, next to the state dir
        self.tool = self.home / ".local" / "bin" / "probe"
        self.tool.parent.mkdir(parents=True)
        self.private = Private(home=self.home, paths=(self.state, self.config, self.config_env))

    def secrets(self) -> list[Path]:
        return [self.ssh_key, self.env_file, self.state / "logs" / "old.log", self.state / "bin" / "askpass.sh",
                self.config, self.config_env, self.home / "notes.txt"]

    def probe(self, sandbox: str, paths: list[Path], tmp_path: Path, extra: str = "") -> str:
        """Run ~/.local/bin/probe as an executor: it reports for each path whether it can read it."""
        lines = "".join(f"if cat '{p}' >/dev/null 2>&1; then echo 'SEEN {p}'; else echo 'HIDDEN {p}'; fi\n"
                        for p in paths)
        self.tool.write_text(f"#!/bin/sh\n{lines}{extra}")
        self.tool.chmod(0o755)
        env = {"PATH": f"{self.tool.parent}:{os.environ['PATH']}", "HOME": str(self.home)}
        log = tmp_path / f"{sandbox}.log"
        result = run(ExecutorSpec("probe", ("probe",), 60, sandbox), worktree=self.worktree, task_file=self.task,
                     issue=1, log_path=log, base_env=env, private=self.private)
        assert result.ok and result.sandboxed is (sandbox != "off"), log.read_text()
        return log.read_text()


@needs_bwrap
def test_the_sandbox_shows_no_secret_of_the_host(tmp_path):
    host = Host(tmp_path)
    shown = [host.task, host.worktree / "README.md", host.cache / "HEAD"]
    out = host.probe("required", [*host.secrets(), *shown], tmp_path,
                     extra=f"ls -A '{host.home}' '{host.home}/.local' '{host.state}'; echo; echo HOME=$HOME; "
                           f"ls -A $HOME | wc -l\necho changed > README.md && echo WROTE\ncat /proc/self/mountinfo\n")
    for path in host.secrets():
        assert f"HIDDEN {path}" in out, out
    # not only hidden (the sandbox's own /tmp hides tmp_path anyway): nothing bound holds them
    binds = [Path(fields[4]) for line in out.splitlines() if " - " in line
             for fields in [line.split(" - ")[0].split()] if line.split(" - ")[1].split()[0] not in PSEUDO_FS]
    assert Path("/usr") in binds and host.worktree in binds
    for path in [*host.secrets(), host.home]:
        assert not [b for b in binds if path.is_relative_to(b)], (path, binds)
    for path in shown:  # the worktree and its repository, the task file: what the executor needs
        assert f"SEEN {path}" in out, out
    assert "WROTE" in out and (host.worktree / "README.md").read_text() == "changed\n"
    # HOME, ~/.local and the state dir show only the ways to the program and to what the executor needs
    listed = {path: sorted(entries.split()) for path, entries in re.findall(r"^(/\S+):\n((?:.+\n)*)", out, re.M)}
    assert listed[str(host.home)] == [".local"] and listed[f"{host.home}/.local"] == ["bin", "state"]
    assert listed[str(host.state)] == ["cache.git", "tasks", "worktrees"]
    assert "HOME=/tmp/home\n0\n" in out  # an empty private HOME


@needs_bwrap
def test_the_real_home_shows_nothing_but_the_way_to_a_bound_program(tmp_path):
    """Whatever HOME the user running the tests has: of its entries, the sandbox shows at most those
    that lead to this Python and this checkout (bound for the demo executor)."""
    host = Host(tmp_path)
    real_home = Path.home()
    out = host.probe("required", [], tmp_path, extra=f"ls -A '{real_home}' 2>/dev/null; echo END\n")
    listed = set(out.split("\n", 1)[1].split("END", 1)[0].split())
    leading = {bound.relative_to(real_home).parts[0] for bound in (Path(sys.prefix).resolve(),
               Path(sys.base_prefix).resolve(), Path(__file__).resolve().parents[2]) if bound.is_relative_to(real_home)}
    assert not listed & (set(os.listdir(real_home)) - leading), listed


def test_without_the_sandbox_home_is_still_empty_and_private(tmp_path):
    host = Host(tmp_path)
    out = host.probe("off", [], tmp_path, extra="echo HOME=$HOME; echo XDG=$XDG_CONFIG_HOME; ls -A $HOME | wc -l; "
                                                "touch $HOME/left-behind\n")
    home = out.split("HOME=", 1)[1].split("\n", 1)[0]
    assert home != str(host.home) and f"XDG={home}/.config" in out and "\n0\n" in out
    assert not Path(home).exists()  # removed after the run, with what the executor left in it


@needs_bwrap
def test_a_program_installed_in_home_still_runs_with_its_interpreter(tmp_path):
    """A venv under HOME (its python a link into a Python elsewhere) runs in the sandbox."""
    host = Host(tmp_path)
    venv = host.home / "venvs" / "tool"
    subprocess.run(["python3", "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    script = venv / "bin" / "probe-py"
    script.write_text(f"#!{venv}/bin/python\nimport sys, pathlib\nprint('PY', sys.prefix)\n"
                      f"print('KEY', pathlib.Path({str(host.ssh_key)!r}).exists())\n")
    script.chmod(0o755)
    log = tmp_path / "py.log"
    result = run(ExecutorSpec("py", (str(script),), 60, "required"), worktree=host.worktree, task_file=host.task,
                 issue=1, log_path=log, base_env={"PATH": os.environ["PATH"]}, private=host.private)
    assert result.ok, log.read_text()
    assert f"PY {venv}" in log.read_text() and "KEY False" in log.read_text()
