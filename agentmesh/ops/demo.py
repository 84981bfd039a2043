"""`agentmesh demo`: a whole mesh on this machine, on the built-in local forge.

Set-up in one folder: a local-forge remote with seeded issues and a mesh
policy (a ring of the agents, auto-merge, the syntax gate and a real one),
and one host folder per agent with its own config, state and cache clone, as
if on separate machines. Then one `agentmesh daemon` process per agent works
the backlog concurrently while this process watches the remote, until every
issue is closed or the time limit passes. The result is read back from the remote.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from agentmesh.core.model import Issue, PullRequest
from agentmesh.core.vocab import Label
from agentmesh.host.process import start_process, stop_groups

NAMES = ("ada", "bob", "cy", "dee", "eve", "fay", "gus", "hal", "ivy")
CHECK_PY = '''"""The demo repository's test: every greeting helper imports and greets."""
import importlib, pathlib, sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
failures = 0
for path in sorted(pathlib.Path("demo").glob("greet_*.py")):
    module = importlib.import_module(f"demo.{path.stem}")
    greeting = getattr(module, path.stem)("mesh")
    if not (isinstance(greeting, str) and "mesh" in greeting):
        print(f"{path}: unexpected greeting {greeting!r}")
        failures += 1
print(f"checked {len(list(pathlib.Path('demo').glob('greet_*.py')))} helper(s)")
sys.exit(1 if failures else 0)
'''


def agent_names(count: int) -> list[str]:
    return [NAMES[i] if i < len(NAMES) else f"agent-{i + 1}" for i in range(count)]


def issue_body(number: int) -> str:
    code = f'def greet_{number}(name: str) -> str:\n    return f"Hello, {{name}}! (helper {number})"\n'
    return (f"Add a greeting helper in `demo/greet_{number}.py`; `python3 check.py` must pass.\n\n"
            f"```agentmesh-demo path=demo/greet_{number}.py\n{code}```\n")


def mesh_policy(agents: list[str], **overrides: object) -> str:
    """The demo's mesh.yaml: a ring of `agents`, auto-merge, the syntax gate and a real one; `overrides` replace
    top-level keys (the chaos harness's short lease, say)."""
    return yaml.safe_dump({
        "version": 1,
        "review": {"ring": agents, "required_approvals": 1},
        "merge": {"auto": True},
        "gates": [{"builtin": "syntax"}, {"name": "check", "run": ["python3", "check.py"], "timeout_seconds": 60}],
        **overrides,
    }, sort_keys=False)


@dataclass(frozen=True)
class DemoMesh:
    root: Path
    remote: Path
    agents: list[str]
    issues: list[int]
    signed: bool = True  # False only as benchmarks/bench_signing.py's baseline: no keys, roster or signatures

    def config(self, agent: str) -> Path:
        return host_config_path(self.root, agent)


def host_config_path(root: Path, agent: str) -> Path:
    return root / "hosts" / agent / "agentmesh.yaml"


def demo_roster(root: Path, agents: list[str]) -> str:
    """The roster of the demo's agents: each one's signing key, made in its host's state dir."""
    from agentmesh.git.signing import ensure_key
    from agentmesh.host.roster import roster_entry

    return "agents:\n" + "".join(
        roster_entry(name, ensure_key(host_config_path(root, name).parent / "state" / "identity" / "id_ed25519", name))
        for name in agents)


def create_remote(remote: Path, policy: str, roster: str | None = None) -> None:
    """The demo repository as a local-forge remote: a greeting package, its check, `policy` and the
    roster."""
    from agentmesh.forge.local import init_repository
    from agentmesh.git.run import Git
    from agentmesh.host.roster import ROSTER_PATH

    if remote.exists():
        raise FileExistsError(f"{remote} exists: choose an empty --dir")
    init_repository(Git(), remote, {
        "README.md": "# agentmesh demo\n\nGreeting helpers written by a mesh of agents.\n",
        "check.py": CHECK_PY, "demo/__init__.py": "", ".agentmesh/mesh.yaml": policy,
        **({ROSTER_PATH: roster} if roster else {})})


def write_host(root: Path, agent: str, remote: str, **settings: object) -> Path:
    """One agent's host folder, as if on its own machine: config, state; `settings` add config keys
    (the default executor is the demo's)."""
    path = host_config_path(root, agent)
    path.parent.mkdir(parents=True, exist_ok=True)  # its key may be there already (demo_roster)
    path.write_text(yaml.safe_dump({
        "agent": agent, "host": f"demo-{agent}", "remote": remote, "state_dir": str(path.parent / "state"),
        "executor": {"kind": "demo"}, **settings}, sort_keys=False))
    return path


def seed_issues(root: Path, remote: Path, count: int, *, signed: bool = True) -> list[int]:
    """`count` greeting-helper issues, created through the local forge by a demo user."""
    from agentmesh.forge.local import LocalForge

    forge = LocalForge(watcher(root, remote, signed=signed).cache, user="demo-user")
    return [forge.create_issue(f"Add greeting helper {i + 1}", issue_body(i + 1), ["task"]).number
            for i in range(count)]


def set_up(root: Path, *, agents: int, issues: int, signed: bool = True) -> DemoMesh:
    """The demo mesh; `signed=False` is the unsigned benchmark baseline (agent/mesh.py): no keys, no roster."""
    names = agent_names(agents)
    remote = root / "remote.git"
    create_remote(remote, mesh_policy(names), demo_roster(root, names) if signed else None)
    for name in names:
        write_host(root, name, str(remote))
    return DemoMesh(root, remote, names, seed_issues(root, remote, issues, signed=signed), signed)


def watcher(root: Path, remote: Path, *, signed: bool = True):
    """A mesh handle for reading the remote from the demo itself (its own state folder)."""
    from agentmesh.agent.mesh import Mesh
    from agentmesh.host.config import HostConfig

    host = HostConfig.model_validate({"agent": "demo-watch", "host": "demo-watch", "remote": str(remote),
                                      "state_dir": str(root / "watch")})
    return Mesh(host, env={}, signing=signed)


@dataclass
class Snapshot:
    issues: list[Issue]
    pulls: list[PullRequest]
    holders: dict[int, str] = field(default_factory=dict)

    def stage(self, issue: Issue) -> tuple[str, str, str]:
        """(stage, agent, PR) of one issue for the progress view."""
        pull = max((p for p in self.pulls if p.body.startswith(f"Closes #{issue.number}\n")),
                   key=lambda p: p.number, default=None)
        agent = self.holders.get(issue.number) or (pull.author if pull else "")
        pr = f"#{pull.number}" if pull else ""
        if issue.state == "closed":
            return ("done" if pull and pull.state == "merged" else "closed"), agent, pr
        if pull is not None and pull.state == "merged":
            return "merged", agent, pr
        for label, stage in ((Label.REVIEW, "in review"), (Label.WORKING, "working"),
                             (Label.CLAIMED, "claimed"), (Label.FAILED, "failed")):
            if label in issue.labels:
                return stage, agent, pr
        return "open", agent, pr


def snapshot(mesh, forge, numbers: list[int]) -> Snapshot:
    wanted = set(numbers)
    issues = sorted((i for i in forge.list_issues(state="all") if i.number in wanted), key=lambda i: i.number)
    holders = {v.issue: v.claim.agent for v in mesh.claims().list() if v.claim is not None}
    return Snapshot(issues, forge.list_pulls(state="all"), holders)


def agent_env() -> dict[str, str]:
    """This environment minus any AGENTMESH_* setting of the machine, so agents see only their configs."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AGENTMESH_")}


def agent_argv(config: Path, *args: str) -> list[str]:
    """`agentmesh --config CONFIG ARGS` as a child process runs it (this Python, this package)."""
    return [sys.executable, "-m", "agentmesh", "--config", str(config), *args]


def daemon_args(*, every: float = 1, jitter: float = 1, max_seconds: float | None = None) -> list[str]:
    return ["daemon", "--claim-every", f"{every:g}", "--monitor-every", f"{every:g}", "--jitter", f"{jitter:g}",
            *(["--max-seconds", str(int(max_seconds))] if max_seconds is not None else [])]


def start_agents(demo: DemoMesh, *, seconds: float) -> list[subprocess.Popen]:
    from agentmesh.agent.mesh import UNSIGNED_BENCHMARK_ENV

    env = {**agent_env(), **({} if demo.signed else {UNSIGNED_BENCHMARK_ENV: "1"})}
    return [start_process(agent_argv(demo.config(name), *daemon_args(max_seconds=seconds + 5)),
                          cwd=demo.root, env=env, log_path=demo.root / "hosts" / name / "daemon.log")
            for name in demo.agents]


def stop_agents(procs: list[subprocess.Popen], grace: float = 30.0) -> None:
    """SIGTERM (the daemons drain), then SIGKILL whatever is still running after `grace`."""
    stop_groups(procs, grace=grace)


def run(demo: DemoMesh, *, timeout: float, on_snapshot: Callable[[Snapshot, float], None]) -> dict:
    from agentmesh.forge.local import LocalForge

    mesh = watcher(demo.root, demo.remote, signed=demo.signed)
    forge = LocalForge(mesh.cache, user="demo-watch")
    started = time.monotonic()
    procs = start_agents(demo, seconds=timeout)
    try:
        while True:
            view = snapshot(mesh, forge, demo.issues)
            elapsed = time.monotonic() - started
            on_snapshot(view, elapsed)
            done = all(i.state == "closed" for i in view.issues)
            if done or elapsed >= timeout or all(p.poll() is not None for p in procs):
                break
            time.sleep(0.5)
    finally:
        stop_agents(procs)
    seconds = time.monotonic() - started
    return result(demo, forge, seconds)


def result(demo: DemoMesh, forge, seconds: float) -> dict:
    """The outcome as the remote tells it, not as counted along the way."""
    wanted = set(demo.issues)
    issues = [i for i in forge.list_issues(state="all") if i.number in wanted]
    merged = [p for p in forge.list_pulls(state="all")
              if p.state == "merged" and any(p.body.startswith(f"Closes #{n}\n") for n in wanted)]
    reviews = [r for p in merged for r in forge.list_reviews(p.number)]
    return {"remote": str(demo.remote), "agents": len(demo.agents), "issues": len(demo.issues),
            "closed": sum(i.state == "closed" for i in issues), "prs_merged": len(merged),
            "reviews": len(reviews), "seconds": round(seconds, 1)}
