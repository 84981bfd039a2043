"""What a kept fleet run pushed and fetched, by kind of ref (run on demand; issue 16).

    python benchmarks/fleet.py --agents 8 --issues 16 --sleep 1 --mode daemon --no-calibrate --keep
    python benchmarks/fleet_traffic.py /tmp/agentmesh-fleet-XXXX

Reads every agent's git trace2 events (`fleet/hosts/*/tick-*.trace2`, written by fleet.py's git shim) and
counts the pushes by the refs they lease (a claim, an item, a work branch, a journal, the default branch...) and
the fetches by their refspecs. Numbers and names are folded (`ITEM`, `CLAIM`, `WORK`...), so a merge's push reads
`CLAIM ITEM WORK journals main` and a PR creation's `CLAIM ITEM PULLHEAD WORK journals`. Lost races show as
more pushes of a kind than issues: each lost push is counted.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.gitcount import GitCount  # noqa: E402

FOLDS = (
    (r"refs/agentmesh/items/\d+", "ITEM"),
    (r"refs/agentmesh/statuses/[0-9a-f]+", "STATUS"),
    (r"refs/agentmesh/pull-heads/[0-9a-f]+", "PULLHEAD"),
    (r"refs/heads/claim/\d+", "CLAIM"),
    (r"refs/heads/agentmesh/(journals|agents)/[\w.-]+", r"\1"),
    (r"refs/heads/[\w.-]+/\d+-[\w.-]+", "WORK"),
    (r"refs/heads/", ""),
)


def fold(ref: str) -> str:
    for pattern, name in FOLDS:
        ref = re.sub(pattern, name, ref)
    return ref


def calls(paths: list[Path]) -> Iterator[list[str]]:
    """The argv (less `-c` options and `--git-dir`) of every git process an agent started itself."""
    for path in paths:
        for argv in GitCount(path).argvs():
            yield [a for a in argv if not a.startswith("--git-dir")]


def traffic(paths: list[Path]) -> tuple[Counter[str], Counter[str]]:
    pushes: Counter[str] = Counter()
    fetches: Counter[str] = Counter()
    for argv in calls(paths):
        if argv and argv[0] == "push":
            leased = sorted({fold(a.split("=", 1)[1].rsplit(":", 1)[0]) for a in argv
                             if a.startswith("--force-with-lease=")})
            pushes[" ".join(leased)] += 1
        elif argv and argv[0] == "fetch":
            specs = sorted({fold(a.lstrip("+").split(":", 1)[0]) for a in argv if a.startswith("+")})
            fetches[" ".join(specs)[:120] + (" --prune" if "--prune" in argv else "")] += 1
    return pushes, fetches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a fleet run's folder kept with --keep")
    args = parser.parse_args()
    paths = sorted(args.run.glob("fleet/hosts/*/tick-*.trace2"))
    if not paths:
        print(f"no trace2 events under {args.run}/fleet/hosts: run fleet.py with --keep (and its git shim)",
              file=sys.stderr)
        return 1
    pushes, fetches = traffic(paths)
    for title, found in (("pushes", pushes), ("fetches", fetches)):
        print(f"{sum(found.values())} {title}")
        for kind, count in found.most_common():
            print(f"  {count:5d}  {kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
