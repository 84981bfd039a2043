"""What cron pays: `agentmesh claims acquire` as a whole process, and the daemon's tick (run on demand;
results go to docs/benchmarks.md).

    python benchmarks/bench_startup.py [--rounds N] [--before DIR]

`--before DIR` adds, in the same interleaved rounds, the `agentmesh` of another checkout (DIR holds its
`agentmesh/` package, e.g. `git archive main agentmesh | tar -x -C DIR`), for a before/after in one run.

1. `agentmesh claims acquire` started as a process, the way cron runs it (a warm state dir), against
   the least a claim can cost: a raw `git push --force-with-lease` plus a `git ls-remote` readback, over
   file:// with 10 refs on the remote (bench_claims.py's pair, here with a remote kept at 10 refs and an
   optional second checkout). Each round gives a paired ratio; the medians are reported (wall time,
   and CPU of each process tree).
2. An idle `claim-task` tick: as a process (cron) against the same tick inside a running daemon
   (in-process: a fresh Mesh and run, as `agentmesh daemon` builds each run).

These machines are noisy and shared: read the paired ratios, measured in one run, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_claims import agentmesh_exe, compiled, raw_claim_cpu, timed_process  # noqa: E402

from tests.support import git, make_remote  # noqa: E402


def measured(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    """Wall ms of one command, which must succeed."""
    start = time.perf_counter()
    subprocess.run(argv, capture_output=True, env=env, cwd=cwd, check=True)
    return (time.perf_counter() - start) * 1000


def agentmesh_env(home: Path) -> dict[str, str]:
    """An agentmesh process's environment; its .pyc kept under `home` (bench_claims.compiled)."""
    env = compiled({k: v for k, v in os.environ.items() if not k.startswith("AGENTMESH_")}, home / "pycache")
    return {**env, "XDG_STATE_HOME": str(home / "state"), "AGENTMESH_CRASH_DIR": str(home)}


def whole_process(tmp: Path, rounds: int, before: Path | None) -> dict[str, dict[str, float]]:
    """bench_claims' whole-process pairs on a remote kept at 10 refs, for this checkout and `before`'s."""
    remote = make_remote(tmp / "srv" / "remote.git")
    head = git("rev-parse", "main", cwd=remote)
    git("update-ref", "--stdin", cwd=remote, input="".join(f"create refs/heads/other/{n} {head}\n" for n in range(9)))
    url = f"file://{remote}"
    variants = {"now": agentmesh_env(tmp / "home-now")}
    if before is not None:
        variants["before"] = {**agentmesh_env(tmp / "home-before"), "PYTHONPATH": str(before)}
    exe, configs = agentmesh_exe(), {}
    for n, (name, env) in enumerate(variants.items()):
        home = Path(env["AGENTMESH_CRASH_DIR"])
        home.mkdir()
        configs[name] = home / "agentmesh.yaml"
        configs[name].write_text(f"agent: bench-{name}\nremote: {url}\nstate_dir: {home / 'state'}\n")
        timed_process(exe, configs[name], env, 1 + n)  # warm: cache clone, key, kept policy and config, .pyc
        git("update-ref", "-d", f"refs/heads/claim/{1 + n}", cwd=remote)
    clone = tmp / "raw"
    git("clone", "--quiet", url, str(clone))
    samples: dict[str, list[tuple[tuple[float, float], tuple[float, float]]]] = {name: [] for name in variants}
    for i in range(rounds):
        for n, (name, env) in enumerate(variants.items()):
            issue = 100 + len(variants) * i + n
            pair = [timed_process(exe, configs[name], env, issue), raw_claim_cpu(clone, url, 5_000 + issue)]
            samples[name].append((pair[0], pair[1]))
            for ref in (issue, 5_000 + issue):  # keep 10 refs on the remote
                git("update-ref", "-d", f"refs/heads/claim/{ref}", cwd=remote)
    return {name: {"ours": statistics.median(o[0] for o, _ in rows), "raw": statistics.median(r[0] for _, r in rows),
                   "ratio": statistics.median(o[0] / r[0] for o, r in rows),
                   "ours_cpu": statistics.median(o[1] for o, _ in rows) * 1000,
                   "raw_cpu": statistics.median(r[1] for _, r in rows) * 1000,
                   "cpu_ratio": statistics.median(o[1] / r[1] for o, r in rows if r[1] > 0)}
            for name, rows in samples.items()}


def daemon_tick(tmp: Path, rounds: int) -> dict[str, float]:
    """An idle claim-task tick (local forge, no issues): a cron process vs a daemon's in-process run."""
    from agentmesh.agent.mesh import Mesh
    from agentmesh.host.config import load_host_config
    from agentmesh.ops.runs import run_claim_task

    remote = make_remote(tmp / "srv" / "idle.git")
    home = tmp / "idle-home"
    home.mkdir()
    env = agentmesh_env(home)
    config = home / "agentmesh.yaml"
    config.write_text(f"agent: bench\nremote: file://{remote}\nstate_dir: {home / 'state-daemon'}\n")
    argv = [sys.executable, "-m", "agentmesh", "--config", str(config), "claim-task"]
    measured(argv, env, home)

    def in_process() -> float:
        start = time.perf_counter()
        run_claim_task(Mesh(load_host_config(config, env={})))
        return (time.perf_counter() - start) * 1000

    in_process()
    ratios, process, tick = [], [], []
    for _ in range(rounds):
        cron = measured(argv, env, home)
        daemon = in_process()
        ratios.append(cron / daemon)
        process.append(cron)
        tick.append(daemon)
    return {"process": statistics.median(process), "tick": statistics.median(tick), "ratio": statistics.median(ratios)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--before", type=Path, help="a checkout's folder holding the agentmesh/ to compare with")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="agentmesh-bench-startup-"))
    try:
        rows = whole_process(tmp, args.rounds, args.before)
        print("| `claims acquire` as a process, file://, 10 refs | ms (median) | raw push + ls-remote (ms) "
              "| paired ratio (median) |")
        print("|---|---|---|---|")
        for name, row in rows.items():
            print(f"| {name}: wall | {row['ours']:.1f} | {row['raw']:.1f} | {row['ratio']:.2f}× |")
            print(f"| {name}: CPU | {row['ours_cpu']:.1f} | {row['raw_cpu']:.1f} | {row['cpu_ratio']:.2f}× |")
        print()
        tick = daemon_tick(tmp, max(5, args.rounds // 2))
        print("| idle claim-task tick, local forge | ms (median) |")
        print("|---|---|")
        print(f"| `agentmesh claim-task` as a process (cron) | {tick['process']:.0f} |")
        print(f"| the same tick inside `agentmesh daemon` | {tick['tick']:.0f} |")
        print(f"| paired ratio process / daemon (median) | {tick['ratio']:.2f}× |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
