"""This agent's journal: entries are queued on disk first, then committed to the memory branch.

`record()` writes the entry to `<state>/memory/outbox/` at once, so a crash
loses nothing; `flush()` commits every queued entry in one compare-and-swap
push onto `memory.branch` (default `agentmesh/memory`, created as an orphan
branch on the first write), re-reading and re-applying after each lost race.
Entries carry a unique id and a flush skips ids already on the branch, so a
crash between the push and the removal of the queue files never writes an
entry twice. A flush that keeps losing leaves the queue for the next run.
Nothing is ever written to the default branch.

Reading is for everyone's journals: budgets, `memory log` and context. It
reads the memory branch and, for meshes that journaled there before, the
default branch's `ai-memory/agents/`, merged by id. With a roster, a line
counts only where its own agent signed it (memory/provenance.py); the others
are counted as ignored, on both branches alike.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from agentmesh.core.memory import (
    AGENTS_DIR,
    ATTRIBUTES_PATH,
    JournalEntry,
    clean_entry,
    entry_from_json,
    journal_attributes,
    journal_dir,
    journal_month,
    months_between,
    parse_journal,
    plan_append,
    utc_ts,
)
from agentmesh.core.secrets import redact
from agentmesh.git.branch_edit import commit_on_branch
from agentmesh.git.cache import CacheClone, mirror_ref
from agentmesh.git.remote import ls_refs
from agentmesh.host.files import write_atomic
from agentmesh.host.state import StateLayout
from agentmesh.memory.provenance import Lines, Verify, owner, signed_lines

SENT_KEYS_KEPT = 5000  # ledger lines kept: far more than the keyed steps of the journal's retention
FLUSH_ATTEMPTS = 12  # many agents append to one branch: more patience than for a one-off edit
MAX_SLEEP = 2.0
IGNORED = "not signed by their agent"


@dataclass(frozen=True)
class JournalRead:
    entries: list[JournalEntry]  # oldest first
    ignored: int = 0  # lines in range that a roster agent's own signature does not vouch for

    def ignored_text(self) -> str | None:
        return f"{self.ignored} journal line{'' if self.ignored == 1 else 's'} ignored: {IGNORED}" \
            if self.ignored else None


class Journal:
    def __init__(self, cache: CacheClone, state_root: Path, *, branch: str, agent: str, host: str,
                 max_entry_bytes: int, max_journal_bytes: int, known_secrets: Sequence[str] = (),
                 legacy_branch: str | None = None, verify: Verify | None = None):
        self.cache = cache
        self.ref = f"refs/heads/{branch}"
        self.branch = branch
        # read only: where journals were written before they moved to their own branch
        self.legacy_ref = f"refs/heads/{legacy_branch}" if legacy_branch and legacy_branch != branch else None
        self.agent = agent
        self.host = host
        layout = StateLayout(state_root)
        self.outbox = layout.journal_outbox
        self.sent_path = layout.journal_sent
        self.max_entry_bytes = max_entry_bytes
        self.max_journal_bytes = max_journal_bytes
        self.known_secrets = list(known_secrets)
        self.verify = verify  # None: no roster, every line counts
        self._lines: dict[tuple[str, str], Lines] = {}  # (head, path) -> its lines that count

    # --- writing ------------------------------------------------------------------------

    def record(self, event: str, *, issue: int | None = None, pr: int | None = None, outcome: str = "",
               duration_s: float = 0.0, cost_usd: float | None = None, summary: str = "",
               paths: Iterable[str] = (), now: float | None = None, key: str = "") -> JournalEntry | None:
        """Queue one entry on disk (durable before this returns); `flush()` publishes it.

        With `key` ([a-z0-9-], unique per step, e.g. `merged-12`) the entry's id is derived from it:
        a step that a crash interrupted is re-derived from the remote by the next run and recorded
        again under the same key, and the journal keeps it once. None: already recorded."""
        moment = time.time() if now is None else now
        if cost_usd is not None and not (math.isfinite(cost_usd) and cost_usd >= 0):
            cost_usd = None
        if key and self.seen(key):
            return None
        ident = f"{self.agent}-{key}" if key else f"{self.agent}-{int(moment * 1000):x}-{secrets.token_hex(4)}"
        entry = JournalEntry(id=ident, ts=utc_ts(moment),
                             agent=self.agent, host=self.host, event=event, issue=issue, pr=pr, outcome=outcome,
                             duration_s=max(0.0, duration_s), cost_usd=cost_usd, summary=summary,
                             paths=tuple(paths))
        entry = self.safe(entry)
        write_atomic(self.outbox / f"{entry.ts}-{entry.id}.json", entry.to_line() + "\n")
        return entry

    def discard(self, key: str) -> None:
        """Take back a keyed entry not yet published (the step it announced did not happen)."""
        for path in self.outbox.glob(f"*-{self.agent}-{key}.json"):
            path.unlink(missing_ok=True)

    def seen(self, key: str) -> bool:
        """Whether the entry of `key` is queued or was published from this host."""
        ident = f"{self.agent}-{key}"
        return any(self.outbox.glob(f"*-{ident}.json")) or ident in self._sent_lines()

    def _remember_sent(self, ids: Iterable[str]) -> None:
        lines = [*self._sent_lines(), *ids][-SENT_KEYS_KEPT:]
        write_atomic(self.sent_path, "".join(f"{i}\n" for i in lines))

    def _sent_lines(self) -> list[str]:
        try:
            return self.sent_path.read_text().split()
        except FileNotFoundError:
            return []

    def safe(self, entry: JournalEntry) -> JournalEntry:
        """Secrets redacted and text cleaned before anything reaches a shared file."""
        def scrub(text: str) -> str:
            return redact(text, known_secrets=self.known_secrets)

        entry = JournalEntry(**{**entry.__dict__, "summary": scrub(entry.summary), "outcome": scrub(entry.outcome),
                                "paths": tuple(scrub(p) for p in entry.paths)})
        return clean_entry(entry, self.max_entry_bytes)

    def pending(self) -> list[tuple[Path, JournalEntry]]:
        queued = []
        for path in sorted(self.outbox.glob("*.json")):
            try:
                entry = entry_from_json(json.loads(path.read_text()))
            except (OSError, ValueError):
                entry = None
            if entry is None:
                path.rename(path.with_suffix(".bad"))  # kept for a human, never retried forever
                continue
            queued.append((path, entry))
        return queued

    def flush(self) -> int:
        """Commit every queued entry in one push; the number published. TemporaryError (the branch
        kept moving, the remote is down) leaves them queued."""
        queued = self.pending()
        if not queued:
            return 0
        entries = [self.safe(entry) for _, entry in queued]
        months = {e.ts[:7] for e in entries}

        def change(head: str | None) -> dict[str, bytes | None]:
            files = self._own_files(head, months) if head is not None else {}
            plan: dict[str, bytes | None] = {path: text.encode() for path, text in
                    plan_append(files, entries, agent=self.agent, max_file_bytes=self.max_journal_bytes).items()}
            attributes = journal_attributes(self.cache.read_file(head, ATTRIBUTES_PATH) if head is not None else None)
            if plan and attributes is not None:
                plan[ATTRIBUTES_PATH] = attributes.encode()
            return plan

        commit_on_branch(self.cache, self.ref, change,
                         f"agentmesh: journal of {self.agent} ({len(entries)} "
                         f"{'entry' if len(entries) == 1 else 'entries'}) [skip ci]\n",
                         attempts=FLUSH_ATTEMPTS, max_sleep=MAX_SLEEP, create=True)
        self._remember_sent(entry.id for _, entry in queued)
        for path, _ in queued:
            path.unlink(missing_ok=True)
        return len(queued)

    def _own_files(self, head: str, months: set[str]) -> dict[str, str]:
        directory = journal_dir(self.agent)
        names = [n for n in self._ls(head, directory + "/") if (m := journal_month(n.rsplit("/", 1)[-1]))
                 and m[0] in months]
        return self._read(head, names)

    # --- reading ------------------------------------------------------------------------

    def heads(self) -> list[str]:
        """The heads journals are read from, fetched when missing: the memory branch's, then the legacy
        branch's. A branch that does not exist yet has none."""
        refs = [self.ref, *([self.legacy_ref] if self.legacy_ref else [])]
        listing = ls_refs(self.cache.git, self.cache.url, refs)
        found = {ref: sha for ref in refs if (sha := listing.get(ref)) is not None}
        missing = [ref for ref, sha in found.items() if not self.cache.has_object(sha)]
        if missing:
            self.cache.fetch(missing)
            for ref in missing:  # moved since the listing: what the fetch brought is as recent
                found[ref] = self.cache.resolve(mirror_ref(ref)) or found[ref]
        return list(found.values())

    def entries(self, since: date, *, until: date | None = None, include_pending: bool = True) -> list[JournalEntry]:
        return self.read(since, until=until, include_pending=include_pending).entries

    def read(self, since: date, *, until: date | None = None, include_pending: bool = True) -> JournalRead:
        """Every agent's entries from `since` (UTC day) on, oldest first; with this agent's queued
        ones, which are real usage even before they are pushed. An entry on both branches counts once.
        With a roster, the lines their agent did not sign are left out and counted."""
        until = until or datetime.now(UTC).date()
        months = set(months_between(since, until))
        found: dict[str, JournalEntry] = {}
        foreign: dict[tuple[str, str], JournalEntry] = {}
        for head in self.heads():
            names = [n for n in self._ls(head, AGENTS_DIR + "/", recursive=True)
                     if n.count("/") == 4 and n.split("/")[3] == "journal"
                     and (m := journal_month(n.rsplit("/", 1)[-1])) and m[0] in months]
            for path, lines in self._counted(head, self._read(head, names)).items():
                for entry in parse_journal(lines.counted):
                    if self.verify is not None and entry.agent != owner(path):
                        foreign[(path, entry.to_line())] = entry
                    else:
                        found.setdefault(entry.id, entry)
                foreign.update(((path, e.to_line()), e) for e in parse_journal("\n".join(lines.foreign)))
        if include_pending:
            for _, entry in self.pending():
                found.setdefault(entry.id, entry)
        # by time only: a stable sort keeps each journal's own order within a second (ids are random)
        return JournalRead(sorted((e for e in found.values() if _since(e, since)), key=lambda e: e.ts),
                           sum(1 for e in foreign.values() if _since(e, since)))

    def _counted(self, head: str, texts: dict[str, str]) -> dict[str, Lines]:
        """path -> the lines of the journal file that count (all of them without a roster)."""
        if self.verify is None:
            return {path: Lines(text) for path, text in texts.items()}
        missing = {path: text for path, text in texts.items() if (head, path) not in self._lines}
        if missing:
            self._lines.update(((head, path), lines) for path, lines in
                               signed_lines(self.cache, head, missing, self.verify).items())
        return {path: self._lines[(head, path)] for path in texts}

    def recent(self, days: int, now: float | None = None) -> list[JournalEntry]:
        today = datetime.fromtimestamp(time.time() if now is None else now, UTC).date()
        return self.entries(today - timedelta(days=days - 1), until=today)

    def _ls(self, head: str, prefix: str, *, recursive: bool = False) -> list[str]:
        return self.cache.tree_names(head, prefix, recursive=recursive)

    def _read(self, head: str, paths: list[str]) -> dict[str, str]:
        objects = self.cache.cat_objects([f"{head}:{p}" for p in paths])
        return {p: o.data.decode("utf-8", "replace") for p, o in zip(paths, objects, strict=True)
                if o is not None and o.type == "blob"}


def _since(entry: JournalEntry, day: date) -> bool:
    return entry.moment is not None and day <= entry.moment.date()
