"""`agentmesh issue ...`: issues on the configured forge."""

from __future__ import annotations

import click

from agentmesh.cli.forge import clean, current_forge, one_line
from agentmesh.cli.output import echo, emit_json, json_option, number_argument, table
from agentmesh.core.deps import dependency_tree, find_cycles, open_graph, tree_lines
from agentmesh.core.errors import EXIT_OK, UserError
from agentmesh.core.model import Issue
from agentmesh.core.select import dependencies

MAX_TREE_ISSUES = 200  # issues `issue deps` reads, one lookup each


@click.group("issue")
def group() -> None:
    """Create, list, show, edit, comment on, label and close issues; show their dependencies; cancel and
    requeue them."""


def create(forge, title: str, body: str, labels: list[str], as_json: bool) -> int:
    if not title.strip():
        raise UserError("the title must not be empty")
    issue = forge.create_issue(title, body, labels)
    if as_json:
        emit_json(issue.to_json())
    else:
        echo(f"created issue #{issue.number}: {one_line(issue.title)}")
    return EXIT_OK


def list_issues(forge, state: str, labels: list[str], as_json: bool) -> int:
    issues = forge.list_issues(state=state, labels=labels)
    if as_json:
        emit_json([i.to_json() for i in issues])
        return EXIT_OK
    if not issues:
        echo("no issues")
        return EXIT_OK
    rows = [[f"#{i.number}", i.state, one_line(i.title, 50), one_line(", ".join(i.labels), 40)] for i in issues]
    echo(table(rows, ["ISSUE", "STATE", "TITLE", "LABELS"]))
    return EXIT_OK


def show(forge, number: int, as_json: bool) -> int:
    issue = forge.get_issue(number)
    comments = forge.list_comments(number)
    if as_json:
        emit_json({**issue.to_json(), "comments": [c.to_json() for c in comments]})
        return EXIT_OK
    echo(f"#{issue.number} {one_line(issue.title, 100)} [{issue.state}]")
    echo(f"author: {clean(issue.author)}  labels: {clean(', '.join(issue.labels)) or '-'}"
         + (f"  assignees: {clean(', '.join(issue.assignees))}" if issue.assignees else ""))
    if issue.body.strip():
        echo("\n" + clean(issue.body).rstrip())
    for c in comments:
        echo(f"\n--- {clean(c.author)} {c.created_at}\n{clean(c.body).rstrip()}")
    return EXIT_OK


def deps(forge, number: int, as_json: bool) -> int:
    """The tree of what issue `number` waits for (core/deps.py), read breadth first, MAX_TREE_ISSUES at most."""
    from agentmesh.forge.base import NotFound

    issues: dict[int, Issue] = {}
    missing: set[int] = set()
    queue = [number]
    while queue and len(issues) + len(missing) < MAX_TREE_ISSUES:
        current = queue.pop(0)
        if current in issues or current in missing:
            continue
        try:
            issues[current] = forge.get_issue(current)
        except NotFound:
            if current == number:
                raise
            missing.add(current)
            continue
        queue += sorted(dependencies(issues[current]))
    tree = dependency_tree(number, issues, missing=missing)
    cycles = find_cycles(open_graph(issues.values()))
    if as_json:
        emit_json({"tree": tree.to_json(), "cycles": [c.to_json() for c in cycles]})
        return EXIT_OK
    echo("\n".join(tree_lines(tree, lambda issue: one_line(issue.title, 70))))
    for cycle in cycles:
        echo(f"cycle: {cycle} (none of them can start)")
    return EXIT_OK


def edit(forge, number: int, title: str | None, body: str | None, tasks: list[int], as_json: bool) -> int:
    if title is None and body is None and not tasks:
        raise UserError("nothing to do: give --title, --body, --body-file and/or --add-task N")
    if title is not None and not title.strip():
        raise UserError("the title must not be empty")
    issue = forge.edit_issue(number, title=title, body=body, add_tasks=tasks)
    if as_json:
        emit_json(issue.to_json())
    else:
        echo(f"edited #{number}: {one_line(issue.title)}")
    return EXIT_OK


def comment(forge, number: int, text: str, as_json: bool) -> int:
    posted = forge.comment(number, text)
    if as_json:
        emit_json(posted.to_json())
    else:
        echo(f"commented on #{number}")
    return EXIT_OK


def label(forge, number: int, add: list[str], remove: list[str], as_json: bool) -> int:
    if not add and not remove:
        raise UserError("nothing to do: give --add LABEL and/or --remove LABEL")
    if add:
        forge.add_labels(number, add)
    if remove:
        forge.remove_labels(number, remove)
    issue = forge.get_issue(number)
    if as_json:
        emit_json(issue.to_json())
    else:
        echo(f"#{number} labels: {clean(', '.join(issue.labels)) or '-'}")
    return EXIT_OK


