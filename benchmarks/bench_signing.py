"""Signed agent identity benchmarks (run on demand; results go to docs/benchmarks.md).

    python benchmarks/bench_signing.py [--pairs 8] [--agents 3] [--issues 4] [--commits 40] [--profile]

1. The whole `agentmesh demo` process, as a user runs it, signed (keys, a roster, every agent commit
   signed and verified) against its unsigned baseline (AGENTMESH_BENCHMARK_UNSIGNED=1: no keys, no
   roster, nothing signed or verified, as before agents signed). Runs alternate in pairs, the order
   flipping every pair (s u, u s, s u, ...), so machine noise and drift hit both alike. Reported: the
   median wall time of each mode, the median of the per-pair ratios signed/unsigned (target ≤ 1.2×),
   and the commits each run left on the remote (so both did the same work).
2. One `Git.commit_tree`, signed vs unsigned, interleaved: what a signature adds to a commit.
3. Batch verification (`git/signing.signers`, one `git log --no-walk` for all) per commit, against
   the same listing without `%G?`.
4. With --profile: one more signed demo, untimed, with a PATH shim counting ssh-keygen processes by
   what they do (key creation, signing, verification).

These machines are noisy: read the ratios, measured side by side in one run, not the absolute times.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentmesh.agent.mesh import UNSIGNED_BENCHMARK_ENV  # noqa: E402
from agentmesh.git.run import Git  # noqa: E402
from agentmesh.git.signing import allowed_signers, ensure_allowed_signers, ensure_key, signers  # noqa: E402

PRINCIPAL = "bench"


@dataclass(frozen=True)
class DemoRun:
    signed: bool
    wall: float  # seconds, the whole `agentmesh demo` process
    cpu: float  # user + system seconds of it and every process it waited for (agents, git, ssh-keygen)
    seconds: float  # the demo's own figure: agents started to every issue closed
    closed: bool  # every issue closed (exit 0)
    commits: int  # commits reachable on the remote
    signed_commits: int  # of which carry a signature


def demo_env(signed: bool, path_prefix: Path | None = None) -> dict[str, str]:
    """This environment without AGENTMESH_* settings, plus the baseline's switch when unsigned."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMESH_")}
    if not signed:
        env[UNSIGNED_BENCHMARK_ENV] = "1"
    if path_prefix is not None:
        env["PATH"] = f"{path_prefix}{os.pathsep}{env.get('PATH', '')}"
    return env


def remote_commits(remote: Path) -> tuple[int, int]:
    """(commits reachable from any ref, how many of them are signed), read from the raw headers."""
    out = subprocess.run(["git", "--git-dir", str(remote), "rev-list", "--all", "--header"], capture_output=True,
                         check=True).stdout
    records = [r for r in out.split(b"\0") if r.strip()]
    return len(records), sum(b"\ngpgsig " in r for r in records)


