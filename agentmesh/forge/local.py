"""The git-native forge: issues, PRs, reviews and statuses stored in the remote itself.

Storage (docs/local-forge.md has the full format):
- `refs/agentmesh/items/<n>`: one ref per issue or PR (one number sequence).
  It points at a commit whose tree is `meta.json`, `comments/<id>.json` and
  `reviews/<id>.json`; each change is a new commit whose parent is the
  previous state, so the ref's history is the item's history.
- `refs/agentmesh/labels`: the label registry (`labels.json`).
- `refs/agentmesh/statuses/<sha>`: commit statuses of one sha (`statuses.json`).
- `refs/agentmesh/roster`: optional permissions (`roster.json`).

Every write is a CAS push pinned to the sha it was built on; a lost race
re-reads, re-applies the change and retries with jitter, a bounded number of
times. Only `ls_refs`, `push` and `CacheClone` touch the remote, so any
transport the git layer supports works. Forge text only ever lands in JSON
blobs and commit messages; PR head and base names are validated branch names.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import secrets
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from agentmesh.core.markers import closing_references
from agentmesh.core.errors import OutcomeUnknown, TemporaryError, UserError
from agentmesh.forge.base import (
    CIStateName,
    CIStatus,
    Comment,
    Conflict,
    Forge,
    ForgeError,
    Issue,
    IssueState,
    NotFound,
    Permission,
    PullRequest,
    PullState,
    Review,
    ReviewEvent,
    StatusContext,
    combine_states,
)
from agentmesh.git.cache import CacheClone, TreeEntry, mirror_ref, parse_tree
from agentmesh.git.remote import RefUpdate, ls_refs, push
from agentmesh.git.run import Git, GitError

ITEMS = "refs/agentmesh/items/"
LABELS_REF = "refs/agentmesh/labels"
ROSTER_REF = "refs/agentmesh/roster"
STATUSES = "refs/agentmesh/statuses/"
PULL_HEADS = "refs/agentmesh/pull-heads/"  # <sha256 of head branch> -> the latest PR created for it
FORMAT_VERSION = 1

META = "meta.json"
COMMENTS = "comments"
REVIEWS = "reviews"
LABELS_FILE = "labels.json"
STATUSES_FILE = "statuses.json"
ROSTER_FILE = "roster.json"
BLOB, TREE = "100644", "40000"

MAX_ATTEMPTS = 40  # lost races per write before giving up (each loss means someone else progressed)
_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_REVIEW_STATES = {"approve": "APPROVED", "request_changes": "CHANGES_REQUESTED", "comment": "COMMENTED"}
_PERMISSIONS = ("admin", "write", "read", "none")
_CI_STATES = ("success", "pending", "failure", "error")

DEFAULT_LABELS: dict[str, tuple[str, str]] = {
    "task": ("1d76db", "A unit of work an agent may claim"),
    "bug": ("d73a4a", "Something is broken"),
    "feature": ("a2eeef", "New behaviour"),
    "refactor": ("c5def5", "Change structure, not behaviour"),
    "security": ("b60205", "Security-relevant"),
    "good-first-task-for-agent": ("7057ff", "Small and well specified"),
    "agentmesh": ("ededed", "Created or managed by agentmesh"),
    "agentmesh:claimed": ("fbca04", "An agent holds the claim"),
    "agentmesh:working": ("fbca04", "An agent is working on it"),
    "agentmesh:review": ("0e8a16", "A PR is waiting for review"),
    "agentmesh:failed": ("e99695", "The last attempt failed"),
    "agentmesh:dead-letter": ("5319e7", "Failed too often; needs a human"),
    "agentmesh:blocked": ("d93f0b", "Waiting on another issue"),
    "agentmesh:needs-human": ("d93f0b", "Agents will not touch it"),
    "agentmesh:halt": ("000000", "Open issue with this label stops every agent"),
    "agentmesh:memory": ("c2e0c6", "Feeds the shared memory"),
    "priority:critical": ("b60205", ""),
    "priority:high": ("d93f0b", ""),
    "priority:medium": ("fbca04", ""),
    "priority:low": ("0e8a16", ""),
}


class InvalidName(ForgeError, UserError):
    """A branch name, sha or label that must not be used (forge text is hostile)."""


class CorruptItem(ForgeError, UserError):
    """An item under refs/agentmesh/ that is not valid JSON of the documented shape."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def check_branch_name(name: str) -> str:
    """`git check-ref-format --branch` rules, plus no Unicode control or format characters."""
    parts = name.split("/")
    if (
        not name
        or len(name) > 255
        or name.startswith("-")
        or name in ("HEAD", "@")
        or _REF_FORBIDDEN.search(name)
        or ".." in name
        or "@{" in name
        or name.endswith(".")
        or any(not part or part.startswith(".") or part.endswith(".lock") for part in parts)
        or any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name)
    ):
        raise InvalidName(f"invalid branch name {name!r}")
    return name


def check_sha(sha: str) -> str:
    if not _SHA.fullmatch(sha):
        raise InvalidName(f"not a full commit sha: {sha[:80]!r}")
    return sha


