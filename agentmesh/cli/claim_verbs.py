"""What the `claims` commands do once parsed, without click: cli/claims.py (click) and cli/fast.py (the
cron path, which never imports click) both call these."""

from __future__ import annotations

from agentmesh.cli.output import age, echo, emit_json, table
from agentmesh.core.errors import EXIT_HELD, EXIT_OK, UserError


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
