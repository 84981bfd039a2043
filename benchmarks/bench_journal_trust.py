"""Benchmark reading the journals with a roster, where each line must be signed by its agent (run on
demand, not part of the tests).

    python benchmarks/bench_journal_trust.py [--commits 600] [--runs 5]

Seeds a memory branch with N signed journal commits of three agents in the current month (each
appends one line to its agent's file, as a flush does), then times `Journal.read(today)`, what a
budget check does, on a fresh Mesh per run:
- without verification (as a mesh without a roster reads);
- with the roster, cold: nothing remembered in the state dir, every commit is verified;
- with the roster, warm: the good signatures of earlier runs are remembered (the usual case);
- warm, after an outsider appended an unsigned line to one agent's file: that file is blamed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from agentmesh.agent.mesh import Mesh
from agentmesh.core.memory import journal_file, utc_ts
from agentmesh.forge.local import init_repository
from agentmesh.git.cache import CacheClone
from agentmesh.git.run import Git
from agentmesh.git.signing import ensure_key
from agentmesh.host.config import HostConfig
from agentmesh.host.roster import ROSTER_PATH

AGENTS = ("ada", "bob", "cy")
MEMORY = "refs/heads/agentmesh/memory"


def seed(root: Path, commits: int) -> Path:
    keys = {a: ensure_key(root / "keys" / a / "id_ed25519", a) for a in AGENTS}
    roster = yaml.safe_dump({"agents": [{"name": a, "key": k.line} for a, k in keys.items()], "maintainers": []})
    remote = root / "remote.git"
    init_repository(Git(), remote, {"README.md": "# bench\n", ROSTER_PATH: roster})
    scratch = CacheClone(Git(), root / "scratch.git", str(remote)).ensure()
    signers = {a: Git(author_name=a, author_email=f"{a}@bench.invalid", signing_key=root / "keys" / a / "id_ed25519")
               for a in AGENTS}
    month = datetime.now(UTC).strftime("%Y-%m")
    texts = dict.fromkeys(AGENTS, "")
    head: str | None = None
    tree = scratch.empty_tree()
    for i in range(commits):
        agent = AGENTS[i % len(AGENTS)]
        texts[agent] += json.dumps({"id": f"{agent}-{i}", "ts": utc_ts(time.time()), "agent": agent, "host": "h",
                                    "event": "executed", "issue": i, "duration_s": 1.0, "cost_usd": 0.01}) + "\n"
        tree = scratch.edit_tree(tree, journal_file(agent, month), texts[agent].encode())
        head = signers[agent].commit_tree(tree, [head] if head else [], f"agentmesh: journal of {agent}\n",
                                          cwd=scratch.path)
    assert head is not None
    scratch.run("push", "--quiet", str(remote), f"{head}:{MEMORY}")
    return remote


def forge_line(root: Path, remote: Path) -> None:
    """An outsider appends an unsigned line to ada's file."""
    work = root / "outsider"
    env = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_AUTHOR_NAME": "m", "GIT_AUTHOR_EMAIL": "m@x",
           "GIT_COMMITTER_NAME": "m", "GIT_COMMITTER_EMAIL": "m@x", "PATH": "/usr/bin:/bin"}
    subprocess.run(["git", "clone", "--quiet", "--branch", "agentmesh/memory", str(remote), str(work)], env=env,
                   check=True)
    path = work / journal_file("ada", datetime.now(UTC).strftime("%Y-%m"))
    path.write_text(path.read_text() + json.dumps({"id": "forged", "ts": utc_ts(time.time()), "agent": "ada",
                                                   "host": "h", "event": "executed", "cost_usd": 1e6}) + "\n")
    for args in (["add", "-A"], ["commit", "--quiet", "-m", "forged"], ["push", "--quiet", "origin", "HEAD"]):
        subprocess.run(["git", *args], cwd=work, env=env, check=True)


def reader(root: Path, remote: Path) -> Mesh:
    host = HostConfig.model_validate({"agent": "reader", "host": "bench", "remote": str(remote),
                                      "state_dir": str(root / "reader"), "executor": {"kind": "demo"}})
    mesh = Mesh(host, env={})
    assert mesh.identity.enforced
    return mesh


def read_ms(root: Path, remote: Path, *, verify: bool, cold: bool) -> tuple[float, int, int]:
    mesh = reader(root, remote)
    if cold:
        for kept in (root / "reader" / "identity").glob("journals-verified-*"):
            kept.unlink()
    journal = mesh.journal()
    if not verify:
        journal.verify = None
    start = time.perf_counter()
    read = journal.read(datetime.now(UTC).date())
    return (time.perf_counter() - start) * 1000, len(read.entries), read.ignored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=600)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        remote = seed(root, args.commits)
        print(f"seeded {args.commits} signed journal commits in {time.perf_counter() - started:.1f}s")
        read_ms(root, remote, verify=False, cold=False)  # the reader's clone fetches the branch once
        rows = [("no verification (no roster)", False, False), ("roster, cold (nothing kept)", True, True),
                ("roster, warm (remembered)", True, False)]
        results = []
        for name, verify, cold in rows:
            found = [read_ms(root, remote, verify=verify, cold=cold) for _ in range(args.runs)]
            results.append((name, statistics.median(f[0] for f in found), found[0][1], found[0][2]))
        forge_line(root, remote)
        read_ms(root, remote, verify=True, cold=False)  # fetch the new head, verify the one new commit
        found = [read_ms(root, remote, verify=True, cold=False) for _ in range(args.runs)]
        results.append(("roster, warm, one file blamed", statistics.median(f[0] for f in found), found[0][1],
                        found[0][2]))
        print(f"{'read of today':32} {'ms (median)':>12} {'entries':>8} {'ignored':>8}")
        for name, ms, entries, ignored in results:
            print(f"{name:32} {ms:12.1f} {entries:8d} {ignored:8d}")


if __name__ == "__main__":
    main()
