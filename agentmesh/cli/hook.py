"""`agentmesh hook ...`: the server-side pre-receive hook for plain git remotes (docs/security.md)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from agentmesh.cli.output import echo, emit_json, json_option
from agentmesh.core.errors import EXIT_OK, EXIT_USER

_repo = click.argument("path", type=click.Path(path_type=Path, file_okay=False))


@click.group("hook")
def group() -> None:
    """Guard a plain git server with agentmesh's pre-receive hook.

    With the hook, the server itself refuses writes to agentmesh's refs that the roster on the default
    branch does not vouch for, and updates of the default branch that are not approved merges of a
    pull request (or maintainers' commits). Run it on the server, on the bare repository.
    """


def install(path: Path, force: bool, as_json: bool) -> int:
    from agentmesh.ops.hook import install as install_hook

    found, written = install_hook(path, force=force)
    if as_json:
        emit_json({**found.to_json(), "written": written})
    else:
        echo(f"{'installed' if written else 'already installed'}: {found.path}")
        echo(found.trust)
    return EXIT_OK


def uninstall(path: Path, as_json: bool) -> int:
    from agentmesh.ops.hook import uninstall as uninstall_hook

    removed = uninstall_hook(path)
    if as_json:
        emit_json({"repo": str(path.absolute()), "removed": removed})
    else:
        echo(f"removed agentmesh's pre-receive hook from {path}" if removed else f"no agentmesh hook in {path}")
    return EXIT_OK


def check(path: Path, as_json: bool) -> int:
    from agentmesh.ops.hook import status

    found = status(path)
    if as_json:
        emit_json(found.to_json())
    else:
        echo(f"{found.state}: {found.path}")
        echo(found.trust)
    return EXIT_OK if found.ok else EXIT_USER


def pre_receive(repo: Path, stdin: str, ssh_keygen: str | None) -> int:
    from agentmesh.ops.receive import pre_receive as judge_push

    outcome = judge_push(repo, stdin, os.environ, ssh_keygen=ssh_keygen)
    for line in outcome.warnings:
        echo(line, err=True)
    for verdict in outcome.refused:
        echo(verdict.line, err=True)
    return EXIT_USER if outcome.refused else EXIT_OK


@group.command("install")
@_repo
@click.option("--force", is_flag=True, help="Replace another pre-receive hook (kept as pre-receive.before-agentmesh).")
@json_option
def _install(path, force, as_json):
    """Install the hook into the bare repository PATH (again: refresh it). It runs this installation's
    Python, so keep this virtualenv where it is."""
    return install(path, force, as_json)


@group.command("uninstall")
@_repo
@json_option
def _uninstall(path, as_json):
    """Remove agentmesh's hook from the bare repository PATH (another hook is left alone)."""
    return uninstall(path, as_json)


@group.command("check")
@_repo
@json_option
def _check(path, as_json):
    """Whether PATH runs agentmesh's hook (and the Python it names is still there), and what the
    roster there makes it enforce. Exit 1 unless it is installed.

    \b
    --json prints {"repo", "hook", "state": installed|outdated|foreign|missing, "ok", "trust"}.
    """
    return check(path, as_json)


@group.command("pre-receive", hidden=True)
@click.option("--ssh-keygen", "ssh_keygen", default=None, help="The ssh-keygen git verifies signatures with.")
def _pre_receive(ssh_keygen):
    """Run by git in the bare repository: judge the push described on stdin."""
    repo = Path(os.environ.get("GIT_DIR") or ".").absolute()
    return pre_receive(repo, sys.stdin.read(), ssh_keygen)
