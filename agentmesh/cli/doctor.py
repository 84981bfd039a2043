"""`agentmesh doctor`: is this host ready to run its agent from cron?"""

from __future__ import annotations

import click

from agentmesh.cli.output import echo, emit_json, json_option
from agentmesh.core.errors import EXIT_OK, EXIT_USER


def doctor(g, as_json: bool) -> int:
    from agentmesh.ops.doctor import run_checks

    checks = run_checks(g.host_config)
    ok = all(check.ok for check in checks)
    if as_json:
        emit_json({"ok": ok, "checks": [check.to_json() for check in checks]})
    else:
        for check in checks:
            fix = "" if check.ok or not check.hint else f" — fix: {check.hint}"
            echo(f"{'✓' if check.ok else '✗'} {check.name}: {check.detail}{fix}")
    return EXIT_OK if ok else EXIT_USER


@click.command("doctor")
@json_option
@click.pass_obj
def command(g, as_json):
    """Check this host: git version, config, state directory, the remote (a scratch ref is
    pushed, read back and deleted with a lease), the mesh policy on the default branch,
    this agent's signing key in the roster, the forge token, the sandbox, cron or
    systemd, and the clock. One line per check; exit 1 if any fails.

    \b
    --json prints {"ok": bool, "checks": [{"name", "ok", "detail", "hint"}]}.
    """
    return doctor(g, as_json)
