"""`agentmesh monitor-prs`: what cron runs every ~10 minutes next to claim-task."""

from __future__ import annotations

import click

from agentmesh.cli.output import emit_report, json_option


def monitor_prs(mesh, dry_run: bool, as_json: bool, verbose: int) -> int:
    from agentmesh.ops.runs import run_monitor_prs

    report = run_monitor_prs(mesh, verbose=verbose, dry_run=dry_run)
    return emit_report(report, as_json, idle_line="nothing to do")


@click.command("monitor-prs")
@click.option("--dry-run", is_flag=True, help="Report what would be reviewed, merged, cleaned up; change nothing.")
@json_option
@click.pass_obj
def command(g, dry_run, as_json):
    """Review sibling PRs, watch and merge this agent's PRs, clean up and reap.

    \b
    One run, safe to repeat and to kill at any point:
      1. exit at once if another monitor-prs of this agent is running;
      2. refresh this agent's presence ref (how siblings know it is alive);
      3. clean up after this agent's merged or closed PRs;
      4. unless halted: review the PRs this agent is the ring reviewer of
         (gates in a fresh worktree, verdict bound to the head sha); request
         reviews and report CI failures for its own PRs; merge by policy;
      5. reap other agents' expired claims.
    """
    return monitor_prs(g.mesh(), dry_run, as_json, g.verbose)