def check_label(name: str) -> str:
    if not name.strip() or len(name) > 100 or any(unicodedata.category(ch).startswith("C") for ch in name):
        raise InvalidName(f"invalid label {name[:100]!r}")
    return name


def item_ref(number: int) -> str:
    if number < 1:
        raise NotFound(f"#{number} not found")
    return f"{ITEMS}{number}"


def pull_guard_ref(head: str) -> str:
    # hashed: flat (no D/F clash between `a` and `a/b`) and free of forge text
    return PULL_HEADS + hashlib.sha256(head.encode()).hexdigest()


def _json_bytes(data: dict) -> bytes:
    return (json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _load_json(data: bytes) -> dict | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _valid_meta(meta: dict | None) -> bool:
    """Anyone with push access can write these refs: check the shape before trusting it."""
    if not meta or meta.get("kind") not in ("issue", "pull"):
        return False
    if not all(isinstance(meta.get(k, ""), str) for k in ("title", "body", "author", "created_at", "updated_at")):
        return False
    for key in ("labels", "assignees", "requested_reviewers"):
        value = meta.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return False
    if meta["kind"] == "issue":
        return meta.get("state") in ("open", "closed")
    try:
        check_branch_name(meta.get("head") if isinstance(meta.get("head"), str) else "")
        check_branch_name(meta.get("base") if isinstance(meta.get("base"), str) else "")
    except InvalidName:
        return False
    return meta.get("state") in ("open", "closed", "merged") and isinstance(meta.get("head_sha", ""), str)


def _parse_time(stamp: str) -> datetime | None:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None


# --- stored items ---------------------------------------------------------------------


@dataclass
class _Item:
    """One issue or PR as read from its commit."""

    number: int
    sha: str
    meta: dict
    comments_tree: str | None = None
    comments: list[TreeEntry] = field(default_factory=list)
    reviews_tree: str | None = None
    reviews: list[TreeEntry] = field(default_factory=list)

    @property
    def is_pull(self) -> bool:
        return self.meta.get("kind") == "pull"

    @staticmethod
    def next_id(entries: list[TreeEntry]) -> int:
        ids = [int(e.name.split(".")[0]) for e in entries if e.name.split(".")[0].isdigit()]
        return max(ids, default=0) + 1


@dataclass
class _Edit:
    """What one write changes: the new meta plus at most one new comment or review."""

    meta: dict
    message: str
    comment: dict | None = None
    review: dict | None = None


class LocalForge(Forge):
    kind = "local"

    def __init__(self, cache: CacheClone, *, user: str, clock: Callable[[], datetime] = utc_now):
        self.cache = cache
        self.git = cache.git
        self.url = cache.url
        self.user = user
        self.clock = clock

    # --- low level: remote refs, objects, CAS --------------------------------------

    def _now(self) -> str:
        return self.clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _remote(self, refs: Sequence[str]) -> dict[str, str]:
        """Exact refs -> sha on the remote now (prefix listing, filtered to exact names)."""
        listing = ls_refs(self.git, self.url, list(dict.fromkeys(refs)))
        return {ref: listing.refs[ref] for ref in refs if ref in listing.refs}

    def _ensure_local(self, refs: dict[str, str]) -> None:
        """Fetch the refs whose commits this cache clone lacks."""
        missing = [ref for ref, obj in zip(refs, self.cache.cat_objects([f"{s}^{{commit}}" for s in refs.values()]))
                   if obj is None]
        if missing:
            self.cache.fetch(missing)

    def _push(self, updates: Sequence[RefUpdate], *, atomic: bool = False) -> bool:
        """A CAS push; an unknown outcome is settled by reading the refs back."""
        try:
            return push(self.git, self.cache.path, self.url, updates, atomic=atomic).ok
        except OutcomeUnknown:
            now = self._remote([u.ref for u in updates])
            return all(now.get(u.ref) == u.new for u in updates)

    @staticmethod
    def _backoff(attempt: int) -> None:
        time.sleep(random.uniform(0, min(0.02 * 2 ** attempt, 0.5)))

    def _commit(self, tree: str, parents: Sequence[str], subject: str) -> str:
        # The nonce keeps every commit unique: two identical pushes would both "win" (docs/design/protocol.md).
        message = f"{subject}\n\nAgentmesh-Actor: {self.user}\nAgentmesh-Nonce: {secrets.token_hex(8)}\n"
        return self.cache.commit_tree(tree, parents, message)

    def _cas(self, ref: str, build: Callable[[str | None], str | None], what: str) -> bool:
        """Re-read `ref`, build its next commit, push pinned to what was read; retry lost races.

        `build(current_sha)` returns the new commit, or None when nothing needs
        to change. Returns whether anything was written.
        """
        for attempt in range(MAX_ATTEMPTS):
            current = self._remote([ref]).get(ref)
            if current is not None:
                self._ensure_local({ref: current})
            new = build(current)
            if new is None:
                return False
            if self._push([RefUpdate(ref, new, current)]):
                return True
            self._backoff(attempt)
        raise TemporaryError(f"{what}: gave up after {MAX_ATTEMPTS} concurrent updates")

    # --- single-file documents (labels, statuses, roster) -----------------------------

    def _read_doc(self, sha: str | None, name: str) -> dict:
        if sha is None:
            return {}
        obj = self.cache.cat_objects([f"{sha}:{name}"])[0]
        return (_load_json(obj.data) or {}) if obj is not None else {}

    def _load_doc(self, ref: str, name: str) -> dict:
        sha = self._remote([ref]).get(ref)
        if sha is not None:
            self._ensure_local({ref: sha})
        return self._read_doc(sha, name)

    def _update_doc(self, ref: str, name: str, change: Callable[[dict], dict | None], subject: str) -> None:
        def build(current: str | None) -> str | None:
            new = change(self._read_doc(current, name))
            if new is None:
                return None
            tree = self.cache.make_tree([TreeEntry(BLOB, name, self.cache.write_blob(_json_bytes(new)))])
            return self._commit(tree, [current] if current else [], subject)

        self._cas(ref, build, subject)

    # --- items ---------------------------------------------------------------------

    def _read_items(self, heads: dict[int, str], *, comments: bool = False,
                    reviews: bool = False) -> dict[int, _Item | None]:
        """Items at the given commits, in one `cat-file --batch`; None where a commit is not local."""
        names = [META] + ([COMMENTS] if comments else []) + ([REVIEWS] if reviews else [])
        objs = self.cache.cat_objects([f"{sha}:{name}" for sha in heads.values() for name in names])
        items: dict[int, _Item | None] = {}
        for i, (number, sha) in enumerate(heads.items()):
            found = dict(zip(names, objs[i * len(names):(i + 1) * len(names)]))
            if found[META] is None:
                items[number] = None
                continue
            meta = _load_json(found[META].data)
            if not _valid_meta(meta):
                raise CorruptItem(f"#{number}: {item_ref(number)} at {sha[:12]} does not hold a valid item")
            item = _Item(number, sha, meta)
            if found.get(COMMENTS) is not None:
                item.comments_tree, item.comments = found[COMMENTS].sha, parse_tree(found[COMMENTS].data)
            if found.get(REVIEWS) is not None:
                item.reviews_tree, item.reviews = found[REVIEWS].sha, parse_tree(found[REVIEWS].data)
            items[number] = item
        return items

    def _item_at(self, number: int, sha: str, **parts: bool) -> _Item:
        item = self._read_items({number: sha}, **parts)[number]
        if item is None:
            self.cache.fetch([item_ref(number)])
            item = self._read_items({number: sha}, **parts)[number]
            if item is None:
                raise TemporaryError(f"#{number} changed while it was read; try again")
        return item

    def _load(self, number: int, **parts: bool) -> _Item:
        ref = item_ref(number)
        sha = self._remote([ref]).get(ref)
        if sha is None:
            raise NotFound(f"#{number} not found")
        return self._item_at(number, sha, **parts)

    def _load_pull(self, number: int, **parts: bool) -> _Item:
        item = self._load(number, **parts)
        if not item.is_pull:
            raise NotFound(f"#{number} is an issue, not a pull request")
        return item

    def _all_items(self) -> list[_Item]:
        """Every item: one fetch of the items prefix, one for-each-ref, one cat-file --batch."""
        self.cache.fetch([ITEMS + "*"], prune=True)
        prefix = mirror_ref(ITEMS)
        self.cache.pack_loose_refs(prefix)
        out = self.cache.run("for-each-ref", "--format=%(objectname) %(refname)", prefix).stdout
        heads = {}
        for line in out.splitlines():
            sha, _, ref = line.partition(" ")
            if ref[len(prefix):].isdigit():
                heads[int(ref[len(prefix):])] = sha
        try:
            items = self._read_items(heads)
        except CorruptItem:
            items = {n: self._readable(n, sha) for n, sha in heads.items()}  # the slow path, rarely taken
        return [item for _, item in sorted(items.items()) if item is not None]

    def _readable(self, number: int, sha: str) -> _Item | None:
        """One item, or None when it is corrupt: a bad item must not hide every other one."""
        try:
            return self._read_items({number: sha})[number]
        except CorruptItem:
            return None

    def _blobs(self, entries: list[TreeEntry]) -> list[dict]:
        ordered = sorted(entries, key=lambda e: e.name)
        found = [_load_json(obj.data) for obj in self.cache.cat_objects([e.sha for e in ordered]) if obj is not None]
        return [data for data in found if data is not None and isinstance(data.get("id"), int)]

    def _item_commit(self, item: _Item | None, edit: _Edit) -> str:
        comments_tree, comments = (item.comments_tree, item.comments) if item else (None, [])
        reviews_tree, reviews = (item.reviews_tree, item.reviews) if item else (None, [])
        if edit.comment is not None:
            blob = self.cache.write_blob(_json_bytes(edit.comment))
            comments_tree = self.cache.make_tree([*comments, TreeEntry(BLOB, f"{edit.comment['id']:06d}.json", blob)])
        if edit.review is not None:
            blob = self.cache.write_blob(_json_bytes(edit.review))
            reviews_tree = self.cache.make_tree([*reviews, TreeEntry(BLOB, f"{edit.review['id']:06d}.json", blob)])
        entries = [TreeEntry(BLOB, META, self.cache.write_blob(_json_bytes(edit.meta)))]
        if comments_tree:
            entries.append(TreeEntry(TREE, COMMENTS, comments_tree))
        if reviews_tree:
            entries.append(TreeEntry(TREE, REVIEWS, reviews_tree))
        return self._commit(self.cache.make_tree(entries), [item.sha] if item else [], edit.message)

    def _create_item(self, meta: dict, *, guard: RefUpdate | None = None) -> int | None:
        """Allocate the next number by a create-only push: the first push of `items/<n>` wins.

        With `guard` (a ref and the value it must still hold), the guard ref is
        pointed at the new item in the same atomic push; None means the guard
        moved, i.e. someone else created the item first.
        """
        commit = self._item_commit(None, _Edit(meta, f"{meta['kind']}: create"))
        n = self._next_number()
        for attempt in range(MAX_ATTEMPTS):
            updates = [RefUpdate(item_ref(n), commit, None)]
            if guard is not None:
                updates.append(RefUpdate(guard.ref, commit, guard.expect))
            if self._push(updates, atomic=guard is not None):
                return n
            if guard is not None and self._remote([guard.ref]).get(guard.ref) != guard.expect:
                return None
            self._backoff(attempt)  # spreads racing creators so most rounds have one pusher
            n = max(n + 1, self._next_number())
        raise TemporaryError(f"no free item number after {MAX_ATTEMPTS} tries")

    def _next_number(self) -> int:
        listing = ls_refs(self.git, self.url, [ITEMS])
        numbers = [int(ref[len(ITEMS):]) for ref in listing.refs if ref[len(ITEMS):].isdigit()]
        return max(numbers, default=0) + 1

    def _update(self, number: int, change: Callable[[_Item], _Edit | None]) -> _Edit | None:
        """Apply `change` to the item's latest state, CAS-push it, retry lost races.

        Returns the edit that landed, or None when `change` found nothing to do.
        """
        landed: list[_Edit] = []

        def build(current: str | None) -> str | None:
            if current is None:
                raise NotFound(f"#{number} not found")
            item = self._item_at(number, current, comments=True, reviews=True)
            edit = change(item)
            if edit is None:
                return None
            landed[:] = [edit]
            return self._item_commit(item, edit)

        return landed[0] if self._cas(item_ref(number), build, f"#{number}") else None

    def _meta(self, item: _Item, **changes) -> dict:
        return {**item.meta, **changes, "updated_at": self._now()}

    # --- views ---------------------------------------------------------------------

    @staticmethod
    def _issue(item: _Item) -> Issue:
        m = item.meta
        return Issue(
            number=item.number, title=m.get("title", ""), body=m.get("body", ""),
            state="open" if m.get("state") == "open" else "closed",
            labels=tuple(m.get("labels", ())), author=m.get("author", ""),
            assignees=tuple(m.get("assignees", ())), created_at=m.get("created_at", ""),
            updated_at=m.get("updated_at", ""),
        )

    def _pulls(self, items: list[_Item], *, with_reviews: bool) -> list[PullRequest]:
        """PR views; open PRs show their head branch's sha on the remote now."""
        open_heads = [f"refs/heads/{i.meta['head']}" for i in items if i.meta.get("state") == "open"]
        live = self._remote(open_heads) if open_heads else {}
        reviews: dict[int, tuple[Review, ...]] = {}
        if with_reviews:
            # the listing read meta only: one more batch for the review trees, one for their blobs
            trees = self._read_items({i.number: i.sha for i in items}, reviews=True)
            entries = {n: t.reviews for n, t in trees.items() if t is not None}
            blobs = self.cache.cat_objects([e.sha for n in entries for e in sorted(entries[n], key=lambda e: e.name)])
            pos = 0
            for n, ents in entries.items():
                found = (_load_json(b.data) for b in blobs[pos:pos + len(ents)] if b is not None)
                reviews[n] = tuple(_review(d) for d in found if d is not None and isinstance(d.get("id"), int))
                pos += len(ents)
        pulls = []
        for item in items:
            m = item.meta
            head_sha = m.get("head_sha", "")
            if m.get("state") == "open":
                head_sha = live.get(f"refs/heads/{m['head']}", head_sha)
            pulls.append(PullRequest(
                number=item.number, title=m.get("title", ""), body=m.get("body", ""), state=m.get("state", "open"),
                head=m["head"], base=m["base"], head_sha=head_sha, author=m.get("author", ""),
                labels=tuple(m.get("labels", ())), reviews=reviews.get(item.number, ()),
                requested_reviewers=tuple(m.get("requested_reviewers", ())), merge_sha=m.get("merge_sha"),
                created_at=m.get("created_at", ""), updated_at=m.get("updated_at", ""),
            ))
        return pulls

    # --- issues ----------------------------------------------------------------------

    def list_issues(self, *, state: IssueState | Literal["all"] = "open", labels: Sequence[str] = (),
                    since: datetime | None = None) -> list[Issue]:
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        wanted = set(labels)
        found = []
        for item in self._all_items():
            if item.is_pull:
                continue
            issue = self._issue(item)
            if state != "all" and issue.state != state:
                continue
            if not wanted <= set(issue.labels):
                continue
            if since is not None and ((_parse_time(issue.updated_at) or since) < since):
                continue
            found.append(issue)
        return found

    def get_issue(self, number: int) -> Issue:
        return self._issue(self._load(number))

    def create_issue(self, title: str, body: str = "", labels: Sequence[str] = ()) -> Issue:
        labels = list(dict.fromkeys(check_label(name) for name in labels))
        if labels:
            self._ensure_labels(labels)
        now = self._now()
        meta = {"version": FORMAT_VERSION, "kind": "issue", "title": title, "body": body, "state": "open",
                "labels": labels, "assignees": [], "author": self.user, "created_at": now, "updated_at": now}
        number = self._create_item(meta)
        assert number is not None  # only a guarded creation can lose
        return self._issue(_Item(number, "", meta))

    def close_issue(self, number: int) -> None:
        self._close(number, kinds=("issue", "pull"))

    def _close(self, number: int, kinds: Sequence[str]) -> None:
        def change(item: _Item) -> _Edit | None:
            if item.meta.get("kind") not in kinds or item.meta.get("state") != "open":
                return None
            return _Edit(self._meta(item, state="closed", closed_by=self.user), f"{item.meta['kind']}: close")

        self._update(number, change)

    def list_comments(self, number: int) -> list[Comment]:
        item = self._load(number, comments=True)
        return [_comment(data) for data in self._blobs(item.comments)]

    def comment(self, number: int, body: str) -> Comment:
        def change(item: _Item) -> _Edit:
            data = {"id": _Item.next_id(item.comments), "author": self.user, "body": body, "created_at": self._now()}
            return _Edit(self._meta(item), "comment", comment=data)

        return _comment(self._update(number, change).comment)

    def add_labels(self, number: int, labels: Sequence[str]) -> None:
        labels = list(dict.fromkeys(check_label(name) for name in labels))
        if not labels:
            return
        self._ensure_labels(labels)

        def change(item: _Item) -> _Edit | None:
            current = list(item.meta.get("labels", []))
            added = [name for name in labels if name not in current]
            return _Edit(self._meta(item, labels=current + added), "labels: add") if added else None

        self._update(number, change)

    def remove_labels(self, number: int, labels: Sequence[str]) -> None:
        def change(item: _Item) -> _Edit | None:
            current = list(item.meta.get("labels", []))
            kept = [name for name in current if name not in labels]
            return _Edit(self._meta(item, labels=kept), "labels: remove") if kept != current else None

        self._update(number, change)

    def set_assignees(self, number: int, assignees: Sequence[str]) -> None:
        wanted = list(dict.fromkeys(assignees))

        def change(item: _Item) -> _Edit | None:
            if item.meta.get("assignees", []) == wanted:
                return None
            return _Edit(self._meta(item, assignees=wanted), "assignees: set")

        self._update(number, change)

    # --- labels registry -------------------------------------------------------------

    def list_labels(self) -> dict[str, dict]:
        """The repository's labels: name -> {color, description}. (local only)"""
        labels = self._load_doc(LABELS_REF, LABELS_FILE).get("labels")
        return labels if isinstance(labels, dict) else {}

    def _ensure_labels(self, names: Sequence[str]) -> None:
        if set(names) <= set(self.list_labels()):
            return  # the common case costs one listing and one read, no push

        def change(doc: dict) -> dict | None:
            known = dict(doc["labels"]) if isinstance(doc.get("labels"), dict) else {}
            missing = [n for n in names if n not in known]
            if not missing:
                return None
            known.update({n: {"color": "ededed", "description": ""} for n in missing})
            return {"version": FORMAT_VERSION, "labels": known}

        self._update_doc(LABELS_REF, LABELS_FILE, change, "labels: create")

    # --- pull requests -----------------------------------------------------------------

    def list_pulls(self, *, state: PullState | Literal["all"] = "open") -> list[PullRequest]:
        items = [i for i in self._all_items() if i.is_pull and (state == "all" or i.meta.get("state") == state)]
        return self._pulls(items, with_reviews=True)

    def get_pull(self, number: int) -> PullRequest:
        return self._pull(self._load_pull(number, reviews=True))

    def _pull(self, item: _Item) -> PullRequest:
        pull = self._pulls([item], with_reviews=False)[0]
        pull_reviews = tuple(_review(data) for data in self._blobs(item.reviews))
        return replace(pull, reviews=pull_reviews)

    def create_pull(self, *, head: str, base: str, title: str, body: str = "") -> PullRequest:
        check_branch_name(head)
        check_branch_name(base)
        if head == base:
            raise Conflict(f"head and base are the same branch {head!r}")
        head_ref, base_ref, guard_ref = f"refs/heads/{head}", f"refs/heads/{base}", pull_guard_ref(head)
        for _ in range(MAX_ATTEMPTS):
            existing = self.find_pull_for_head(head)
            if existing is not None:
                return existing
            heads = self._remote([head_ref, base_ref, guard_ref])
            for branch, ref in ((head, head_ref), (base, base_ref)):
                if ref not in heads:
                    raise NotFound(f"branch {branch!r} does not exist on the remote")
            now = self._now()
            meta = {"version": FORMAT_VERSION, "kind": "pull", "title": title, "body": body, "state": "open",
                    "labels": [], "assignees": [], "author": self.user, "created_at": now, "updated_at": now,
                    "head": head, "base": base, "head_sha": heads[head_ref], "requested_reviewers": [],
                    "merge_sha": None}
            # The guard ref makes "adopt or create" atomic: of two racing creators for one head,
            # the loser sees the guard move and adopts the winner's PR on the next round.
            number = self._create_item(meta, guard=RefUpdate(guard_ref, None, heads.get(guard_ref)))
            if number is not None:
                return self._pulls([_Item(number, "", meta)], with_reviews=False)[0]
        raise TemporaryError(f"PR for {head!r}: gave up after {MAX_ATTEMPTS} concurrent creations")

    def request_reviewers(self, number: int, reviewers: Sequence[str]) -> None:
        def change(item: _Item) -> _Edit | None:
            if not item.is_pull:
                raise NotFound(f"#{number} is an issue, not a pull request")
            current = list(item.meta.get("requested_reviewers", []))
            added = [r for r in dict.fromkeys(reviewers) if r not in current]
            return _Edit(self._meta(item, requested_reviewers=current + added), "reviewers: request") if added else None

        self._update(number, change)

    def list_reviews(self, number: int) -> list[Review]:
        return [_review(data) for data in self._blobs(self._load_pull(number, reviews=True).reviews)]

    def _head_sha(self, item: _Item) -> str | None:
        """The PR head: the branch on the remote while open, the recorded sha afterwards."""
        if item.meta.get("state") != "open":
            return item.meta.get("head_sha")
        ref = f"refs/heads/{item.meta['head']}"
        return self._remote([ref]).get(ref)

    def submit_review(self, number: int, *, event: ReviewEvent, body: str, commit_id: str) -> Review:
        if event not in _REVIEW_STATES:
            raise UserError(f"unknown review event {event!r}")
        check_sha(commit_id)

        def change(item: _Item) -> _Edit:
            if not item.is_pull:
                raise NotFound(f"#{number} is an issue, not a pull request")
            head = self._head_sha(item)
            if head != commit_id:
                raise Conflict(f"PR #{number} head is {(head or 'gone')[:12]}, not {commit_id[:12]}: review the new head")
            data = {"id": _Item.next_id(item.reviews), "author": self.user, "state": _REVIEW_STATES[event],
                    "commit_id": commit_id, "body": body, "submitted_at": self._now()}
            return _Edit(self._meta(item), f"review: {data['state'].lower()}", review=data)

        return _review(self._update(number, change).review)

    def merge_pull(self, number: int, *, sha: str, method: Literal["merge", "squash"] = "merge") -> None:
        """A real merge, pushed atomically with the PR's new state, pinned to base, head and item."""
        check_sha(sha)
        if method not in ("merge", "squash"):
            raise UserError(f"unknown merge method {method!r}")
        for attempt in range(MAX_ATTEMPTS):
            item = self._load_pull(number, comments=True, reviews=True)
            meta = item.meta
            if meta.get("state") == "merged" and meta.get("head_sha") == sha:
                return  # already done, by us or a racing merger
            if meta.get("state") != "open":
                raise Conflict(f"PR #{number} is {meta.get('state')}, not open")
            head_ref, base_ref = f"refs/heads/{meta['head']}", f"refs/heads/{meta['base']}"
            heads = self._remote([head_ref, base_ref])
            if heads.get(head_ref) != sha:
                raise Conflict(f"PR #{number} head is {heads.get(head_ref, 'gone')[:12]}, not {sha[:12]}: it moved")
            if base_ref not in heads:
                raise Conflict(f"PR #{number} base branch {meta['base']!r} is gone")
            base_sha = heads[base_ref]
            self._ensure_local(heads)
            merged = self._merge_commit(item, base_sha, sha, method)
            edit = _Edit(self._meta(item, state="merged", head_sha=sha, merge_sha=merged, merged_by=self.user),
                         f"pull: merge ({method})")
            updates = [RefUpdate(base_ref, merged, base_sha), RefUpdate(head_ref, sha, sha),
                       RefUpdate(item_ref(number), self._item_commit(item, edit), item.sha)]
            if self._push(updates, atomic=True):
                self._close_referenced(item)
                return
            self._backoff(attempt)
        raise TemporaryError(f"merge of PR #{number}: gave up after {MAX_ATTEMPTS} concurrent updates")

    def _merge_commit(self, item: _Item, base_sha: str, head_sha: str, method: str) -> str:
        result = self.cache.run("merge-tree", "--write-tree", "--name-only", "--no-messages", base_sha, head_sha,
                                check=False)
        lines = result.stdout.splitlines()
        if result.returncode == 1:
            files = ", ".join(lines[1:6]) + (" ..." if len(lines) > 6 else "")
            raise Conflict(f"PR #{item.number} conflicts with {item.meta['base']} in: {files or 'unknown files'}")
        if result.returncode != 0 or not lines:
            raise GitError(result.args, result.returncode, result.stdout, result.stderr)
        title = item.meta.get("title", "")
        if method == "squash":
            return self._commit(lines[0], [base_sha], f"{title} (#{item.number})\n\n{item.meta.get('body', '')}".strip())
        return self._commit(lines[0], [base_sha, head_sha],
                            f"Merge pull request #{item.number} from {item.meta['head']}\n\n{title}")

    def _close_referenced(self, pull: _Item) -> None:
        for number in closing_references(pull.meta.get("body", "")):
            if number != pull.number:
                try:
                    self._close(number, kinds=("issue",))
                except NotFound:
                    pass  # a PR body may name anything

    def close_pull(self, number: int) -> None:
        def change(item: _Item) -> _Edit | None:
            if not item.is_pull:
                raise NotFound(f"#{number} is an issue, not a pull request")
            if item.meta.get("state") != "open":
                return None
            head = self._head_sha(item) or item.meta.get("head_sha")
            return _Edit(self._meta(item, state="closed", head_sha=head, closed_by=self.user), "pull: close")

        self._update(number, change)

    # --- CI ----------------------------------------------------------------------------

    def ci_status(self, sha: str) -> CIStatus:
        stored = self._load_doc(STATUSES + check_sha(sha), STATUSES_FILE).get("contexts")
        contexts = tuple(
            StatusContext(name, c["state"] if c.get("state") in _CI_STATES else "error",
                          str(c.get("description", "")), str(c.get("target_url", "")))
            for name, c in sorted(stored.items() if isinstance(stored, dict) else ())
            if isinstance(c, dict)
        )
        return CIStatus(sha, combine_states(c.state for c in contexts), contexts)

    def set_status(self, sha: str, *, context: str, state: CIStateName, description: str = "",
                   target_url: str = "") -> None:
        if state not in _CI_STATES:
            raise UserError(f"unknown status state {state!r}")
        entry = {"state": state, "description": description, "target_url": target_url}

        def change(doc: dict) -> dict | None:
            contexts = dict(doc["contexts"]) if isinstance(doc.get("contexts"), dict) else {}
            if {k: contexts.get(context, {}).get(k) for k in entry} == entry:
                return None
            contexts[context] = {**entry, "author": self.user, "updated_at": self._now()}
            return {"version": FORMAT_VERSION, "sha": sha, "contexts": contexts}

        self._update_doc(STATUSES + check_sha(sha), STATUSES_FILE, change, "status: set")

    # --- content and identity --------------------------------------------------------------

    def read_file(self, path: str, ref: str) -> str | None:
        if "\n" in path or "\n" in ref:
            raise InvalidName("paths and refs must not contain newlines")
        if _SHA.fullmatch(ref):
            sha = ref
            if self.cache.cat_objects([f"{sha}^{{commit}}"])[0] is None:
                self.cache.fetch(["refs/heads/*"])  # an arbitrary sha: look for it on every branch
        else:
            remote_ref = f"refs/heads/{check_branch_name(ref)}"
            heads = self._remote([remote_ref])
            if remote_ref not in heads:
                return None
            self._ensure_local(heads)
            sha = heads[remote_ref]
        obj = self.cache.cat_objects([f"{sha}:{path.lstrip('/')}"])[0]
        if obj is None or obj.type != "blob":
            return None
        return obj.data.decode("utf-8", "replace")

    def delete_branch(self, branch: str) -> None:
        ref = f"refs/heads/{check_branch_name(branch)}"
        for attempt in range(MAX_ATTEMPTS):
            current = self._remote([ref]).get(ref)
            if current is None or self._push([RefUpdate(ref, None, current)]):
                return
            self._backoff(attempt)
        raise TemporaryError(f"delete of branch {branch!r}: gave up after {MAX_ATTEMPTS} concurrent updates")

    def current_user(self) -> str:
        return self.user

    def permission(self, user: str) -> Permission:
        """From `refs/agentmesh/roster` when present; without a roster every user may write."""
        doc = self._load_doc(ROSTER_REF, ROSTER_FILE)
        users = doc.get("users") if isinstance(doc.get("users"), dict) else {}
        value = users.get(user, doc.get("default", "write"))
        return value if value in _PERMISSIONS else "none"

    def set_permission(self, user: str, permission: Permission) -> None:
        """Record `user`'s permission in the roster. (local only)"""
        if permission not in _PERMISSIONS:
            raise UserError(f"unknown permission {permission!r}")

        def change(doc: dict) -> dict | None:
            users = dict(doc["users"]) if isinstance(doc.get("users"), dict) else {}
            if users.get(user) == permission:
                return None
            users[user] = permission
            return {"version": FORMAT_VERSION, "default": doc.get("default", "write"), "users": users}

        self._update_doc(ROSTER_REF, ROSTER_FILE, change, "roster: set")


def _comment(data: dict) -> Comment:
    return Comment(id=data["id"], author=data.get("author", ""), body=data.get("body", ""),
                   created_at=data.get("created_at", ""))


def _review(data: dict) -> Review:
    return Review(id=data["id"], author=data.get("author", ""), state=data.get("state", "COMMENTED"),
                  commit_id=data.get("commit_id", ""), body=data.get("body", ""),
                  submitted_at=data.get("submitted_at", ""))


# --- a new repository ------------------------------------------------------------------------


def init_repository(git: Git, path: Path, files: dict[str, str], *, branch: str = "main",
                    labels: dict[str, tuple[str, str]] = DEFAULT_LABELS) -> str:
    """Create a bare repository at `path` with one commit of `files` on `branch` and the label registry.

    Returns the commit sha. Objects are written directly: there is nothing to race with yet.
    """
    check_branch_name(branch)
    git.run("init", "--bare", "--quiet", f"--initial-branch={branch}", str(path))
    repo = CacheClone(git, path, str(path))
    root = _tree_of(repo, files)
    commit = repo.commit_tree(root, [], "Initial commit\n")
    repo.run("update-ref", f"refs/heads/{branch}", commit, "")
    repo.run("symbolic-ref", "HEAD", f"refs/heads/{branch}")
    doc = {"version": FORMAT_VERSION,
           "labels": {name: {"color": color, "description": text} for name, (color, text) in labels.items()}}
    tree = repo.make_tree([TreeEntry(BLOB, LABELS_FILE, repo.write_blob(_json_bytes(doc)))])
    repo.run("update-ref", LABELS_REF, repo.commit_tree(tree, [], "labels: defaults\n"), "")
    return commit


def _tree_of(repo: CacheClone, files: dict[str, str]) -> str:
    """A tree (with subtrees) holding `files` ({"a/b.txt": text})."""
    here: dict[str, str] = {}
    below: dict[str, dict[str, str]] = {}
    for name, text in files.items():
        top, _, rest = name.partition("/")
        if rest:
            below.setdefault(top, {})[rest] = text
        else:
            here[top] = text
    entries = [TreeEntry(BLOB, name, repo.write_blob(text.encode())) for name, text in here.items()]
    entries += [TreeEntry(TREE, name, _tree_of(repo, sub)) for name, sub in below.items()]
    return repo.make_tree(entries)


STARTER_README = """\
# A mesh repository

Agents coordinate through this repository. Issues, pull requests, reviews and
commit statuses live under `refs/agentmesh/` (see agentmesh's
docs/local-forge.md); the shared policy is `.agentmesh/mesh.yaml`.

    agentmesh --remote URL --agent NAME issue create "First task" --label task
"""

STARTER_MESH_YAML = """\
# The mesh policy, shared by every agent. It changes through a PR like any code.
version: 1

# The branch agents branch from and merge into (default: the remote's HEAD).
# default_branch: main

labels:
  # Open issues carrying one of these labels may be claimed by an agent.
  eligible: [task, bug, feature, refactor, security, good-first-task-for-agent]

lease:
  seconds: 1800        # how long a claim lives without renewal
  renew_seconds: 300   # how often a working agent renews (lease >= 3 x renew)
  grace_seconds: 300   # extra time an observer waits before reaping
  max_seconds: 86400   # the longest lease a claim may ask for

claims:
  ref_prefix: refs/heads/claim/              # one claim ref per issue: <prefix><issue>

presence:
  ref_prefix: refs/heads/agentmesh/agents/   # one presence ref per agent

review:
  ring: []               # agent names that review each other's PRs, in ring order (empty: everyone)
  required_approvals: 1  # approvals on the current head needed before a merge

# Commands every change must pass before its PR is opened, e.g.
#   - {name: tests, run: [python, -m, pytest, -q], timeout_seconds: 600}
gates: []

# Paths agents must never change (globs); a human changes them.
protected_paths:
  - .agentmesh/**
  - .github/**
  - .gitea/**
  - ai-memory/lessons/**
  - CODEOWNERS

budgets:          # null means unlimited
  agent: {tasks_per_day: null, executor_minutes_per_day: null, cost_usd_per_day: null}
  fleet: {tasks_per_day: null, executor_minutes_per_day: null, cost_usd_per_day: null}

max_attempts: 3        # failed attempts before an issue goes to agentmesh:dead-letter
max_diff_lines: 2000   # larger changes are not pushed

merge:
  auto: false          # merge approved PRs with green CI automatically
  method: merge        # merge or squash
"""


def starter_files() -> dict[str, str]:
    return {"README.md": STARTER_README, ".agentmesh/mesh.yaml": STARTER_MESH_YAML}
