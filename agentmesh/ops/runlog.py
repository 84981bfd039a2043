"""The one call a command makes after its run: log the report, update the metrics textfile."""

from __future__ import annotations

import logging

from agentmesh.ops.logging import RUN_LOGGER, log_report
from agentmesh.ops.metrics import update_metrics


def record_run(mesh, *, command: str, report, duration_s: float) -> None:
    """Log every event of `report` and, when `metrics.textfile` is set, count them there."""
    log_report(report, command=command, duration_ms=round(duration_s * 1000))
    textfile = mesh.host.metrics.textfile
    if textfile is None:
        return
    try:
        update_metrics(textfile, mesh.state.root, agent=mesh.host.agent, command=command, report=report,
                       duration_s=duration_s, ok=report.exit_code == 0)
    except OSError as exc:  # includes a lock timeout; metrics must not fail a run that did its work
        logging.getLogger(RUN_LOGGER).warning("metrics textfile %s not written: %s", textfile, exc, extra={
            "agent": mesh.host.agent, "event": "warning", "command": command, "detail": str(exc)})
