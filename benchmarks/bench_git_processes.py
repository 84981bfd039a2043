"""Count the git processes of one claim-task tick on the local forge (run on demand, not part of the tests).

    python benchmarks/bench_git_processes.py [--issues 200]

One agent, one file:// remote holding `--issues` open issues that no agent may take (no eligible
label), seeded with `git fast-import`. After a warm-up tick (the first tick of a new host fetches
everything), it counts:
- an idle tick: nothing to claim;
- a working tick: one eligible issue is added; the tick claims it, runs the demo executor, pushes
  the work branch and opens the PR;
- the idle tick after it (its claim waits for review: renewed only when due, seconds after its push
  it is not);
- a working tick while that claim is still in review (a second issue is added).

Counts come from git's trace2 events (tests/support/gitcount.py): `calls` are the git processes
agentmesh started, `processes` include their git children (upload-pack, receive-pack, gc...).
`seconds` is each tick's wall time: compare it only with a run of the other version made next to it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentmesh.agent.claim_task import claim_task  # noqa: E402
from tests.support import agent_forge, agent_mesh, demo_body, load_benchmark, local_forge_remote  # noqa: E402
from tests.support.gitcount import counting_git  # noqa: E402


def measure(tmp: Path, issues: int, *, review_tick: bool = True, fresh_mesh: bool = False) -> dict[str, dict]:
    """Counts of each tick. `fresh_mesh`: every tick builds its Mesh anew, as a cron run does, so its
    set-up calls (the mesh policy, the roster) are counted too."""
    remote = local_forge_remote(tmp / "remote.git")
    load_benchmark("bench_local_forge").seed_issues(remote, issues, labels=["discussion"])
    env = {"PATH": "/usr/bin:/bin"}
    kept = agent_mesh(remote, tmp / "hosts", "alice")
    human = agent_mesh(remote, tmp / "hosts", "human")
    results: dict[str, dict] = {}
    with counting_git(tmp / "count") as count:
        def tick(name: str) -> None:
            count.reset()
            mesh = agent_mesh(remote, tmp / "hosts", "alice") if fresh_mesh else kept
            start = time.perf_counter()
            report = claim_task(mesh, agent_forge(mesh), env=env)
            mesh.close()  # the run's end, as the daemon's: the next tick starts its own `cat-file`
            results[name] = {"seconds": round(time.perf_counter() - start, 3),
                             "calls": count.calls(), "processes": count.processes(),
                             "events": [e.event for e in report.events],
                             "commands": dict(count.commands().most_common()),
                             "argvs": [" ".join(a)[:200] for a in count.argvs()]}

        tick("warm-up")
        tick("idle")
        agent_forge(human).create_issue("Add the hello doc", demo_body("docs/hello.md", "hello\n"), ["task"])
        tick("working")
        if review_tick:
            tick("idle, claim in review")
            agent_forge(human).create_issue("Add the bye doc", demo_body("docs/bye.md", "bye\n"), ["task"])
            tick("working, claim in review")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--issues", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="print every count, by git command")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agentmesh-gitproc-") as tmp:
        results = measure(Path(tmp) / "kept", args.issues)
        cron = measure(Path(tmp) / "cron", args.issues, fresh_mesh=True)
    if args.json:
        print(json.dumps({"kept mesh": results, "new mesh per tick": cron}, indent=2))
        return
    print(f"{args.issues} open issues, local forge over file://; git calls / processes")
    print(f"{'tick':<24}{'one Mesh':>14}{'a Mesh per tick (cron)':>26}")
    for name, found in results.items():
        again = cron[name]
        print(f"{name:<24}{found['calls']:>7} / {found['processes']:<4}{again['calls']:>15} / {again['processes']}")


if __name__ == "__main__":
    main()
