"""`agentmesh demo`: see a whole mesh work on this machine in about a minute."""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
from functools import partial
from pathlib import Path

import click

from agentmesh.cli.output import echo, emit_json, remember_json, rich_text, self_command
from agentmesh.core.errors import EXIT_OK, EXIT_TEMPORARY, UserError
from agentmesh.core.terminal import terminal_line


class PlainProgress:
    """One line per change, for logs and pipes."""

    def __init__(self, echo):
        self.echo = echo
        self.seen: dict[int, tuple[str, str, str]] = {}

    def __call__(self, view, elapsed: float) -> None:
        for issue in view.issues:
            stage = view.stage(issue)
            if self.seen.get(issue.number) != stage:
                self.seen[issue.number] = stage
                name, agent, pr = stage
                self.echo(f"[{elapsed:5.1f}s] #{issue.number} {name}" + (f" by {agent}" if agent else "")
                          + (f" (PR {pr})" if pr else ""))


class LiveProgress:
    """A table of every issue's stage, redrawn in place on a terminal."""

    def __init__(self):
        from rich.console import Console
        from rich.live import Live

        self.live = Live(console=Console(stderr=False), refresh_per_second=4, transient=False)

    def __enter__(self):
        self.live.__enter__()
        return self

    def __exit__(self, *exc):
        return self.live.__exit__(*exc)

    def __call__(self, view, elapsed: float) -> None:
        from rich.table import Table

        table = Table(title=f"agentmesh demo: {elapsed:.0f}s", title_justify="left")
        for column in ("issue", "title", "stage", "agent", "PR"):
            table.add_column(column)
        colours = {"done": "green", "merged": "green", "in review": "cyan", "working": "yellow",
                   "claimed": "yellow", "failed": "red", "closed": "red"}
        for issue in view.issues:  # rich_text: an issue title is never read as markup
            stage, agent, pr = view.stage(issue)
            table.add_row(rich_text(f"#{issue.number}"), rich_text(terminal_line(issue.title)[:40]),
                          rich_text(stage, colours.get(stage, "white")), rich_text(agent), rich_text(pr))
        self.live.update(table)


def demo(agents: int, issues: int, directory: Path | None, timeout: float, as_json: bool) -> int:
    from agentmesh.agent.mesh import UNSIGNED_BENCHMARK_ENV, signing_from_env
    from agentmesh.ops.demo import run, set_up

    root = directory or Path(tempfile.mkdtemp(prefix="agentmesh-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise UserError(f"--dir {root}: must be empty or new, so nothing of yours is overwritten")
    say = partial(echo, err=as_json)  # --json: stdout is for the JSON alone
    signed = signing_from_env(os.environ)
    mesh = set_up(root.resolve(), agents=agents, issues=issues, signed=signed)
    say(f"demo mesh in {mesh.root}: {agents} agents ({', '.join(mesh.agents)}) in a review ring, "
        f"{issues} issues, auto-merge with the syntax gate and the gate `python3 check.py`"
        + ("" if signed else f"; {UNSIGNED_BENCHMARK_ENV}=1: no keys, no roster, nothing signed (a benchmark)"))
    if sys.stdout.isatty() and not as_json:
        with LiveProgress() as live:
            outcome = run(mesh, timeout=timeout, on_snapshot=live)
    else:
        outcome = run(mesh, timeout=timeout, on_snapshot=PlainProgress(say))
    say(f"{outcome['closed']}/{outcome['issues']} issues closed, {outcome['prs_merged']} PRs merged, "
        f"{outcome['reviews']} reviews, in {outcome['seconds']:.0f}s")
    remote = shlex.quote(str(mesh.remote))
    me = f"{self_command()} --remote {remote} --agent {mesh.agents[0]}"
    say("look around:\n"
        f"  {me} pr list --state all --json\n"
        f"  {me} claims list\n"
        f"  {me} memory log\n"
        f"  git --git-dir {remote} log --oneline --graph main\n"
        f"  git --git-dir {remote} ls-tree -r --name-only agentmesh/journals/ada ai-memory/\n"
        f"  each agent's log: {mesh.root}/hosts/<agent>/daemon.log")
    if as_json:
        emit_json(outcome)
    if outcome["closed"] < outcome["issues"]:
        echo(f"agentmesh demo: not every issue was closed within {timeout:.0f}s; see the logs above", err=True)
        return EXIT_TEMPORARY
    return EXIT_OK


@click.command("demo")
@click.option("--agents", type=click.IntRange(2, 9), default=3, show_default=True, help="Agents in the ring.")
@click.option("--issues", type=click.IntRange(1, 50), default=6, show_default=True, help="Issues to seed.")
@click.option("--dir", "directory", type=click.Path(path_type=Path, file_okay=False),
              help="Where to build the mesh (empty or new) [default: a new temporary folder].")
@click.option("--timeout", type=click.FloatRange(min=10), default=120, show_default=True, metavar="SECONDS",
              help="Stop the agents after this long even if issues are left.")
@click.option("--json", "as_json", is_flag=True, callback=remember_json,
              help="Progress on stderr; the result as JSON on the last line.")
def command(agents, issues, directory, timeout, as_json):
    """Run a whole mesh on this machine: agents claim, work, review and merge.

    \b
    Builds, in one folder: a local-forge remote (a bare git repository) with
    seeded issues and a mesh policy (a review ring, auto-merge, the syntax gate
    and a real one),
    and one host folder per agent (config, state, cache clone), as if on
    separate machines. Then one `agentmesh daemon` per agent runs until every
    issue is closed. The folder is kept for you to inspect.
    """
    return demo(agents, issues, directory, timeout, as_json)