def demo_run(signed: bool, directory: Path, *, agents: int, issues: int, timeout: float = 600,
             path_prefix: Path | None = None, python: str = sys.executable) -> DemoRun:
    """One `agentmesh demo` process in `directory` (new), timed as a whole; `python` is the interpreter whose
    agentmesh runs (another checkout's venv, to compare two versions)."""
    argv = [python, "-m", "agentmesh", "demo", "--agents", str(agents), "--issues", str(issues),
            "--dir", str(directory), "--timeout", f"{timeout:g}", "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=directory.parent, env=demo_env(signed, path_prefix), capture_output=True,
                          text=True, timeout=timeout + 120)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = done.stdout.strip().splitlines()
    outcome = json.loads(lines[-1]) if lines else {}
    if "remote" not in outcome:
        raise RuntimeError(f"agentmesh demo exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    commits, signed_commits = remote_commits(Path(outcome["remote"]))
    return DemoRun(signed, wall, cpu, float(outcome["seconds"]), done.returncode == 0, commits, signed_commits)


def demo_pairs(tmp: Path, pairs: int, *, agents: int, issues: int, echo=print) -> list[tuple[DemoRun, DemoRun]]:
    """`pairs` (signed, unsigned) runs, alternating which mode goes first."""
    found = []
    for i in range(pairs):
        order = (True, False) if i % 2 == 0 else (False, True)
        runs = {signed: demo_run(signed, tmp / f"demo-{i}-{'signed' if signed else 'unsigned'}", agents=agents,
                                 issues=issues) for signed in order}
        pair = (runs[True], runs[False])
        found.append(pair)
        echo(f"pair {i + 1}/{pairs}: signed {pair[0].wall:.1f} s, unsigned {pair[1].wall:.1f} s, "
             f"ratio {pair[0].wall / pair[1].wall:.2f}x" + ("" if all(r.closed for r in pair) else
                                                           " (an issue was left open: pair not counted)"))
    return found


def scratch_repo(tmp: Path) -> tuple[Git, Git, Path, str]:
    """(signing Git, plain Git, a bare repository, its empty tree) with a fresh key."""
    key = tmp / "identity" / "id_ed25519"
    ensure_key(key, PRINCIPAL)
    plain = Git(author_name=PRINCIPAL, author_email=f"{PRINCIPAL}@bench.agentmesh.invalid")
    repo = tmp / "scratch.git"
    plain.run("init", "--quiet", "--bare", str(repo))
    tree = plain.run("hash-object", "-t", "tree", "-w", "--stdin", cwd=repo, input="").stdout.strip()
    return Git(author_name=plain.author_name, author_email=plain.author_email, signing_key=key), plain, repo, tree


def ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def commit_tree_costs(tmp: Path, rounds: int) -> tuple[list[float], list[float]]:
    """Milliseconds of one signed and one unsigned `Git.commit_tree`, interleaved."""
    signing, plain, repo, tree = scratch_repo(tmp / "commit-tree")
    signed, unsigned = [], []
    for i in range(rounds):
        for git, into in ((signing, signed), (plain, unsigned)) if i % 2 == 0 else ((plain, unsigned),
                                                                                     (signing, signed)):
            start = time.perf_counter()
            git.commit_tree(tree, [], f"bench {i} {len(into)}", cwd=repo)
            into.append(ms_since(start))
    return signed, unsigned


def verification_costs(tmp: Path, commits: int, rounds: int) -> tuple[list[float], list[float]]:
    """Milliseconds per commit of verifying `commits` signed commits in one batch (`signers`), and of
    the same `git log --no-walk` listing without signature checks; every commit must verify."""
    signing, plain, repo, tree = scratch_repo(tmp / "verify")
    shas = [signing.commit_tree(tree, [], f"bench {i}", cwd=repo) for i in range(commits)]
    allowed = ensure_allowed_signers(tmp / "verify" / "identity",
                                     allowed_signers([(PRINCIPAL, ensure_key(signing.signing_key, PRINCIPAL))]))
    verify, listing = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        found = signers(plain, repo, shas, allowed)
        verify.append(ms_since(start) / commits)
        if set(found.values()) != {PRINCIPAL}:
            raise RuntimeError(f"not every commit verified as {PRINCIPAL}: {found}")
        start = time.perf_counter()
        plain.run("log", "--no-walk=unsorted", "--format=%H", "--stdin", cwd=repo, input="\n".join(shas) + "\n")
        listing.append(ms_since(start) / commits)
    return verify, listing


SHIM = """#!/bin/sh
printf '%s\\n' "$*" >> {log}
exec {real} "$@"
"""


def ssh_keygen_profile(tmp: Path, *, agents: int, issues: int) -> tuple[DemoRun, Counter[str]]:
    """One signed demo with every ssh-keygen process it starts counted by what it does (untimed: the
    shim costs a shell per call)."""
    real = shutil.which("ssh-keygen")
    if real is None:
        raise RuntimeError("ssh-keygen is not installed")
    shim, log = tmp / "shim", tmp / "ssh-keygen.log"
    shim.mkdir()
    (shim / "ssh-keygen").write_text(SHIM.format(log=log, real=real))
    (shim / "ssh-keygen").chmod(0o755)
    run = demo_run(True, tmp / "demo-profiled", agents=agents, issues=issues, path_prefix=shim)
    kinds: Counter[str] = Counter()
    for line in log.read_text().splitlines() if log.exists() else []:
        words = line.split()
        kinds[" ".join(words[:2]) if words[:1] == ["-Y"] else "create a key"] += 1
    return run, kinds


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def report_demo(pairs: list[tuple[DemoRun, DemoRun]], echo=print) -> None:
    counted = [p for p in pairs if all(r.closed for r in p)]
    if not counted:
        echo("no pair closed every issue: nothing to compare")
        return
    signed, unsigned = [p[0] for p in counted], [p[1] for p in counted]
    ratios = [s.wall / u.wall for s, u in counted]
    echo("| mode | whole process (s, median) | demo's own time (s) | CPU, user + system (s) "
         "| commits on the remote (signed) |")
    echo("|---|---|---|---|---|")
    for name, runs in (("signed", signed), ("unsigned", unsigned)):
        echo(f"| {name} | {median([r.wall for r in runs]):.1f} | {median([r.seconds for r in runs]):.1f} "
             f"| {median([r.cpu for r in runs]):.1f} "
             f"| {median([r.commits for r in runs]):.0f} ({median([r.signed_commits for r in runs]):.0f}) |")
    echo(f"paired ratio signed/unsigned, whole process: median {median(ratios):.2f}x over {len(counted)} pairs "
         f"(min {min(ratios):.2f}x, max {max(ratios):.2f}x; ratio of medians "
         f"{median([r.wall for r in signed]) / median([r.wall for r in unsigned]):.2f}x); CPU: median "
         f"{median([s.cpu / u.cpu for s, u in counted]):.2f}x")


def report_micro(commit_tree: tuple[list[float], list[float]], verification: tuple[list[float], list[float]],
                 echo=print) -> None:
    signed, unsigned = commit_tree
    verify, listing = verification
    echo("| measurement | signed (ms, median) | unsigned (ms) | ratio |")
    echo("|---|---|---|---|")
    echo(f"| `Git.commit_tree` | {median(signed):.1f} | {median(unsigned):.1f} "
         f"| {median([s / u for s, u in zip(signed, unsigned, strict=True)]):.2f}x (paired) |")
    echo(f"| batch `git log --no-walk`, per commit | {median(verify):.2f} (`signers`, %G?) "
         f"| {median(listing):.3f} (%H only) | {median(verify) / median(listing):.0f}x |")


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=8, help="signed/unsigned demo pairs")
    parser.add_argument("--agents", type=int, default=3)
    parser.add_argument("--issues", type=int, default=4)
    parser.add_argument("--commits", type=int, default=40, help="commits for the commit-tree and verify figures")
    parser.add_argument("--profile", action="store_true", help="also count ssh-keygen processes in one signed demo")
    args = parser.parse_args()
    git_version = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"{git_version}, Python {sys.version.split()[0]}, cpus: {os.cpu_count()}, load average {load_average()}")
    tmp = Path(tempfile.mkdtemp(prefix="agentmesh-bench-signing-"))
    try:
        print(f"demo: {args.agents} agents, {args.issues} issues, {args.pairs} pairs")
        pairs = demo_pairs(tmp, args.pairs, agents=args.agents, issues=args.issues)
        print(f"load average after the demo runs: {load_average()}")
        print()
        report_demo(pairs)
        print()
        report_micro(commit_tree_costs(tmp, args.commits), verification_costs(tmp, args.commits, rounds=5))
        if args.profile:
            run, kinds = ssh_keygen_profile(tmp, agents=args.agents, issues=args.issues)
            print()
            print(f"ssh-keygen processes in one signed demo ({run.commits} commits on the remote, "
                  f"{run.signed_commits} signed): " + ", ".join(f"{k}: {n}" for k, n in sorted(kinds.items())))
        print(f"load average at the end: {load_average()}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
