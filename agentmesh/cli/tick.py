"""`agentmesh tick`: monitor-prs, then claim-task; what one cron line runs."""

from __future__ import annotations

import click

from agentmesh.cli.output import json_option
from agentmesh.cli.tick_verbs import tick


@click.command("tick")
@json_option
@click.pass_obj
def command(g, as_json):
    """Run monitor-prs, then claim-task: one full turn of this agent.

    \b
    Review, merge and clean up first, so seats and budget freed by merged
    PRs are used by the claim that follows. Each half takes its own host
    lock, so a tick next to a still-running claim-task is safe. Put it in
    cron (crontab.example) or run `agentmesh daemon` instead.
    Exit 0 when both halves were fine (also when idle), 75 when one hit a
    temporary failure, 1 or 3 when one hit a config error or a bug.
    """
    return tick(g.mesh, g.verbose, as_json)
