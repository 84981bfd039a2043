"""`agentmesh migrate`: switch over from the old cron scripts (docs/migration.md)."""

from __future__ import annotations

from pathlib import Path

import click

from agentmesh.cli.output import echo, emit_json, json_option

_SAID = {"nothing-to-import": "nothing to import: {base} has every file",
         "open-pr": "open a PR from {branch}", "add-to-pr": "add the missing files to {branch} and its PR",
         "adopt-pr": "keep the PR of {branch}, which has every file"}


def migrate(mesh, source: Path, dry_run: bool, as_json: bool) -> int:
    from agentmesh.agent.migrate import migrate as run_migration

    found = run_migration(mesh, mesh.open_forge(), source, dry_run=dry_run)
    if as_json:
        emit_json(found.to_json())
        return 0
    would = "would " if dry_run else ""
    echo(f"memory: {len(found.plan.files)} file(s) from {found.source}, {len(found.missing)} not on "
         f"{mesh.base_branch} yet; {would}{_SAID[found.step].format(base=mesh.base_branch, branch=found.branch)}")
    for path in found.missing[:20]:
        echo(f"  + {path}")
    if len(found.missing) > 20:
        echo(f"  ... and {len(found.missing) - 20} more")
    for skipped in found.plan.skipped:
        echo(f"  skipped {skipped.path}: {skipped.why}")
    if found.pull is not None:
        echo(f"PR #{found.pull.number}" + (f": {found.pull.url}" if found.pull.url else ""))
    if found.legacy:
        echo("legacy locks (old scripts' branches; no agent claims these issues until their PR closes):")
        for lock in found.legacy:
            echo(f"  #{lock.issue} held by {lock.agent} on {lock.branch}" + (f", PR #{lock.pr}" if lock.pr else ""))
    else:
        echo("no legacy locks: no old scripts' branch holds an issue")
    return 0


@click.command("migrate")
@click.option("--from", "source", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="The old scripts' directory, holding MEMORY.md and memory/.")
@click.option("--dry-run", is_flag=True, help="Show what would be imported and which issues are legacy-held.")
@json_option
@click.pass_obj
def command(g, source, dry_run, as_json):
    """Switch over from the old cron scripts (claim-task.py, monitor-prs.py).

    \b
    Imports their MEMORY.md and memory/ hourly logs into ai-memory/ as a PR
    labelled agentmesh:memory (a human merges it), on the branch
    <agent>/migrate/memory. A rerun imports only what the default branch
    still lacks and keeps the open PR: it never opens a second one.
    Lists the old scripts' lock branches (<agent>/<issue>-<slug>): every
    agent treats such a branch as a claim until its PR closes.
    """
    return migrate(g.mesh(), source, dry_run, as_json)
