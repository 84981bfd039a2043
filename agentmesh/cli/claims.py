"""`agentmesh claims ...`: the claim protocol by hand."""

from __future__ import annotations

import click

from agentmesh.cli.claim_verbs import acquire, list_claims, reap, release, renew
from agentmesh.cli.output import json_option


@click.group("claims")
def group() -> None:
    """Claim refs on the remote: acquire, list, renew, release and reap.

    A claim is a branch `refs/heads/claim/<issue>` (prefix set in the mesh
    policy) created by an atomic compare-and-swap push; the first push wins.
    The protocol by hand: neither the kill switch nor the budget pause is read
    (a halt stops the agents' runs; docs/operations.md, "The kill switch").
    """


_expect = click.option("--expect", metavar="SHA", help="Act only if the claim is at this sha.")


@group.command("acquire")
@click.argument("issue", type=click.IntRange(min=1))
@click.option("--work-branch", metavar="BRANCH", help="Record the work branch <agent>/<issue>-<slug> in the claim.")
@json_option
@click.pass_obj
def _acquire(g, issue, work_branch, as_json):
    """Claim ISSUE. Exit 0 when won (or already held by this agent), 4 when held by another."""
    return acquire(g.plumbing().claims(), issue, work_branch, as_json)


@group.command("list")
@click.option("--mine", is_flag=True, help="Only claims held by this agent.")
@json_option
@click.pass_obj
def _list(g, mine, as_json):
    """List claims with how long this host has seen each unchanged."""
    return list_claims(g.plumbing(observer=True).claims(), mine, as_json)


@group.command("renew")
@click.argument("issue", type=click.IntRange(min=1))
@_expect
@json_option
@click.pass_obj
def _renew(g, issue, expect, as_json):
    """Renew this agent's claim on ISSUE. Exit 4 (nothing changed) if not held."""
    return renew(g.plumbing().claims(), issue, expect, as_json)


@group.command("release")
@click.argument("issue", type=click.IntRange(min=1))
@_expect
@json_option
@click.pass_obj
def _release(g, issue, expect, as_json):
    """Release this agent's claim on ISSUE. Exit 4 (nothing changed) if not held."""
    return release(g.plumbing().claims(), issue, expect, as_json)


@group.command("reap")
@click.option("--dry-run", is_flag=True, help="Report what would be reaped; change nothing.")
@json_option
@click.pass_obj
def _reap(g, dry_run, as_json):
    """Delete other agents' claims this host has seen unchanged for longer than lease + grace."""
    return reap(g.plumbing().claims(), dry_run, as_json)
