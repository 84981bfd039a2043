"""`agentmesh status`: the fleet dashboard: agents, claims, open PRs, performance, halt and budget."""

from __future__ import annotations

import time
from dataclasses import dataclass

import click

from agentmesh.cli.budget import window_title
from agentmesh.cli.output import age, echo, emit_json, json_option, rich_text, table
from agentmesh.core.errors import EXIT_OK
from agentmesh.core.terminal import terminal_line


@dataclass(frozen=True)
class Section:
    title: str
    header: list[str]
    rows: list[list[str]]
    empty: str  # said instead of an empty table
    note: str = ""


def _cell(value) -> str:
    """Remote text (presence trailers, branch names, titles) made safe for a terminal: no escapes."""
    return terminal_line("-" if value is None else value)[:300] or "-"


def _num(value, suffix: str = "") -> str:
    return "-" if value is None else f"{value:g}{suffix}"


def _used(used, cap) -> str:
    return f"{used:g}/{_num(cap)}"


def _seen(agent) -> str:
    """How long this host has seen the presence unchanged; the commit's own age, by the agent's clock, when
    this host has been watching for less (a new observer would otherwise show every agent at 0s)."""
    if agent.committed_seconds is not None and agent.committed_seconds > agent.age_seconds:
        return f"{age(agent.committed_seconds)} (its clock)"
    return age(agent.age_seconds)


def sections(status) -> list[Section]:
    """The dashboard as titled tables, shared by the plain and the rich rendering."""
    agents = [[a.agent, "alive" if a.alive else "DEAD", "yes" if a.verified else "NO", a.key or "-",
               _seen(a), a.host, a.version, a.executor, ",".join(a.capabilities) or "-"]
              for a in status.agents]
    claims = [[f"#{c.issue}", c.holder or (f"FOREIGN (says {c.foreign})" if c.foreign else "(invalid)"),
               c.stage or "-", age(c.age_seconds),
               age(c.lease_left_seconds), "EXPIRED" if c.expired else "ok", c.work_branch or "-"]
              for c in status.claims]
    # the old scripts' lock branches hold their issues like claims (docs/migration.md)
    claims += [[f"#{lock.issue}", f"{lock.agent} (legacy lock)", "LEGACY-HELD", "-", "-",
                f"until PR #{lock.pr} closes" if lock.pr else "until its PR closes", lock.branch]
               for lock in status.legacy]
    pulls = [[f"#{p.number}", p.title, p.author, f"#{p.issue}" if p.issue else "-", age(p.age_seconds),
              ",".join(p.approved_by) or "-", ",".join(p.changes_requested_by) or "-", p.ci,
              ",".join(x.split(":", 1)[1] for x in p.labels) or "-"] for p in status.pulls]
    perf = [[agent, str(f.completed), str(f.failed), str(f.active), _num(f.avg_executor_seconds, "s"),
             _num(f.success_pct, "%")] for agent, f in status.performance.items()]
    budget = status.budget
    scopes = [*((f"agent {a}", r) for a, r in budget["agents"].items()), ("fleet", budget["fleet"])]
    spend = [[scope, *(_used(r["usage"][used], cap) for used, cap in zip(("tasks", "minutes", "cost_usd"),
                                                                          r["caps"].values(), strict=True)),
              "EXHAUSTED" if r["exhausted"] else "ok"] for scope, r in scopes]
    capped = (f"showing the {len(status.pulls)} newest of {status.pulls_open} open PRs"
              if status.pulls_capped else "")
    return [
        Section("Agents", ["agent", "state", "signed", "key", "seen", "host", "version", "executor", "capabilities"],
                agents,
                "no agents have a presence ref yet"),
        Section("Claims", ["issue", "holder", "stage", "seen", "lease left", "lease", "work branch"], claims,
                "no claims"),
        Section("Open PRs", ["pr", "title", "author", "issue", "age", "approved by", "changes by", "ci", "labels"],
                pulls, "no open PRs", capped),
        Section("Performance (last 7 days)", ["agent", "completed", "failed", "active", "avg executor",
                                              "success"], perf, "no agents"),
        Section(f"Budget ({window_title(budget)})", ["scope", "tasks", "executor min", "cost usd", "state"], spend, "",
                budget.get("warning") or ""),
    ]


def _headline(status) -> list[str]:
    halted = f"HALTED: {_cell(status.halted)}" if status.halted else "running (not halted)"
    paused = status.budget.get("paused")
    spending = f"PAUSED: {_cell(paused)}" if paused else "not paused"
    return [f"mesh {_cell(status.remote)}, seen by {status.agent}", f"State: {halted}", f"Spending: {spending}"]


def render_plain(status) -> str:
    out = _headline(status)
    for s in sections(status):
        out += ["", f"{s.title}:"]
        rows = [[_cell(c) if c else "" for c in row] for row in s.rows]
        out.append(table(rows, s.header) if rows else f"  {s.empty}")
        if s.note:
            out.append(f"  ({s.note})")
    return "\n".join(out)


def render_rich(status, console) -> None:
    from rich.table import Table

    # rich_text, never str: forge text must not be read as rich markup
    for line in _headline(status):
        console.print(rich_text(line, "bold red" if line.startswith(("State: HALTED", "Spending: PAUSED")) else "bold"))
    for s in sections(status):
        if not s.rows:
            console.print(rich_text(f"{s.title}: {s.empty}"))
            continue
        grid = Table(title=rich_text(s.title, "bold"), title_justify="left",
                     caption=rich_text(s.note) if s.note else None)
        for name in s.header:
            grid.add_column(rich_text(name))
        for row in s.rows:
            grid.add_row(*(rich_text(_cell(c) if c else "", "red" if c in ("DEAD", "EXPIRED", "EXHAUSTED",
                                                                           "failure", "error") else "")
                           for c in row))
        console.print(grid)


def status(mesh, forge, as_json: bool, now: float, console=None) -> int:
    from agentmesh.ops.status import gather

    data = gather(mesh, forge, now)
    if as_json:
        emit_json(data.to_json())
        return EXIT_OK
    if console is None:
        from rich.console import Console

        console = Console(highlight=False)
    if console.is_terminal:
        render_rich(data, console)
    else:
        echo(render_plain(data))
    return EXIT_OK


@click.command("status")
@json_option
@click.pass_obj
def command(g, as_json):
    """Show the fleet: agents, claims, open PRs, 7-day performance, the kill switch and budgets.

    \b
    Everything is read from the remote and the forge: presence and claim refs,
    open issues and PRs (the newest 50 are examined: reviews on the head, CI),
    and the journals on their branches. Ages are how long this host has
    seen a ref unchanged. A failed listing is an error (exit 75), never an
    empty fleet. --json prints the schema of docs/operations.md ("Status").
    """

    mesh = g.mesh(observer=True)
    return status(mesh, mesh.open_forge(), as_json, time.time())
