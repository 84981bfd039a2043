"""The command table: every command of `agentmesh`, registered lazily.

A command's module (and what it imports: pydantic, requests, rich) is imported only when that command
runs, so `agentmesh --version`, `--help` and cron's `claims acquire` import only what they use; the
click group (cli/app.py) lists them in --help from this table without importing them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the claim path
if TYPE_CHECKING:
    import click


@dataclass(frozen=True)
class Entry:
    """Where a command lives, and the short help `agentmesh --help` shows for it without importing it."""

    module: str  # under agentmesh.cli
    attribute: str
    short_help: str


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
