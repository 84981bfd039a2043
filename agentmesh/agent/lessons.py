"""Memory PRs: a lesson drafted after a PR that needed changes or rework finally passed, or written
by a human (`agentmesh memory add-lesson`), proposed as a PR labelled `agentmesh:memory`.

`ai-memory/lessons/` is a protected path, so no agent ever approves such a PR:
the ring reviewer labels it for a human, as with any protected change.
The branch `<agent>/lessons/<issue>-<slug>` (or `<agent>/lessons/<slug>`) is created
with a compare-and-swap, so a rerun after a crash adopts it instead of
writing a second one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from agentmesh.agent.mesh import Mesh
from agentmesh.agent.rework import rework_round
from agentmesh.core.markers import marker_text, pull_marker, strip_issue_keywords
from agentmesh.core.memory import LESSONS_DIR, Lesson, render_lesson
from agentmesh.core.model import Issue, PullRequest, Review
from agentmesh.core.sanitize import clean_text, fence
from agentmesh.core.secrets import redact
from agentmesh.core.slug import slugify
from agentmesh.core.vocab import Label
from agentmesh.git.remote import RefUpdate, ls_refs, push

FEEDBACK_CHARS = 1200
MAX_TAGS = 8


def needed_rework(reviews: Sequence[Review], head_message: str | None, blockers: set[str]) -> bool:
    """Whether the PR passed only after changes were requested or a rework was pushed."""
    return rework_round(head_message) > 0 or any(
        r.state == "CHANGES_REQUESTED" and r.author in blockers for r in reviews)


def draft_lesson(issue: Issue, pull: PullRequest, *, reviews: Sequence[Review], fixed_paths: Sequence[str],
                 agent: str, today: date, days: int, blockers: set[str], known_secrets: Sequence[str]) -> Lesson:
    """The template: what failed (the change requests), what fixed it (the files the fix changed),
    tags from the issue's labels and the top directories of those files."""
    def safe(text: str, limit: int) -> str:
        return clean_text(redact(text, known_secrets=known_secrets), limit).strip()

    failed = [r for r in reviews if r.state == "CHANGES_REQUESTED" and r.author in blockers]
    title = strip_issue_keywords(" ".join(safe(issue.title, 200).split())) or f"issue {issue.number}"
    what_failed = "\n\n".join(f"Review by `{clean_text(r.author, 40)}` on `{r.commit_id[:12]}`:\n\n"
                              + fence(safe(r.body, FEEDBACK_CHARS) or "(no text)", "text") for r in failed[-3:])
    paths = list(dict.fromkeys(fixed_paths))[:10]
    tags = [label for label in issue.labels if not label.startswith("agentmesh")]
    tags += sorted({p.split("/", 1)[0] for p in paths if "/" in p})
    body = (f"# {title}\n\n"
            f"## What failed\n\n{what_failed or 'CI failed on the first push (see the PR).'}\n\n"
            f"## What fixed it\n\n"
            + ("".join(f"- `{clean_text(p, 200)}`\n" for p in paths) or "- (no file list)\n")
            + f"\nSee PR #{pull.number} for the full history.\n")
    return Lesson(path=f"{LESSONS_DIR}/{issue.number}-{slugify(issue.title)}.md", id=f"{issue.number}-lesson",
                  title=title, body=body, tags=tuple(dict.fromkeys(tags))[:MAX_TAGS], paths=tuple(paths),
                  source=f"#{issue.number}, PR #{pull.number}", agent=agent, created=today.isoformat(),
                  expires=(today + timedelta(days=days)).isoformat())


def lesson_branch(agent: str, lesson: Lesson) -> str:
    return f"{agent}/lessons/{slugify(lesson.path.rsplit('/', 1)[-1].removesuffix('.md'))}"


def propose_lesson(mesh: Mesh, forge, lesson: Lesson, *, branch: str, issue: int | None, anchor_sha: str,
                   summary: str) -> PullRequest:
    """Commit the lesson on `branch` off the base (created only if absent) and open, or adopt, its PR.
    With `issue` (an agent's draft) the PR carries the mesh marker, so the ring reviewer routes it
    to a human like any protected change; a hand-written lesson is a human's PR already."""
    ref = f"refs/heads/{branch}"
    if ls_refs(mesh.git, mesh.remote, [ref]).get(ref) is None:
        base = mesh.base_head
        tree = mesh.cache.edit_tree(mesh.cache.tree_of(base), lesson.path, render_lesson(lesson).encode())
        commit = mesh.cache.commit_tree(tree, [base], f"Lesson: {lesson.title}\n\nAgentmesh-Agent: {mesh.host.agent}\n")
        push(mesh.git, mesh.cache.path, mesh.remote, [RefUpdate(ref, commit, None)])  # a lost race: the PR below
    body = (f"A lesson for `ai-memory/`, from {lesson.source}. {summary}\n\n"
            "Lessons are a protected path: a human reviews and merges this.\n"
            + (f"\n{marker_text(pull_marker(mesh.host.agent, issue, anchor_sha))}\n" if issue else ""))
    pull = forge.create_pull(head=branch, base=mesh.base_branch, title=f"Lesson: {lesson.title}"[:200], body=body)
    forge.add_labels(pull.number, [Label.MEMORY])
    return pull
