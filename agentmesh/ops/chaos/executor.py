"""The chaos harness's executor: the demo executor behind a seeded delay.

    python -m agentmesh.ops.chaos.executor --seed N --lease S --grace S --long-until EPOCH \
        ISSUE TASK_FILE WORKTREE

Some issues take longer than lease + grace, so only the agent's renewals keep their claims. Long
runs happen only while they would end before `--long-until` (the nemesis's end): after it, every
run is short, so the mesh drains in bounded time.
"""

from __future__ import annotations

import argparse
import sys
import time

from agentmesh.agent.demo import main as demo_main
from agentmesh.ops.chaos.schedule import executor_delay

SHORT_AFTER_DEADLINE = 2.0


def delay_for(args: argparse.Namespace, now: float) -> float:
    delay = executor_delay(args.seed, args.issue, lease_seconds=args.lease, grace_seconds=args.grace,
                           long_share=args.long_share)
    long = delay > args.lease + args.grace
    return SHORT_AFTER_DEADLINE if long and now + delay > args.long_until else delay


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="agentmesh.ops.chaos.executor")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--lease", type=float, required=True)
    parser.add_argument("--grace", type=float, required=True)
    parser.add_argument("--long-share", type=float, default=0.25)
    parser.add_argument("--long-until", type=float, default=0.0, help="epoch seconds")
    parser.add_argument("issue", type=int)
    parser.add_argument("task_file")
    parser.add_argument("worktree")
    args = parser.parse_args(argv)
    delay = delay_for(args, time.time())
    print(f"chaos executor: issue #{args.issue}, sleeping {delay:.1f}s", flush=True)
    time.sleep(delay)
    return demo_main([args.task_file, args.worktree])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
