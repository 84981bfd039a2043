"""`agentmesh pr ...`: pull requests on the configured forge."""

from __future__ import annotations

import click

from agentmesh.cli.forge import clean, current_forge, one_line
from agentmesh.cli.output import echo, emit_json, json_option, number_argument, table
from agentmesh.core.errors import EXIT_OK, UserError

_EVENTS = {"approve": "approved", "request_changes": "requested changes on", "comment": "commented on"}


@click.group("pr")
def group() -> None:
    """Create, list, show, review, merge, ship and close pull requests."""


def default_branch(mesh) -> str:
    """The mesh policy's default branch, else the remote's HEAD."""
    from agentmesh.git.remote import ls_refs

    if mesh.policy.default_branch:
        return mesh.policy.default_branch
    target = ls_refs(mesh.git, mesh.remote, ["HEAD"]).symrefs.get("HEAD", "")
    if not target.startswith("refs/heads/"):
        raise UserError("the remote has no default branch; pass --base BRANCH")
    return target[len("refs/heads/"):]


def create(forge, head: str, base: str, title: str, body: str, as_json: bool) -> int:
    if not title.strip():
        raise UserError("the title must not be empty")
    pull = forge.create_pull(head=head, base=base, title=title, body=body)
    if as_json:
        emit_json(pull.to_json())
    else:
        echo(f"PR #{pull.number}: {clean(pull.head)} -> {clean(pull.base)} ({pull.head_sha[:12]}) "
             f"{one_line(pull.title)}")
    return EXIT_OK


def list_pulls(forge, state: str, as_json: bool) -> int:
    pulls = forge.list_pulls(state=state)
    if as_json:
        emit_json([p.to_json() for p in pulls])
        return EXIT_OK
    if not pulls:
        echo("no pull requests")
        return EXIT_OK
    rows = [[f"#{p.number}", p.state, one_line(p.head, 30), p.head_sha[:12], one_line(p.title, 50)] for p in pulls]
    echo(table(rows, ["PR", "STATE", "HEAD", "SHA", "TITLE"]))
    return EXIT_OK


def show(forge, number: int, as_json: bool) -> int:
    pull = forge.get_pull(number)
    if as_json:
        emit_json(pull.to_json())
        return EXIT_OK
    echo(f"PR #{pull.number} {one_line(pull.title, 100)} [{pull.state}]")
    echo(f"{clean(pull.head)} ({pull.head_sha[:12]}) -> {clean(pull.base)}  author: {clean(pull.author)}")
    if pull.requested_reviewers:
        echo(f"review requested from: {clean(', '.join(pull.requested_reviewers))}")
    if pull.body.strip():
        echo("\n" + clean(pull.body).rstrip())
    for r in pull.reviews:
        current = "" if r.commit_id == pull.head_sha else " (older commit)"
        echo(f"\n--- {r.state} by {clean(r.author)} on {r.commit_id[:12]}{current}"
             + (f"\n{clean(r.body).rstrip()}" if r.body.strip() else ""))
    return EXIT_OK


def review(forge, number: int, event: str, body: str, as_json: bool) -> int:
    pull = forge.get_pull(number)
    submitted = forge.submit_review(number, event=event, body=body, commit_id=pull.head_sha)
    if as_json:
        emit_json(submitted.to_json())
    else:
        echo(f"{_EVENTS[event]} PR #{number} at {submitted.commit_id[:12]}")
    return EXIT_OK


def merge(forge, number: int, method: str, as_json: bool) -> int:
    pull = forge.get_pull(number)
    forge.merge_pull(number, sha=pull.head_sha, method=method)
    merged = forge.get_pull(number)
    if as_json:
        emit_json(merged.to_json())
    else:
        into = f" as {merged.merge_sha[:12]}" if merged.merge_sha else ""
        echo(f"merged PR #{number} ({pull.head_sha[:12]}) into {clean(pull.base)}{into}")
    return EXIT_OK


def close(forge, number: int, as_json: bool) -> int:
    forge.close_pull(number)
    if as_json:
        emit_json(forge.get_pull(number).to_json())
    else:
        echo(f"closed PR #{number}")
    return EXIT_OK


@group.command("create")
@click.option("--head", required=True, metavar="BRANCH", help="The branch with the changes (already pushed).")
@click.option("--base", metavar="BRANCH", help="The branch to merge into [default: the default branch].")
@click.option("--title", required=True)
@click.option("--body", default="", help="The PR text; `Closes #N` closes issue N on merge.")
@json_option
@click.pass_obj
def _create(g, head, base, title, body, as_json):
    """Open a PR from --head, or show the open PR that already exists for it."""

    mesh = g.mesh()
    return create(mesh.open_forge(), head, base or default_branch(mesh), title, body, as_json)


@group.command("list")
@click.option("--state", type=click.Choice(["open", "closed", "merged", "all"]), default="open", show_default=True)
@json_option
@click.pass_obj
def _list(g, state, as_json):
    """List pull requests."""
    return list_pulls(current_forge(g, observer=True), state, as_json)


@group.command("show")
@number_argument
@json_option
@click.pass_obj
def _show(g, number, as_json):
    """Show PR NUMBER with its reviews."""
    return show(current_forge(g, observer=True), number, as_json)


@group.command("review")
@number_argument
@click.option("--approve", "event", flag_value="approve", help="Approve the current head.")
@click.option("--request-changes", "event", flag_value="request_changes", help="Ask for changes.")
@click.option("--comment", "event", flag_value="comment", help="Comment without a verdict.")
@click.option("--body", default="", help="The review text.")
@json_option
@click.pass_obj
def _review(g, number, event, body, as_json):
    """Review PR NUMBER; the review is bound to its current head sha."""
    if event is None:
        raise UserError("give one of --approve, --request-changes, --comment")
    return review(current_forge(g), number, event, body, as_json)


@group.command("merge")
@number_argument
@click.option("--squash", is_flag=True, help="One squashed commit instead of a merge commit.")
@json_option
@click.pass_obj
def _merge(g, number, squash, as_json):
    """Merge PR NUMBER at its current head (refused if it conflicts or moves meanwhile)."""
    return merge(current_forge(g), number, "squash" if squash else "merge", as_json)


@group.command("close")
@number_argument
@json_option
@click.pass_obj
def _close(g, number, as_json):
    """Close PR NUMBER without merging (closing a closed PR is fine)."""
    return close(current_forge(g), number, as_json)


@group.command("ship")
@number_argument
@click.option("--sha", metavar="SHA", help="Ship only if the head is still this commit (the one you looked at).")
@json_option
@click.pass_obj
def _ship(g, number, sha, as_json):
    """Merge PR NUMBER now, without waiting for the ring's approvals, pinned to its current head (or
    --sha): a push meanwhile refuses it (exit 1). Maintainers only; the kill switch, failing required
    checks and conflicts still stop it. Shipping a merged PR says so and exits 0. Journaled."""
    from agentmesh.cli.issue import operate

    return operate(g.mesh(), number, "ship", as_json, sha=sha)
