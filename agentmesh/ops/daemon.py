"""`agentmesh daemon`: claim-task and monitor-prs on a schedule in one long-running process.

The same runs cron would start, on `schedule`'s clock: each run builds a
fresh Mesh (policy and heads are read anew) and takes its command's host
lock, so a daemon next to a cron line is safe. Every host starts at its own
offset within the jitter, and each interval is drawn anew within
[interval, interval + jitter], so a fleet started together spreads out.

SIGTERM or SIGINT drains: the step in progress finishes (an executor run is
not cut short), then claims with no work yet are released and the process
exits 0.

A step that fails is reported as the CLI reports a command (ops/failures.py):
one line, and for a bug a redacted crash log in the state dir's logs/.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import schedule

from agentmesh.agent.mesh import Mesh
from agentmesh.core.digest import sha256
from agentmesh.core.errors import EXIT_BUG, EXIT_OK, ConfigError, TemporaryError
from agentmesh.core.terminal import terminal_line
from agentmesh.host.config import LeasePolicy
from agentmesh.ops.failures import Failure, failure
from agentmesh.ops.runs import run_claim_task, run_monitor_prs


@dataclass(frozen=True)
class Cadence:
    claim_seconds: float
    monitor_seconds: float
    jitter_seconds: float


def check_cadence(cadence: Cadence, lease: LeasePolicy) -> None:
    """claim-task runs renew the claims whose PRs are in review, at the first run after renew_seconds since
    the last push (core/lease.renewal_due); between them nothing does (gates renew only during a review),
    so renew_seconds plus the longest gap must stay within the lease."""
    longest = cadence.claim_seconds + cadence.jitter_seconds
    if longest > lease.seconds - lease.renew_seconds:
        raise ConfigError(f"claim-task every {cadence.claim_seconds:g}s (+{cadence.jitter_seconds:g}s jitter) would "
                          f"let claims in review lapse: the mesh lease is {lease.seconds}s, renewed every "
                          f"{lease.renew_seconds}s; keep the interval plus jitter at most "
                          f"{lease.seconds - lease.renew_seconds}s")


def host_offset(agent: str, host: str, jitter_seconds: float) -> float:
    """A stable start offset in [0, jitter): the same host always starts at the same point."""
    digest = sha256(f"{agent}@{host}".encode()).digest()
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
        self.crash_dir: Path | None = None  # the state dir's logs/, once a mesh was built

    def stop(self, *_args) -> None:
        """Signal handler: finish the current step, then drain."""
        self.stopping.set()

    def run(self) -> int:
        with self.make_mesh() as mesh:
            self.crash_dir = mesh.state.logs
            try:
                check_cadence(self.cadence, mesh.policy.lease)
            except TemporaryError:
                pass  # the remote is down now: its steps report that, one line each, and the daemon carries on
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
        return self.drain()

    def monitor(self) -> None:
        self._step("monitor-prs", lambda mesh: run_monitor_prs(mesh, verbose=self.verbose))

    def claim(self) -> None:
        if not self.stopping.is_set():  # draining: no new claims
            self._step("claim-task", lambda mesh: run_claim_task(mesh, verbose=self.verbose))

    def _step(self, name: str, run: Callable[[Mesh], object]) -> None:
        """One run; whatever goes wrong is reported and the daemon keeps its schedule."""
        try:
            with self.make_mesh() as mesh:
                report = run(mesh)
            self.on_report(name, report)
        except Exception as exc:  # noqa: BLE001 -- a bug in one run must not stop the fleet's agent; the next run retries
            self._failed(name, exc)

    def drain(self) -> int:
        from agentmesh.agent.drain import release_unworked

        try:
            with self.make_mesh() as mesh:
                self.released = release_unworked(mesh, mesh.open_forge())
        except Exception as exc:  # noqa: BLE001 -- reported like a step; a bug still ends the process with exit 3
            if self._failed("drain", exc).is_bug:
                return EXIT_BUG
        return EXIT_OK

    def _failed(self, name: str, exc: Exception) -> Failure:
        failed = failure(exc, crash_dir=self.crash_dir)
        print(f"agentmesh daemon: {name}: {terminal_line(failed.message)}", file=sys.stderr, flush=True)
        return failed
