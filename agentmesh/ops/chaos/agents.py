"""The agent processes the harness starts, signals and restarts.

Each agent lives in its own host folder (config, state, logs, crash logs), as on its own machine.
It runs either cron-style (the harness starts `agentmesh claim-task` and `agentmesh monitor-prs`
every few seconds, as cron would, whether or not the last run finished) or as one `agentmesh
daemon`, restarted when it dies (as systemd's Restart=always would). Everything here is driven
by `tick()` from the harness's one loop: no threads.

Executors run in their own sessions, so signals to an agent's process group miss them; they are
found through the agent's `running/issue-*.json` pidfiles.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from agentmesh.host.process import kill_group, start_process, stop_groups
from agentmesh.host.state import CLOCK_SKEW_ENV
from agentmesh.ops.chaos.leftovers import group_processes, running_executors
from agentmesh.ops.demo import agent_argv, agent_env, daemon_args

RESTART_SECONDS = 1.0  # a daemon that died on its own is restarted after this (systemd's RestartSec)
STUCK_GRACE = 5.0  # between SIGTERM and SIGKILL for a process that did not stop when asked
MAX_OVERLAP = 3  # cron runs of one command per agent alive at once; more are skipped, and counted


class Style(StrEnum):
    CRON = "cron"
    DAEMON = "daemon"


class Command(StrEnum):
    CLAIM = "claim-task"
    MONITOR = "monitor-prs"


@dataclass
class Cadence:
    cron_seconds: float = 4.0  # cron-style: each command starts this often
    daemon_seconds: float = 2.0  # daemons: --claim-every and --monitor-every
    jitter_seconds: float = 1.0


@dataclass
class Run:
    command: str
    proc: subprocess.Popen


@dataclass
class Agent:
    name: str
    style: Style
    config: Path
    cadence: Cadence
    runs: list[Run] = field(default_factory=list)  # processes alive now
    exits: Counter[str] = field(default_factory=Counter)  # exit code -> count, cron-style runs only
    daemon_exits: Counter[str] = field(default_factory=Counter)  # a daemon's deaths, the nemesis's included
    starts: int = 0
    skipped: int = 0  # cron ticks skipped because MAX_OVERLAP runs were still alive
    stopped_at_end: int = 0  # runs still going when the harness stopped the mesh (not in `exits`)
    down_until: float | None = None  # killed: no runs until then
    is_paused: bool = False
    paused: list[int] = field(default_factory=list)  # process groups SIGSTOPped, to SIGCONT
    _due: dict[str, float] = field(default_factory=dict)
    _restart_at: float = 0.0

    @property
    def home(self) -> Path:
        return self.config.parent

    @property
    def state_dir(self) -> Path:
        return self.home / "state"

    @property
    def skew_file(self) -> Path:
        return self.home / "clock-skew"

    @property
    def log_path(self) -> Path:
        return self.home / f"{self.style}.log"

    def env(self) -> dict[str, str]:
        crashes = self.home / "crashes"
        crashes.mkdir(exist_ok=True)
        # the skew is read from a file at every clock reading, so a running daemon's clock jumps too
        return {**agent_env(), CLOCK_SKEW_ENV: f"@{self.skew_file}", "AGENTMESH_CRASH_DIR": str(crashes)}

    def _start(self, command: str, *args: str) -> None:
        proc = start_process(agent_argv(self.config, *args), cwd=self.home, env=self.env(), log_path=self.log_path)
        self.runs.append(Run(command, proc))
        self.starts += 1

    # --- the loop --------------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        self._reap(now)
        if self.is_paused or (self.down_until is not None and now < self.down_until):
            return
        self.down_until = None
        if self.style is Style.CRON:
            self._cron(now)
        elif not self.runs and now >= self._restart_at:
            self._start("daemon", *daemon_args(every=self.cadence.daemon_seconds, jitter=self.cadence.jitter_seconds))

    def _cron(self, now: float) -> None:
        period = self.cadence.cron_seconds
        for offset, command in ((0.0, Command.CLAIM), (period / 2, Command.MONITOR)):
            due = self._due.setdefault(command, now + offset)
            if now < due:
                continue
            self._due[command] = max(due + period, now)  # like cron: no burst to catch up after a pause
            if sum(r.command == command for r in self.runs) >= MAX_OVERLAP:
                self.skipped += 1
            else:
                self._start(command, command)

    def _reap(self, now: float) -> None:
        alive = []
        for run in self.runs:
            code = run.proc.poll()
            if code is None:
                alive.append(run)
            elif run.command == "daemon":
                self.daemon_exits[str(code)] += 1
                self._restart_at = now + RESTART_SECONDS
            else:
                self.exits[str(code)] += 1
        self.runs = alive

    # --- faults ----------------------------------------------------------------------------------

    def kill(self, now: float, down_seconds: float) -> str:
        """SIGKILL every process group of this agent (not its executors: they run on, orphaned,
        as after a real crash) and keep it down for a while."""
        groups = [r.proc for r in self.runs]
        self.resume()
        stop_groups(groups, grace=0)
        self._reap(now)
        self.down_until = now + down_seconds
        return f"killed {len(groups)} process group(s)"

    def kill_executors(self) -> int:
        groups = running_executors(self.state_dir)
        for pgid in groups:
            kill_group(pgid, grace=0)
        return len(groups)

    def pause(self) -> str:
        """SIGSTOP the agent's processes and its executors, as a frozen host would be; no new runs
        start until it is resumed."""
        self.paused = [r.proc.pid for r in self.runs if r.proc.poll() is None] + running_executors(self.state_dir)
        for pgid in self.paused:
            _signal(pgid, signal.SIGSTOP)
        self.is_paused = True
        return f"stopped {len(self.paused)} process group(s)"

    def resume(self) -> str:
        count = len(self.paused)
        for pgid in self.paused:
            _signal(pgid, signal.SIGCONT)
        self.paused, self.is_paused = [], False
        return f"continued {count} process group(s)"

    def set_skew(self, seconds: float) -> str:
        if seconds:
            self.skew_file.write_text(f"{seconds:g}\n")
        else:
            self.skew_file.unlink(missing_ok=True)
        return f"wall clock {seconds:+.0f}s"


def _signal(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # gone meanwhile


def stop_agents(agents: list[Agent], grace: float, now: float) -> tuple[int, list[str]]:
    """Ask every agent process to stop, as its scheduler would: a daemon gets SIGTERM (it drains), a
    cron-style run is not restarted and may finish its step (cron never kills a run). Whatever still
    runs after `grace` is stuck: SIGTERM, then SIGKILL. Returns how many were asked and the stuck."""
    runs = []
    for agent in agents:
        agent.resume()
        agent._reap(now)
        runs += [(agent, run) for run in agent.runs]
    for _, run in runs:
        if run.command == "daemon":
            _signal(run.proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(run.proc.poll() is None for _, run in runs) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [(agent, run) for agent, run in runs if run.proc.poll() is None]
    doing = {id(run): "; ".join(group_processes(run.proc.pid)) for _, run in left}
    stop_groups([run.proc for _, run in left], grace=min(grace, STUCK_GRACE))
    stuck = {id(run) for _, run in left}
    for agent, run in runs:
        if run.command == "daemon" or id(run) in stuck:
            agent.stopped_at_end += 1
        else:  # a cron-style run that finished its step: its exit code counts like any other
            agent.exits[str(run.proc.returncode)] += 1
    for agent in agents:
        agent.runs = []
    return len(runs), [f"{agent.name} {run.command} (pid {run.proc.pid}): {doing[id(run)]}" for agent, run in left]
