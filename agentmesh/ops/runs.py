"""One run of an agent command as every front end does it (the CLI commands, tick, the daemon):
configure the logs, open the forge, run, then log the report and update the metrics. The caller
prints the report."""

from __future__ import annotations

import time

from agentmesh.agent.mesh import Mesh


def _recorded(mesh: Mesh, command: str, verbose: int, run):
    from agentmesh.ops.logging import configure_logging
    from agentmesh.ops.runlog import record_run

    configure_logging(mesh.state.root, verbose=verbose, secrets=mesh.known_secrets)
    started = time.monotonic()
    report = run(mesh.open_forge())
    record_run(mesh, command=command, report=report, duration_s=time.monotonic() - started)
    return report


def run_claim_task(mesh: Mesh, *, verbose: int = 0, dry_run: bool = False):
    from agentmesh.agent.claim_task import claim_task

    return _recorded(mesh, "claim-task", verbose, lambda forge: claim_task(mesh, forge, dry_run=dry_run))


def run_monitor_prs(mesh: Mesh, *, verbose: int = 0, dry_run: bool = False, flush: bool = True):
    from agentmesh.agent.monitor import monitor_prs

    return _recorded(mesh, "monitor-prs", verbose,
                     lambda forge: monitor_prs(mesh, forge, dry_run=dry_run, flush=flush))


def flush_queued(mesh: Mesh, report) -> None:
    """Publish what the journal still has queued (nothing to do costs no git call); a failure is a
    warning on `report`, and the entries stay queued."""
    from agentmesh.agent.journaling import flush_journal

    flush_journal(mesh.journal(), report)
