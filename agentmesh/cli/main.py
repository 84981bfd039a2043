"""The `agentmesh` command: global options, command registration, and the one
place where errors become messages and exit codes.

Commands are registered lazily (COMMANDS): a command's module is imported only when it runs, so
`agentmesh --version`, `--help` and the cron entry points import only what they use.
"""

from __future__ import annotations

import importlib
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

    def plumbing(self, *, observer: bool = False):
        """What `claims` commands need: no pydantic once this config was validated (host/basics.py)."""
        from agentmesh.agent.plumbing import Plumbing, load_basics, signing_from_env
        from agentmesh.host.state import clock_from_env

        basics = load_basics(self.config, remote=self.remote, agent=self.agent, observer=observer, env=os.environ)
        self.seen.state_root = basics.state_dir
        return Plumbing(basics, clock=clock_from_env(os.environ), signing=signing_from_env(os.environ))


@dataclass(frozen=True)
class Entry:
    """Where a command lives, and the short help `agentmesh --help` shows for it without importing it."""

    module: str  # under agentmesh.cli
    attribute: str
    short_help: str


# Every command, registered lazily: a command's module (and what it imports: pydantic, requests, rich)
# is imported only when that command runs, so cron's `claims acquire` pays for the claim path alone.
# tests/unit/test_cli_lazy.py checks this table against the real commands, so it cannot drift.
COMMANDS: dict[str, Entry] = {
    "budget": Entry("budget", "group",
                    "Show the budget window's usage against the caps of .agentmesh/mesh.yaml, and the pause."),
    "chaos": Entry("chaos", "command", "Break a mesh of real agents on purpose, then check it from the remote."),
    "claim-task": Entry("claim_task", "command",
                        "Claim an eligible issue, work on it with the executor, and open a PR."),
    "claims": Entry("claims", "group", "Claim refs on the remote: acquire, list, renew, release and reap."),
    "daemon": Entry("daemon", "command", "Run claim-task and monitor-prs on a schedule until stopped."),
    "demo": Entry("demo", "command", "Run a whole mesh on this machine: agents claim, work, review and merge."),
    "doctor": Entry("doctor", "command",
                    "Check this host: git version, config, state directory, the remote (a scratch ref is pushed, "
                    "read back and deleted with a lease), the mesh policy on the default branch, this agent's "
                    "signing key in the roster, the forge token, the sandbox, cron or systemd, and the clock."),
    "forge": Entry("forge", "group", "The git-native forge: issues and PRs stored in the mesh repository itself."),
    "halt": Entry("halt", "halt_command", "Stop all agents from claiming issues and starting executors."),
    "hook": Entry("hook", "group", "Guard a plain git server with agentmesh's pre-receive hook."),
    "init": Entry("init", "command", "Write a commented host config for this host, valid as written."),
    "issue": Entry("issue", "group", "Create, list, show, edit, comment on, label and close issues; show their "
                   "dependencies; cancel and requeue them."),
    "memory": Entry("memory", "group", "Read and extend the mesh's shared memory in `ai-memory/`."),
    "migrate": Entry("migrate", "command", "Switch over from the old cron scripts (claim-task.py, monitor-prs.py)."),
    "monitor-prs": Entry("monitor", "command",
                         "Review sibling PRs, watch and merge this agent's PRs, clean up and reap."),
    "pr": Entry("pr", "group", "Create, list, show, review, merge, ship and close pull requests."),
    "report": Entry("report", "command", "Report on the fleet over the last N days: agents, the board, PRs, "
                    "throughput, latency, budgets, incidents."),
    "resume": Entry("halt", "resume_command",
                    "Clear the kill switch set by `agentmesh halt`, pinned to the halt it read."),
    "status": Entry("status", "command", "Show the fleet: agents, claims, open PRs, 7-day performance, the kill "
                    "switch and budgets."),
    "tick": Entry("tick", "command", "Run monitor-prs, then claim-task: one full turn of this agent."),
}


def load_command(name: str) -> click.Command | None:
    """The command called `name`, its module imported now; None when there is no such command."""
    entry = COMMANDS.get(name)
    if entry is None:
        return None
    module = importlib.import_module(f"agentmesh.cli.{entry.module}")
    command: click.Command = getattr(module, entry.attribute)
    return command


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
