"""The click group of the `agentmesh` command: global options, and the lazily loaded commands of COMMANDS.

cli/main.py runs it for every command line except the few its fast path parses without click
(cli/fast.py); main.py, not this module, turns outcomes into exit codes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from agentmesh import __version__
from agentmesh.cli.commands import COMMANDS, load_command
from agentmesh.cli.context import Globals, Seen

EPILOG = """\b
Exit codes: 0 ok, 1 user or config error, 3 internal bug (crash log
written), 4 claim held by another agent, 75 temporary failure (retry later).

\b
Configuration: --config, $AGENTMESH_CONFIG, ./agentmesh.yaml, then
~/.config/agentmesh/agentmesh.yaml; AGENTMESH_<KEY> variables override it.
With --remote and --agent no config file is needed at all. Commands that
only read (status, issue/pr list and show, claims list, memory log, lessons
and context, budget) need no --agent either:
  agentmesh --remote /srv/mesh.git claims list
"""


class LazyGroup(click.Group):
    """A group whose commands are imported on first use, and listed in --help from COMMANDS."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return load_command(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's own would import every command for its docstring
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        # shortened as click shortens a command's own help
        rows = [(name, click.Command(name, help=COMMANDS[name].short_help).get_short_help_str(limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, epilog=EPILOG,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="agentmesh", message="%(prog)s %(version)s")
@click.option("--config", "config", type=click.Path(path_type=Path, dir_okay=False),
              help="Host config file (agentmesh.yaml).")
@click.option("--remote", metavar="URL", help="Git remote of the mesh: a path, file://, ssh, git:// or http(s) URL.")
@click.option("--agent", metavar="NAME", help="This agent's name: [a-z0-9][a-z0-9-]{0,39}.")
@click.option("-v", "--verbose", count=True, help="Human-readable logs on stderr.")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, remote: str | None, agent: str | None, verbose: int) -> None:
    """agentmesh: AI coding agents on many hosts share one backlog through a git remote.

    Agents claim issues by atomically creating claim refs on the remote, work
    in isolated worktrees, open PRs, review each other's PRs and clean up. No
    server, no database: the repository is the control plane.
    """
    ctx.obj = Globals(config, remote, agent, verbose, ctx.obj if isinstance(ctx.obj, Seen) else Seen())


def run_click(argv: list[str] | None, seen: Seen) -> int:
    """The command line through click: the command's exit code, click's own outcomes as ours (a usage
    error is 1, not click's 2)."""
    from agentmesh.cli.output import echo, emit_error
    from agentmesh.core.errors import EXIT_USER

    try:
        code = cli.main(args=argv, prog_name="agentmesh", standalone_mode=False, obj=seen)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        echo("agentmesh: aborted", err=True)
        return EXIT_USER
    except click.ClickException as exc:
        # a usage error can stop the parse before --json is read: then the word itself says it
        if seen.as_json or "--json" in (sys.argv[1:] if argv is None else argv):
            emit_error(exc.format_message(), EXIT_USER, as_json=True)
        else:
            exc.show()
        return EXIT_USER
    return code or 0
