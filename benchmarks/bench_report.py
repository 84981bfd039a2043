"""Benchmark `agentmesh report` on a big mesh (run on demand, not part of the tests).

    python benchmarks/bench_report.py [--agents 8] [--days 60] [--per-day 40] [--issues 40] [--runs 5]

Seeds a local-forge remote with `--days` days of journals from `--agents` agents, `--per-day` entries
per agent and day (claims, executor runs, PRs, reviews, merges, failures, reworks, reaps, as
agents write them), each agent's on its own journal branch (`agentmesh/journals/<agent>`, ADR 0017),
one file per month; a presence ref per agent, a halt and a resume, and `--issues` open issues. Then,
after one warm-up run that fetches everything into the observer's cache clone, it times side by side
on a fresh Mesh per run (as a new command would):
- `status`'s gather (the baseline: what `agentmesh status` reads);
- the report's gather over 7 days and over all `--days` days;
- the render to HTML (agentmesh/ops/report_html.py).
The target (issue 17): the 60-day report of 8 agents in <= 2 s after the fetch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from agentmesh.agent.budget import journal_since
from agentmesh.agent.halt import halt, resume
from agentmesh.agent.mesh import Mesh
from agentmesh.core.memory import journal_file, journal_ref, utc_ts
from agentmesh.core.report import window_dates
from agentmesh.forge.local import LocalForge, init_repository
from agentmesh.git.cache import CacheClone
from agentmesh.git.run import Git
from agentmesh.host.config import HostConfig
from agentmesh.ops.report import gather_report
from agentmesh.ops.report_html import render_html
from agentmesh.ops.status import gather

DAY = 86400
# one task's journal, as an agent writes it: (event, outcome, executor seconds, cost)
TASK = [("claimed", "claimed", 0.0, None), ("executed", "ok", 240.0, 0.12), ("pr-opened", "opened", 0.0, None),
        ("reviewed", "approved", 30.0, 0.02), ("merged", "merged", 0.0, None), ("cleaned-up", "merged", 0.0, None)]
TROUBLE = [("failed", "failed", 0.0, None), ("reworked", "pushed", 120.0, 0.05), ("reaped", "reaped", 0.0, None),
           ("failed", "dead-letter", 0.0, None), ("handed-over", "needs-human", 0.0, None)]


def names(count: int) -> list[str]:
    return [f"agent-{i + 1}" for i in range(count)]


def host(root: Path, remote: Path, agent: str) -> HostConfig:
    return HostConfig.model_validate({"agent": agent, "host": f"host-{agent}", "remote": str(remote),
                                      "state_dir": str(root / "hosts" / agent), "executor": {"kind": "demo"}})


def journal_lines(agent: str, days: int, per_day: int, now: float) -> dict[str, str]:
    """path -> text of the agent's journal files over `days` days, `per_day` entries a day."""
    files: dict[str, str] = {}
    n = 0
    for back in range(days - 1, -1, -1):
        for i in range(per_day):
            moment = now - back * DAY - (per_day - i) * (DAY / (per_day + 1)) % DAY
            task = n // len(TASK)
            event, outcome, seconds, cost = (TROUBLE[task % len(TROUBLE)] if i % 17 == 16 else TASK[n % len(TASK)])
            line = {"id": f"{agent}-{n}", "ts": utc_ts(moment), "agent": agent, "host": f"host-{agent}",
                    "event": event, "issue": 1000 + task, "pr": 5000 + task, "outcome": outcome,
                    "duration_s": seconds, "cost_usd": cost, "summary": f"#{1000 + task} step {n}"}
            path = journal_file(agent, utc_ts(moment)[:7])
            files[path] = files.get(path, "") + json.dumps(line, separators=(",", ":")) + "\n"
            n += 1
    return files


