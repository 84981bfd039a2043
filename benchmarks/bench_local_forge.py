"""Benchmark the git-native forge over file:// (run on demand, not part of the tests).

    python benchmarks/bench_local_forge.py [--issues 1000] [--creates 30]

Measures:
- listing N open issues: cold (a new cache clone fetches every item) and warm
  (the usual case: the fetch finds nothing new), median of several runs;
- creating one issue vs one raw `git push --force-with-lease=<ref>:` of a new
  commit to the same remote (same ref count), mean of several runs.

The N issues are seeded in one `git fast-import` stream written straight into
the remote in the documented format (docs/local-forge.md), which also checks
that independently written items read back.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from functools import partial
from pathlib import Path

from agentmesh.forge.local import LocalForge, init_repository
from agentmesh.git.cache import CacheClone
from agentmesh.git.run import Git

GIT_ENV = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
           "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@bench.invalid",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@bench.invalid"}


def seed_issues(remote: Path, count: int, labels: tuple[str, ...] | list[str] = ("task",)) -> None:
    stream = []
    for n in range(1, count + 1):
        meta = json.dumps({"version": 1, "kind": "issue", "title": f"Seeded issue {n}", "body": "x" * 200,
                           "state": "open", "labels": list(labels), "assignees": [], "author": "bench",
                           "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}).encode()
        message = b"issue: create\n"
        stream += [b"blob\nmark :%d\ndata %d\n" % (2 * n, len(meta)), meta, b"\n",
                   b"commit refs/agentmesh/items/%d\nmark :%d\ncommitter bench <b@b.invalid> 1767225600 +0000\n"
                   b"data %d\n" % (n, 2 * n + 1, len(message)), message,
                   b"M 100644 :%d meta.json\n\n" % (2 * n)]
    subprocess.run(["git", "fast-import", "--quiet"], input=b"".join(stream), cwd=remote, env=GIT_ENV, check=True)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def raw_push_seconds(remote_url: str, work: Path, runs: int) -> list[float]:
    """One `git push --force-with-lease=<ref>:` of a new unique commit per run, timed alone."""
    def git(*args, input=None):
        return subprocess.run(["git", *args], cwd=work, env=GIT_ENV, input=input, capture_output=True,
                              text=True, check=True).stdout.strip()

    work.mkdir()
    git("init", "--quiet", "--bare", ".")
    tree = git("hash-object", "-t", "tree", "-w", "--stdin", input="")
    times = []
    for i in range(runs):
        commit = git("commit-tree", tree, "-m", f"raw push {i} {time.time_ns()}")
        ref = f"refs/heads/bench/raw-{i}"
        times.append(timed(partial(git, "push", "--porcelain", f"--force-with-lease={ref}:", remote_url,
                                   f"{commit}:{ref}")))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=1000)
    parser.add_argument("--creates", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-local-forge-") as tmp:
        root = Path(tmp)
        remote = root / "remote.git"
        init_repository(Git(), remote, {"README.md": "bench\n"})
        seed_issues(remote, args.issues)
        url = remote.as_uri()

        def forge(name: str) -> LocalForge:
            return LocalForge(CacheClone(Git(), root / f"cache-{name}.git", url).ensure(), user="bench")

        cold = []
        for run in range(args.runs):
            fresh = forge(f"cold-{run}")
            cold.append(timed(partial(fresh.list_issues, state="open")))
        warm_forge = forge("warm")
        listed = warm_forge.list_issues(state="open")
        assert len(listed) == args.issues, len(listed)
        warm = [timed(lambda: warm_forge.list_issues(state="open")) for _ in range(args.runs)]
        labelled = [timed(lambda: warm_forge.list_issues(state="open", labels=["task"])) for _ in range(args.runs)]

        creator = forge("creator")
        creator.create_issue("warm-up")
        creates = [timed(lambda: creator.create_issue("Benchmark issue", "body")) for _ in range(args.creates)]
        creates_labelled = [timed(lambda: creator.create_issue("Benchmark issue", "body", labels=["task"]))
                            for _ in range(args.creates)]
        comments = [timed(lambda: creator.comment(1, "a comment")) for _ in range(args.creates)]
        pushes = raw_push_seconds(url, root / "raw", args.creates)

    ms = lambda xs: statistics.median(xs) * 1000  # noqa: E731
    mean = lambda xs: statistics.mean(xs) * 1000  # noqa: E731
    print(f"git: {subprocess.run(['git', '--version'], capture_output=True, text=True).stdout.strip()}, "
          f"cpus: {os.cpu_count()}")
    print(f"list {args.issues} open issues over file://, cold cache: median {ms(cold):7.1f} ms")
    print(f"list {args.issues} open issues over file://, warm cache: median {ms(warm):7.1f} ms "
          f"(with a label filter {ms(labelled):.1f} ms)")
    print(f"raw push --force-with-lease (new ref):    mean {mean(pushes):7.1f} ms (median {ms(pushes):.1f})")
    print(f"create_issue:                             mean {mean(creates):7.1f} ms (median {ms(creates):.1f}) "
          f"ratio {mean(creates) / mean(pushes):.2f}x")
    print(f"create_issue with a known label:          mean {mean(creates_labelled):7.1f} ms "
          f"ratio {mean(creates_labelled) / mean(pushes):.2f}x")
    print(f"comment on an issue:                      mean {mean(comments):7.1f} ms "
          f"ratio {mean(comments) / mean(pushes):.2f}x")


if __name__ == "__main__":
    main()
