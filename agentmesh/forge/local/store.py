"""The local forge's storage engine: items and single-file documents in refs of the remote.

Every write is a CAS push pinned to the sha it was built on; a lost race
re-reads, re-applies the change and retries with jitter, a bounded number of
times. Only `ls_refs`, `push` and `CacheClone` touch the remote, so any
transport the git layer supports works.
"""

from __future__ import annotations

import copy
import random
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from agentmesh.core.errors import OutcomeUnknown, TemporaryError
from agentmesh.forge.base import Forbidden, NotFound, Review, Stale
from agentmesh.forge.local.item_cache import CACHE_NAME, ItemCache, json_copy
from agentmesh.forge.local.schema import (
    BLOB,
    COMMENTS,
    ITEMS,
    META,
    REVIEWS,
    TREE,
    CorruptItem,
    Edit,
    Item,
    item_heads,
    item_ref,
    json_bytes,
    load_json,
    review_view,
    valid_meta,
)
from agentmesh.git.batch import read_ref, read_refs
from agentmesh.git.cache import CacheClone, GitObject, TreeEntry, mirror_ref, parse_tree
from agentmesh.git.remote import RefUpdate, RemoteRefs, ls_refs, push

GUESS_SECONDS = 5.0  # how long a sha this store saw or pushed serves as the lease of its next write
FETCH_EXACT = 64  # changed items fetched by exact ref; more than this fetch the whole items prefix
MAX_ATTEMPTS = 40  # lost races per write before giving up (each loss means someone else progressed)


ACTOR_TRAILER = "Agentmesh-Actor: "  # who the item commit says wrote it: only its signature proves it


def actor_of(message: str) -> str:
    found = [line[len(ACTOR_TRAILER):].strip() for line in message.splitlines() if line.startswith(ACTOR_TRAILER)]
    return found[-1] if found else ""


REMEMBERED = 256  # documents and whole items a store keeps by sha (a daemon's store lives long)


def remember(memo: OrderedDict, key, value) -> None:
    """Keep `value`, forgetting the oldest past REMEMBERED: each step one call, safe across claim-task's
    seat threads (a `del memo[next(iter(memo))]` can fail when two seats evict at once)."""
    memo[key] = value
    while len(memo) > REMEMBERED:
        memo.popitem(last=False)


def backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.02 * 2 ** attempt, 0.5)))


