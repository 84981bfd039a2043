"""One chaos run: set up, run the agents under the nemesis, quiesce, stop, judge.

1. a local-forge remote with the demo repository and seeded issues, served by the harness's own
   `git daemon`; one host folder per agent whose remote is the git:// URL, with a short lease and
   the demo executor behind a seeded delay;
2. the agents start (some cron-style, some daemons) and the nemesis plays its plan;
3. every fault is healed and the agents keep running until every issue is closed or parked
   (then a short settle for the clean-up), or the timeout;
4. every agent process is asked to stop (SIGTERM) and must exit within the stop grace; then the
   remote is judged with git plumbing and the host for locks left held.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agentmesh.core.errors import TemporaryError
from agentmesh.git.run import GitError
from agentmesh.host.process import kill_group
from agentmesh.ops.chaos.agents import Agent, Cadence, Style, stop_agents
from agentmesh.ops.chaos.gitdaemon import GitDaemon, GitDaemonError
from agentmesh.ops.chaos.invariants import Verdict, check_remote, journal_gaps, no_leftovers, one_merge, settled
from agentmesh.ops.chaos.leftovers import LockScan, StopRecord, group_processes, running_executors, scan_locks
from agentmesh.ops.chaos.mounts import is_mount_point, restore
from agentmesh.ops.chaos.nemesis import Applied, Cluster, Nemesis
from agentmesh.ops.chaos.remote import read_remote
from agentmesh.ops.chaos.schedule import Fault, Plan, Shape, plan
from agentmesh.ops.demo import agent_names, create_remote, demo_roster, mesh_policy, seed_issues, write_host

TICK = 0.2  # the harness loop's period
CHECK_EVERY = 2.0  # remote reads while quiescing
REPO = "mesh.git"


@dataclass(frozen=True)
class Options:
    agents: int = 3
    daemons: int | None = None  # how many of the agents run as daemons; default: half, rounded down
    issues: int = 8
    seed: int = 0
    nemesis_seconds: float = 90.0
    lease_seconds: int = 60
    grace_seconds: int = 10
    clean: bool = False  # no faults
    timeout: float = 120.0  # the longest quiescence after the nemesis
    cron_seconds: float = 4.0
    stop_grace: float = 30.0
    git_timeout: float = 10.0  # below the hang fault's length, so agents meet their timeouts
    long_share: float = 0.25
    faults: tuple[Fault, ...] = tuple(Fault)

    @property
    def daemon_count(self) -> int:
        return self.agents // 2 if self.daemons is None else self.daemons

    @property
    def renew_seconds(self) -> int:
        return max(10, self.lease_seconds // 4)  # the policy wants lease >= 3 x renew

    def shape(self, names: list[str]) -> Shape:
        return Shape(tuple(names), self.nemesis_seconds, self.lease_seconds, self.grace_seconds, self.faults)

    def plan(self, names: list[str]) -> Plan:
        return Plan(()) if self.clean else plan(self.seed, self.shape(names))

    def to_json(self) -> dict:
        return {"agents": self.agents, "daemons": self.daemon_count, "issues": self.issues, "seed": self.seed,
                "nemesis_seconds": self.nemesis_seconds, "lease_seconds": self.lease_seconds,
                "grace_seconds": self.grace_seconds, "renew_seconds": self.renew_seconds, "clean": self.clean,
                "timeout": self.timeout, "cron_seconds": self.cron_seconds, "faults": [str(f) for f in self.faults]}


@dataclass
class ChaosResult:
    options: Options
    root: Path
    remote: Path
    agents: dict[str, str]  # name -> style
    plan: Plan
    timeline: list[Applied] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    drain_seconds: float | None = None  # from the nemesis's end until every issue settled; None: never
    exit_codes: Counter[str] = field(default_factory=Counter)  # over every cron-style run
    daemon_exits: dict[str, dict[str, int]] = field(default_factory=dict)
    cron_skipped: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.verdicts) and all(v.ok for v in self.verdicts)

    def to_json(self) -> dict:
        return {"seed": self.options.seed, "ok": self.ok, "options": self.options.to_json(), "root": str(self.root),
                "remote": str(self.remote), "agents": self.agents, "plan": self.plan.to_json(),
                "timeline": [a.to_json() for a in self.timeline],
                "invariants": [v.to_json() for v in self.verdicts],
                "drain_seconds": None if self.drain_seconds is None else round(self.drain_seconds, 1),
                "exit_codes": dict(sorted(self.exit_codes.items(), key=lambda kv: int(kv[0]))),
                "cron_runs": sum(self.exit_codes.values()), "cron_skipped": self.cron_skipped,
                "daemon_exits": self.daemon_exits, "seconds": round(self.seconds, 1)}


def executor_command(options: Options, long_until: float) -> list[str]:
    return [sys.executable, "-m", "agentmesh.ops.chaos.executor", "--seed", str(options.seed),
            "--lease", str(options.lease_seconds), "--grace", str(options.grace_seconds),
            "--long-share", str(options.long_share), "--long-until", f"{long_until:.0f}",
            "{issue}", "{task_file}", "{worktree}"]


def set_up(root: Path, options: Options, echo: Callable[[str], None]) -> tuple[Cluster, list[int]]:
    names = agent_names(options.agents)
    repo = root / "served" / REPO
    lease = {"seconds": options.lease_seconds, "renew_seconds": options.renew_seconds,
             "grace_seconds": options.grace_seconds}
    create_remote(repo, mesh_policy(names, lease=lease), demo_roster(root, names))
    issues = seed_issues(root, repo, options.issues)
    daemon = GitDaemon(repo.parent, root / "git-daemon.log")
    try:
        daemon.start()
    except GitDaemonError as exc:
        raise TemporaryError(str(exc)) from None
    try:
        agents = _hosts(root, names, daemon.url(REPO), options)
    except BaseException:
        daemon.stop()
        raise
    echo(f"mesh in {root}: remote {daemon.url(REPO)} ({repo}), {len(issues)} issues; agents "
         + ", ".join(f"{a.name} ({a.style})" for a in agents.values()))
    return Cluster(agents, daemon, repo), issues


def _hosts(root: Path, names: list[str], url: str, options: Options) -> dict[str, Agent]:
    long_until = time.time() + options.nemesis_seconds
    agents = {}
    for i, name in enumerate(names):
        config = write_host(root, name, url, git_timeout_seconds=options.git_timeout,
                            executor={"kind": "command", "command": executor_command(options, long_until),
                                      "timeout_seconds": 600})
        style = Style.DAEMON if i < options.daemon_count else Style.CRON
        agents[name] = Agent(name, style, config, Cadence(cron_seconds=options.cron_seconds))
        agents[name].state_dir.mkdir(mode=0o700, exist_ok=True)
    return agents


def run_chaos(root: Path, options: Options, *, echo: Callable[[str], None] = lambda _: None) -> ChaosResult:
    started = time.monotonic()
    names = agent_names(options.agents)
    result = ChaosResult(options, root, root / "served" / REPO, {}, options.plan(names))
    echo(f"seed {options.seed}: {len(result.plan.events)} faults planned over {options.nemesis_seconds:.0f}s"
         + (" (--clean: none)" if options.clean else ""))
    for note in result.plan.left_out:
        echo(f"left out: {note}")
    cluster, issues = set_up(root, options, echo)
    result.agents = {a.name: str(a.style) for a in cluster.agents.values()}
    nemesis = Nemesis(result.plan, cluster)
    try:
        if not options.clean:
            _nemesis_phase(cluster, nemesis, options, echo)
        result.drain_seconds = _quiesce(cluster, options, echo)
        stop = _stop(cluster, options)
    finally:
        _heal_everything(cluster, nemesis)
    locks = scan_locks([cluster.repo], [a.state_dir for a in cluster.agents.values()])
    result.timeline = nemesis.timeline
    result.verdicts = judge(cluster.repo, names, issues, stop, locks)
    for agent in cluster.agents.values():
        result.exit_codes.update(agent.exits)
        result.cron_skipped += agent.skipped
        if agent.style is Style.DAEMON:
            result.daemon_exits[agent.name] = dict(agent.daemon_exits)
    result.seconds = time.monotonic() - started
    return result


def judge(repo: Path, agents: list[str], issues: list[int], stop: StopRecord, locks: LockScan) -> list[Verdict]:
    return [*check_remote(read_remote(repo), agents=agents, issues=issues), stop.verdict(), locks.verdict()]


def _tick_agents(cluster: Cluster) -> None:
    now = time.monotonic()
    for agent in cluster.agents.values():
        agent.tick(now)


def _nemesis_phase(cluster: Cluster, nemesis: Nemesis, options: Options, echo: Callable[[str], None]) -> None:
    shown = 0
    while nemesis.elapsed(now := time.monotonic()) < options.nemesis_seconds:
        nemesis.tick(now)
        _tick_agents(cluster)
        shown = _show(nemesis.timeline, shown, echo)
        time.sleep(TICK)
    nemesis.heal_all(time.monotonic())
    _show(nemesis.timeline, shown, echo)


def _show(timeline: list[Applied], shown: int, echo: Callable[[str], None]) -> int:
    for applied in timeline[shown:]:
        echo(f"{applied.at:6.1f}s {'heal' if applied.heal else 'hit '} {applied.event.fault} "
             f"{applied.event.target}: {applied.note}")
    return len(timeline)


def _quiesce(cluster: Cluster, options: Options, echo: Callable[[str], None]) -> float | None:
    """Run until every issue is closed or parked, then until the clean-up is done: no claim or
    orphan branch left (agents sweep orphans only after lease + grace), no open PR beside a merged
    one (its author withdraws it on its next run) and every merged PR journaled (a run flushes its
    journal as it ends); or until the timeout. Returns the drain time
    (until every issue settled), or None."""
    begun = time.monotonic()
    settled_at: float | None = None
    next_check = begun
    while (now := time.monotonic()) - begun < options.timeout:
        _tick_agents(cluster)
        if now >= next_check:
            next_check = now + CHECK_EVERY
            try:
                view = read_remote(cluster.repo)
            except GitError:
                continue  # read again at the next check; the judgement reads once more at the end
            if settled_at is None and settled(view).ok:
                settled_at = now
                echo(f"quiet after {now - begun:.1f}s: every issue closed or parked")
            if settled_at is not None and no_leftovers(view).ok and one_merge(view).ok and not journal_gaps(view):
                break
        time.sleep(TICK)
    if settled_at is None:
        echo(f"not quiet after {options.timeout:.0f}s: stopping anyway")
    return None if settled_at is None else settled_at - begun


def _stop(cluster: Cluster, options: Options) -> StopRecord:
    agents = list(cluster.agents.values())
    daemon = cluster.daemon.proc
    server = group_processes(daemon.pid, skip=daemon.pid) if daemon is not None else []
    asked, stuck = stop_agents(agents, options.stop_grace, time.monotonic())
    left = []
    for agent in agents:
        for pgid in running_executors(agent.state_dir):
            left.append(f"{agent.name} pgid {pgid}")
            kill_group(pgid, grace=0)
    return StopRecord(asked, options.stop_grace, tuple(stuck), tuple(left), tuple(server))


def _heal_everything(cluster: Cluster, nemesis: Nemesis) -> None:
    """Whatever happened, leave a healthy host: faults healed, nothing of ours running or mounted."""
    nemesis.heal_all(time.monotonic())
    if cluster.moved.exists() and not cluster.repo.exists():
        cluster.moved.rename(cluster.repo)
    for agent in cluster.agents.values():
        agent.set_skew(0)
        if is_mount_point(agent.state_dir):
            restore(agent.state_dir)
    stop_agents(list(cluster.agents.values()), 0, time.monotonic())
    for agent in cluster.agents.values():
        for pgid in running_executors(agent.state_dir):
            kill_group(pgid, grace=0)
    cluster.daemon.stop()
