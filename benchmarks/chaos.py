"""Chaos over several seeds (run on demand): which invariants fail, how often, with which figures.

    python benchmarks/chaos.py [--seeds 1-5] [-- extra agentmesh chaos options]

Each seed is one `agentmesh chaos --json` run (about two minutes at the defaults), one after the
other: the machine's cores are the agents'. Prints one line per seed and a tally per invariant; a
seed that fails is kept in its folder for inspection (the line names it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter


def seeds(text: str) -> list[int]:
    found: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        found += range(int(low), int(high or low) + 1)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=seeds, default=seeds("1-5"), help="e.g. 1-5 or 3,7,9 [1-5]")
    parser.add_argument("extra", nargs="*", help="more `agentmesh chaos` options, after --")
    args = parser.parse_args()
    failures: Counter[str] = Counter()
    drains = []
    for seed in args.seeds:
        out = subprocess.run([sys.executable, "-m", "agentmesh", "chaos", "--seed", str(seed), "--json", *args.extra],
                             capture_output=True, text=True)
        if out.returncode not in (0, 1):
            print(f"seed {seed}: exit {out.returncode}: {out.stderr.strip().splitlines()[-1:]}")
            continue
        result = json.loads(out.stdout.strip().splitlines()[-1])
        failed = [v for v in result["invariants"] if not v["ok"]]
        failures.update(v["invariant"] for v in failed)
        drains.append(result["drain_seconds"])
        codes = " ".join(f"{c}:{n}" for c, n in result["exit_codes"].items())
        print(f"seed {seed}: {len(result['invariants']) - len(failed)}/{len(result['invariants'])} hold, "
              f"drain {result['drain_seconds']}s, exit codes {codes}"
              + (f", kept {result['root']}" if failed else ""))
        for v in failed:
            print(f"    FAIL {v['invariant']}: {v['figure']}; {'; '.join(v['problems'][:3])}")
    print(f"\n{len(args.seeds)} seeds; failures per invariant: {dict(failures) or 'none'}; "
          f"drain times: {drains}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
