"""A fleet benchmark (run on demand; results go to docs/benchmarks.md): N agents drain M issues on one remote.

    python benchmarks/fleet.py [--agents 4] [--issues 12] [--sleep 1] [--backend file|git|gitea|github]
                               [--mode cron|daemon] [--every 1] [--code DIR] [--json]

In cron mode (the default) every agent runs `agentmesh tick` (monitor-prs, then claim-task: what one cron line
runs) as a whole process, the next one as soon as the last exits, until the remote shows every issue closed.
In daemon mode every agent is one `agentmesh daemon` process (the fast path: start-up paid once), running
claim-task and monitor-prs every `--every` seconds; when the remote drained it gets SIGTERM, finishes its
step, releases and exits, and its whole process tree's CPU (os.wait4: the daemon and every git, gate and
executor process under it) is what it cost. `--code DIR` runs the agentmesh/ package in DIR instead of this
checkout's (PYTHONPATH), for a before/after in one sitting. The
executor is a script that sleeps `--sleep` seconds and writes the issue's greeting helper, so agents
overlap on a 2-core machine as real executors (which wait on a model) would. Backends: the local forge
over file:// or `git daemon`, or the Gitea or GitHub fake (tests/support/fakes) served over HTTP, hosting
the real bare repository the agents push to over file://.

Reported:
- the drain time (first tick started to every issue closed, read from the remote or the fake) against
  the ideal M/N x (sleep + one cycle's overhead); one cycle's overhead is the median wall time of the
  working ticks (those that ran the executor) of a calibration run first, 1 agent x 2 issues at sleep 0
  on the same backend (a lone agent merges on the gates alone), so contention in the fleet does not
  raise its own ideal (--no-calibrate: this run's working ticks less the sleep); and against the CPU
  floor, the fleet's CPU over the machine's cores: a drain shorter than that needs less CPU per issue
  or more cores, however idle the machine;
- CPU per issue: user + system of every tick's (or daemon's) whole process tree (os.wait4: the agent, its git
  and gate processes, the executor), summed, per issue closed; the `git daemon` serving the remote is counted
  apart; agents keep their bytecode (PYTHONPYCACHEPREFIX in the run's folder) as an installed package does;
- git calls and git processes per tick, from git's trace2 events (tests/support/gitcount.py) through a
  `git` shim first on each agent's PATH: calls are the processes the agent started, processes include
  their git children (upload-pack, receive-pack, index-pack, gc...); the shim costs a shell and the
  trace per process, so CPU per issue is also given less that cost, measured in the same run; and split
  by tick: working (ran an executor), other (reviewed, merged or renewed only), idle;
- forge requests per tick (the fakes count them; attributed to a tick by the agent's token and time);
- lost races per claim, from the claim-task reports (`lost-race` events over `claimed` ones); with
  `--aged D` the issues are created D days apart, a backlog filed over weeks whose
  scores rarely tie, where agents that rank alike would all go for the oldest issue first;
- whole-process `agentmesh claims acquire` against a raw `git push` + readback, interleaved, as the median
  of paired ratios (benchmarks/bench_claims.py's `whole_process_pairs`).

The machine is shared and noisy: compare ratios measured in one run, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentmesh.host.process import stop_groups  # noqa: E402
from agentmesh.ops.chaos.gitdaemon import GitDaemon  # noqa: E402
from agentmesh.ops.chaos.remote import read_remote  # noqa: E402
from agentmesh.ops.demo import (  # noqa: E402
    agent_argv,
    agent_env,
    agent_names,
    create_remote,
    demo_roster,
    issue_body,
    mesh_policy,
    seed_issues,
    watcher,
    write_host,
)
from tests.support.gitcount import GitCount  # noqa: E402

BACKENDS = ("file", "git", "gitea", "github")
REPO = "mesh.git"
TOKEN_ENV = "FLEET_FORGE_TOKEN"
STOP_GRACE = 120.0  # for the ticks still running when the remote drained
# The executor: sleep, then write the greeting helper the issue asks for (what the demo executor would).
WORK_SCRIPT = ('sleep "$1"; mkdir -p demo; '
               "printf 'def greet_%s(name: str) -> str:\\n    return f\"Hello, {name}! (helper %s)\"\\n' "
               '"$2" "$2" > "demo/greet_$2.py"')


def work_executor(sleep: float) -> list[str]:
    return ["sh", "-c", WORK_SCRIPT, "fleet-work", f"{sleep:g}", "{issue}"]


@dataclass(frozen=True)
class Options:
    agents: int = 4
    issues: int = 12
    sleep: float = 1.0
    backend: str = "file"
    timeout: float = 900.0  # for the drain
    count_git: bool = True
    calibrate: bool = True  # measure one cycle's overhead with a 1 x 2 run first
    acquire_rounds: int = 15  # whole-process acquire vs raw push pairs; 0: skip
    aged: float = 0.0  # days between issues' creation: a backlog filed over weeks, not at once
    mode: str = "cron"  # cron: a `tick` process per cycle; daemon: one `agentmesh daemon` per agent
    every: float = 1.0  # daemon mode: seconds between its claim-task runs, and between its monitor-prs runs
    code: Path | None = None  # agents run the agentmesh package in this folder (a copy of main: before/after)
    python: str | None = None  # agents run this interpreter (another venv's: its agentmesh); None: this one
    idle: float = 0.0  # daemon mode: seconds the daemons poll on after the drain, measured apart (IdleSteps)


# --- one agent's ticks -----------------------------------------------------------------------------


@dataclass
class Tick:
    agent: str
    started: float  # monotonic
    wall: float
    cpu: float  # user + system of the whole process tree
    exit_code: int
    events: Counter[str]  # claim-task's and monitor-prs' report events
    git_calls: int | None = None  # the git processes the agent started
    git_processes: int | None = None  # and their git children
    requests: int | None = None
    gave_up: int = 0  # "gave up after N ..." in its report or log: a ref that kept moving (a journal flush
    # against a busy main) or the local forge's concurrent updates
    steps: int = 1  # the runs it made: a tick is one cycle; a daemon's life, every claim-task and monitor-prs run

    @property
    def working(self) -> bool:
        return self.events["executed"] > 0 or self.events["pr-opened"] > 0

    @property
    def idle(self) -> bool:
        """Nothing to do: no event but `idle` (claim-task's "nothing to claim") in either half."""
        return set(self.events) <= {"idle"}

    @property
    def ended(self) -> float:
        return self.started + self.wall


@dataclass
class Lane:
    """One agent: `agentmesh tick` back to back, each tick a whole process reaped with wait4 (cron mode), or
    one `agentmesh daemon` for the whole run, reaped with wait4 when it drained and exited (daemon mode)."""

    name: str
    config: Path
    env: dict[str, str]
    git: GitCount | None  # this agent's git processes, through its shim
    mode: str = "cron"
    every: float = 1.0  # daemon mode: its --claim-every and --monitor-every
    python: str | None = None
    ticks: list[Tick] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    started: float = 0.0
    git_commands: Counter[str] = field(default_factory=Counter)  # git command -> processes, over every tick

    @property
    def home(self) -> Path:
        return self.config.parent

    def start(self) -> None:
        n = len(self.ticks)
        with open(self.home / f"tick-{n}.out", "wb") as out, open(self.home / f"tick-{n}.err", "wb") as err:
            self.started = time.monotonic()
            self.proc = subprocess.Popen(self.argv(), cwd=self.home, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, start_new_session=True)

    def argv(self) -> list[str]:
        if self.mode == "daemon":  # no jitter: the fleet starts together on purpose, as the cron lanes do
            every = f"{self.every:g}"
            argv = agent_argv(self.config, "daemon", "--claim-every", every, "--monitor-every", every,
                              "--jitter", "0", "--json")
        else:
            argv = agent_argv(self.config, "tick", "--json")
        return [self.python or argv[0], *argv[1:]]

    def so_far(self) -> tuple[float, int, int, int]:
        """Daemon mode, while it runs: (the CPU of its process tree so far: itself and the children it reaped,
        with theirs; its runs so far; the git processes and the git calls so far)."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        cpu = sum(int(fields[i]) for i in (11, 12, 13, 14)) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime
        _, steps = daemon_events((self.home / f"tick-{len(self.ticks)}.out").read_text(errors="replace"))
        git = (self.git.processes(), self.git.calls()) if self.git is not None else (0, 0)
        return cpu, steps, *git

    def drain(self) -> None:
        """Daemon mode: SIGTERM to the daemon alone (not its group): it finishes its step, releases, exits."""
        if self.proc is not None and self.mode == "daemon":
            self.proc.send_signal(signal.SIGTERM)

    def reap(self) -> Tick | None:
        """The tick just finished, or None while it runs."""
        if self.proc is None:
            return None
        pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
        if pid == 0:
            return None
        wall = time.monotonic() - self.started
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        n = len(self.ticks)
        out = (self.home / f"tick-{n}.out").read_text(errors="replace")
        err = (self.home / f"tick-{n}.err").read_text(errors="replace")
        events, steps = (report_events(out), 1) if self.mode == "cron" else daemon_events(out)
        tick = Tick(self.name, self.started, wall, usage.ru_utime + usage.ru_stime, self.proc.returncode,
                    events, gave_up=(out + err).count("gave up after"), steps=steps)
        if self.git is not None:  # one agent's ticks run one after the other: all the events are this tick's
            tick.git_calls, tick.git_processes = self.git.calls(), self.git.processes()
            self.git_commands.update(self.git.commands())
            if self.git.events.exists():  # kept beside the tick's output, for --keep
                self.git.events.rename(self.home / f"tick-{n}.trace2")
            self.git.reset()
        self.proc = None
        self.ticks.append(tick)
        return tick


def report_events(stdout: str) -> Counter[str]:
    """The events of a `tick --json` report (both halves); none when it printed no report."""
    try:
        report = json.loads(stdout)
    except ValueError:
        return Counter()
    found: Counter[str] = Counter()
    halves = [half for half in report.values() if isinstance(half, dict)] if isinstance(report, dict) else []
    for half in halves:  # a crashed tick's report is {"error": ..., "exit_code": 3}: no half
        found.update(e.get("event", "") for e in half.get("events", []) if isinstance(e, dict))
    return found


def daemon_events(stdout: str) -> tuple[Counter[str], int]:
    """The events of a `daemon --json` output (one report a line, `command` naming the run) and its runs."""
    found: Counter[str] = Counter()
    steps = 0
    for line in stdout.splitlines():
        try:
            report = json.loads(line)
        except ValueError:
            continue
        if not isinstance(report, dict) or report.get("command") not in ("claim-task", "monitor-prs"):
            continue
        steps += 1
        found.update(e.get("event", "") for e in report.get("events", []) if isinstance(e, dict))
    return found, steps


def direct_python_path(path: str) -> str:
    """`path` with the real interpreter's folder first: the demo's gate runs `python3 check.py`, and where
    `python3` is a version manager's shim (pyenv: a bash script running ~25 processes) the benchmark measured
    the shim, not agentmesh; a host's python3 is a binary."""
    real = Path(os.path.realpath(getattr(sys, "_base_executable", sys.executable))).parent
    return f"{real}{os.pathsep}{path}" if (real / "python3").exists() else path


def git_shim(directory: Path) -> GitCount:
    """tests/support/gitcount.py's shim, for a child's PATH rather than this process's: a `git` in
    `directory` that has the real git write its trace2 events there."""
    real = shutil.which("git")
    if real is None:
        raise RuntimeError("git is not installed")
    directory.mkdir(parents=True, exist_ok=True)
    count = GitCount(directory / "trace2.events")
    (directory / "git").write_text(f"#!/bin/sh\nGIT_TRACE2_EVENT='{count.events}' exec '{real}' \"$@\"\n")
    (directory / "git").chmod(0o755)
    return count


def shim_cost(directory: Path, rounds: int = 40) -> float:
    """CPU seconds the shim adds to one git call: `git --version` through it and straight, interleaved."""
    real = shutil.which("git") or "git"
    shim = git_shim(directory / "probe").events.with_name("git")
    plain, shimmed = [], []
    for _ in range(rounds):
        for argv, into in (([real, "--version"], plain), ([str(shim), "--version"], shimmed)):
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
            _, _, usage = os.wait4(proc.pid, 0)
            proc.returncode = 0
            into.append(usage.ru_utime + usage.ru_stime)
    return max(0.0, statistics.mean(shimmed) - statistics.mean(plain))


# --- the served remote ----------------------------------------------------------------------------


@dataclass
class Served:
    """The remote the agents use: its URL, the forge settings and environment each agent gets, and how
    to tell which of the issues are closed."""

    repo: Path
    url: str
    issues: list[int]
    closed: Callable[[], set[int]]
    forge: dict | None = None
    agent_env: Callable[[str], dict[str, str]] = lambda _: {}
    requests: list[tuple[float, str]] = field(default_factory=list)  # (monotonic, login) per forge request
    server_cpu: Callable[[], float | None] = lambda: None


def closed_on_remote(repo: Path, numbers: list[int]) -> Callable[[], set[int]]:
    def closed() -> set[int]:
        view = read_remote(repo)
        return {i.number for i in view.issues if i.number in numbers and i.state == "closed"}
    return closed


@contextmanager
def served(root: Path, backend: str, names: list[str], count: int, sleep: float,
           aged: float = 0.0) -> Iterator[Served]:
    repo = root / "served" / REPO
    # a lone agent has no one to review its PRs: it merges on the gates alone
    review = {"ring": names, "required_approvals": 1 if len(names) > 1 else 0}
    policy = mesh_policy(names, review=review, executor_script=work_executor(sleep))
    create_remote(repo, policy, demo_roster(root, names))
    if backend == "file":
        issues = seed_local(root, repo, count, aged)
        yield Served(repo, f"file://{repo}", issues, closed_on_remote(repo, issues))
    elif backend == "git":
        issues = seed_local(root, repo, count, aged)
        daemon = GitDaemon(repo.parent, root / "git-daemon.log")
        daemon.start()
        state: dict[str, float] = {}
        try:
            yield Served(repo, daemon.url(REPO), issues, closed_on_remote(repo, issues),
                         server_cpu=lambda: state.get("cpu"))
        finally:
            state["cpu"] = stop_counted(daemon)
    else:
        with fake_served(repo, backend, names, count, aged) as found:
            yield found


def seed_local(root: Path, repo: Path, count: int, aged: float) -> list[int]:
    """The demo's issues on the local forge; `aged`: issue k (from 0) created (count - k) x `aged` days ago."""
    if not aged:
        return seed_issues(root, repo, count)
    from agentmesh.forge.local import LocalForge

    now = datetime.now(UTC)
    moment = [now]
    forge = LocalForge(watcher(root, repo).cache, user="demo-user", clock=lambda: moment[0])
    numbers = []
    for i in range(count):
        moment[0] = now - timedelta(days=(count - i) * aged)
        numbers.append(forge.create_issue(f"Add greeting helper {i + 1}", issue_body(i + 1), ["task"]).number)
    return numbers


def stop_counted(daemon: GitDaemon) -> float | None:
    """Stop the daemon; the CPU it and the upload-packs and receive-packs it forked used."""
    proc = daemon.proc
    if proc is None:
        return None
    os.killpg(proc.pid, signal.SIGTERM)
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    daemon.stop()  # whatever of its group is left
    return usage.ru_utime + usage.ru_stime


@contextmanager
def fake_served(repo: Path, kind: str, names: list[str], count: int, aged: float = 0.0) -> Iterator[Served]:
    """The Gitea or GitHub fake hosting `repo`, over HTTP on 127.0.0.1; each agent has its own account.
    `aged`: issue k (from 0) created (count - k) x `aged` days ago, the first the oldest."""
    from requests import Request

    from tests.contract.spec import fake_forge

    lock = threading.Lock()
    requests_seen: list[tuple[float, str]] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    fake = fake_forge(kind, me="fleet-bot", hosting=repo, url=base)
    tokens = {name: fake.add_account(name) for name in names}
    logins = {token: name for name, token in tokens.items()}
    task = fake.create_label("task")["id"]
    now = datetime.now(UTC)
    for i in range(count):
        item = fake.new_item(f"Add greeting helper {i + 1}", issue_body(i + 1), labels=[task])
        if aged:
            item.created_at = (now - timedelta(days=(count - i) * aged)).strftime("%Y-%m-%dT%H:%M:%SZ")
    issues = sorted(fake.items)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            prepared = Request(self.command, base + self.path, headers=dict(self.headers), data=body).prepare()
            token = (self.headers.get("Authorization") or "").split(" ")[-1]
            with lock:
                requests_seen.append((time.monotonic(), logins.get(token, "")))
                status, headers, text = fake.dispatch(prepared)
            payload = text.encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    server.RequestHandlerClass = Handler
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def closed() -> set[int]:
        with lock:
            return {n for n in issues if fake.items[n].state == "closed"}

    try:
        yield Served(repo, f"file://{repo}", issues, closed,
                     forge={"kind": kind, "url": base, "repo": f"{fake.owner}/{fake.name}", "token_env": TOKEN_ENV},
                     agent_env=lambda name: {TOKEN_ENV: tokens[name]}, requests=requests_seen)
    finally:
        server.shutdown()
        server.server_close()


# --- the run ---------------------------------------------------------------------------------------


@dataclass
class IdleSteps:
    """What the daemons' runs cost once every issue is closed: every run idle (the polling a fleet pays)."""

    seconds: float
    steps: int
    cpu: float
    git_processes: int
    git_calls: int


def idle_steps(lanes: list[Lane], seconds: float) -> IdleSteps:
    """Let the drained fleet's daemons poll on for `seconds`, and measure it."""
    before = [lane.so_far() for lane in lanes]
    time.sleep(seconds)
    after = [lane.so_far() for lane in lanes]
    cpu, steps, git, calls = (sum(a[i] - b[i] for a, b in zip(after, before, strict=True)) for i in range(4))
    return IdleSteps(seconds, int(steps), cpu, int(git), int(calls))


@dataclass
class FleetRun:
    options: Options
    drained: bool
    drain_seconds: float
    closed: int
    ticks: list[Tick]
    git_commands: Counter[str]  # git command -> processes
    server_cpu: float | None
    requests_total: int | None
    idle: IdleSteps | None = None  # daemon mode with --idle: its cost is not in the drain's figures


def lanes_for(root: Path, names: list[str], found: Served, options: Options) -> list[Lane]:
    from benchmarks.bench_claims import compiled

    lanes = []
    for name in names:
        settings: dict = {"executor": {"kind": "script", "timeout_seconds": 600}}
        if found.forge is not None:
            settings["forge"] = found.forge
        config = write_host(root, name, found.url, **settings)
        # bytecode kept, as an installed package's is (bench_claims.compiled), shared by the fleet
        env = compiled({**agent_env(), **found.agent_env(name)}, root / "pycache")
        env["XDG_STATE_HOME"] = str(root / "xdg-state")  # the host-config snapshots: this run's, not the user's
        if options.code is not None:
            env["PYTHONPATH"] = str(options.code)
        env["PATH"] = direct_python_path(env.get("PATH", ""))
        count = None
        if options.count_git:
            count = git_shim(config.parent / "shim")
            env["PATH"] = f"{count.events.parent}{os.pathsep}{env.get('PATH', '')}"
        lanes.append(Lane(name, config, env, count, options.mode, options.every, options.python))
    return lanes


def drive(lanes: list[Lane], found: Served, timeout: float, echo: Callable[[str], None]) -> tuple[bool, float, int]:
    """Run the lanes until every issue is closed (checked after each tick that merged, and every few
    seconds) or the timeout; then let the running ticks finish. (drained, seconds, closed)."""
    begun = time.monotonic()
    for lane in lanes:
        lane.start()
    closed: set[int] = set()
    drained_at: float | None = None
    every = 1 if any(lane.mode == "daemon" for lane in lanes) else 5  # a daemon reports no tick's end
    next_check = begun + every
    while drained_at is None and time.monotonic() - begun < timeout:
        done = {lane.name: tick for lane in lanes if (tick := lane.reap()) is not None}
        if any(t.events["merged"] for t in done.values()) or time.monotonic() >= next_check:
            next_check = time.monotonic() + every
            seen = found.closed()
            if len(seen) > len(closed):
                echo(f"{time.monotonic() - begun:6.1f}s: {len(seen)}/{len(found.issues)} issues closed")
            closed = seen
            if len(closed) == len(found.issues):
                drained_at = time.monotonic()
                break  # before the agents whose tick just ended start another
        for lane in lanes:
            if lane.name in done and lane.mode == "cron":  # a daemon that exited stays down
                lane.start()
        time.sleep(0.05)
    seconds = (drained_at or time.monotonic()) - begun
    return drained_at is not None, seconds, len(closed)


def finish(lanes: list[Lane]) -> None:
    """Let the ticks still running end (they count: a fleet pays them too), and the daemons drain and exit;
    stop them after STOP_GRACE."""
    for lane in lanes:
        lane.drain()
    deadline = time.monotonic() + STOP_GRACE
    while any(lane.proc is not None for lane in lanes) and time.monotonic() < deadline:
        for lane in lanes:
            lane.reap()
        time.sleep(0.05)
    left = [lane for lane in lanes if lane.proc is not None]
    stop_groups([lane.proc for lane in left if lane.proc is not None], grace=5)
    for lane in left:
        lane.reap()


def attribute_requests(ticks: list[Tick], requests: list[tuple[float, str]]) -> None:
    """Each forge request to the tick of its agent that was running when it came (one agent's ticks run
    one after the other)."""
    by_agent: dict[str, list[Tick]] = {}
    for tick in ticks:
        tick.requests = 0
        by_agent.setdefault(tick.agent, []).append(tick)
    for at, login in requests:
        for tick in by_agent.get(login, ()):
            if tick.started <= at <= tick.ended:
                tick.requests = (tick.requests or 0) + 1
                break


_IMPORT_ALL = (
    "import importlib, pkgutil, agentmesh\n"
    "for found in pkgutil.walk_packages(agentmesh.__path__, 'agentmesh.'):\n"
    "    try:\n"
    "        importlib.import_module(found.name)\n"
    "    except Exception:\n"
    "        pass\n"
)


def warm_bytecode(lane: Lane) -> None:
    """Compile, into the fleet's bytecode folder, every module an agent can import, before anything is
    measured: an installed package's .pyc files are written when it is installed, so no agent process pays
    for compiling. Without this the first process of the run (in daemon mode, the only one) compiled the
    standard library, pydantic and agentmesh: ~1 s of CPU, ~0.2 s per issue at 1 agent x 6."""
    python = lane.python or agent_argv(lane.config, "tick")[0]
    subprocess.run([python, "-c", _IMPORT_ALL], env=lane.env, cwd=lane.home, check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    if lane.git is not None:
        lane.git.reset()


def run_fleet(root: Path, options: Options, echo: Callable[[str], None] = lambda _: None) -> FleetRun:
    names = agent_names(options.agents)
    with served(root, options.backend, names, options.issues, options.sleep, options.aged) as found:
        lanes = lanes_for(root, names, found, options)
        warm_bytecode(lanes[0])
        echo(f"{options.agents} agents x {len(found.issues)} issues, executor sleeps {options.sleep:g}s, "
             f"backend {options.backend} ({found.url}), {options.mode} mode, in {root}")
        try:
            drained, seconds, closed = drive(lanes, found, options.timeout, echo)
            idle = idle_steps(lanes, options.idle) if options.idle and options.mode == "daemon" and drained else None
        finally:
            finish(lanes)
    ticks = sorted((t for lane in lanes for t in lane.ticks), key=lambda t: t.started)
    if found.forge is not None:
        attribute_requests(ticks, found.requests)
    calls: Counter[str] = Counter()
    for lane in lanes:
        calls.update(lane.git_commands)
    return FleetRun(options, drained, seconds, closed, ticks, calls, found.server_cpu(),
                    len(found.requests) if found.forge is not None else None, idle)


# --- the report ------------------------------------------------------------------------------------


def median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def rounded(x: float | None, digits: int = 2) -> float | None:
    return None if x is None else round(x, digits)


def cycle_overhead(run: FleetRun) -> float | None:
    """One cycle's overhead in `run`: its median working tick, less the executor's sleep; for daemons (no tick
    to time), the drain per issue of one agent, less the sleep."""
    if run.options.mode == "daemon":
        per_issue = run.drain_seconds / max(1, run.closed) * run.options.agents
        return max(0.0, per_issue - run.options.sleep) if run.closed else None
    walls = [t.wall for t in run.ticks if t.working]
    found = median(walls)
    return None if found is None else max(0.0, found - run.options.sleep)


def summary(run: FleetRun, *, overhead: float | None, overhead_source: str, shim_seconds: float,
            acquire: dict | None) -> dict:
    o = run.options
    ticks = run.ticks
    working = [t for t in ticks if t.working]
    idle = [t for t in ticks if t.idle]
    idle_run = run.idle or IdleSteps(0.0, 0, 0.0, 0, 0)  # measured apart: not the drain's
    cpu = sum(t.cpu for t in ticks) - idle_run.cpu
    git_calls = sum(t.git_calls or 0 for t in ticks) - idle_run.git_calls if o.count_git else None
    git_processes = sum(t.git_processes or 0 for t in ticks) - idle_run.git_processes if o.count_git else None
    ideal = None if overhead is None else o.issues / o.agents * (o.sleep + overhead)
    claims = sum(t.events["claimed"] for t in ticks)
    lost = sum(t.events["lost-race"] for t in ticks)
    exits = Counter(str(t.exit_code) for t in ticks)
    cores = os.cpu_count() or 1
    done = max(1, run.closed)  # per issue closed: a run that timed out did not pay for the rest
    others = [t for t in ticks if not t.working and not t.idle]  # reviewed, merged or renewed, claimed nothing

    def per_tick(pick: Callable[[Tick], int | None], among: list[Tick]) -> float | None:
        values = [pick(t) for t in among]
        return rounded(median([float(v) for v in values if v is not None]), 1)

    return {
        "options": asdict(o) | {"code": None if o.code is None else str(o.code)},
        "drained": run.drained and run.closed == o.issues,
        "closed": run.closed,
        "drain_seconds": rounded(run.drain_seconds, 1),
        "cycle_overhead_seconds": rounded(overhead),
        "overhead_source": overhead_source,
        "ideal_seconds": rounded(ideal, 1),
        "efficiency": None if ideal is None or not run.drain_seconds else rounded(ideal / run.drain_seconds),
        "cpu_floor_seconds": rounded(cpu / cores, 1),
        "cores": cores,
        "ticks": len(ticks),
        "steps": sum(t.steps for t in ticks) - idle_run.steps,  # daemon mode: its claim-task and monitor-prs runs
        "git_processes_per_step": None if git_processes is None else
        rounded(git_processes / max(1, sum(t.steps for t in ticks) - idle_run.steps), 1),
        "idle_steps": run.idle.steps if run.idle else None,  # --idle: after the drain, every run idle
        "idle_step_cpu_ms": rounded(run.idle.cpu / max(1, run.idle.steps) * 1000, 1) if run.idle else None,
        "idle_step_git_processes": rounded(run.idle.git_processes / max(1, run.idle.steps), 1)
        if run.idle and o.count_git else None,
        "working_ticks": len(working),
        "tick_exit_codes": dict(sorted(exits.items())),
        "working_tick_seconds": rounded(median([t.wall for t in working])),
        "idle_tick_seconds": rounded(median([t.wall for t in idle])),
        "cpu_seconds": rounded(cpu, 1),
        "cpu_per_issue": rounded(cpu / done),
        "cpu_by_tick_kind": {"working": rounded(sum(t.cpu for t in working), 1),
                             "other": rounded(sum(t.cpu for t in others), 1),
                             "idle": rounded(sum(t.cpu for t in idle), 1)},
        "working_tick_cpu": rounded(median([t.cpu for t in working])),
        "cpu_per_issue_less_shim": rounded((cpu - (git_processes or 0) * shim_seconds) / done),
        "shim_cpu_per_git_process_ms": rounded(shim_seconds * 1000) if o.count_git else None,
        "server_cpu_seconds": rounded(run.server_cpu, 1),
        "git_calls": git_calls,
        "git_processes": git_processes,
        "git_processes_per_tick": None if git_processes is None else rounded(git_processes / max(1, len(ticks)), 1),
        "git_processes_per_working_tick": per_tick(lambda t: t.git_processes, working) if o.count_git else None,
        "git_processes_per_idle_tick": per_tick(lambda t: t.git_processes, idle) if o.count_git else None,
        "git_calls_per_tick": None if git_calls is None else rounded(git_calls / max(1, len(ticks)), 1),
        "git_calls_per_working_tick": per_tick(lambda t: t.git_calls, working) if o.count_git else None,
        "git_calls_per_idle_tick": per_tick(lambda t: t.git_calls, idle) if o.count_git else None,
        "git_commands": dict(run.git_commands.most_common(12)),
        "forge_requests": run.requests_total,
        "forge_requests_per_tick": None if run.requests_total is None else rounded(run.requests_total / len(ticks), 1),
        "forge_requests_per_working_tick": per_tick(lambda t: t.requests, working) if run.requests_total is not None
        else None,
        "forge_requests_per_idle_tick": per_tick(lambda t: t.requests, idle) if run.requests_total is not None
        else None,
        "claims": claims,
        "lost_races": lost,
        "lost_races_per_claim": rounded(lost / claims) if claims else None,
        "give_ups": sum(t.gave_up for t in ticks),
        "acquire": acquire,
    }


def table(result: dict) -> str:
    r, o = result, result["options"]

    def show(key: str, unit: str = "") -> str:
        return "n/a" if r[key] is None else f"{r[key]}{unit}"

    rows = [
        ("drain", (f"{show('drain_seconds', ' s')}, ideal {show('ideal_seconds', ' s')}: efficiency "
                   f"{show('efficiency')} (cycle overhead {show('cycle_overhead_seconds', ' s')}, "
                   f"from {r['overhead_source']})")),
        ("CPU floor of the drain", (f"{show('cpu_floor_seconds', ' s')}: the fleet's CPU over {r['cores']} cores "
                                    "(no drain on this machine is shorter, however idle the machine)")),
        ("issues closed", f"{r['closed']}/{o['issues']}"),
        ("ticks", f"{r['ticks']} ({r['working_ticks']} working), exit codes {r['tick_exit_codes']}"
         if o["mode"] == "cron" else f"{r['ticks']} daemons, {r['steps']} runs (claim-task, monitor-prs), "
         f"exit codes {r['tick_exit_codes']}; per-tick figures below are per daemon"),
        ("tick wall time", f"working {show('working_tick_seconds', ' s')}, idle {show('idle_tick_seconds', ' s')}"),
        ("CPU per issue", (f"{show('cpu_per_issue', ' s')} ({show('cpu_per_issue_less_shim', ' s')} less the git "
                           f"shim); git daemon {show('server_cpu_seconds', ' s')} in all")),
        ("CPU by tick", (f"working {r['cpu_by_tick_kind']['working']} s (median {show('working_tick_cpu', ' s')}), "
                         f"other {r['cpu_by_tick_kind']['other']} s, idle {r['cpu_by_tick_kind']['idle']} s")),
        ("git calls per tick", (f"{show('git_calls_per_tick')} on average; medians: working "
                                f"{show('git_calls_per_working_tick')}, idle {show('git_calls_per_idle_tick')}")),
        ("git processes per run", f"{show('git_processes_per_step')} (a run: a tick; a daemon's step)"),
        ("git processes per tick", (f"{show('git_processes_per_tick')} on average; medians: working "
                                    f"{show('git_processes_per_working_tick')}, idle "
                                    f"{show('git_processes_per_idle_tick')}")),
        ("forge requests per tick", (f"{show('forge_requests_per_tick')} on average; medians: working "
                                     f"{show('forge_requests_per_working_tick')}, idle "
                                     f"{show('forge_requests_per_idle_tick')}")),
        ("lost races per claim", f"{show('lost_races_per_claim')} ({r['lost_races']} lost, {r['claims']} claims)"),
        ("\"gave up after N attempts\" (a ref kept moving)", str(r["give_ups"])),
    ]
    acquire = r["acquire"]
    if acquire:
        rows.append(("whole-process `claims acquire`",
                     (f"{acquire['ratio']}x a raw push + readback over {acquire['transport']} ({acquire['acquire_ms']}"
                      f" ms vs {acquire['raw_ms']} ms; CPU {acquire['cpu_ratio']}x; median of {acquire['pairs']} "
                      "paired ratios)")))
    lines = [f"| {o['agents']} agents x {o['issues']} issues, sleep {o['sleep']:g} s, {o['backend']}, {o['mode']} | |",
             "|---|---|", *(f"| {name} | {value} |" for name, value in rows)]
    if r["git_commands"]:
        lines += ["", "git processes by command: " + ", ".join(f"{k} {v}" for k, v in r["git_commands"].items())]
    return "\n".join(lines)


def acquire_figures(tmp: Path, backend: str, rounds: int) -> dict | None:
    """Whole-process `claims acquire` against a raw push + readback, on a fresh 10-ref remote over this
    backend's git transport (git:// for `git`, file:// otherwise)."""
    if rounds <= 0:
        return None
    from benchmarks.bench_claims import whole_process_pairs
    from tests.support import git_daemon, make_remote

    make_remote(tmp / "srv" / "remote.git")
    if backend == "git":
        with git_daemon(tmp / "srv") as base:
            return whole_process_pairs(f"{base}/remote.git", tmp, rounds) | {"transport": "git://"}
    return whole_process_pairs(f"file://{tmp / 'srv' / 'remote.git'}", tmp, rounds) | {"transport": "file://"}


def benchmark(root: Path, options: Options, echo: Callable[[str], None] = lambda _: None) -> dict:
    """Calibration (unless off), the fleet, the acquire pairs: the whole report."""
    overhead, source, calibrated = None, "this run's working ticks", None
    if options.calibrate:
        calibration = run_fleet(root / "calibration", Options(agents=1, issues=2, sleep=0, backend=options.backend,
                                                              timeout=300, count_git=False, calibrate=False,
                                                              acquire_rounds=0, mode=options.mode,
                                                              every=options.every, code=options.code,
                                                              python=options.python))
        overhead, source = cycle_overhead(calibration), "a 1 x 2 run at sleep 0"
        calibrated = {"drained": calibration.drained, "drain_seconds": rounded(calibration.drain_seconds, 1),
                      "ticks": len(calibration.ticks), "cpu_seconds": rounded(sum(t.cpu for t in calibration.ticks), 1)}
        echo(f"calibration: one cycle's overhead {overhead if overhead is None else round(overhead, 2)} s")
    run = run_fleet(root / "fleet", options, echo)
    if overhead is None:
        overhead = cycle_overhead(run)
    shim = shim_cost(root / "shim-probe") if options.count_git else 0.0
    acquire = acquire_figures(root / "acquire", options.backend, options.acquire_rounds)
    return summary(run, overhead=overhead, overhead_source=source, shim_seconds=shim, acquire=acquire) | {
        "calibration": calibrated}


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--issues", type=int, default=12)
    parser.add_argument("--sleep", type=float, default=1.0, help="seconds each executor run sleeps")
    parser.add_argument("--backend", choices=BACKENDS, default="file")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds allowed for the drain")
    parser.add_argument("--acquire-rounds", type=int, default=15, help="acquire/raw pairs; 0 skips them")
    parser.add_argument("--no-count-git", dest="count_git", action="store_false", help="no git shim")
    parser.add_argument("--no-calibrate", dest="calibrate", action="store_false",
                        help="take the cycle overhead from this run's working ticks")
    parser.add_argument("--aged", type=float, default=0.0,
                        help="days between the issues' creation dates (0: all at once)")
    parser.add_argument("--mode", choices=("cron", "daemon"), default="cron",
                        help="cron: `agentmesh tick` processes back to back; daemon: one `agentmesh daemon` an agent")
    parser.add_argument("--every", type=float, default=1.0,
                        help="daemon mode: seconds between its claim-task runs and between its monitor-prs runs")
    parser.add_argument("--code", type=Path, help="a folder holding the agentmesh/ the agents run (e.g. `git archive "
                        "main agentmesh | tar -x -C DIR`): before/after in one sitting")
    parser.add_argument("--python", help="the interpreter agents run (another venv's, with its own agentmesh "
                        "installed: before/after with reviews, whose sandboxed syntax gate runs `python -I`)")
    parser.add_argument("--idle", type=float, default=0.0,
                        help="daemon mode: seconds the daemons poll on after the drain, measured apart (CPU and git "
                        "processes per idle run) and left out of the drain's figures")
    parser.add_argument("--keep", action="store_true",
                        help="keep the run's folder (logs, remote, each tick's git trace2 events)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON line")
    args = parser.parse_args()
    if args.agents < 1 or args.issues < 1 or args.sleep < 0:
        parser.error("--agents and --issues must be at least 1, --sleep not negative")
    if args.every < 0.1:
        parser.error("--every must be at least 0.1 (the daemon's smallest interval)")
    code = None if args.code is None else args.code.resolve()
    if code is not None and not (code / "agentmesh" / "__init__.py").is_file():
        parser.error(f"--code {args.code}: no agentmesh/ package there")
    if code is not None and (code.is_relative_to("/tmp") or code.is_relative_to(Path.home())):
        # a reviewer's gates run `python -m agentmesh...` in bwrap, whose /tmp is its own and which hides HOME
        parser.error(f"--code {args.code}: the sandbox cannot see it; put it outside /tmp and your home")
    options = Options(args.agents, args.issues, args.sleep, args.backend, args.timeout, args.count_git,
                      args.calibrate, args.acquire_rounds, args.aged, args.mode, args.every, code, args.python,
                      args.idle)
    echo = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else print
    echo(f"git {subprocess.run(['git', '--version'], capture_output=True, text=True).stdout.split()[-1]}, "
         f"Python {sys.version.split()[0]}, cpus {os.cpu_count()}, load average {load_average()}")
    root = Path(tempfile.mkdtemp(prefix="agentmesh-fleet-"))
    # the agents run in sessions of their own (a SIGINT at the terminal is the harness's alone): a SIGTERM
    # (`timeout`, a CI's cancel) must also unwind through `finish`, or the daemons poll on, orphaned
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        result = benchmark(root, options, echo)
        result["load_average_after"] = load_average()
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(result))
    else:
        print(table(result))
        print(f"load average at the end: {result['load_average_after']}" + (f"; kept {root}" if args.keep else ""))
    return 0 if result["drained"] else 1


if __name__ == "__main__":
    sys.exit(main())
