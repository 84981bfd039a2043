"""The `agentmesh` command: global options, command registration, and the one
place where errors become messages and exit codes.

Heavy modules (pydantic, requests, rich) are imported inside commands, so
`agentmesh --version` and `--help` start fast.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click

from agentmesh import __version__
from agentmesh.cli.output import echo, emit_error
from agentmesh.core.errors import EXIT_USER

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


@dataclass
class Seen:
    """What the error report of a run needs from its command: the state dir, once a config named it
    (a crash log goes to its logs/)."""

    state_root: Path | None = None
    as_json: bool = False  # the command was given --json: its failure is printed as JSON too


@dataclass(frozen=True)
class Globals:
    """The global options, handed explicitly to each command."""

    config: Path | None
    remote: str | None
    agent: str | None
    verbose: int
    seen: Seen = field(default_factory=Seen)

    def host_config(self, *, observer: bool = False):
        """`observer`: the command only reads, so no agent name is needed."""
        from agentmesh.host.config import load_host_config

        config = load_host_config(self.config, remote=self.remote, agent=self.agent, observer=observer)
        self.seen.state_root = config.resolved_state_dir()
        return config

    def mesh(self, *, observer: bool = False):
        from agentmesh.agent.mesh import Mesh, signing_from_env
        from agentmesh.host.state import clock_from_env

        return Mesh(self.host_config(observer=observer), clock=clock_from_env(os.environ),
                    signing=signing_from_env(os.environ))


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


def _register() -> None:
    from agentmesh.cli import (
        budget,
        chaos,
        claim_task,
        claims,
        daemon,
        demo,
        doctor,
        forge,
        halt,
        hook,
        init,
        issue,
        memory,
        migrate,
        monitor,
        pr,
        status,
        tick,
    )

    cli.add_command(claim_task.command)
    cli.add_command(monitor.command)
    cli.add_command(halt.halt_command)
    cli.add_command(halt.resume_command)
    cli.add_command(claims.group)
    cli.add_command(forge.group)
    cli.add_command(issue.group)
    cli.add_command(pr.group)
    cli.add_command(doctor.command)
    cli.add_command(hook.group)
    cli.add_command(init.command)
    cli.add_command(budget.group)
    cli.add_command(memory.group)
    cli.add_command(migrate.command)
    cli.add_command(tick.command)
    cli.add_command(daemon.command)
    cli.add_command(demo.command)
    cli.add_command(chaos.command)
    cli.add_command(status.command)


_register()


_GLOBAL_WITH_VALUE = ("--config", "--remote", "--agent")


def main_for(command: str, argv: list[str]) -> None:
    """Run one command with global options allowed anywhere (the scripts/ entry points)."""
    globals_: list[str] = []
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg in _GLOBAL_WITH_VALUE:
            globals_ += [arg, next(args, "")]
        elif arg.startswith(tuple(f"{o}=" for o in _GLOBAL_WITH_VALUE)) or arg in ("-v", "--verbose", "-vv"):
            globals_.append(arg)
        else:
            rest.append(arg)
    main([*globals_, command, *rest])


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the command and turn every outcome into an exit code."""
    seen = Seen()
    try:
        code = cli.main(args=argv, prog_name="agentmesh", standalone_mode=False, obj=seen)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        echo("agentmesh: aborted", err=True)
        code = EXIT_USER
    except click.ClickException as exc:  # usage errors: exit 1, not click's 2
        # a usage error can stop the parse before --json is read: then the word itself says it
        if seen.as_json or "--json" in (sys.argv[1:] if argv is None else argv):
            emit_error(exc.format_message(), EXIT_USER, as_json=True)
        else:
            exc.show()
        code = EXIT_USER
    except KeyboardInterrupt:
        echo("agentmesh: interrupted", err=True)
        code = 130
    except Exception as exc:  # noqa: BLE001 -- every error becomes a message and an exit code; a bug keeps its evidence
        from agentmesh.ops.failures import command_crash_dir, failure

        failed = failure(exc, crash_dir=command_crash_dir(seen.state_root))
        emit_error(failed.message, failed.exit_code, as_json=seen.as_json)
        code = failed.exit_code
    sys.exit(code or 0)
