"""`agentmesh chaos`: a mesh of real agents under a seeded nemesis, then the remote is judged."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from functools import partial
from pathlib import Path

import click

from agentmesh.cli.output import echo, emit_json, remember_json
from agentmesh.core.errors import EXIT_OK, EXIT_USER, UserError
from agentmesh.ops.chaos.schedule import Fault

SHOWN_PROBLEMS = 8
MAIN_CODES = ("0", "1", "3", "4", "75")


def render(result) -> list[str]:
    """The run as a human reads it: seed, timeline, invariants, drain time, exit codes."""
    o = result.options
    lines = [f"seed {o.seed} (replay: agentmesh chaos --seed {o.seed} with the same options)",
             f"{o.agents} agents ({', '.join(f'{n} {s}' for n, s in result.agents.items())}), {o.issues} issues, "
             f"lease {o.lease_seconds}s + grace {o.grace_seconds}s (renew every {o.renew_seconds}s), "
             + ("no faults (--clean)" if o.clean else f"nemesis {o.nemesis_seconds:.0f}s"),
             "", "nemesis timeline:"]
    if not result.timeline:
        lines.append("  (no faults)")
    for a in result.timeline:
        detail = "healed: " if a.heal else f"{a.event.describe()}: " if a.event.seconds else ""
        lines.append(f"  {a.at:6.1f}s  {a.event.fault!s:<16} {a.event.target:<8} {detail}{a.note}")
    lines += [f"  left out: {note}" for note in result.plan.left_out]
    lines += ["", "invariants:"]
    for v in result.verdicts:
        lines.append(f"  {'PASS' if v.ok else 'FAIL'}  {v.invariant!s:<22} {v.figure}")
        lines += [f"          - {p}" for p in v.problems[:SHOWN_PROBLEMS]]
        if len(v.problems) > SHOWN_PROBLEMS:
            lines.append(f"          ... and {len(v.problems) - SHOWN_PROBLEMS} more (--json has them all)")
    drain = "not quiet before the timeout" if result.drain_seconds is None else f"{result.drain_seconds:.1f}s"
    codes = result.exit_codes
    others = sorted((c for c in codes if c not in MAIN_CODES), key=int)
    lines += ["", f"drain time: {drain}",
              f"exit codes over {sum(codes.values())} cron-style runs: "
              + ", ".join(f"{c}: {codes.get(c, 0)}" for c in MAIN_CODES)
              + (f"; other: {', '.join(f'{c}: {codes[c]}' for c in others)} (negative: killed by that signal)"
                 if others else "")
              + (f"; {result.cron_skipped} cron tick(s) skipped, 3 runs still alive" if result.cron_skipped else "")]
    for name, exits in result.daemon_exits.items():
        if exits:
            lines.append(f"daemon {name} died {sum(exits.values())} time(s) and was restarted: "
                         + ", ".join(f"{c}: {n}" for c, n in sorted(exits.items(), key=lambda kv: int(kv[0]))))
    passed = sum(v.ok for v in result.verdicts)
    lines.append(f"{passed}/{len(result.verdicts)} invariants hold, in {result.seconds:.0f}s")
    return lines


def chaos(options, directory: Path | None, keep: bool, as_json: bool) -> int:
    from agentmesh.ops.chaos.harness import run_chaos

    root = directory or Path(tempfile.mkdtemp(prefix="agentmesh-chaos-"))
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise UserError(f"--dir {root}: must be empty or new, so nothing of yours is overwritten")
    say = partial(echo, err=as_json)  # --json: stdout is for the JSON alone
    result = run_chaos(root.resolve(), options, echo=say)
    if as_json:
        emit_json(result.to_json())
    else:
        for line in render(result):
            echo(line)
    if keep or directory is not None or not result.ok or result.exit_codes.get("3"):  # crash logs are evidence
        say(f"folder kept: {root} (each agent's logs in hosts/<agent>/, the remote in served/mesh.git)")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return EXIT_OK if result.ok else EXIT_USER


@click.command("chaos")
@click.option("--agents", type=click.IntRange(2, 9), default=3, show_default=True, help="Agents in the ring.")
@click.option("--daemons", type=click.IntRange(min=0), metavar="M",
              help="How many of the agents run as `agentmesh daemon`; the others are cron-style "
                   "[default: half, rounded down].")
@click.option("--issues", type=click.IntRange(1, 500), default=8, show_default=True, help="Issues to seed.")
@click.option("--seed", type=click.IntRange(min=0), help="The nemesis's seed; the same seed and options replay "
              "the same faults [default: a random one, printed].")
@click.option("--nemesis-seconds", type=click.FloatRange(min=0), default=90, show_default=True, metavar="S",
              help="How long faults are injected.")
@click.option("--lease-seconds", type=click.IntRange(min=60), default=60, show_default=True, metavar="S",
              help="The mesh's claim lease (the policy's floor is 60); renewals every quarter of it.")
@click.option("--grace-seconds", type=click.IntRange(min=0), default=10, show_default=True, metavar="S",
              help="Extra time before an observer reaps an unrenewed claim.")
@click.option("--cron-every", "cron_seconds", type=click.FloatRange(min=1), default=4, show_default=True,
              metavar="S", help="How often cron-style agents start each command.")
@click.option("--fault", "faults", type=click.Choice([f.value for f in Fault]), multiple=True,
              help="Only these faults (repeat the option) [default: all].")
@click.option("--clean", is_flag=True, help="No faults: the baseline every invariant must pass.")
@click.option("--timeout", type=click.FloatRange(min=10), default=120, show_default=True, metavar="S",
              help="The longest wait, after the nemesis, for every issue to be closed or parked.")
@click.option("--keep", is_flag=True, help="Keep the folder for inspection (always kept when an invariant fails "
              "or a run crashed).")
@click.option("--dir", "directory", type=click.Path(path_type=Path, file_okay=False),
              help="Where to build the mesh (empty or new; kept) [default: a new temporary folder].")
@click.option("--json", "as_json", is_flag=True, callback=remember_json,
              help="Progress on stderr; the result as one JSON document.")
def command(agents, daemons, issues, seed, nemesis_seconds, lease_seconds, grace_seconds, cron_seconds, faults,
            clean, timeout, keep, directory, as_json):
    """Break a mesh of real agents on purpose, then check it from the remote.

    \b
    Builds, in one folder, a local-forge remote served by its own `git daemon`
    (git://127.0.0.1:<free port>) and N agents, each in its own host folder:
    some cron-style (claim-task and monitor-prs started every few seconds),
    the others `agentmesh daemon`. Executors sleep a seeded while first, some
    longer than lease + grace. Then a seeded nemesis strikes:
      kill-agent       SIGKILL an agent's processes; restart after a while
      kill-executor    SIGKILL its running executors (running/ pidfiles)
      pause-agent      SIGSTOP it past lease + grace, then SIGCONT
      skew-clock       its wall clock off by ±1 h (AGENTMESH_CLOCK_SKEW_SECONDS)
      read-only-state  its state dir remounted read-only (root only)
      remote-outage    git daemon stopped, then restarted on the same port
      remote-hang      git daemon SIGSTOPped: agents must time out
      remote-move      the bare repository renamed away and back
    Every fault is healed, the agents run until every issue is closed or
    parked, are asked to stop, and the remote is judged with git plumbing:
    issues settled, one merge per issue, sibling approvals on the merged
    head, no claims or orphan branches, merges in main, journals whole,
    no stage label on closed issues, no stray refs; and no process stuck,
    no lock held on this host. docs/chaos.md explains each.

    \b
    Exit 0 when every invariant holds, 1 when one fails (or the options are
    wrong), 75 when the harness cannot start its git daemon.
    Replay a run: agentmesh chaos --seed N (with the same options).
    """
    from agentmesh.ops.chaos.harness import Options

    if daemons is not None and daemons > agents:
        raise UserError(f"--daemons {daemons}: at most --agents ({agents})")
    options = Options(agents=agents, daemons=daemons, issues=issues,
                      seed=seed if seed is not None else secrets.randbelow(1_000_000),
                      nemesis_seconds=nemesis_seconds, lease_seconds=lease_seconds, grace_seconds=grace_seconds,
                      clean=clean, timeout=timeout, cron_seconds=cron_seconds,
                      faults=tuple(Fault(f) for f in faults) if faults else tuple(Fault))
    return chaos(options, directory, keep, as_json)
