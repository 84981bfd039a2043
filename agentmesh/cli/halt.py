"""`agentmesh halt` and `agentmesh resume`: the kill switch."""

from __future__ import annotations

import os

import click

from agentmesh.cli.output import echo, emit_json, json_option
from agentmesh.core.vocab import NotifyEvent

_local = click.option("--local", is_flag=True, help="Only this host (the file HALT in its state directory).")


def _notify(mesh, kind, detail: str) -> None:
    from agentmesh.agent.notify import notify_switch

    notify_switch(mesh, kind, detail, env=os.environ, warn=lambda text: echo(f"warning: {text}", err=True))


def halt(mesh, reason: str, local: bool, as_json: bool) -> int:
    from agentmesh.agent.halt import halt as set_halt

    where = set_halt(mesh, reason, local=local)
    _notify(mesh, NotifyEvent.HALT, f"{where}: {reason}")
    if as_json:
        emit_json({"halted": True, "where": where, "reason": reason})
    else:
        echo(f"halted: {where}")
    return 0


def resume(mesh, local: bool, as_json: bool) -> int:
    from agentmesh.agent.halt import resume as clear_halt

    resumed = clear_halt(mesh, local=local)
    if resumed.cleared is not None:
        _notify(mesh, NotifyEvent.RESUME, f"was: {resumed.cleared}")
    if as_json:
        emit_json({"resumed": resumed.cleared is not None, "reason": resumed.cleared, "still_halted": resumed.still})
    else:
        echo(f"resumed (was: {resumed.cleared})" if resumed.cleared is not None
             else "was not halted" + ("" if local else " by agentmesh halt"))
        if resumed.still:
            echo(f"warning: {resumed.still}", err=True)
    return 0


@click.command("halt")
@click.option("--reason", default="halted by an operator", show_default=True, help="Why; shown to every agent.")
@_local
@json_option
@click.pass_obj
def halt_command(g, reason, local, as_json):
    """Stop all agents from claiming issues and starting executors.

    Pushes a signed halt commit carrying the reason on top of the branch
    `agentmesh/halt` (a compare-and-swap push; nothing is committed to the
    default branch), which every agent reads at the start of each run, and a
    running executor at its next heartbeat: it is stopped and publishes
    nothing. On a halted mesh it updates the reason. An open issue labelled
    `agentmesh:halt` has the same effect when you cannot push.
    """
    return halt(g.mesh(), reason, local, as_json)


@click.command("resume")
@_local
@json_option
@click.pass_obj
def resume_command(g, local, as_json):
    """Clear the kill switch set by `agentmesh halt`, pinned to the halt it read.

    Pushes a signed resume commit on top of `agentmesh/halt` (the branch is
    never deleted). With a roster, only a resume signed by a roster agent or
    maintainer counts: a forged one leaves the mesh halted, and this pushes a
    real one on top. Issues labelled agentmesh:halt must be closed by hand,
    and an `.agentmesh/HALT` of an earlier version removed through a PR.
    """
    return resume(g.mesh(), local, as_json)
