"""One run of an agent command as every front end does it (the CLI commands, tick, the daemon):
open the forge, run, and leave the run's report for the caller to print."""

from __future__ import annotations

from agentmesh.mesh import Mesh


def run_claim_task(mesh: Mesh, *, verbose: int = 0, dry_run: bool = False):
    from agentmesh.agent.claim_task import claim_task
    from agentmesh.forge import open_forge

    return claim_task(mesh, open_forge(mesh), dry_run=dry_run)


def run_monitor_prs(mesh: Mesh, *, verbose: int = 0, dry_run: bool = False):
    from agentmesh.agent.monitor import monitor_prs
    from agentmesh.forge import open_forge

    return monitor_prs(mesh, open_forge(mesh), dry_run=dry_run)
