"""Installing agentmesh's pre-receive hook into a bare repository on a plain git server.

The hook is a two-line shell script that runs this very installation (`<python> -I -m agentmesh hook
pre-receive`, absolute paths) so it works whichever way git is reached: a path, file://, ssh, git
daemon or smart HTTP all run the server's `hooks/pre-receive`. `-I` keeps a pusher's PYTHON*
variables and the repository's directory off its import path. ops/receive.py is what it runs.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from agentmesh.core.errors import ConfigError, UserError
from agentmesh.git.receive import Receiving, bare_hooks_dir, receiving_git
from agentmesh.host.config import MESH_POLICY_PATH, parse_mesh_policy
from agentmesh.host.files import write_atomic
from agentmesh.host.roster import ROSTER_PATH, parse_roster

HOOK_NAME = "pre-receive"
MARKER = "# agentmesh pre-receive hook"
REPLACED_SUFFIX = ".before-agentmesh"  # where --force moves a foreign hook


class HookState(StrEnum):
    INSTALLED = "installed"  # ours, executable, and the interpreter it runs is there
    OUTDATED = "outdated"  # ours, but not executable or its interpreter is gone: install again
    FOREIGN = "foreign"  # someone else's pre-receive hook
    MISSING = "missing"


@dataclass(frozen=True)
class HookStatus:
    repo: Path
    path: Path
    state: HookState
    trust: str  # what the default branch's roster makes of the hook, in one line

    @property
    def ok(self) -> bool:
        return self.state is HookState.INSTALLED

    def to_json(self) -> dict:
        return {"repo": str(self.repo), "hook": str(self.path), "state": str(self.state), "ok": self.ok,
                "trust": self.trust}


def hook_script(python: str, ssh_keygen: str) -> str:
    return (f"#!/bin/sh\n{MARKER}: refuses what the mesh's roster does not vouch for (docs/security.md).\n"
            "# Written by `agentmesh hook install`: install again rather than edit it.\n"
            f"exec {shlex.quote(python)} -I -m agentmesh hook {HOOK_NAME} --ssh-keygen {shlex.quote(ssh_keygen)}\n")


def _ssh_keygen() -> str:
    found = shutil.which("ssh-keygen")
    if found is None:
        raise ConfigError("ssh-keygen is not installed (Debian: apt-get install openssh-client): "
                          "the hook verifies signatures with it")
    return str(Path(found).absolute())


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        return ""


def _state(path: Path, text: str | None) -> HookState:
    if text is None:
        return HookState.MISSING
    if MARKER not in text:
        return HookState.FOREIGN
    try:
        execs = [shlex.split(line) for line in text.splitlines() if line.startswith("exec ")]
    except ValueError:  # edited by hand into something that is no command line
        execs = []
    python = Path(execs[0][1]) if execs and len(execs[0]) > 1 else None
    usable = python is not None and python.is_file() and os.access(python, os.X_OK)
    return HookState.INSTALLED if usable and os.access(path, os.X_OK) else HookState.OUTDATED


def status(repo: Path) -> HookStatus:
    """Whether `repo` runs an agentmesh hook whose interpreter is still there, and what it enforces."""
    repo = repo.absolute()
    path = bare_hooks_dir(repo) / HOOK_NAME
    return HookStatus(repo, path, _state(path, _read(path)), trust(repo))


def trust(repo: Path) -> str:
    """What the hook enforces in `repo`, from the roster and policy on its default branch."""
    bare = Receiving(receiving_git(repo, {}), repo)
    try:
        return _trust(bare)
    finally:
        bare.close()


def _trust(bare: Receiving) -> str:
    head = bare.head_ref()
    sha = bare.resolve(head) if head else None
    if head is None or sha is None:
        return "no default branch yet: every push is accepted until it holds a roster"
    try:
        policy = parse_mesh_policy(bare.files([(sha, MESH_POLICY_PATH)])[(sha, MESH_POLICY_PATH)])
        branch = policy.default_branch or head.removeprefix("refs/heads/")
        base = bare.resolve(f"refs/heads/{branch}")
        text = bare.files([(base, ROSTER_PATH)])[(base, ROSTER_PATH)] if base else None
        if text is None:
            return f"no {ROSTER_PATH} on {branch}: every push is accepted"
        roster = parse_roster(text)
    except ConfigError as exc:
        return f"{exc}: every update of agentmesh's refs and the default branch is refused"
    keyed = len([m for m in roster.maintainers if m.key])
    who = f"{len(roster.agents)} agent(s) and {keyed} maintainer(s) with a key"
    return (f"{ROSTER_PATH} on {branch}: {who} may write agentmesh's refs; {branch} takes approved merges and "
            "maintainers' commits")


def install(repo: Path, *, force: bool, python: str | None = None) -> tuple[HookStatus, bool]:
    """Install (or refresh) the hook; (its status, whether anything was written). A foreign hook is
    refused unless `force`, which keeps it as `pre-receive.before-agentmesh`."""
    repo = repo.absolute()
    path = bare_hooks_dir(repo) / HOOK_NAME
    script = hook_script(python or sys.executable, _ssh_keygen())
    current = _read(path)
    if current == script and _state(path, current) is HookState.INSTALLED:
        return status(repo), False
    if _state(path, current) is HookState.FOREIGN:
        if not force:
            raise UserError(f"{path} is another pre-receive hook; --force keeps it as {path.name}{REPLACED_SUFFIX} "
                            "and installs agentmesh's (chain it by hand if both must run)")
        path.replace(path.with_name(path.name + REPLACED_SUFFIX))
    write_atomic(path, script, 0o755)
    return status(repo), True


def uninstall(repo: Path) -> bool:
    """Remove agentmesh's hook (and nothing else); whether there was one."""
    path = bare_hooks_dir(repo.absolute()) / HOOK_NAME
    state = _state(path, _read(path))
    if state is HookState.FOREIGN:
        raise UserError(f"{path} is not agentmesh's pre-receive hook; left as it is")
    if state is HookState.MISSING:
        return False
    path.unlink()
    return True