class ItemStore:
    """Reads and CAS-writes `refs/agentmesh/*` through one cache clone, as `user`."""

    def __init__(self, cache: CacheClone, *, user: str, documents: Sequence[str] = ()):
        """`documents`: refs of single-file documents (the labels registry) that every fetch of items also
        brings (in the same process; nothing is sent for one the cache holds already), so that reading
        them fetches nothing."""
        self.cache = cache
        self.documents = tuple(documents)
        self.git = cache.git
        self.url = cache.url
        self.user = user
        self.metas = ItemCache(cache.path / CACHE_NAME)
        # what a commit holds never changes: documents and whole items read (or written) here, by sha
        self._docs: OrderedDict[tuple[str, str], dict] = OrderedDict()
        self._items: OrderedDict[str, Item] = OrderedDict()
        self._writers: OrderedDict[tuple[str, str], dict[str, str]] = OrderedDict()  # (item sha, folder) -> writers
        # ref -> (when, sha) this store just saw or pushed: a guess for the next write's lease (see `cas`)
        self._hints: dict[str, tuple[float, str]] = {}
        self._numbered: tuple[float, int] = (-GUESS_SECONDS, 0)  # (when, the highest number) of the last listing
        self._listing: RemoteRefs | None = None  # what `load` and `all_items` read instead of listing (`as_listed`)

    def as_listed(self, listing: RemoteRefs) -> ItemStore:
        """This store (sharing what it remembers), reading items as `listing` shows them: one of `prefixes` the
        caller made a moment ago, or moved since by its own push. `load` and `all_items` list nothing (an item
        `listing` lacks is listed); writes still list the remote, each a compare-and-swap."""
        view = copy.copy(self)
        view._listing = listing
        return view

    # --- remote refs, objects, CAS ---------------------------------------------------

    def remote(self, refs: Sequence[str], *, numbered: bool = False) -> dict[str, str]:
        """Exact refs -> sha on the remote now (prefix listing, filtered to exact names). `numbered`: the items'
        numbers listed in the same round trip, for `create_item` to take the next one (a number another
        creator took since the run's own listing only fails the push that carries it, and costs a round)."""
        listing = ls_refs(self.git, self.url, list(dict.fromkeys([*refs, *([ITEMS] if numbered else [])])))
        if numbered:
            self._numbers(listing)
        return {ref: listing.refs[ref] for ref in refs if ref in listing.refs}

    def _numbers(self, listing: RemoteRefs) -> dict[int, str]:
        """The items `listing` shows (number -> sha); its highest number is what `create_item` goes past for
        GUESS_SECONDS."""
        heads = item_heads(listing.refs)
        self._numbered = (time.monotonic(), max(heads, default=0))
        return heads

    def ensure_local(self, refs: dict[str, str]) -> None:
        """Fetch the refs whose commits this cache clone lacks."""
        missing = [ref for ref, obj in zip(refs, self.cache.cat_objects([f"{s}^{{commit}}" for s in refs.values()]))
                   if obj is None]
        if missing:
            self.cache.fetch(missing)

    def push(self, updates: Sequence[RefUpdate], *, atomic: bool = False, bases: Sequence[str] = ()) -> bool:
        """A CAS push; an unknown outcome is settled by reading the refs back. Forbidden when the
        server's hook declines it (`agentmesh hook`): no retry would change its mind. `bases` as for
        git/remote.push; the mirror refs of what lands move with the push, so the next run's set-up has
        nothing of ours to fetch."""
        try:
            with self.cache.mirroring() as mirrored:
                result = push(self.git, self.cache.path, self.url, updates, atomic=atomic, bases=bases,
                              mirror=mirrored)
        except OutcomeUnknown:
            now = self.remote([u.ref for u in updates])
            return all(now.get(u.ref) == u.new for u in updates)
        if not result.ok and any(s.declined for s in result.statuses.values()):
            why = "; ".join(result.messages) or "pre-receive hook declined"
            raise Forbidden(f"the remote refused the push of {', '.join(u.ref for u in updates)}: {why}")
        if result.ok:
            stamp = time.monotonic()
            for update in updates:
                if update.new is not None:
                    self._hints[update.ref] = (stamp, update.new)
                else:
                    self._hints.pop(update.ref, None)
        return result.ok

    def listed(self, ref: str) -> str | None:
        """`_guess`: the sha this store saw or pushed for `ref` a moment ago, taken (a write built on it
        that lands elsewhere leaves no stale guess behind)."""
        return self._guess(ref)

    def _guess(self, ref: str) -> str | None:
        """The sha this store saw or pushed for `ref` less than GUESS_SECONDS ago, once (a wrong guess only
        loses the compare-and-swap push)."""
        when, sha = self._hints.pop(ref, (-GUESS_SECONDS, ""))
        return sha if 0 <= time.monotonic() - when < GUESS_SECONDS else None

    def commit(self, tree: str, parents: Sequence[str], subject: str) -> str:
        # The nonce keeps every commit unique: two identical pushes would both "win" (docs/design/protocol.md).
        message = f"{subject}\n\n{ACTOR_TRAILER}{self.user}\nAgentmesh-Nonce: {secrets.token_hex(8)}\n"
        return self.cache.commit_tree(tree, parents, message)

    def cas(self, ref: str, build: Callable[[str | None], str | None], what: str, *, fetch: bool = True,
            guess: bool = False) -> bool:
        """Re-read `ref`, build its next commit, push pinned to what was read; retry lost races.

        `build(current_sha)` returns the new commit, or None when nothing needs
        to change. Returns whether anything was written. `fetch=False`: `build`
        fetches the commit itself when it is not local. `guess`: as `cas_refs`.
        """
        def updates(current: Mapping[str, str | None]) -> list[RefUpdate]:
            sha = current[ref]
            if sha is not None and fetch:
                self.ensure_local({ref: sha})
            new = build(sha)
            return [] if new is None else [RefUpdate(ref, new, sha)]

        return self.cas_refs([ref], updates, what, guess=guess)

    def cas_refs(self, refs: Sequence[str], build: Callable[[Mapping[str, str | None]], Sequence[RefUpdate]],
                 what: str, *, guess: bool = False) -> bool:
        """`cas` over several refs that land together: `build(current)` (each of `refs` -> its sha, None when
        absent) returns their updates, each pinned to `current` (none: nothing needs to change), pushed in one
        atomic push; a lost race lists them all again and rebuilds. `guess`: the first round may build on the
        shas this store pushed or listed a moment ago for every one of `refs` instead of listing them: the
        leases still pin them, so a wrong guess only loses the push, and "nothing to change" is never decided
        on a guess."""
        hints = {ref: self._guess(ref) for ref in refs} if guess else {}
        for attempt in range(MAX_ATTEMPTS):
            guessed = bool(hints) and None not in hints.values()
            current: Mapping[str, str | None] = dict(hints) if guessed else self.remote(refs)
            hints = {}
            updates = build({ref: current.get(ref) for ref in refs})
            if not updates:
                if guessed:
                    continue  # confirm on what the remote holds now
                return False
            if self.push(updates, atomic=len(updates) > 1):
                return True
            if not guessed:
                backoff(attempt)
        raise TemporaryError(f"{what}: gave up after {MAX_ATTEMPTS} concurrent updates")

    # --- single-file documents (labels, statuses, roster) -----------------------------

    def read_doc(self, sha: str | None, name: str, ref: str) -> dict:
        """The document `name` in commit `sha` of `ref`: one `cat-file --batch`, fetching `ref` only when
        the commit is not local; nothing at all when this store read it before."""
        if sha is None:
            return {}
        if (sha, name) not in self._docs:
            commit, obj = self.cache.cat_objects([f"{sha}^{{commit}}", f"{sha}:{name}"])
            if commit is None:
                self.cache.fetch([ref])
                commit, obj = self.cache.cat_objects([f"{sha}^{{commit}}", f"{sha}:{name}"])
                if commit is None:
                    raise TemporaryError(f"{ref} changed while it was read; try again")
            if obj is None:  # no such file, or a tree or blob the clone lacks (fetched again, or it raises)
                obj = self.cache.read_paths(sha, [name])[1][name]
            remember(self._docs, (sha, name), (load_json(obj.data) or {}) if obj is not None else {})
        return json_copy(self._docs[(sha, name)])

    def load_doc(self, ref: str, name: str, *, recent: bool = False) -> dict:
        """The document `name` of `ref`. `recent`: as the listing this store made less than GUESS_SECONDS
        ago saw it, if it did (for a document that only grows, such as the labels registry, whose reader
        writes through `update_doc`, which reads the remote again)."""
        sha = self._guess(ref) if recent else None
        return self.read_doc(sha if sha is not None else self.remote([ref]).get(ref), name, ref)

    def update_doc(self, ref: str, name: str, change: Callable[[dict], dict | None], subject: str) -> None:
        self.cas(ref, lambda current: self.doc_commit(ref, name, current, change, subject), subject, fetch=False)

    def doc_commit(self, ref: str, name: str, current: str | None, change: Callable[[dict], dict | None],
                   subject: str) -> str | None:
        """The next commit of the document `name` of `ref`, now at `current`: `change` applied to it (None when
        it changes nothing)."""
        new = change(self.read_doc(current, name, ref))
        if new is None:
            return None
        tree = self.cache.make_tree([TreeEntry(BLOB, name, self.cache.write_blob(json_bytes(new)))])
        return self.commit(tree, [current] if current else [], subject)

    # --- reading items ------------------------------------------------------------------

    def read_items(self, heads: dict[int, str], *, comments: bool = False,
                   reviews: bool = False) -> dict[int, Item | None]:
        """Items at the given commits, in one `cat-file --batch`; None where a commit is not local."""
        items: dict[int, Item | None] = {}
        if not comments and not reviews:  # the meta alone: known by its commit sha, read nothing
            for number, sha in heads.items():
                if (meta := self.metas.get(sha)) is not None:
                    items[number] = Item(number, sha, meta)
            heads = {n: sha for n, sha in heads.items() if n not in items}
        for number, sha in heads.items():
            if (whole := self._items.get(sha)) is not None:  # every part of it, read or written here before
                items[number] = replace(whole, number=number, meta=json_copy(whole.meta),
                                        comments=list(whole.comments), reviews=list(whole.reviews))
        heads = {n: sha for n, sha in heads.items() if n not in items}
        names = [META] + ([COMMENTS] if comments else []) + ([REVIEWS] if reviews else [])
        objs = self.cache.cat_objects([f"{sha}:{name}" for sha in heads.values() for name in names])
        self._check_parts(heads, names, objs)
        for i, (number, sha) in enumerate(heads.items()):
            found = dict(zip(names, objs[i * len(names):(i + 1) * len(names)]))
            meta_blob, comments_obj, reviews_obj = found[META], found.get(COMMENTS), found.get(REVIEWS)
            if meta_blob is None:
                items[number] = None
                continue
            meta = load_json(meta_blob.data)
            if meta is None or not valid_meta(meta):
                raise CorruptItem(f"#{number}: {item_ref(number)} at {sha[:12]} does not hold a valid item")
            item = Item(number, sha, meta)
            self.metas.put(sha, meta)
            if comments_obj is not None:
                item.comments_tree, item.comments = comments_obj.sha, parse_tree(comments_obj.data)
            if reviews_obj is not None:
                item.reviews_tree, item.reviews = reviews_obj.sha, parse_tree(reviews_obj.data)
            if comments and reviews:
                remember(self._items, sha, replace(item, meta=json_copy(meta)))
            items[number] = item
        return items

    def _check_parts(self, heads: dict[int, str], names: list[str], objs: Sequence[GitObject | None]) -> None:
        """Raise IncompleteClone for an item whose meta was read but whose comments or reviews folder, listed in
        its tree, was not: read as none, the item's next commit would drop every comment and review."""
        lacking = [(sha, name) for i, sha in enumerate(heads.values()) if objs[i * len(names)] is not None
                   for name, obj in zip(names[1:], objs[i * len(names) + 1:(i + 1) * len(names)]) if obj is None]
        if not lacking:
            return
        shas = list(dict.fromkeys(sha for sha, _ in lacking))
        roots = dict(zip(shas, self.cache.cat_objects([f"{sha}^{{tree}}" for sha in shas]), strict=True))
        for sha, name in lacking:
            root = roots[sha]
            if root is None:  # not even the commit's tree: that is lacking
                self.cache.check_listed(f"reading item commit {sha[:12]}", {}, [""])
            else:
                self.cache.check_listed(f"reading item commit {sha[:12]}", {"": parse_tree(root.data)}, [name])

    def item_at(self, number: int, sha: str, **parts: bool) -> Item:
        item = self.read_items({number: sha}, **parts)[number]
        if item is None:
            self.cache.fetch([item_ref(number)])
            item = self.read_items({number: sha}, **parts)[number]
            if item is None:
                raise TemporaryError(f"#{number} changed while it was read; try again")
        return item

    def load(self, number: int, **parts: bool) -> Item:
        ref = item_ref(number)
        sha = self._listing.get(ref) if self._listing is not None else None
        if sha is None:
            sha = self.remote([ref]).get(ref)
        if sha is None:
            raise NotFound(f"#{number} not found")
        return self.item_at(number, sha, **parts)

    def load_pull(self, number: int, **parts: bool) -> Item:
        item = self.load(number, **parts)
        if not item.is_pull:
            raise NotFound(f"#{number} is an issue, not a pull request")
        return item

    def item_heads(self) -> dict[int, str]:
        """number -> head commit of every item, from one listing, made afresh on every call: a listing
        kept for a few seconds hid other agents' writes from the next read (a PR opened meanwhile)."""
        return self._listed()[0]

    @property
    def prefixes(self) -> tuple[str, ...]:
        """What a listing of the items lists: the items prefix and the `documents`."""
        return (ITEMS, *self.documents)

    def _listed(self, listing: RemoteRefs | None = None) -> tuple[dict[int, str], list[str]]:
        """`item_heads`, and the `documents` on the remote, from the same listing (`listing`: one a caller
        made a moment ago, of `prefixes` among others)."""
        listing = listing or ls_refs(self.git, self.url, list(self.prefixes))
        heads = self._numbers(listing)
        documents = [ref for ref in self.documents if ref in listing.refs]
        now = time.monotonic()
        self._hints.update({item_ref(n): (now, sha) for n, sha in heads.items()})
        self._hints.update({ref: (now, listing.refs[ref]) for ref in documents})
        return dict(heads), documents

    def all_items(self, *, listing: RemoteRefs | None = None) -> list[Item]:
        """Every item: one listing of the items prefix (`item_heads`; `listing`: a caller's, of `prefixes`,
        made a moment ago). Only the items whose commit is not in the cache (item_cache.py) are fetched and
        read: one fetch and one `cat-file --batch` for them."""
        listing = listing or self._listing
        heads, documents = self._listed(listing)
        unknown = [n for n, sha in heads.items() if sha not in self.metas]
        # a run's set-up brought in what its listing shows (CacheClone.mirror_listed): fetched only when the mirror
        # is not at the listed sha. Not an object's presence: a fetch killed while it unpacked leaves commits
        # without their trees; git moves a mirror ref only once all its objects are in
        mirrored = read_refs(self.cache.path, mirror_ref(ITEMS)) if unknown else {}
        absent = [n for n in unknown if mirrored.get(mirror_ref(item_ref(n))) != heads[n]]
        if len(absent) > FETCH_EXACT:
            # a new host, or a long absence: the whole prefix
            self.cache.fetch([ITEMS + "*", *documents], prune=True)
            self.cache.pack_loose_refs(mirror_ref(ITEMS))
        elif absent:
            stale = [ref for ref in documents
                     if listing is None or read_ref(self.cache.path, mirror_ref(ref)) != listing.refs[ref]]
            self.cache.fetch([item_ref(n) for n in absent] + stale)
        # a few new items are read whole, in the same batch: the writes that follow their arrival (a claim
        # carrying an issue's stage, a review) build on their comments and reviews without reading them again
        whole = {n: heads[n] for n in unknown} if len(unknown) <= FETCH_EXACT else {}
        try:
            items = self.read_items({n: sha for n, sha in heads.items() if n not in whole})  # known: no read
            items.update(self.read_items(whole, comments=True, reviews=True))
        except CorruptItem:
            items = {n: self._readable(n, sha) for n, sha in heads.items()}  # the slow path, rarely taken
        self.metas.keep(set(heads.values()))
        return [item for _, item in sorted(items.items()) if item is not None]

    def _readable(self, number: int, sha: str) -> Item | None:
        """One item, or None when it is corrupt: a bad item must not hide every other one."""
        try:
            return self.read_items({number: sha})[number]
        except CorruptItem:
            return None

    def blobs(self, entries: list[TreeEntry]) -> list[dict]:
        """The comments or reviews in `entries`, in order; malformed ones are skipped."""
        return [data for _, data in self.entry_blobs(entries)]

    def entry_blobs(self, entries: list[TreeEntry]) -> list[tuple[TreeEntry, dict]]:
        """(entry, data) of the comments or reviews in `entries`, in order; malformed ones skipped, one the clone
        lacks raises."""
        ordered = sorted(entries, key=lambda e: e.name)
        objs = self.cache.listed_objects(ordered, "reading an item")
        found = [(entry, load_json(obj.data)) for entry, obj in zip(ordered, objs, strict=True)]
        return [(entry, data) for entry, data in found if data is not None and isinstance(data.get("id"), int)]

    def recorded(self, item: Item, folder: str, entries: list[TreeEntry]) -> list[tuple[str | None, dict]]:
        """(the item commit that last wrote it, data) of the comments or reviews in `entries`, in order:
        one `git log` for the item, whatever the number of entries. By path, not by content: a copy of
        an agent's file under another name was written by whoever wrote the copy."""
        if not entries:
            return []  # nothing to attribute: no `git log` (a lone agent's PRs never have a review)
        writers = self._writers.get((item.sha, folder))
        if writers is None:  # an item commit's history never changes
            writers = self.cache.last_writers(item.sha, folder)
            remember(self._writers, (item.sha, folder), writers)
        return [(writers.get(f"{folder}/{entry.name}"), data) for entry, data in self.entry_blobs(entries)]

    def meta_history(self, sha: str) -> list[tuple[str, str, dict]]:
        """(commit, message, meta) of each commit on an item's first-parent line, oldest first: one
        `git log` and one `cat-file --batch` (an unreadable meta reads as empty)."""
        log = self.cache.log_messages(sha, "--first-parent")[::-1]
        objs = self.cache.cat_objects([f"{commit}:{META}" for commit, _ in log])
        return [(commit, message, (load_json(obj.data) or {}) if obj is not None else {})
                for (commit, message), obj in zip(log, objs)]

    def reviews(self, item: Item) -> list[Review]:
        """The reviews of an item read with `reviews=True`, each with the item commit that last wrote it
        (`recorded_in`): a review is only as trustworthy as that commit's signature."""
        return [replace(review_view(data), recorded_in=writer)
                for writer, data in self.recorded(item, REVIEWS, item.reviews)]

    # --- writing items ----------------------------------------------------------------

    def item_commit(self, item: Item | None, edit: Edit) -> str:
        """The item's next commit: `edit` applied on top of `item` (None: a new item)."""
        comments_tree, comments = (item.comments_tree, item.comments) if item else (None, [])
        reviews_tree, reviews = (item.reviews_tree, item.reviews) if item else (None, [])
        if edit.comment is not None:
            blob = self.cache.write_blob(json_bytes(edit.comment))
            comments = [*comments, TreeEntry(BLOB, f"{edit.comment['id']:06d}.json", blob)]
            comments_tree = self.cache.make_tree(comments)
        if edit.review is not None:
            blob = self.cache.write_blob(json_bytes(edit.review))
            reviews = [*reviews, TreeEntry(BLOB, f"{edit.review['id']:06d}.json", blob)]
            reviews_tree = self.cache.make_tree(reviews)
        entries = [TreeEntry(BLOB, META, self.cache.write_blob(json_bytes(edit.meta)))]
        if comments_tree:
            entries.append(TreeEntry(TREE, COMMENTS, comments_tree))
        if reviews_tree:
            entries.append(TreeEntry(TREE, REVIEWS, reviews_tree))
        commit = self.commit(self.cache.make_tree(entries), [item.sha] if item else [], edit.message)
        self.metas.put(commit, edit.meta, save=True)  # a push of it makes it a head the next listing knows
        remember(self._items, commit, Item(item.number if item else 0, commit, json_copy(edit.meta),
                                           comments_tree, list(comments), reviews_tree, list(reviews)))
        return commit

    def create_item(self, meta: dict, *, guard: RefUpdate | None = None, also: Sequence[RefUpdate] = (),
                    carry: Callable[[int], Sequence[RefUpdate]] | None = None, bases: Sequence[str] = ()) -> int | None:
        """Allocate the next number by a create-only push: the first push of `items/<n>` wins.

        With `guard` (a ref and the value it must still hold), the guard ref is
        pointed at the new item in the same atomic push; `also` (other refs'
        updates, each pinned) land in it too. None means the guard or one of
        `also` moved: someone else created the item first, or wrote meanwhile.
        `carry(n)`: the caller's own updates to land with item `n` (`bases`: what
        their commits build on); `Stale` when one of
        them moved (nothing landed).
        """
        commit = self.item_commit(None, Edit(meta, f"{meta['kind']}: create"))
        n = self._next_number(guess=True)
        pinned = ([] if guard is None else [RefUpdate(guard.ref, commit, guard.expect)]) + list(also)
        for attempt in range(MAX_ATTEMPTS):
            carried = list(carry(n)) if carry is not None else []
            if self.push([RefUpdate(item_ref(n), commit, None), *pinned, *carried], atomic=bool(pinned or carried),
                         bases=bases):
                return n
            backoff(attempt)  # spreads racing creators so most rounds have one pusher
            # one listing tells what lost the push and, with the items, the next number to try
            now = self.remote([u.ref for u in (*pinned, *carried)], numbered=True)
            stale = [u.ref for u in carried if now.get(u.ref) != u.expect]
            if stale:
                raise Stale(f"{', '.join(stale)} moved meanwhile: nothing was pushed", stale)
            if any(now.get(u.ref) != u.expect for u in pinned):
                return None
            n = max(n + 1, self._next_number(guess=True))
        raise TemporaryError(f"no free item number after {MAX_ATTEMPTS} tries")

    def _next_number(self, *, guess: bool = False) -> int:
        """The number after the highest item's; with `guess`, from a listing this store made less than
        GUESS_SECONDS ago, if any (the create-only push still decides: a taken number only loses it)."""
        when, highest = self._numbered
        if guess and 0 <= time.monotonic() - when < GUESS_SECONDS:
            return highest + 1
        return max(self._numbers(ls_refs(self.git, self.url, [ITEMS])), default=0) + 1

    def update(self, number: int, change: Callable[[Item], Edit | None]) -> Edit | None:
        """Apply `change` to the item's latest state, CAS-push it, retry lost races.

        Returns the edit that landed, or None when `change` found nothing to do.
        """
        landed: list[Edit] = []

        def build(current: str | None) -> str | None:
            if current is None:
                raise NotFound(f"#{number} not found")
            item = self.item_at(number, current, comments=True, reviews=True)
            edit = change(item)
            if edit is None:
                return None
            landed[:] = [edit]
            return self.item_commit(item, edit)

        return landed[0] if self.cas(item_ref(number), build, f"#{number}", fetch=False, guess=True) else None
