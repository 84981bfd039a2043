"""Claim protocol benchmarks (run on demand; results go to docs/benchmarks.md).

    python benchmarks/bench_claims.py [--rounds N]

1. In-process `acquire` latency vs the raw `git push --force-with-lease` +
   `git ls-remote` it must do, over file:// and git://. Rounds alternate
   between the two so machine noise hits both alike; medians are compared.
2. `acquire` with 10 vs 20,000 refs on the remote, split into its push and
   its prefix-restricted readback.
3. Cold start of `agentmesh --version`.

These machines are noisy: read the ratios, measured in one run, not the
absolute numbers.
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
    """What acquire must do at minimum: a lease-checked create and a readback."""
    ref = f"refs/heads/claim/{issue}"
    sha = subprocess.run(["git", "commit-tree", "HEAD^{tree}", "-p", "HEAD", "-m", f"raw {issue}"], cwd=clone,
                         capture_output=True, text=True, env=ENV, check=True).stdout.strip()
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


def cold_start(runs: int = 15) -> float:
    exe = shutil.which("agentmesh") or str(Path(sys.executable).with_name("agentmesh"))
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
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
