"""Lessons on the default branch, and the memory an executor is given for an issue.

Lessons, decisions and architecture notes are read from the base branch as
fetched by this command, never from a PR's head: they entered through reviewed
PRs. Context is chosen by the pure rules in core/memory.py: lessons whose tags
match the issue's labels or whose paths it mentions (recency, nothing expired),
decisions and architecture notes that share paths or words with its text, then
recent journal summaries for the same files, all within `memory.context_bytes`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta

from agentmesh.core.memory import (
    DOCS_DIRS,
    LESSONS_DIR,
    JournalEntry,
    Lesson,
    MemoryDoc,
    ScoredDoc,
    ScoredLesson,
    memory_section,
    mentioned_paths,
    parse_doc,
    parse_lesson,
    related_entries,
    select_docs,
    select_lessons,
    utc_day,
)
from agentmesh.core.model import Issue
from agentmesh.git.cache import CacheClone
from agentmesh.memory.journal import Journal

JOURNAL_DAYS = 60


def read_lessons(cache: CacheClone, head: str) -> list[Lesson]:
    """Every parseable lesson file at `head` of the base branch (a malformed one is skipped, not fatal)."""
    return read_memory(cache, head)[0]


def read_memory(cache: CacheClone, head: str) -> tuple[list[Lesson], list[MemoryDoc]]:
    """The lessons (every parseable one: a malformed file is skipped, not fatal) and the markdown files of
    `ai-memory/decisions/` and `ai-memory/architecture/` at `head` of the base branch: the directories in
    one `cat-file --batch`, their files in another."""
    found = cache.dir_names(head, [LESSONS_DIR, *DOCS_DIRS])
    names = [n for d in (LESSONS_DIR, *DOCS_DIRS) for n in found[d] if n.endswith(".md")]
    texts = {name: obj.data.decode("utf-8", "replace")
             for name, obj in zip(names, cache.cat_objects([f"{head}:{n}" for n in names]), strict=True)
             if obj is not None and obj.type == "blob"}
    lessons = [lesson for name in found[LESSONS_DIR] if name in texts
               and (lesson := parse_lesson(name, texts[name])) is not None]
    docs = [parse_doc(name, texts[name]) for d in DOCS_DIRS for name in found[d] if name in texts]
    return lessons, docs


@dataclass(frozen=True)
class Context:
    issue: int
    paths: list[str]
    lessons: list[ScoredLesson]
    entries: list[JournalEntry]
    text: str
    ignored: int = 0  # journal lines left out: not signed by their agent
    docs: list[ScoredDoc] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"issue": self.issue, "paths": self.paths,
                "lessons": [{"path": s.lesson.path, "title": s.lesson.title, "score": round(s.score, 2),
                             "matched": list(s.why)} for s in self.lessons],
                "docs": [{"path": s.doc.path, "title": s.doc.title, "score": round(s.score, 2),
                          "matched": list(s.why)} for s in self.docs],
                "journal": [e.to_json() for e in self.entries], "bytes": len(self.text.encode()),
                "text": self.text, "ignored_journal_lines": self.ignored}


def context_for(cache: CacheClone, base_head: str, journal: Journal, issue: Issue, *, context_bytes: int,
                now: float | None = None) -> Context:
    """What the task file's memory section holds for `issue`: lessons, decisions and architecture notes
    at `base_head` (the base branch, never a PR's head), journals, within `context_bytes`."""
    now = time.time() if now is None else now
    today = utc_day(now)
    paths = sorted(mentioned_paths(f"{issue.title}\n{issue.body}"))
    found_lessons, found_docs = read_memory(cache, base_head)
    lessons = select_lessons(found_lessons, labels=issue.labels, paths=paths, today=today)
    docs = select_docs(found_docs, text=f"{issue.title}\n{issue.body}", paths=paths)
    lesson_paths = {p for s in lessons for p in s.lesson.paths}
    read = journal.read(today - timedelta(days=JOURNAL_DAYS), until=today)
    entries = related_entries(read.entries, [*paths, *lesson_paths], exclude_issue=issue.number)
    text = memory_section(lessons, entries, context_bytes, docs) if context_bytes else ""
    return Context(issue.number, paths, lessons, entries, text, read.ignored, docs)
