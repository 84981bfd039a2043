"""`agentmesh daemon`: the long-running alternative to cron."""

from __future__ import annotations

import signal

import click

from agentmesh.cli.output import echo, emit_json, emit_report, json_option


def daemon(g, *, claim_seconds: float | None, monitor_seconds: float | None, jitter_seconds: float | None,
           max_seconds: float | None, as_json: bool) -> int:
    from agentmesh.ops.daemon import Cadence, Daemon

    schedule_config = g.host_config().schedule
    cadence = Cadence(claim_seconds if claim_seconds is not None else schedule_config.claim_minutes * 60,
                      monitor_seconds if monitor_seconds is not None else schedule_config.monitor_minutes * 60,
                      jitter_seconds if jitter_seconds is not None else schedule_config.jitter_seconds)

    def on_report(command: str, report) -> None:
        if as_json:
            emit_json({"command": command, **report.to_json()})
        else:
            emit_report(report, False)

    runner = Daemon(g.mesh, cadence, on_report=on_report, verbose=g.verbose, max_seconds=max_seconds)
    signal.signal(signal.SIGTERM, runner.stop)
    signal.signal(signal.SIGINT, runner.stop)
    code = runner.run()
    if as_json:
        emit_json({"command": "drain", "released": runner.released})
    elif runner.released:
        echo(f"drained: released the claims on {', '.join(f'#{n}' for n in runner.released)}")
    return code


@click.command("daemon")
@click.option("--claim-every", "claim_seconds", type=click.FloatRange(min=0.1), metavar="SECONDS",
              help="Seconds between claim-task runs [default: schedule.claim_minutes of the host config, 5 min].")
@click.option("--monitor-every", "monitor_seconds", type=click.FloatRange(min=0.1), metavar="SECONDS",
              help="Seconds between monitor-prs runs [default: schedule.monitor_minutes, 10 min].")
@click.option("--jitter", "jitter_seconds", type=click.FloatRange(min=0), metavar="SECONDS",
              help="Spread of start times and intervals [default: schedule.jitter_seconds, 60].")
@click.option("--max-seconds", type=click.FloatRange(min=1), metavar="SECONDS", help="Drain and exit after this long.")
@json_option
@click.pass_obj
def command(g, claim_seconds, monitor_seconds, jitter_seconds, max_seconds, as_json):
    """Run claim-task and monitor-prs on a schedule until stopped.

    \b
    The alternative to cron (crontab.example) and systemd timers
    (contrib/systemd): the same runs, each with its own host lock, so it is
    safe next to them. SIGTERM or Ctrl-C drains cleanly: the step in
    progress finishes, claims with no work yet are released, exit 0.
    """
    return daemon(g, claim_seconds=claim_seconds, monitor_seconds=monitor_seconds, jitter_seconds=jitter_seconds,
                  max_seconds=max_seconds, as_json=as_json)
