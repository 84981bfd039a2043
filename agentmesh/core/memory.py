"""The ai-memory schema and the decisions made on it: journal lines, rotation, budgets, lessons and
the context given to executors. Pure: data and the current time come in as arguments.

Layout (ai-memory/README.md is the reference):
- `ai-memory/agents/<writer>/journal/<YYYY-MM>[.<part>].jsonl` on the writer's own journal branch
  (`agentmesh/journals/<writer>`; earlier versions: the shared memory branch): one JSON object per
  line, written only by that agent (or maintainer, `maintainer.<login>`), so no two writers ever
  touch the same ref;
- `ai-memory/lessons/<slug>.md`: YAML front matter and a short markdown body, entering through
  reviewed PRs only;
- `ai-memory/decisions/*.md` and `ai-memory/architecture/*.md`: humans' notes (ADRs, curated docs),
  given to executors by relevance to the issue's text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta

from agentmesh.core.identity import MAINTAINER_PREFIX
from agentmesh.core.moments import parse_ts
from agentmesh.core.pattern import LazyPattern
from agentmesh.core.record import Record, replace
from agentmesh.core.review import glob_match
from agentmesh.core.sanitize import clean_text, fence
from agentmesh.core.vocab import BudgetWindow, JournalEvent

ROOT = "ai-memory"
AGENTS_DIR = f"{ROOT}/agents"
LESSONS_DIR = f"{ROOT}/lessons"
DOCS_DIRS = (f"{ROOT}/decisions", f"{ROOT}/architecture")
JOURNAL_NAME = LazyPattern(r"^(?P<month>\d{4}-\d{2})(?:\.(?P<part>[1-9]\d{0,3}))?\.jsonl$")
SUMMARY_MAX = 2000  # characters; entries are also capped in bytes by the policy
MAX_PATHS = 20
# one entry's seconds or dollars at most (31 years, a billion): a forged 1e308 still counts as over any cap, but
# sums of them stay finite, so budgets, `report --json` and the report's charts never see inf
FIGURE_MAX = 1e9
CLAIM_EVENT = JournalEvent.CLAIMED
ATTRIBUTES_PATH = f"{ROOT}/.gitattributes"
ATTRIBUTES_LINE = "agents/*/journal/*.jsonl merge=union"  # each agent appends only to its own files
JOURNALS_PREFIX = "refs/heads/agentmesh/journals/"  # + writer: each writer's journal branch, written by it alone
MAINTAINER_WRITER = "maintainer."  # + login: a maintainer's journal (agent names never hold a dot)


LAST_MOMENT = 253402300799.0  # 9999-12-31T23:59:59Z: datetime goes no further


def utc_ts(moment: float) -> str:
    """`moment` as ISO UTC; one out of datetime's range (a commit date is whatever its committer wrote) at its end."""
    return datetime.fromtimestamp(min(max(0.0, moment), LAST_MOMENT), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def journal_attributes(current: str | None) -> str | None:
    """`ai-memory/.gitattributes` with the journals' union-merge line added to `current` (None: no such
    file), or None when it has the line: what a journal flush writes, and all it may write there."""
    text = current or ""
    if ATTRIBUTES_LINE in text.splitlines():
        return None
    return (text.rstrip("\n") + "\n" if text.strip() else "") + ATTRIBUTES_LINE + "\n"


# --- journal entries ----------------------------------------------------------------------


class JournalEntry(Record):
    id: str  # unique per entry: a rerun after a crash finds it already pushed
    ts: str  # UTC, ISO 8601 with Z
    agent: str
    host: str
    event: str  # claimed, pr-opened, reviewed, merged, failed, released, reaped, ...
    issue: int | None = None
    pr: int | None = None
    outcome: str = ""
    duration_s: float = 0.0  # executor seconds this step used: the budget's minutes
    cost_usd: float | None = None  # as the executor reported it
    summary: str = ""
    paths: tuple[str, ...] = ()

    def to_line(self) -> str:
        data: dict[str, object] = {
            "id": self.id, "ts": self.ts, "agent": self.agent, "host": self.host, "event": self.event,
            "issue": self.issue, "pr": self.pr, "outcome": self.outcome,
            "duration_s": round(self.duration_s, 1), "cost_usd": self.cost_usd, "summary": self.summary}
        if self.paths:
            data["paths"] = list(self.paths)
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    def to_json(self) -> dict:
        return json.loads(self.to_line())

    @property
    def moment(self) -> datetime | None:
        return parse_ts(self.ts)


def entry_day(entry: JournalEntry) -> date | None:
    """The UTC day of the entry's stamp; read off the text when it is as journals write it (a 60-day report
    of a big fleet reads tens of thousands of entries: a full parse of each was most of its time)."""
    ts = entry.ts
    if len(ts) == 20 and ts[10] == "T" and ts[19] == "Z":
        try:
            return date.fromisoformat(ts[:10])
        except ValueError:
            return None
    moment = entry.moment
    return None if moment is None else moment.date()


def entries_since(entries: Iterable[JournalEntry], first: date) -> list[JournalEntry]:
    """The entries stamped on UTC day `first` or later (an unreadable stamp counts on no day)."""
    return [e for e in entries if (day := entry_day(e)) is not None and day >= first]


def entry_from_json(data: object) -> JournalEntry | None:
    """A journal line's object, or None when it does not fit the schema (skipped, never fatal)."""
    if not isinstance(data, dict) or not isinstance(data.get("paths") or [], list):
        return None
    try:
        cost = data.get("cost_usd")
        entry = JournalEntry(
            id=str(data["id"]), ts=str(data["ts"]), agent=str(data["agent"]), host=str(data.get("host", "")),
            event=str(data["event"]),
            issue=None if data.get("issue") is None else int(data["issue"]),
            pr=None if data.get("pr") is None else int(data["pr"]),
            outcome=str(data.get("outcome") or ""),
            duration_s=float(data.get("duration_s") or 0.0),
            cost_usd=None if cost is None else float(cost),
            summary=str(data.get("summary") or ""),
            paths=tuple(str(p) for p in data.get("paths") or ())[:MAX_PATHS],
        )
    except (KeyError, TypeError, ValueError):
        return None
    if not all(math.isfinite(x) and x >= 0 for x in (entry.duration_s, entry.cost_usd or 0.0)):
        return None
    if entry.duration_s > FIGURE_MAX or (entry.cost_usd or 0.0) > FIGURE_MAX:
        entry = replace(entry, duration_s=min(entry.duration_s, FIGURE_MAX),
                        cost_usd=None if entry.cost_usd is None else min(entry.cost_usd, FIGURE_MAX))
    return entry if entry.moment is not None else None


def parse_journal(text: str) -> list[JournalEntry]:
    return read_journal(text)[0]


def read_journal(text: str) -> tuple[list[JournalEntry], list[str]]:
    """The entries of a journal file's text, and its non-blank lines that are none (skipped, never fatal)."""
    entries, unreadable = [], []
    for line in text.splitlines():
        try:
            entry = entry_from_json(json.loads(line))
        except (ValueError, RecursionError):  # a hostile line nested deep enough to exhaust the stack
            entry = None
        if entry is not None:
            entries.append(entry)
        elif line.strip():
            unreadable.append(line)
    return entries, unreadable


def _one_line(text: str, limit: int) -> str:
    """Cleaned text with every run of whitespace (newlines included) folded into one space."""
    return " ".join(clean_text(text, limit).split())


def clean_entry(entry: JournalEntry, max_bytes: int) -> JournalEntry:
    """Forge text made safe for a shared file (the caller also redacts secrets): single-line,
    invisible characters removed, and the line shrunk to fit `max_bytes`."""
    entry = replace(entry, summary=_one_line(entry.summary, SUMMARY_MAX), outcome=_one_line(entry.outcome, 200),
                    event=_one_line(entry.event, 64), paths=tuple(_one_line(p, 300) for p in entry.paths[:MAX_PATHS]))
    while len(entry.to_line().encode()) > max_bytes:
        if entry.paths:
            entry = replace(entry, paths=entry.paths[:-1])
        elif entry.summary:
            entry = replace(entry, summary=_halved(entry.summary))
        elif entry.outcome:
            entry = replace(entry, outcome=_halved(entry.outcome))
        elif len(entry.event) > 8:
            entry = replace(entry, event=entry.event[:8])
        else:
            break
    return entry


def _halved(text: str) -> str:
    return text[: len(text) // 2] + "…" if len(text) > 8 else ""


def journal_writer(principal: str) -> str | None:
    """The journal a roster principal writes: an agent's own name, `maintainer.<login>` for a maintainer;
    None when the login cannot name a branch."""
    if not principal.startswith(MAINTAINER_PREFIX):
        return principal
    login = principal[len(MAINTAINER_PREFIX):].lower()
    if not login or ".." in login or login.endswith((".", ".lock")):
        return None
    return MAINTAINER_WRITER + login


def journal_ref(writer: str) -> str:
    return JOURNALS_PREFIX + writer


def ref_writer(ref: str) -> str | None:
    """The writer whose journal branch `ref` is, or None when it is none."""
    writer = ref[len(JOURNALS_PREFIX):] if ref.startswith(JOURNALS_PREFIX) else ""
    return writer if writer and "/" not in writer else None


def journal_dir(agent: str) -> str:
    return f"{AGENTS_DIR}/{agent}/journal"


def journal_file(agent: str, month: str, part: int = 0) -> str:
    return f"{journal_dir(agent)}/{month}{f'.{part}' if part else ''}.jsonl"


def journal_month(name: str) -> tuple[str, int] | None:
    match = JOURNAL_NAME.match(name)
    return (match["month"], int(match["part"] or 0)) if match else None


def plan_append(files: Mapping[str, str], entries: Sequence[JournalEntry], *, agent: str,
                max_file_bytes: int) -> dict[str, str]:
    """The journal files of `agent` to write (path -> full new text) so that every entry is present
    exactly once: entries already in `files` (by id; a crash after a push) are skipped, and a month
    whose last part would grow past `max_file_bytes` continues in the next part."""
    present = {e.id for text in files.values() for e in parse_journal(text)}
    changed: dict[str, str] = {}
    for entry in entries:
        if entry.id in present:
            continue
        present.add(entry.id)
        month = entry.ts[:7]
        part = _last_part([*files, *changed], agent, month)
        path = journal_file(agent, month, part)
        text = changed.get(path, files.get(path, ""))
        if text and not text.endswith("\n"):
            text += "\n"
        line = entry.to_line() + "\n"
        if text and len((text + line).encode()) > max_file_bytes:
            part += 1
            path, text = journal_file(agent, month, part), ""
        changed[path] = text + line
    return changed


def _last_part(paths: Iterable[str], agent: str, month: str) -> int:
    prefix = journal_dir(agent) + "/"
    parts = [m[1] for p in paths if p.startswith(prefix) and (m := journal_month(p[len(prefix):])) and m[0] == month]
    return max(parts, default=0)


def months_between(start: date, end: date) -> list[str]:
    """`YYYY-MM` of every month from start to end, inclusive."""
    months, year, month = [], start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


# --- budgets -------------------------------------------------------------------------------


class Caps(Record):
    tasks: int | None = None
    minutes: float | None = None
    cost_usd: float | None = None


class Usage(Record):
    tasks: int = 0
    minutes: float = 0.0
    cost_usd: float = 0.0

    def to_json(self) -> dict:
        return {"tasks": self.tasks, "minutes": round(self.minutes, 2), "cost_usd": round(self.cost_usd, 4)}


class Window(Record):
    """The span budget caps count over: [start, end), UTC."""

    kind: BudgetWindow
    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        if self.kind is BudgetWindow.DAY:
            return self.start.date().isoformat()
        if self.kind is BudgetWindow.WEEK:
            return f"week of {self.start.date().isoformat()}"
        return self.start.strftime("%Y-%m")

    def to_json(self) -> dict:
        return {"kind": str(self.kind), "label": self.label, "start": utc_ts(self.start.timestamp()),
                "end": utc_ts(self.end.timestamp())}


def budget_window(kind: BudgetWindow, now: float) -> Window:
    """The window of `kind` holding `now`: a UTC day, a week from Monday 00:00 UTC, or a calendar month."""
    moment = datetime.fromtimestamp(now, UTC)
    midnight = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    if kind is BudgetWindow.DAY:
        return Window(kind, midnight, midnight + timedelta(days=1))
    if kind is BudgetWindow.WEEK:
        monday = midnight - timedelta(days=moment.weekday())
        return Window(kind, monday, monday + timedelta(days=7))
    year, month = divmod(moment.year * 12 + moment.month, 12)  # the next month, 0-based
    return Window(kind, midnight.replace(day=1), datetime(year, month + 1, 1, tzinfo=UTC))


def counts_in(entry: JournalEntry, window: Window, now: float) -> bool:
    """Whether the entry's spend counts in `window`, read at `now`. An entry stamped later than `now`
    (its agent's clock is ahead) counts as made now: spend in the journal has happened, and a fast
    clock must not move it into a window nobody checks yet. One stamped before the window's start
    (a slow clock, or the previous window) does not count."""
    moment = entry.moment
    if moment is None:
        return False
    counted = min(moment, datetime.fromtimestamp(now, UTC))
    return window.start <= counted < window.end


def usage_in(entries: Iterable[JournalEntry], window: Window, now: float, agent: str | None = None) -> Usage:
    """Usage in one window from the journals: tasks are claims, minutes executor time, cost as reported."""
    tasks, seconds, cost = 0, 0.0, 0.0
    for entry in entries:
        if (agent is not None and entry.agent != agent) or not counts_in(entry, window, now):
            continue
        tasks += entry.event == CLAIM_EVENT
        seconds += entry.duration_s
        cost += entry.cost_usd or 0.0
    return Usage(tasks, seconds / 60, cost)


class Breach(Record):
    scope: str  # "agent <name>" or "fleet"
    cap: str  # tasks_per_<window> | executor_minutes_per_<window> | cost_usd_per_<window>
    used: float
    limit: float

    @property
    def stops_executors(self) -> bool:
        """Minutes and money stop every executor run; the task cap only stops new claims."""
        return not self.cap.startswith("tasks_")

    def to_json(self) -> dict:
        return {"scope": self.scope, "cap": self.cap, "used": round(self.used, 4), "limit": self.limit}

    def __str__(self) -> str:
        return f"{self.scope} {self.cap}: {round(self.used, 2):g} of {self.limit:g}"


def breaches(usage: Usage, caps: Caps, scope: str, window: BudgetWindow = BudgetWindow.DAY) -> list[Breach]:
    """The caps `usage` has reached."""
    return [Breach(scope, f"{name}_per_{window}", used, cap) for name, used, cap in (
        ("tasks", usage.tasks, caps.tasks),
        ("executor_minutes", usage.minutes, caps.minutes),
        ("cost_usd", usage.cost_usd, caps.cost_usd)) if cap is not None and used >= cap]


def utc_day(now: float) -> date:
    return datetime.fromtimestamp(now, UTC).date()


def budget_breaches(entries: Sequence[JournalEntry], *, agent: str, now: float, agent_caps: Caps,
                    fleet_caps: Caps, window: BudgetWindow = BudgetWindow.DAY) -> list[Breach]:
    span = budget_window(window, now)
    return (breaches(usage_in(entries, span, now, agent), agent_caps, f"agent {agent}", window)
            + breaches(usage_in(entries, span, now), fleet_caps, "fleet", window))


def minutes_left(entries: Sequence[JournalEntry], *, agent: str, now: float, agent_caps: Caps,
                 fleet_caps: Caps, window: BudgetWindow = BudgetWindow.DAY) -> float | None:
    """Executor minutes left in the window under the tighter of the two caps (None: no minutes cap)."""
    span = budget_window(window, now)
    left = [cap - used for cap, used in ((agent_caps.minutes, usage_in(entries, span, now, agent).minutes),
                                         (fleet_caps.minutes, usage_in(entries, span, now).minutes))
            if cap is not None]
    return max(0.0, min(left)) if left else None


def has_caps(*caps: Caps) -> bool:
    return any(c.tasks is not None or c.minutes is not None or c.cost_usd is not None for c in caps)


# --- lessons -------------------------------------------------------------------------------


class Lesson(Record):
    path: str
    id: str
    title: str
    body: str
    tags: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    source: str = ""
    agent: str = ""
    created: str = ""
    expires: str = ""

    def to_json(self) -> dict:
        return {"path": self.path, "id": self.id, "title": self.title, "tags": list(self.tags),
                "paths": list(self.paths), "source": self.source, "agent": self.agent, "created": self.created,
                "expires": self.expires, "body": self.body}

    def expired(self, today: date) -> bool:
        try:
            return bool(self.expires) and date.fromisoformat(self.expires) < today
        except ValueError:
            return False


_FRONT = LazyPattern(r"\A---[ \t]*\n(?P<yaml>.*?)\n---[ \t]*\n?(?P<body>.*)\Z", re.S)


def parse_lesson(path: str, text: str) -> Lesson | None:
    match = _FRONT.match(text.replace("\r\n", "\n"))
    if not match:
        return None
    import yaml  # here: only lessons are YAML, and most runs read none

    try:
        meta = yaml.safe_load(match["yaml"])
    except yaml.YAMLError:
        return None
    if not isinstance(meta, dict):
        return None

    def strings(value: object) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value] if value else []
        return tuple(str(v) for v in items if isinstance(v, (str, int)))

    body = match["body"].strip()
    heading = next((line.lstrip("# ").strip() for line in body.splitlines() if line.startswith("#")), "")
    name = path.rsplit("/", 1)[-1].removesuffix(".md")
    return Lesson(path=path, id=str(meta.get("id") or name), title=str(meta.get("title") or heading or name),
                  body=body, tags=strings(meta.get("tags")), paths=strings(meta.get("paths")),
                  source=str(meta.get("source") or ""), agent=str(meta.get("agent") or ""),
                  created=str(meta.get("created") or ""), expires=str(meta.get("expires") or ""))


def render_lesson(lesson: Lesson) -> str:
    meta = {"id": lesson.id, "title": lesson.title, "tags": list(lesson.tags), "paths": list(lesson.paths),
            "source": lesson.source, "agent": lesson.agent, "created": lesson.created}
    if lesson.expires:
        meta["expires"] = lesson.expires
    import yaml

    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n\n" + lesson.body.strip() + "\n"


_PATH_WORD = LazyPattern(r"(?<![\w/.:-])[\w./-]+")
# a bare file name: a stem of two or more characters and an extension with a letter (not `v1.2`, `e.g`)
_FILE_NAME = LazyPattern(r"\.?[\w-][\w.-]*[\w-]\.[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*")


def mentioned_paths(text: str) -> set[str]:
    """Path-like words in issue text (`src/app.py`, `docs/`, `./run.sh`): how an issue says which
    files it is about. URLs, absolute paths, versions and abbreviations are not paths."""
    found = set()
    for match in _PATH_WORD.finditer(text or ""):
        word = match[0]
        if match.end() < len(text) and text[match.end()] == ":" and text[match.end():match.end() + 3] == "://":
            continue  # a URL scheme; the rest of the URL starts with / and is skipped below
        while word.startswith("./"):
            word = word[2:]
        word = word.rstrip(".")
        if not word or word.startswith("/") or ".." in word.split("/") or len(word) > 200:
            continue
        if "/" in word or _FILE_NAME.fullmatch(word):
            found.add(word.rstrip("/"))
    return found


def _touches(globs: Iterable[str], paths: Iterable[str]) -> bool:
    """Whether a glob or directory in `globs` covers one of `paths`, or the other way round."""
    paths = list(paths)
    return any(glob_match(g, p) or p.startswith(g.rstrip("/") + "/") or g.startswith(p.rstrip("/") + "/")
               for g in globs for p in paths)


class ScoredLesson(Record):
    lesson: Lesson
    score: float
    why: tuple[str, ...] = ()


def select_lessons(lessons: Iterable[Lesson], *, labels: Iterable[str], paths: Iterable[str],
                   today: date) -> list[ScoredLesson]:
    """Relevant, unexpired lessons, most relevant first: a shared tag, a path the issue mentions,
    then recency. A lesson matching neither tag nor path is not relevant."""
    labels = {label.casefold() for label in labels}
    paths = list(paths)
    scored = []
    for lesson in lessons:
        if lesson.expired(today):
            continue
        tags = sorted({t.casefold() for t in lesson.tags} & labels)
        hits_path = bool(lesson.paths) and _touches(lesson.paths, paths)
        if not tags and not hits_path:
            continue
        try:
            age_days = max(0, (today - date.fromisoformat(lesson.created[:10])).days)
        except ValueError:
            age_days = 365
        score = 2.0 * len(tags) + 3.0 * hits_path + 1.0 / (1 + age_days / 30)
        why = tuple([f"tag {t}" for t in tags] + (["paths"] if hits_path else []))
        scored.append(ScoredLesson(lesson, score, why))
    return sorted(scored, key=lambda s: (-s.score, s.lesson.path))


# --- decisions and architecture notes ----------------------------------------------------------


class MemoryDoc(Record):
    """An ADR in `decisions/` or a curated note in `architecture/`: plain markdown, front matter optional."""

    path: str
    title: str
    body: str

    @property
    def kind(self) -> str:
        return "Decision" if self.path.startswith(DOCS_DIRS[0] + "/") else "Architecture"


def parse_doc(path: str, text: str) -> MemoryDoc:
    text = text.replace("\r\n", "\n")
    match = _FRONT.match(text)
    body = (match["body"] if match else text).strip()
    heading = next((line.lstrip("# ").strip() for line in body.splitlines() if line.startswith("#")), "")
    return MemoryDoc(path=path, title=heading or path.rsplit("/", 1)[-1].removesuffix(".md"), body=body)


_WORD = LazyPattern(r"[a-z][a-z0-9_]{3,}")
# words of four letters or more that say nothing about what an issue or a note is about
_COMMON = frozenset(_WORD.findall("""about after also because been before being both cannot could does done each
even every from have here into just like made make more most must never once only other over same should some
still such than that their them then there these they this those through under until very were what when where
which while will with without would your issue issues please agent agents file files change changes need needs want"""))
MIN_SHARED_WORDS = 3  # body words alone make a note relevant only from this many on


def keywords(text: str) -> frozenset[str]:
    """The distinctive words of `text`, lower-cased: what relevance by text compares."""
    return frozenset(_WORD.findall((text or "").casefold())) - _COMMON


class ScoredDoc(Record):
    doc: MemoryDoc
    score: float
    why: tuple[str, ...] = ()


def select_docs(docs: Iterable[MemoryDoc], *, text: str, paths: Iterable[str]) -> list[ScoredDoc]:
    """Decisions and architecture notes relevant to an issue's `text` (title and body), most relevant
    first: a path the issue mentions that the note names (3 each), a word of the note's title (2
    each), words shared with its body (1 each, at most 5, and only from MIN_SHARED_WORDS on, so that a
    long note does not match everything by chance). A note matching none of them is not relevant."""
    wanted = keywords(text)
    paths = sorted(set(paths))
    scored = []
    for doc in docs:
        named = mentioned_paths(doc.body)
        hit_paths = [p for p in paths if named and _touches(named, [p])]
        in_title = sorted(wanted & keywords(doc.title))
        in_body = sorted(wanted & keywords(doc.body) - set(in_title))
        if len(in_body) < MIN_SHARED_WORDS:
            in_body = []
        if not hit_paths and not in_title and not in_body:
            continue
        score = 3.0 * len(hit_paths) + 2.0 * len(in_title) + min(len(in_body), 5)
        why = tuple([f"path {p}" for p in hit_paths] + [f"title {w}" for w in in_title]
                    + ([f"words {', '.join(in_body[:5])}"] if in_body else []))
        scored.append(ScoredDoc(doc, score, why))
    return sorted(scored, key=lambda s: (-s.score, s.doc.path))


def related_entries(entries: Iterable[JournalEntry], paths: Iterable[str], *, exclude_issue: int | None = None,
                    limit: int = 20) -> list[JournalEntry]:
    """Recent journal entries with a summary that touched the same files, newest first."""
    paths = list(paths)
    hits = [e for e in entries if e.summary and e.paths and (exclude_issue is None or e.issue != exclude_issue)
            and _touches(e.paths, paths)]
    return sorted(hits, key=lambda e: e.ts, reverse=True)[:limit]


def _size(text: str) -> int:
    return len(text.encode())


def _line(text: str, limit: int) -> str:
    """Forge or memory text as one inline line: it cannot start a heading or a fence."""
    return _one_line(text, limit).replace("`", "'")


def _whole_blocks(blocks: Iterable[str], budget: int, used: int) -> tuple[list[str], int]:
    """The blocks that fit, in order; a block too big is skipped and later smaller ones still go in."""
    out = []
    for block in blocks:
        if used + _size(block) <= budget:
            out.append(block)
            used += _size(block)
    return out, used


def memory_section(lessons: Sequence[ScoredLesson], entries: Sequence[JournalEntry], budget: int,
                   docs: Sequence[ScoredDoc] = ()) -> str:
    """The task file's memory: lessons (best first), then decisions and architecture notes (best first),
    then journal summaries, each with where it came from, whole items only, at most `budget` UTF-8
    bytes in all."""
    lesson_blocks = [
        (f"### Lesson: {_line(item.lesson.title, 200)}\n\n"
         f"From `{_line(item.lesson.path, 300)}` (source {_line(item.lesson.source, 80) or 'unknown'}, "
         f"by {_line(item.lesson.agent, 40) or 'unknown'}, {_line(item.lesson.created, 20) or 'undated'};"
         f" matched: {', '.join(item.why)})\n\n" + fence(clean_text(item.lesson.body, 8000), "markdown") + "\n\n")
        for item in lessons]
    doc_blocks = [
        (f"### {item.doc.kind}: {_line(item.doc.title, 200)}\n\n"
         f"From `{_line(item.doc.path, 300)}` on the default branch (matched: {_line(', '.join(item.why), 300)})"
         "\n\n" + fence(clean_text(item.doc.body, 8000), "markdown") + "\n\n")
        for item in docs]
    out, used = _whole_blocks(lesson_blocks, budget, 0)
    fitted, used = _whole_blocks(doc_blocks, budget, used)
    out += fitted
    heading = "### Recent work on the same files (agents' journals; summaries quote issue titles)\n\n"
    lines: list[str] = []
    for entry in entries:
        where = "".join(f" {k}{v}" for k, v in (("#", entry.issue), ("PR #", entry.pr)) if v is not None)
        candidate = [*lines, (f"- {entry.ts[:10]} {_line(entry.agent, 40)} {_line(entry.event, 40)}{where}: "
                              f"{_line(entry.summary, 300)}")]
        block = heading + fence("\n".join(candidate), "text") + "\n"
        if used + _size(block) > budget:
            break
        lines = candidate
    if lines:
        out.append(heading + fence("\n".join(lines), "text") + "\n")
    return "".join(out).strip()
