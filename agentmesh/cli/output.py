"""Output helpers shared by commands."""

from __future__ import annotations

import json

import click


def emit_json(data) -> None:
    click.echo(json.dumps(data, indent=None, sort_keys=False, ensure_ascii=False))


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)


def emit_report(report, as_json: bool, *, idle_line: str | None = None) -> int:
    """Print a run's report (claim-task, monitor-prs): JSON, or one line per event."""
    if as_json:
        emit_json(report.to_json())
        return report.exit_code
    if report.reason:
        click.echo(f"{report.agent}: {report.status}: {report.reason}")
    for event in report.events:
        click.echo(f"{report.agent}: {event}")
    if idle_line and not report.events and not report.reason:
        click.echo(f"{report.agent}: {idle_line}")
    return report.exit_code


# Options every command family shares.
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
number_argument = click.argument("number", type=click.IntRange(min=1))
