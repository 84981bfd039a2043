"""Claim protocol benchmarks (run on demand; results go to docs/benchmarks.md).

    python benchmarks/bench_claims.py [--rounds N]

1. In-process `acquire` latency vs the raw `git push --force-with-lease` +
   `git ls-remote` it must do, over file:// and git://. Rounds alternate
   between the two so machine noise hits both alike; medians are compared.
2. `acquire` with 10 vs 20,000 refs on the remote, split into its push and
   its prefix-restricted readback.
3. Cold start of `agentmesh --version`.
4. `agentmesh claims acquire` as a whole process, the way cron runs it, against the raw push +
   readback, in interleaved pairs (`whole_process_pairs`; benchmarks/fleet.py reports it too).

These machines are noisy: read the ratios, measured in one run, not the
absolute numbers.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentmesh.git.remote import ls_refs  # noqa: E402
from tests.support import GIT_ENV, git, git_daemon, make_remote, make_store  # noqa: E402

ENV = {**os.environ, **GIT_ENV}


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def raw_claim(clone: Path, url: str, issue: int) -> float:
    """What acquire must do at minimum: a lease-checked create and a readback (ms; the commit is not timed)."""
    return raw_push_readback(clone, url, issue, raw_commit(clone, issue))


def raw_commit(clone: Path, issue: int) -> str:
    return subprocess.run(["git", "commit-tree", "HEAD^{tree}", "-p", "HEAD", "-m", f"raw {issue}"], cwd=clone,
                          capture_output=True, text=True, env=ENV, check=True).stdout.strip()


def raw_push_readback(clone: Path, url: str, issue: int, sha: str) -> float:
    ref = f"refs/heads/claim/{issue}"
    start = time.perf_counter()
    subprocess.run(["git", "push", "--porcelain", f"--force-with-lease={ref}:", url, f"{sha}:{ref}"], cwd=clone,
                   capture_output=True, env=ENV, check=True)
    subprocess.run(["git", "ls-remote", url, ref], capture_output=True, env=ENV, check=True)
    return (time.perf_counter() - start) * 1000


def compare(url: str, tmp: Path, rounds: int, base: int) -> tuple[float, float]:
    store = make_store(url, tmp / "hosts", "bench")
    store.cache.fetch_default_branch()
    clone = tmp / f"raw-{base}"
    git("clone", "--quiet", url, str(clone))
    ours, raw = [], []
    for i in range(rounds):
        ours.append(timed(partial(store.acquire, base + i)))
        raw.append(raw_claim(clone, url, base + 5_000 + i))
    return statistics.median(ours), statistics.median(raw)


def many_refs(tmp: Path, count: int, rounds: int) -> dict[str, float]:
    remote = make_remote(tmp / f"refs-{count}.git")
    head = git("rev-parse", "main", cwd=remote)
    lines = "".join(f"create refs/heads/other/{n} {head}\n" for n in range(count))
    subprocess.run(["git", "update-ref", "--stdin"], input=lines, text=True, cwd=remote, env=ENV, check=True)
    git("pack-refs", "--all", cwd=remote)
    store = make_store(f"file://{remote}", tmp / f"hosts-{count}", "bench")
    store.cache.fetch_default_branch()
    acquire = [timed(partial(store.acquire, 30_000 + i)) for i in range(rounds)]
    listing = [timed(lambda: ls_refs(store.git, store.url, ["refs/heads/claim/"])) for _ in range(rounds)]
    full = [timed(lambda: subprocess.run(["git", "ls-remote", f"file://{remote}", "refs/heads/claim/*"],
                                         capture_output=True, env=ENV, check=True)) for _ in range(rounds)]
    return {"acquire": statistics.median(acquire), "ls_refs": statistics.median(listing),
            "ls_remote": statistics.median(full)}


def agentmesh_exe() -> str:
    return shutil.which("agentmesh") or str(Path(sys.executable).with_name("agentmesh"))


def compiled(env: dict[str, str], cache: Path) -> dict[str, str]:
    """`env` for a measured agentmesh process, with its bytecode kept (in `cache`) as an installed package's is.

    pip compiles a package's .pyc files when it installs it; a checkout under PYTHONDONTWRITEBYTECODE (set on
    the development machines) would compile every module in every run instead, and time that."""
    kept = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**kept, "PYTHONPYCACHEPREFIX": str(cache)}


def whole_process_pairs(url: str, tmp: Path, rounds: int, base: int = 40_000) -> dict:
    """`agentmesh claims acquire N` as its own process against `raw_claim`, interleaved (the order flips
    every pair) on a remote at `url`: medians of each (ms), the median of the paired ratios, and CPU
    (user + system of each whole process tree, os.wait4) likewise."""
    from agentmesh.ops.demo import agent_env, write_host

    config = write_host(tmp / "whole", "bench", url)
    clone = tmp / "whole-raw"
    git("clone", "--quiet", url, str(clone))
    exe, env = agentmesh_exe(), compiled(agent_env(), tmp / "pycache")
    timed_process(exe, config, env, base - 1)  # the host's first run makes its key, cache clone, .pyc: not counted
    ours, raw = [], []
    for i in range(rounds):
        pair = [(ours, partial(timed_process, exe, config, env, base + i)),
                (raw, partial(raw_claim_cpu, clone, url, base + 5_000 + i))]
        for into, measure in pair if i % 2 == 0 else pair[::-1]:
            into.append(measure())
    ratios = [o[0] / r[0] for o, r in zip(ours, raw, strict=True)]
    cpu = [o[1] / r[1] for o, r in zip(ours, raw, strict=True) if r[1] > 0]
    return {"acquire_ms": round(statistics.median(o[0] for o in ours), 1),
            "raw_ms": round(statistics.median(r[0] for r in raw), 1), "ratio": round(statistics.median(ratios), 2),
            "cpu_ratio": round(statistics.median(cpu), 2) if cpu else None, "pairs": rounds}


def timed_process(exe: str, config: Path, env: dict[str, str], issue: int) -> tuple[float, float]:
    """(ms, CPU seconds) of one whole `agentmesh claims acquire`, which must win."""
    start = time.perf_counter()
    proc = subprocess.Popen([exe, "--config", str(config), "claims", "acquire", str(issue)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = (time.perf_counter() - start) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"claims acquire {issue} exited {proc.returncode}: {proc.stderr.read().decode()[-500:]}")
    return wall, usage.ru_utime + usage.ru_stime


def raw_claim_cpu(clone: Path, url: str, issue: int) -> tuple[float, float]:
    """`raw_claim` as (ms, CPU seconds of its git processes)."""
    sha = raw_commit(clone, issue)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = raw_push_readback(clone, url, issue, sha)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cold_start(runs: int = 15) -> float:
    exe = agentmesh_exe()
    samples = [timed(lambda: subprocess.run([exe, "--version"], capture_output=True, check=True))
               for _ in range(runs)]
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="agentmesh-bench-"))
    try:
        remote = make_remote(tmp / "srv" / "remote.git")
        print("| transport | acquire (ms, median) | raw push + ls-remote (ms) | ratio |")
        print("|---|---|---|---|")
        ours, raw = compare(f"file://{remote}", tmp, args.rounds, 10_000)
        print(f"| file:// | {ours:.1f} | {raw:.1f} | {ours / raw:.2f}× |")
        with git_daemon(tmp / "srv") as base:
            ours, raw = compare(f"{base}/remote.git", tmp, args.rounds, 20_000)
        print(f"| git:// | {ours:.1f} | {raw:.1f} | {ours / raw:.2f}× |")
        print()
        small, large = many_refs(tmp, 10, args.rounds // 2), many_refs(tmp, 20_000, args.rounds // 2)
        print("| refs on remote | acquire (ms) | prefix ls-refs (ms) | `git ls-remote` with pattern (ms) |")
        print("|---|---|---|---|")
        for count, row in ((10, small), (20_000, large)):
            print(f"| {count:,} | {row['acquire']:.1f} | {row['ls_refs']:.1f} | {row['ls_remote']:.1f} |")
        print(f"| ratio | {large['acquire'] / small['acquire']:.2f}× | {large['ls_refs'] / small['ls_refs']:.2f}× "
              f"| {large['ls_remote'] / small['ls_remote']:.2f}× |")
        print()
        print(f"cold start `agentmesh --version`: {cold_start():.0f} ms (median of 15)")
        whole = whole_process_pairs(f"file://{remote}", tmp, args.rounds // 2)
        print(f"whole-process `agentmesh claims acquire`, file://: {whole['acquire_ms']} ms against "
              f"{whole['raw_ms']} ms raw, {whole['ratio']}x (median of {whole['pairs']} paired ratios; "
              f"CPU {whole['cpu_ratio']}x)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
