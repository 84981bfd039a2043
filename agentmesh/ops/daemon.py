"""`agentmesh daemon`: claim-task and monitor-prs on a schedule in one long-running process.

The same runs cron would start, on `schedule`'s clock: each run builds a
fresh Mesh (policy and heads are read anew) and takes its command's host
lock, so a daemon next to a cron line is safe. Every host starts at its own
offset within the jitter, and each interval is drawn anew within
[interval, interval + jitter], so a fleet started together spreads out.

SIGTERM or SIGINT drains: the step in progress finishes (an executor run is
not cut short), then claims with no work yet are released and the process
exits 0.
"""

from __future__ import annotations

import hashlib
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import schedule

from agentmesh.agent.mesh import Mesh
from agentmesh.core.errors import AgentmeshError
from agentmesh.ops.runs import run_claim_task, run_monitor_prs


@dataclass(frozen=True)
class Cadence:
    claim_seconds: float
    monitor_seconds: float
    jitter_seconds: float


def host_offset(agent: str, host: str, jitter_seconds: float) -> float:
    """A stable start offset in [0, jitter): the same host always starts at the same point."""
    digest = hashlib.sha256(f"{agent}@{host}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2 ** 32 * jitter_seconds


class Daemon:
    def __init__(self, make_mesh: Callable[[], Mesh], cadence: Cadence, *,
                 on_report: Callable[[str, object], None], verbose: int = 0, max_seconds: float | None = None):
        self.make_mesh = make_mesh
        self.cadence = cadence
        self.on_report = on_report
        self.verbose = verbose
        self.max_seconds = max_seconds
        self.stopping = threading.Event()
        self.released: list[int] = []

    def stop(self, *_args) -> None:
        """Signal handler: finish the current step, then drain."""
        self.stopping.set()

    def run(self) -> int:
        mesh = self.make_mesh()
        started = time.monotonic()
        scheduler = schedule.Scheduler()  # our own: no module-level schedule state
        jitter = self.cadence.jitter_seconds
        for seconds, job in ((self.cadence.monitor_seconds, self.monitor), (self.cadence.claim_seconds, self.claim)):
            if jitter >= 1 and seconds >= 1:  # schedule draws whole seconds in [interval, latest]
                scheduler.every(int(seconds)).to(int(seconds + jitter)).seconds.do(job)
            else:
                # schedule annotates `every(interval: int)` but computes timedelta(seconds=interval),
                # so the fractional intervals `--claim-seconds 0.5` asks for work as they always have.
                scheduler.every(seconds).seconds.do(job)  # type: ignore[arg-type]
        self.stopping.wait(host_offset(mesh.host.agent, mesh.host.host, jitter))
        if not self.stopping.is_set():
            self.monitor()
        if not self.stopping.is_set():
            self.claim()
        while not self.stopping.is_set():
            if self.max_seconds is not None and time.monotonic() - started >= self.max_seconds:
                break
            scheduler.run_pending()
            idle = scheduler.idle_seconds
            self.stopping.wait(min(1.0, max(0.05, idle if idle is not None else 1.0)))
        self.drain()
        return 0

    def monitor(self) -> None:
        self._step("monitor-prs", lambda mesh: run_monitor_prs(mesh, verbose=self.verbose))

    def claim(self) -> None:
        if not self.stopping.is_set():  # draining: no new claims
            self._step("claim-task", lambda mesh: run_claim_task(mesh, verbose=self.verbose))

    def _step(self, name: str, run: Callable[[Mesh], object]) -> None:
        """One run; whatever goes wrong is reported and the daemon keeps its schedule."""
        try:
            self.on_report(name, run(self.make_mesh()))
        except AgentmeshError as exc:
            print(f"agentmesh daemon: {name}: {exc}", file=sys.stderr, flush=True)
        except Exception:  # noqa: BLE001 -- a bug in one run must not stop the fleet's agent; the next run retries
            print(f"agentmesh daemon: {name} crashed:\n{traceback.format_exc()}", file=sys.stderr, flush=True)

    def drain(self) -> None:
        from agentmesh.agent.drain import release_unworked

        try:
            mesh = self.make_mesh()
            self.released = release_unworked(mesh, mesh.open_forge())
        except AgentmeshError as exc:
            print(f"agentmesh daemon: drain: {exc}", file=sys.stderr, flush=True)
