"""What `agentmesh tick` does once parsed, without click: cli/tick.py (click) and cli/fast.py (a plain
`agentmesh [global options] tick [--json]` from cron, which never imports click) both call it."""

from __future__ import annotations

from agentmesh.cli.output import emit_json, emit_report
from agentmesh.core.errors import EXIT_OK, EXIT_TEMPORARY


def combined_exit(*codes: int) -> int:
    """The worst outcome wins; a temporary failure (retry later) outranks a clean run only."""
    failures = [c for c in codes if c != EXIT_OK]
    if not failures:
        return EXIT_OK
    return next((c for c in failures if c != EXIT_TEMPORARY), EXIT_TEMPORARY)


def tick(make_mesh, verbose: int, as_json: bool) -> int:
    """Each half gets a fresh Mesh, so claim-task sees what monitor-prs just merged. monitor-prs leaves
    its journal entries queued: claim-task's flush publishes both halves' in one push (and when
    claim-task ran none, busy or halted, the tick publishes them itself)."""
    from agentmesh.ops.runs import flush_queued, run_claim_task, run_monitor_prs

    with make_mesh() as mesh:
        monitor = run_monitor_prs(mesh, verbose=verbose, flush=False)
    with make_mesh() as mesh:
        claim = run_claim_task(mesh, verbose=verbose)
        flush_queued(mesh, monitor)
    if as_json:
        emit_json({"monitor-prs": monitor.to_json(), "claim-task": claim.to_json()})
    else:
        emit_report(monitor, False)
        emit_report(claim, False)
    return combined_exit(monitor.exit_code, claim.exit_code)
