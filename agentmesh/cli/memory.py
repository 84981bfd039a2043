"""`agentmesh memory ...`: the shared ai-memory: journals, lessons, and the context executors get."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import click

from agentmesh.cli.output import echo, emit_json, json_option, number_argument, table
from agentmesh.core.errors import UserError


@click.group("memory")
def group() -> None:
    """Read and extend the mesh's shared memory in `ai-memory/`.

    \b
    Journals (ai-memory/agents/<agent>/journal/<YYYY-MM>.jsonl on each agent's
    own branch, agentmesh/journals/<agent>) record every agent's outcomes, shown
    on the default branch by the PR `memory publish` keeps open;
    lessons (ai-memory/lessons/*.md on the default branch) are reviewed notes
    that executors receive as context when an issue's labels or paths match.
    """


def _today() -> date:
    return datetime.now(UTC).date()


def _since(value: str | None, days: int) -> date:
    if value is None:
        return _today() - timedelta(days=days - 1)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"--since {value!r}: expected a date like 2026-11-01") from None


def log(mesh, agent: str | None, since: str | None, as_json: bool) -> int:
    read = mesh.journal().read(_since(since, 7))
    entries = [e for e in read.entries if agent is None or e.agent == agent]
    if as_json:
        emit_json({"entries": [e.to_json() for e in entries], "ignored_journal_lines": read.ignored,
                   "warning": read.ignored_text()})
        return 0
    if not entries:
        echo("no journal entries")
    else:
        rows = [[e.ts, e.agent, e.event, f"#{e.issue}" if e.issue else "-", f"#{e.pr}" if e.pr else "-", e.outcome,
                 e.summary[:60]] for e in entries]
        echo(table(rows, ["TIME (UTC)", "AGENT", "EVENT", "ISSUE", "PR", "OUTCOME", "SUMMARY"]))
    if read.ignored:
        echo(read.ignored_text())
    return 0


@group.command("log")
@click.option("--agent", "agent_filter", metavar="NAME", help="Only this agent's entries.")
@click.option("--since", metavar="DATE", help="First UTC day to show (default: the last 7 days).")
@json_option
@click.pass_obj
def log_command(g, agent_filter, since, as_json):
    """Show the journals of all agents, oldest first (this agent's queued entries included).

    With a roster, a line counts only if its own agent signed the commit that
    wrote it; the others are left out, and their number is shown.
    """
    return log(g.mesh(observer=True), agent_filter, since, as_json)


def lessons(mesh, tag: str | None, as_json: bool) -> int:
    from agentmesh.memory.lessons import read_lessons

    today = _today()
    found = [lesson for lesson in read_lessons(mesh.cache, mesh.base_head)
             if tag is None or tag.casefold() in {t.casefold() for t in lesson.tags}]
    if as_json:
        emit_json([{**lesson.to_json(), "expired": lesson.expired(today)} for lesson in found])
        return 0
    if not found:
        echo("no lessons")
        return 0
    rows = [[lesson.path, lesson.title[:50], ",".join(lesson.tags), lesson.created or "-",
             ("EXPIRED " if lesson.expired(today) else "") + (lesson.expires or "-")] for lesson in found]
    echo(table(rows, ["PATH", "TITLE", "TAGS", "CREATED", "EXPIRES"]))
    return 0


@group.command("lessons")
@click.option("--tag", metavar="TAG", help="Only lessons with this tag.")
@json_option
@click.pass_obj
def lessons_command(g, tag, as_json):
    """List the lessons on the default branch."""
    return lessons(g.mesh(observer=True), tag, as_json)


def add_lesson(mesh, title: str, tags: tuple[str, ...], paths: tuple[str, ...], body: str, days: int | None,
               as_json: bool) -> int:
    from agentmesh.agent.lessons import lesson_branch, propose_lesson
    from agentmesh.core.memory import LESSONS_DIR, Lesson
    from agentmesh.core.slug import slugify

    if not title.strip() or not body.strip():
        raise UserError("a lesson needs a --title and a non-empty body")
    if len(body.encode()) > mesh.policy.memory.max_entry_bytes:
        raise UserError(f"the body has {len(body.encode())} bytes; memory.max_entry_bytes is "
                        f"{mesh.policy.memory.max_entry_bytes}: keep lessons short")
    today = _today()
    lesson = Lesson(path=f"{LESSONS_DIR}/{slugify(title)}.md", id=slugify(title), title=" ".join(title.split()),
                    body=body.strip(), tags=tags, paths=paths, source="manual", agent=mesh.host.agent,
                    created=today.isoformat(),
                    expires=(today + timedelta(days=days)).isoformat() if days else "")
    if mesh.read_base_file(lesson.path) is not None:
        raise UserError(f"{lesson.path} already exists on {mesh.base_branch}; choose another title")
    pull = propose_lesson(mesh, mesh.open_forge(), lesson, branch=lesson_branch(mesh.host.agent, lesson), issue=None,
                          anchor_sha="", summary="Written by hand.")
    if as_json:
        emit_json({"pr": pull.number, "url": pull.url, "path": lesson.path, "branch": pull.head})
    else:
        echo(f"opened PR #{pull.number} for {lesson.path}" + (f": {pull.url}" if pull.url else ""))
    return 0


@group.command("add-lesson")
@click.option("--title", required=True, help="One line: what to remember.")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Matched against issue labels (repeatable).")
@click.option("--path", "paths", multiple=True, metavar="GLOB",
              help="Files it is about, e.g. 'src/db/**' (repeatable).")
@click.option("--body-file", type=click.File("r", encoding="utf-8"), required=True,
              help="Markdown body ('-' for stdin).")
@click.option("--expires-in", "days", type=click.IntRange(min=1), metavar="DAYS", help="Days until it expires.")
@json_option
@click.pass_obj
def add_lesson_command(g, title, tags, paths, body_file, days, as_json):
    """Propose a lesson as a PR labelled agentmesh:memory (a human reviews and merges it).

    Executors receive a lesson as context when an issue's labels match its
    tags or the issue mentions a file its paths cover.
    """
    return add_lesson(g.mesh(), title, tags, paths, body_file.read(), days, as_json)


def context(mesh, number: int, as_json: bool) -> int:
    from agentmesh.memory.lessons import context_for

    found = context_for(mesh.cache, mesh.base_head, mesh.journal(), mesh.open_forge().get_issue(number),
                        context_bytes=mesh.policy.memory.context_bytes)
    if as_json:
        emit_json(found.to_json())
        return 0
    echo(f"issue #{number}: paths mentioned: {', '.join(found.paths) or 'none'}; "
         f"{len(found.lessons)} lesson(s), {len(found.docs)} decision/architecture note(s), "
         f"{len(found.entries)} journal entr(y/ies) relevant; "
         f"{len(found.text.encode())} of {mesh.policy.memory.context_bytes} bytes used"
         + (f"; {found.ignored} journal line(s) ignored: not signed by their agent" if found.ignored else ""))
    echo(found.text or "(no memory for this issue)")
    return 0


@group.command("context")
@number_argument
@json_option
@click.pass_obj
def context_command(g, number, as_json):
    """Show the memory section claim-task would write into ISSUE's task file."""
    return context(g.mesh(observer=True), number, as_json)


def publish(mesh, as_json: bool) -> int:
    from agentmesh.agent.journal_pr import publish_journals

    done = publish_journals(mesh, mesh.open_forge(), _today())
    if as_json:
        emit_json(done.to_json())
        return 0
    where = f"PR #{done.pr}" if done.pr else "no PR needed: the default branch shows them all"
    echo(f"journals {done.state} ({done.files} file(s)): {where}")
    return 0


@group.command("publish")
@json_option
@click.pass_obj
def publish_command(g, as_json):
    """Keep one open PR that shows every journal on the default branch.

    \b
    Copies each writer's journal (agentmesh/journals/<writer>), the lines that
    count, to ai-memory/journals/ on the branch agentmesh/memory-pr, and opens
    its PR labelled agentmesh:memory once: a maintainer reviews and merges it.
    Idempotent; run it daily from cron.
    """
    return publish(g.mesh(), as_json)
