"""This agent's journal: entries are queued on disk first, then committed to its own journal branch.

`record()` writes the entry to `<state>/memory/outbox/` at once, so a crash loses nothing; `flush()`
commits every queued entry in one commit on `agentmesh/journals/<writer>`, a branch nobody else writes
(ADR 0017): no race with other agents, and a handful of git calls. The commit is built from the files
the branch holds, and pushed pinned to the head it was built on. Entries carry a
unique id and a flush skips ids already on the branch, so a run killed between the push and the
removal of the queue files never writes an entry twice. Nothing is ever written to the default branch.

Reading is for everyone's journals: budgets, `memory log` and context. One listing finds every
journal branch, and the legacy places that earlier versions wrote: the shared memory branch
(`memory.branch`) and the default branch's `ai-memory/agents/`; entries are merged by id. With a
roster, a line counts only where its own writer signed it (memory/provenance.py); the others are
counted as ignored.
"""

from __future__ import annotations

import contextlib
import json
import math
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from agentmesh.core.errors import TemporaryError
from agentmesh.core.memory import (
    AGENTS_DIR,
    JOURNALS_PREFIX,
    JournalEntry,
    clean_entry,
    entry_from_json,
    journal_dir,
    journal_month,
    journal_ref,
    months_between,
    plan_append,
    read_journal,
    ref_writer,
    utc_ts,
)
from agentmesh.core.record import replace
from agentmesh.core.secrets import redact
from agentmesh.git.branch_edit import swap_ref
from agentmesh.git.cache import CacheClone, mirror_ref, parse_tree
from agentmesh.git.remote import RefUpdate, RemoteRefs, ls_refs
from agentmesh.host.files import write_atomic
from agentmesh.host.state import StateLayout
from agentmesh.memory.provenance import Lines, Verify, owner, signed_lines

SENT_KEYS_KEPT = 5000  # ledger lines kept: far more than the keyed steps of the journal's retention
FLUSH_ATTEMPTS = 4  # only this writer pushes its branch: a lost race is a stale cache, or a second host of it
IGNORED = "not signed by their agent"


@dataclass(frozen=True)
class CarriedJournal:
    """A journal commit that another push carries (`Journal.carried`)."""

    update: RefUpdate
    queued: tuple[Path, ...]  # the outbox files it publishes
    ids: tuple[str, ...]  # the entries it holds


@dataclass(frozen=True)
class JournalRead:
    entries: list[JournalEntry]  # oldest first
    ignored: int = 0  # lines in range that a roster agent's own signature does not vouch for
    unreadable: int = 0  # lines of the files read that are no journal entry (no JSON, a field missing, no date)

    def ignored_text(self) -> str | None:
        return f"{self.ignored} journal line{'' if self.ignored == 1 else 's'} ignored: {IGNORED}" \
            if self.ignored else None


