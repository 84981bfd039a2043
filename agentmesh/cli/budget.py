"""`agentmesh budget`: today's usage against the daily caps, per agent and for the fleet."""

from __future__ import annotations

import time

import click

from agentmesh.cli.output import echo, emit_json, json_option, table


def _cap(value) -> str:
    return "-" if value is None else f"{value:g}"


def budget(mesh, as_json: bool) -> int:
    from agentmesh.agent.budget import budget_report

    data = budget_report(mesh, mesh.journal(), time.time())
    if as_json:
        emit_json(data)
        return 0
    rows = []
    for scope, row in [*((f"agent {a}", r) for a, r in data["agents"].items()), ("fleet", data["fleet"])]:
        used, caps = row["usage"], row["caps"]
        rows.append([scope, f"{used['tasks']}/{_cap(caps['tasks_per_day'])}",
                     f"{used['minutes']:g}/{_cap(caps['executor_minutes_per_day'])}",
                     f"{used['cost_usd']:g}/{_cap(caps['cost_usd_per_day'])}",
                     "EXHAUSTED" if row["exhausted"] else "ok"])
    echo(f"budget for {data['day']} (UTC), from the journals on the remote:")
    echo(table(rows, ["scope", "tasks", "executor min", "cost usd", "state"]))
    if data["warning"]:
        echo(data["warning"])
    return 0


@click.command("budget")
@json_option
@click.pass_obj
def command(g, as_json):
    """Show today's usage against the budget caps of .agentmesh/mesh.yaml.

    \b
    Usage is summed from every agent's journal on the memory branch (and this
    agent's entries not pushed yet): tasks are claims, minutes are executor
    run time, cost is what executors reported. claim-task refuses new claims
    once any cap is reached; a minutes or cost cap also stops executors.
    Caps (`-` means none) are set under `budgets.agent` and `budgets.fleet`.
    With a roster, a journal line counts only if its own agent signed the
    commit that wrote it; the others are left out and counted.
    """
    return budget(g.mesh(observer=True), as_json)
