"""`agentmesh report`: the fleet over the last N days, as a JSON document or one self-contained HTML page."""

from __future__ import annotations

import time
from pathlib import Path

import click

from agentmesh.cli.output import age, echo, emit_json, json_option
from agentmesh.core.errors import EXIT_OK
from agentmesh.core.report import DEFAULT_DAYS, MAX_DAYS, ignored_note
from agentmesh.core.terminal import terminal_line

HTML_MODE = 0o644  # a page to publish and share, unlike the state dir's private files


def summary(doc: dict) -> list[str]:
    """A few lines for a terminal when neither --json nor --html is asked for."""
    fleet = doc["throughput"]["fleet"]
    latency = doc["latency"]
    totals = ", ".join(f"{series} {sum(fleet[series])}" for series in ("completed", "failed", "reworked"))
    alive = sum(a["alive"] for a in doc["agents"])
    cards = sum(len(c) for c in doc["board"].values())
    lines = [f"mesh {terminal_line(doc['remote'])}, seen by {doc['observer']}, last {doc['days']} days (UTC)",
             f"agents: {len(doc['agents'])} ({alive} alive); issues on the board: {cards}; PRs: {len(doc['pulls'])}",
             totals]
    for name, title in (("claim_to_pr", "claim to PR"), ("pr_to_merge", "PR to merge")):
        figures = latency[name]
        lines.append(f"{title}: median {age(figures['median_seconds'])}, p90 {age(figures['p90_seconds'])} "
                     f"({figures['count']})")
    lines.append(f"incidents: {len(doc['incidents'])}; "
                 f"{'HALTED: ' + terminal_line(doc['halted']) if doc['halted'] else 'not halted'}")
    note = ignored_note(doc.get("ignored_journal_lines"), doc.get("ignored_journal_reasons"))
    if note:
        lines.append(note)
    lines.append("the whole report: --json, or --html FILE for a page to open or publish")
    return lines


def write_html(doc: dict, path: Path) -> None:
    from agentmesh.host.files import write_atomic
    from agentmesh.ops.report_html import render_html

    write_atomic(path, render_html(doc), mode=HTML_MODE)  # readers see the old page or the new one


@click.command("report")
@click.option("--days", type=click.IntRange(1, MAX_DAYS), default=DEFAULT_DAYS, show_default=True,
              help="How many UTC days the report covers, today included.")
@click.option("--html", "html", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="Write the report as one self-contained HTML page to FILE (replaced atomically).")
@json_option
@click.pass_obj
def command(g, days, html, as_json):
    """Report on the fleet over the last N days: agents, the board, PRs, throughput, latency, budgets, incidents.

    \b
    Built from the remote alone (presence and claim refs, open issues and PRs,
    every agent's journal branch, the kill switch's history), so any host, or
    a scheduled CI job publishing to Pages, gets the same report. A failed
    listing is an error (exit 75), never an empty fleet.
    \b
      agentmesh report --html report.html        # open it from disk
      agentmesh report --days 30 --json | jq .throughput.fleet
    \b
    --json prints the document of docs/operations.md ("Report", schema
    agentmesh-report/1); --html FILE renders that same document. The page
    needs no network and runs no script taken from the data. With neither,
    a few lines: totals, latency and incidents.
    """
    mesh = g.mesh(observer=True)
    from agentmesh.ops.report import gather_report

    doc = gather_report(mesh, mesh.open_forge(), time.time(), days)
    if html is not None:
        write_html(doc, html)
    if as_json:
        emit_json(doc)
    elif html is not None:
        echo(f"wrote {terminal_line(str(html))}")
    else:
        for line in summary(doc):
            echo(line)
    return EXIT_OK
