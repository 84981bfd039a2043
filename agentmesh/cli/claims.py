"""`agentmesh claims ...`: the claim protocol by hand."""

from __future__ import annotations

import click

from agentmesh.cli.output import age, echo, emit_json, json_option, table
from agentmesh.core.errors import EXIT_HELD, EXIT_OK, UserError


@click.group("claims")
def group() -> None:
    """Claim refs on the remote: acquire, list, renew, release and reap.

    A claim is a branch `refs/heads/claim/<issue>` (prefix set in the mesh
    policy) created by an atomic compare-and-swap push; the first push wins.
    """


def acquire(store, issue: int, work_branch: str | None, as_json: bool) -> int:
    from agentmesh.core.slug import is_work_branch

    if work_branch is not None and not is_work_branch(work_branch):
        raise UserError(f"--work-branch {work_branch!r}: must look like <agent>/<issue>-<slug>")
    result = store.acquire(issue, work_branch=work_branch)
    if as_json:
        emit_json(result.to_json())
    elif result.won:
        how = "already held by this agent" if result.recovered else "won"
        echo(f"claim #{issue}: {how} ({result.sha[:12]})")
    else:
        holder = result.holder.agent if result.holder else "an invalid claim commit"
        echo(f"claim #{issue}: already held by {holder} ({result.sha[:12]})")
    return EXIT_OK if result.won else EXIT_HELD


def list_claims(store, mine: bool, as_json: bool) -> int:
    views = store.mine() if mine else store.list()
    if as_json:
        emit_json([v.to_json() for v in views])
        return EXIT_OK
    if not views:
        echo("no claims")
        return EXIT_OK
    rows = []
    for v in views:
        c = v.claim
        rows.append([
            f"#{v.issue}", c.agent if c else "(invalid)", c.host if c else "-", v.sha[:12],
            str(c.renewal) if c else "-", age(v.observed_seconds), age(v.lease_seconds),
            "EXPIRED" if v.expired else "", (c.work_branch or "-") if c else "-",
        ])
    echo(table(rows, ["ISSUE", "AGENT", "HOST", "SHA", "RENEWAL", "SEEN", "LEASE", "", "WORK BRANCH"]))
    return EXIT_OK


def renew(store, issue: int, expected: str | None, as_json: bool) -> int:
    claim = store.renew(issue, expected)
    if as_json:
        emit_json({"issue": issue, "sha": claim.sha, "renewal": claim.renewal})
    else:
        echo(f"claim #{issue}: renewed ({claim.sha[:12]}, renewal {claim.renewal})")
    return EXIT_OK


def release(store, issue: int, expected: str | None, as_json: bool) -> int:
    sha = store.release(issue, expected)
    if as_json:
        emit_json({"issue": issue, "released": sha})
    else:
        echo(f"claim #{issue}: released ({sha[:12]})")
    return EXIT_OK


def reap(store, dry_run: bool, as_json: bool) -> int:
    results = store.reap(dry_run=dry_run)
    if as_json:
        emit_json([r.to_json() for r in results])
        return EXIT_OK
    if not results:
        echo("nothing to reap")
    for r in results:
        echo(f"claim #{r.issue} of {r.holder or '(invalid)'}: {r.note} (unchanged for {age(r.observed_seconds)})")
    return EXIT_OK


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
