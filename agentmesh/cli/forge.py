"""`agentmesh forge ...`: set up the git-native forge; helpers shared by `issue` and `pr`."""

from __future__ import annotations

from pathlib import Path

import click

from agentmesh.cli.output import echo, emit_json, remember_json
from agentmesh.core.errors import EXIT_OK, UserError
from agentmesh.core.terminal import terminal_line, terminal_text


def clean(text: str) -> str:
    """Forge text made safe to print (core/terminal.py), newlines kept."""
    return terminal_text(text)


def one_line(text: str, width: int = 60) -> str:
    text = terminal_line(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def current_forge(g, *, observer: bool = False):
    """The configured forge for the global options `g`; `observer`: to read only, no agent name needed."""
    return g.mesh(observer=observer).open_forge()


@click.group("forge")
def group() -> None:
    """The git-native forge: issues and PRs stored in the mesh repository itself."""


def init(path: Path, as_json: bool) -> int:
    from agentmesh.forge.local.bootstrap import DEFAULT_LABELS, init_repository, starter_files
    from agentmesh.git.run import Git

    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UserError(f"{path}: already exists and is not empty; give a new or empty directory")
    path = path.absolute()
    init_repository(Git(), path, starter_files())
    url = path.as_uri()
    if as_json:
        emit_json({"path": str(path), "url": url})
    else:
        echo(f"created {path}: branch main, {len(DEFAULT_LABELS)} labels, .agentmesh/mesh.yaml")
        echo(f"try: agentmesh --remote {url} --agent NAME issue create 'First task' --label task")
    return EXIT_OK


@group.command("init")
@click.argument("path", type=click.Path(path_type=Path, file_okay=True, dir_okay=True))
@click.option("--json", "as_json", is_flag=True, callback=remember_json, help="Print JSON: {path, url}.")
def _init(path, as_json):
    """Create a bare repository at PATH for a new mesh: an initial commit on main with a
    README and a starter .agentmesh/mesh.yaml, and the default labels."""
    return init(path, as_json)