class Journal:
    def __init__(self, cache: CacheClone, state_root: Path, *, branch: str, agent: str, host: str,
                 max_entry_bytes: int, max_journal_bytes: int, known_secrets: Sequence[str] = (),
                 legacy_branch: str | None = None, verify: Verify | None = None):
        """`agent` is the writer: an agent's name, or `maintainer.<login>` (core/memory.journal_writer).
        `branch` (the shared memory branch) and `legacy_branch` (the default branch) are where earlier
        versions wrote journals: read, never written."""
        self.cache = cache
        self.own_ref = journal_ref(agent)
        self.legacy_refs = list(dict.fromkeys(f"refs/heads/{b}" for b in (branch, legacy_branch) if b))
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
        self._listed_own: tuple[str | None] | None = None  # this writer's head in the last `heads` listing
        self._given: RemoteRefs | None = None  # see `use_listing`

    # --- writing ------------------------------------------------------------------------

    def record(self, event: str, *, issue: int | None = None, pr: int | None = None, outcome: str = "",
               duration_s: float = 0.0, cost_usd: float | None = None, summary: str = "",
               paths: Iterable[str] = (), now: float | None = None, key: str = "") -> JournalEntry | None:
        """Queue one entry on disk (durable before this returns); `flush()` publishes it.

        With `key` ([a-z0-9-], unique per step, e.g. `merged-12`) the entry's id is derived from it:
        a step that a crash interrupted is re-derived from the remote by the next run and recorded
        again under the same key, and the journal keeps it once. None: already recorded."""
        entry = self.entry(event, issue=issue, pr=pr, outcome=outcome, duration_s=duration_s, cost_usd=cost_usd,
                           summary=summary, paths=paths, now=now, key=key)
        if entry is not None:
            # the nanoseconds keep the order entries were written in (ts has whole seconds, ids are random);
            # what is found by id (`*-{id}.json`) still ends the name
            write_atomic(self.outbox / f"{entry.ts}-{time.time_ns():020d}-{entry.id}.json", entry.to_line() + "\n")
        return entry

    def entry(self, event: str, *, issue: int | None = None, pr: int | None = None, outcome: str = "",
              duration_s: float = 0.0, cost_usd: float | None = None, summary: str = "",
              paths: Iterable[str] = (), now: float | None = None, key: str = "") -> JournalEntry | None:
        """The entry `record` queues, not queued (a push that carries it: `carried`); None: already recorded."""
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
        return self.safe(entry)

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
            except FileNotFoundError:
                continue  # published meanwhile by a sibling job of this run (claim_task runs jobs in threads)
            except (OSError, ValueError):
                entry = None
            if entry is None:
                with contextlib.suppress(FileNotFoundError):
                    path.rename(path.with_suffix(".bad"))  # kept for a human, never retried forever
                continue
            queued.append((path, entry))
        return queued

    def flush(self) -> int:
        """Commit every queued entry in one push to this writer's journal branch; the number published.
        TemporaryError (the remote is down) and UserError (the push was refused) leave them queued."""
        queued = self.pending()
        if not queued:
            return 0
        # this host's own entries: one queued under an earlier writer name (a maintainer's) is this writer's
        entries = [replace(self.safe(entry), agent=self.agent) for _, entry in queued]

        # only this writer moves the branch: the head this host last saw is the head, mostly
        swap_ref(self.cache, self.own_ref, lambda head: self._append(head, entries), attempts=FLUSH_ATTEMPTS,
                 first=self._cached_head,
                 refused_hint="a journal branch takes only its own writer's signed commits")
        self._remember_sent(entry.id for _, entry in queued)
        for path, _ in queued:
            path.unlink(missing_ok=True)
        return len(queued)

    def carried(self, head: str | None, extra: Sequence[JournalEntry] = ()) -> CarriedJournal | None:
        """Every queued entry and `extra` as this writer's next journal commit on `head` (the branch as a
        listing saw it a moment ago), for another push to carry (agent/jobs.py: the PR's); `sent` once it
        landed. None: nothing to publish."""
        queued = self.pending()
        entries = [replace(self.safe(entry), agent=self.agent) for _, entry in queued] + list(extra)
        new = self._append(head, entries) if entries else head
        if new is None or new == head:
            return None
        return CarriedJournal(RefUpdate(self.own_ref, new, head), tuple(path for path, _ in queued),
                              tuple(entry.id for entry in entries))

    def sent(self, carried: CarriedJournal) -> None:
        """`carried` landed: its entries are published (a crash before this only leaves queued entries that
        the next flush finds on the branch by id, and skips)."""
        self._remember_sent(carried.ids)
        for path in carried.queued:
            path.unlink(missing_ok=True)

    def _cached_head(self) -> str | None:
        """The head of this writer's branch as the cache last saw it (after a push or a read), else as this run's
        listing of the journals saw it, else as listed now."""
        found = self.cache.cat_objects([mirror_ref(self.own_ref)])[0]
        if found is not None and found.type == "commit":
            return found.sha
        if self._listed_own is not None:  # read this run (`heads`): the first push is pinned to it all the same
            return self._listed_own[0]
        return ls_refs(self.cache.git, self.cache.url, [self.own_ref]).get(self.own_ref)

    def _append(self, head: str | None, entries: Sequence[JournalEntry]) -> str | None:
        """The commit on top of `head` that holds every entry once (`head` itself when it already does)."""
        months = {e.ts[:7] for e in entries}
        files = self._own_files(head, months) if head is not None else {}
        plan = plan_append(files, entries, agent=self.agent, max_file_bytes=self.max_journal_bytes)
        if not plan:
            return head
        # the trees on the way read in one batch, the new objects written without git (git/cache.py)
        tree = self.cache.edit_tree_files(f"{head}^{{tree}}" if head is not None else None,
                                          {path: text.encode() for path, text in plan.items()})
        count = sum(text.count("\n") - files.get(path, "").count("\n") for path, text in plan.items())
        return self.cache.commit_tree(tree, [head] if head is not None else [],
                                      f"agentmesh: journal of {self.agent} ({count} "
                                      f"{'entry' if count == 1 else 'entries'}) [skip ci]\n")

    def _own_files(self, head: str, months: set[str]) -> dict[str, str]:
        """This writer's journal files of `months` at `head`, in two reads: the directory (with the commit,
        fetched when the cache lacks it: a head just listed), then the files."""
        directory = journal_dir(self.agent)
        commit, found = self.cache.cat_objects([f"{head}^{{commit}}", f"{head}:{directory}"])
        if commit is None:
            self.cache.fetch([self.own_ref])
            commit, found = self.cache.cat_objects([f"{head}^{{commit}}", f"{head}:{directory}"])
            if commit is None:
                raise TemporaryError(f"{self.own_ref} changed while it was read; try again")
        if found is None:  # no journal yet, or a tree the clone lacks (fetched again, or it raises)
            found = self.cache.read_paths(head, [directory])[1][directory]
        entries = parse_tree(found.data) if found is not None and found.type == "tree" else []
        wanted = [e for e in entries if e.type == "blob" and (m := journal_month(e.name)) and m[0] in months]
        blobs = self.cache.listed_objects(wanted, f"reading {head[:12]}:{directory}")
        return {f"{directory}/{e.name}": o.data.decode("utf-8", "replace") for e, o in zip(wanted, blobs, strict=True)
                if o.type == "blob"}

    # --- reading ------------------------------------------------------------------------

    def use_listing(self, listing: RemoteRefs) -> None:
        """A listing of every branch (`refs/heads/`, which holds the journals and the legacy branches) that this
        run made a moment ago: the next `heads` reads it instead of listing again (once: later ones list)."""
        self._given = listing

    def heads(self) -> list[tuple[str | None, str]]:
        """(writer, head) of every journal branch, then (None, head) of the legacy branches that exist, in
        one listing, their commits fetched in one fetch when the cache lacks them."""
        listing, self._given = self._given, None
        if listing is None:
            listing = ls_refs(self.cache.git, self.cache.url, [JOURNALS_PREFIX, *self.legacy_refs])
        self._listed_own = (listing.get(self.own_ref),)
        found: dict[str, tuple[str | None, str]] = {
            ref: (ref_writer(ref), sha) for ref, sha in sorted(listing.refs.items())
            if (ref.startswith(JOURNALS_PREFIX) and ref_writer(ref)) or ref in self.legacy_refs}
        present = self.cache.cat_objects([f"{sha}^{{commit}}" for _, sha in found.values()])
        missing = [ref for ref, there in zip(found, present, strict=True) if there is None]
        if missing:  # branches only grow: what the fetch brings holds what was listed
            self.cache.fetch(missing)
        return list(found.values())

    def entries(self, since: date, *, until: date | None = None, include_pending: bool = True) -> list[JournalEntry]:
        return self.read(since, until=until, include_pending=include_pending).entries

    def read(self, since: date, *, until: date | None = None, include_pending: bool = True) -> JournalRead:
        """Every writer's entries from `since` (UTC day) on, oldest first; with this agent's queued
        ones, which are real usage even before they are pushed. An entry found in several places counts
        once. With a roster, the lines their writer did not sign are left out and counted; so are the lines of the
        files read that are no entry at all (their date unknown, whatever day they were meant for)."""
        until = until or datetime.now(UTC).date()
        months = set(months_between(since, until))
        found: dict[str, JournalEntry] = {}
        foreign: dict[tuple[str, str], JournalEntry] = {}
        unreadable: set[tuple[str, str]] = set()  # a line on a writer's branch and a legacy branch counts once
        heads = self.heads()
        for (_, path), lines in self._counted(heads, self._journal_files(heads, months)).items():
            entries, bad = read_journal(lines.counted)
            for entry in entries:
                if self.verify is not None and entry.agent != owner(path):
                    foreign[(path, entry.to_line())] = entry
                else:
                    found.setdefault(entry.id, entry)
            entries, bad_foreign = read_journal("\n".join(lines.foreign))
            foreign.update(((path, e.to_line()), e) for e in entries)
            unreadable.update((path, line) for line in [*bad, *bad_foreign])
        if include_pending:
            for _, entry in self.pending():
                found.setdefault(entry.id, replace(entry, agent=self.agent))
        # by time only: a stable sort keeps each journal's own order within a second (ids are random)
        return JournalRead(sorted((e for e in found.values() if _since(e, since)), key=lambda e: e.ts),
                           sum(1 for e in foreign.values() if _since(e, since)), len(unreadable))

    def published(self) -> dict[str, str]:
        """Every writer's journal files on its own branch, all months, each holding only the lines that
        count (path -> text): what the memory PR shows on the default branch (agent/journal_pr.py)."""
        heads = [(writer, head) for writer, head in self.heads() if writer is not None]
        counted = self._counted(heads, self._journal_files(heads, None))
        return {path: lines.counted for (_, path), lines in counted.items()}

    def _journal_files(self, heads: Sequence[tuple[str | None, str]],
                       months: set[str] | None) -> dict[str, dict[str, str]]:
        """head -> path -> text of the journal files of `months` (None: all): on a writer's branch only that writer's
        own directory, on a legacy branch every agent's. Journal branches cost two `cat-file --batch`
        in all, whatever their number; a legacy branch one more (its agents' directories)."""
        dirs: list[tuple[str, str]] = [(head, journal_dir(writer)) for writer, head in heads if writer is not None]
        for writer, head in heads:
            if writer is None:
                dirs += [(head, f"{name}/journal") for name in self.cache.dir_names(head, [AGENTS_DIR])[AGENTS_DIR]]
        trees = self.cache.cat_objects([f"{head}:{directory}" for head, directory in dirs])
        blobs: dict[tuple[str, str], str] = {}
        for (head, directory), tree in zip(dirs, trees, strict=True):
            for e in parse_tree(tree.data) if tree is not None and tree.type == "tree" else []:
                if e.type == "blob" and (m := journal_month(e.name)) and (months is None or m[0] in months):
                    blobs[(head, f"{directory}/{e.name}")] = e.sha
        texts: dict[str, dict[str, str]] = {head: {} for _, head in heads}
        for (head, path), obj in zip(blobs, self.cache.cat_objects(list(blobs.values())), strict=True):
            if obj is not None and obj.type == "blob":
                texts[head][path] = obj.data.decode("utf-8", "replace")
        return texts

    def _counted(self, heads: Sequence[tuple[str | None, str]],
                 texts: dict[str, dict[str, str]]) -> dict[tuple[str, str], Lines]:
        """(head, path) -> the lines of the journal file that count (all of them without a roster)."""
        legacy = {head for writer, head in heads if writer is None}
        files = {(head, path): text for head, by_path in texts.items() for path, text in by_path.items()}
        if self.verify is None:
            return {key: Lines(text) for key, text in files.items()}
        missing = {key: text for key, text in files.items() if key not in self._lines}
        # every writer's branch in one log; a legacy branch alone, so its merges (the default branch's
        # PR merges) send only its own files to blame
        groups: dict[str | None, dict[tuple[str, str], str]] = {}
        for (head, path), text in missing.items():
            groups.setdefault(head if head in legacy else None, {})[(head, path)] = text
        for group in groups.values():
            self._lines.update(signed_lines(self.cache, group, self.verify))
        return {key: self._lines[key] for key in files}

    def recent(self, days: int, now: float | None = None) -> list[JournalEntry]:
        today = datetime.fromtimestamp(time.time() if now is None else now, UTC).date()
        return self.entries(today - timedelta(days=days - 1), until=today)


def _since(entry: JournalEntry, day: date) -> bool:
    return entry.moment is not None and day <= entry.moment.date()
