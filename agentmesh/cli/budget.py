"""`agentmesh budget`: the window's usage against the caps, per agent and for the fleet; `budget pause`
and `budget resume`: the mesh-wide pause of new claims."""

from __future__ import annotations

import time

import click

from agentmesh.cli.output import echo, emit_json, json_option, table
from agentmesh.core.terminal import terminal_line


def _cap(value) -> str:
    return "-" if value is None else f"{value:g}"


def spend_rows(data: dict) -> list[list[str]]:
    """One row per scope: used/cap of tasks, minutes and cost in the window, and the state."""
    rows = []
    for scope, row in [*((f"agent {a}", r) for a, r in data["agents"].items()), ("fleet", data["fleet"])]:
        used = row["usage"]
        tasks, minutes, cost = row["caps"].values()
        rows.append([scope, f"{used['tasks']}/{_cap(tasks)}", f"{used['minutes']:g}/{_cap(minutes)}",
                     f"{used['cost_usd']:g}/{_cap(cost)}", "EXHAUSTED" if row["exhausted"] else "ok"])
    return rows


SPEND_HEADER = ["scope", "tasks", "executor min", "cost usd", "state"]


def window_title(data: dict) -> str:
    window = data["window"]
    return f"{window['label']} (UTC, {window['kind']})"


def budget(mesh, as_json: bool) -> int:
    from agentmesh.agent.budget import budget_report

    data = budget_report(mesh, mesh.journal(), time.time())
    if as_json:
        emit_json(data)
        return 0
    echo(f"budget for {window_title(data)}, from the journals on the remote:")
    echo(table(spend_rows(data), SPEND_HEADER))
    echo(f"PAUSED: {terminal_line(data['paused'])}" if data["paused"] else "spending not paused")
    if data["warning"]:
        echo(data["warning"])
    return 0


def switch(mesh, verb: str, as_json: bool, **args) -> int:
    """pause or resume, journaled like any agent run."""
    from agentmesh.agent import pause
    from agentmesh.agent.base import journaled

    report = pause.PauseReport(mesh.host.agent)
    with journaled(mesh, report, dry_run=False):
        getattr(pause, verb)(mesh, report, **args)
    if as_json:
        emit_json(report.to_json())
    else:
        for line in report.events:
            echo(terminal_line(line))
    return report.exit_code


@click.group("budget", invoke_without_command=True)
@json_option
@click.pass_context
def group(ctx, as_json):
    """Show the budget window's usage against the caps of .agentmesh/mesh.yaml, and the pause.

    \b
    Usage is summed from every agent's journal on its own branch (and this
    agent's entries not pushed yet) over the window `budgets.window` (a UTC
    day, a week from Monday 00:00 UTC, or a calendar month): tasks are claims,
    minutes are executor run time, cost is what executors reported. An entry
    stamped later than now (a fast clock) counts now. claim-task refuses new
    claims once any cap is reached; a minutes or cost cap also stops
    executors. Caps (`-` means none) are set under `budgets.agent` and
    `budgets.fleet`. With a roster, a journal line counts only if its own
    agent signed the commit that wrote it; the others are left out and counted.
    """
    if ctx.invoked_subcommand is None:
        return budget(ctx.obj.mesh(observer=True), as_json)
    return None


@group.command("pause")
@click.option("--reason", default="paused by an operator", show_default=True, help="Why; shown to every agent.")
@json_option
@click.pass_obj
def _pause(g, reason, as_json):
    """Stop new claims mesh-wide, whatever the spend; unlike `halt`, running work finishes.

    Pushes a signed pause commit on top of the branch `agentmesh/pause` (a
    compare-and-swap push). Agents claim nothing while it is set; claims held
    run to their PR, reviews and merges go on. Run again with another reason
    to change it; the same reason pushes nothing. Journaled.
    """
    return switch(g.mesh(), "pause", as_json, reason=reason)


@group.command("resume")
@json_option
@click.pass_obj
def _resume(g, as_json):
    """Lift `budget pause`, pinned to the pause it read. Idempotent and journaled.

    With a roster, only a resume signed by a roster agent or maintainer counts:
    a forged one leaves spending paused, and this pushes a real one on top.
    """
    return switch(g.mesh(), "resume", as_json)
