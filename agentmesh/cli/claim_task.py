"""`agentmesh claim-task`: what cron runs every few minutes on every host."""

from __future__ import annotations

import click

from agentmesh.cli.output import echo, emit_report, json_option


def claim_task(mesh, dry_run: bool, as_json: bool, verbose: int) -> int:
    from agentmesh.ops.runs import run_claim_task

    report = run_claim_task(mesh, verbose=verbose, dry_run=dry_run)
    code = emit_report(report, as_json)
    if as_json:
        return code
    if dry_run:
        for c in report.candidates:
            echo(f"  candidate #{c['issue']} score {c['score']}: {c['title']}")
        for x in report.excluded:
            echo(f"  excluded #{x['issue']}: {', '.join(x['reasons'])}")
    return code


@click.command("claim-task")
@click.option("--dry-run", is_flag=True, help="Reconcile and rank, report what would happen; change nothing.")
@json_option
@click.pass_obj
def command(g, dry_run, as_json):
    """Claim an eligible issue, work on it with the executor, and open a PR.

    \b
    One tick of the work loop, safe to run from cron at any rate:
      1. exit at once if another claim-task of this agent is running;
      2. stop if the mesh is halted (`agentmesh halt`);
      3. finish what a crashed run left: resume claims without work,
         open the PR for pushed work, renew claims whose PR is in review;
      4. rank the eligible issues and claim the best one (first push wins);
      5. run the executor in a worktree, renewing the claim meanwhile;
      6. commit, scan for secrets, push fenced by the claim, open the PR.

    Exit 0 also when there is nothing to do, when halted or busy; 75 when a
    temporary failure interrupted the work (the next run resumes it).
    """
    return claim_task(g.mesh(), dry_run, as_json, g.verbose)