def close(forge, number: int, as_json: bool) -> int:
    forge.close_issue(number)
    if as_json:
        emit_json(forge.get_issue(number).to_json())
    else:
        echo(f"closed #{number}")
    return EXIT_OK


@group.command("create")
@click.argument("title")
@click.option("--body", help="The issue text.")
@click.option("--body-file", type=click.File("r"), help="Read the issue text from a file ('-': stdin).")
@click.option("--label", "labels", multiple=True, metavar="LABEL", help="Add a label (repeatable).")
@json_option
@click.pass_obj
def _create(g, title, body, body_file, labels, as_json):
    """Open an issue titled TITLE."""
    if body is not None and body_file is not None:
        raise UserError("give --body or --body-file, not both")
    text = body_file.read() if body_file is not None else body or ""
    return create(current_forge(g), title, text, list(labels), as_json)


@group.command("list")
@click.option("--state", type=click.Choice(["open", "closed", "all"]), default="open", show_default=True)
@click.option("--label", "labels", multiple=True, metavar="LABEL", help="Only issues with this label (repeatable).")
@json_option
@click.pass_obj
def _list(g, state, labels, as_json):
    """List issues (never PRs)."""
    return list_issues(current_forge(g, observer=True), state, list(labels), as_json)


@group.command("show")
@number_argument
@json_option
@click.pass_obj
def _show(g, number, as_json):
    """Show issue NUMBER with its comments."""
    return show(current_forge(g, observer=True), number, as_json)


@group.command("deps")
@number_argument
@json_option
@click.pass_obj
def _deps(g, number, as_json):
    """Show what issue NUMBER waits for: the issues named by `Depends on #N`, `Blocked by #N` and
    unchecked task-list items `- [ ] #N`, as a tree with each issue's state, cycles marked."""
    return deps(current_forge(g, observer=True), number, as_json)


@group.command("edit")
@number_argument
@click.option("--title", help="The new title.")
@click.option("--body", help="The new issue text.")
@click.option("--body-file", type=click.File("r"), help="Read the new issue text from a file ('-': stdin).")
@click.option("--add-task", "tasks", multiple=True, type=click.IntRange(min=1), metavar="N",
              help="Append a task-list item `- [ ] #N` unless #N is in the task list already (repeatable).")
@json_option
@click.pass_obj
def _edit(g, number, title, body, body_file, tasks, as_json):
    """Edit issue NUMBER: its title, its text, its task list (on the local forge: its author or a writer only)."""
    if body is not None and body_file is not None:
        raise UserError("give --body or --body-file, not both")
    text = body_file.read() if body_file is not None else body
    return edit(current_forge(g), number, title, text, list(tasks), as_json)


@group.command("comment")
@number_argument
@click.argument("text")
@json_option
@click.pass_obj
def _comment(g, number, text, as_json):
    """Comment TEXT on issue (or PR) NUMBER."""
    return comment(current_forge(g), number, text, as_json)


@group.command("label")
@number_argument
@click.option("--add", multiple=True, metavar="LABEL", help="Add a label (repeatable); missing labels are created.")
@click.option("--remove", multiple=True, metavar="LABEL", help="Remove a label (repeatable).")
@json_option
@click.pass_obj
def _label(g, number, add, remove, as_json):
    """Add and remove labels on issue NUMBER."""
    return label(current_forge(g), number, list(add), list(remove), as_json)


@group.command("close")
@number_argument
@json_option
@click.pass_obj
def _close(g, number, as_json):
    """Close issue NUMBER (closing a closed issue is fine)."""
    return close(current_forge(g), number, as_json)


def operate(mesh, number: int, verb: str, as_json: bool, **args) -> int:
    """cancel, requeue or ship, journaled like any agent run."""
    from agentmesh.agent.base import journaled
    from agentmesh.agent.operator import Operator, OperatorReport

    forge = mesh.open_forge()
    report = OperatorReport(mesh.host.agent)
    with journaled(mesh, report, dry_run=False) as journal:
        operator = Operator(mesh, forge, report, dry_run=False, env={}, journal=journal)
        getattr(operator, verb)(number, **args)
    if as_json:
        emit_json(report.to_json())
    else:
        for line in report.events:
            echo(str(line))
    return report.exit_code


@group.command("cancel")
@number_argument
@click.option("--reason", default="cancelled by an operator", show_default=True, help="Why; posted on the issue.")
@json_option
@click.pass_obj
def _cancel(g, number, reason, as_json):
    """Cancel issue NUMBER: comment and close it; an agent working on it stops at its next heartbeat and
    publishes nothing; an open agent PR for it is closed, its branch and claim removed. Idempotent."""
    return operate(g.mesh(), number, "cancel", as_json, reason=reason)


@group.command("requeue")
@number_argument
@json_option
@click.pass_obj
def _requeue(g, number, as_json):
    """Put issue NUMBER back in the queue: its failed attempts no longer count, and the failed and
    dead-letter labels go. Idempotent."""
    return operate(g.mesh(), number, "requeue", as_json)