def seed(root: Path, agents: list[str], days: int, per_day: int, issues: int) -> Path:
    remote = root / "remote.git"
    init_repository(Git(), remote, {"README.md": "# bench\n", ".agentmesh/mesh.yaml": yaml.safe_dump(
        {"version": 1, "budgets": {"agent": {"tasks_per_day": 20}, "fleet": {"cost_usd_per_day": 50}}})})
    scratch = CacheClone(Git(author_name="bench", author_email="bench@bench.invalid"), root / "scratch.git",
                         str(remote)).ensure()
    now = time.time()
    refspecs = []
    for agent in agents:
        files = journal_lines(agent, days, per_day, now)
        tree = scratch.edit_tree_files(None, {p: t.encode() for p, t in files.items()})
        commit = scratch.commit_tree(tree, [], f"agentmesh: journal of {agent}\n")
        refspecs.append(f"{commit}:{journal_ref(agent)}")
    scratch.run("push", "--quiet", str(remote), *refspecs)
    for agent in agents:
        Mesh(host(root, remote, agent), env={}, signing=False).presence().refresh()
    operator = Mesh(host(root, remote, agents[0]), env={}, signing=False)
    halt(operator, "bench halt", local=False)
    resume(operator, local=False)
    forge = LocalForge(operator.cache, user="human")
    for i in range(issues):
        forge.create_issue(f"Task {i}", "Do it.", ["task"])
    return remote


def cpu_seconds() -> float:
    """CPU time of this process and the git processes it waited for: on a loaded machine, what a run would take
    on an idle one (wall time counts the other work's turns too)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--per-day", type=int, default=40)
    parser.add_argument("--issues", type=int, default=40)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        remote = seed(root, names(args.agents), args.days, args.per_day, args.issues)
        entries = args.agents * args.days * args.per_day
        print(f"seeded {entries} journal entries ({args.agents} agents x {args.days} days x {args.per_day}), "
              f"{args.issues} open issues in {time.perf_counter() - started:.1f}s")

        def observer() -> Mesh:
            return Mesh(host(root, remote, "observer"), env={}, signing=False)

        def report(days: int, *, html: bool) -> Callable[[], object]:
            def run() -> object:
                mesh = observer()
                doc = gather_report(mesh, mesh.open_forge(), time.time(), days)
                return render_html(doc) if html else doc
            return run

        report(args.days, html=True)()  # the fetch: the observer's cache clone gets every branch once
        doc = report(args.days, html=False)()
        assert isinstance(doc, dict) and len(doc["throughput"]["dates"]) == args.days
        def journals() -> object:
            return journal_since(observer().journal(), window_dates(args.days, time.time())[0], time.time())

        rows = [("status gather (baseline)", lambda: gather(observer(), observer().open_forge(), time.time())),
                (f"journal read alone, {args.days} days", journals),
                ("report gather, 7 days", report(7, html=False)),
                (f"report gather, {args.days} days", report(args.days, html=False))]
        rows.append((f"report gather + render, {args.days} days", report(args.days, html=True)))
        # interleaved rounds, so the machine's noise falls on every row alike
        results: dict[str, list[float]] = {name: [] for name, _ in rows}
        cpu: dict[str, list[float]] = {name: [] for name, _ in rows}
        for _ in range(args.runs):
            for name, step in rows:
                start, used = time.perf_counter(), cpu_seconds()
                step()
                results[name].append(time.perf_counter() - start)
                cpu[name].append(cpu_seconds() - used)
        base = statistics.median(results[rows[0][0]])
        print(f"{'after the fetch':40} {'s (median)':>10} {'x status':>9} {'cpu s':>7}")
        for name, found in results.items():
            print(f"{name:40} {statistics.median(found):10.3f} {statistics.median(found) / base:9.2f} "
                  f"{statistics.median(cpu[name]):7.3f}")
        last = rows[-1][0]
        print(f"target: the {args.days}-day report of {args.agents} agents in <= 2 s after the fetch: "
              f"{statistics.median(results[last]):.2f} s wall, {statistics.median(cpu[last]):.2f} s cpu")


if __name__ == "__main__":
    main()
