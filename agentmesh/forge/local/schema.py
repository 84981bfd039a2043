"""What the local forge stores, and the checks applied before trusting or writing it.

Anyone with push access can write `refs/agentmesh/*`, and forge text is hostile:
names are validated before they become refs, and items are shape-checked when read.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from agentmesh.core.digest import sha256
from agentmesh.core.errors import UserError
from agentmesh.core.pattern import LazyPattern
from agentmesh.forge.base import Comment, ForgeError, Issue, NotFound, Review
from agentmesh.git.cache import TreeEntry

FORMAT_VERSION = 1

# refs
ITEMS = "refs/agentmesh/items/"
LABELS_REF = "refs/agentmesh/labels"
ROSTER_REF = "refs/agentmesh/roster"
STATUSES = "refs/agentmesh/statuses/"
PULL_HEADS = "refs/agentmesh/pull-heads/"  # <sha256 of head branch> -> the latest PR created for it

# files in an item's tree, and the single-file documents
META = "meta.json"
COMMENTS = "comments"
REVIEWS = "reviews"
LABELS_FILE = "labels.json"
STATUSES_FILE = "statuses.json"
ROSTER_FILE = "roster.json"
BLOB, TREE = "100644", "40000"

REVIEW_STATES = {"approve": "APPROVED", "request_changes": "CHANGES_REQUESTED", "comment": "COMMENTED"}
PERMISSIONS = ("admin", "write", "read", "none")
CI_STATES = ("success", "pending", "failure", "error")

SHA = LazyPattern(r"[0-9a-f]{40}([0-9a-f]{24})?")
_REF_FORBIDDEN = LazyPattern(r"[\x00-\x20\x7f~^:?*\[\\]")


class InvalidName(ForgeError, UserError):
    """A branch name, sha or label that must not be used (forge text is hostile)."""


class CorruptItem(ForgeError, UserError):
    """An item under refs/agentmesh/ that is not valid JSON of the documented shape."""


# --- names ----------------------------------------------------------------------------


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
    if not SHA.fullmatch(sha):
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


def item_heads(refs: Mapping[str, str]) -> dict[int, str]:
    """number -> sha of each item among `refs` (a listing's), other refs left out."""
    return {int(ref[len(ITEMS):]): sha for ref, sha in refs.items()
            if ref.startswith(ITEMS) and ref[len(ITEMS):].isdigit()}


def pull_guard_ref(head: str) -> str:
    # hashed: flat (no D/F clash between `a` and `a/b`) and free of forge text
    return PULL_HEADS + sha256(head.encode()).hexdigest()


# --- documents ------------------------------------------------------------------------


def json_bytes(data: dict) -> bytes:
    return (json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def load_json(data: bytes) -> dict | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def valid_meta(meta: dict | None) -> bool:
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
    head, base = meta.get("head"), meta.get("base")
    try:
        check_branch_name(head if isinstance(head, str) else "")
        check_branch_name(base if isinstance(base, str) else "")
    except InvalidName:
        return False
    return meta.get("state") in ("open", "closed", "merged") and isinstance(meta.get("head_sha", ""), str)


# --- items ----------------------------------------------------------------------------


@dataclass
class Item:
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
class Edit:
    """What one write changes: the new meta plus at most one new comment or review."""

    meta: dict
    message: str
    comment: dict | None = None
    review: dict | None = None


# --- stored JSON as the forge interface's values -----------------------------------------


def issue_view(item: Item) -> Issue:
    m = item.meta
    return Issue(
        number=item.number, title=m.get("title", ""), body=m.get("body", ""),
        state="open" if m.get("state") == "open" else "closed",
        labels=tuple(m.get("labels", ())), author=m.get("author", ""),
        assignees=tuple(m.get("assignees", ())), created_at=m.get("created_at", ""),
        updated_at=m.get("updated_at", ""),
    )


def comment_view(data: dict) -> Comment:
    return Comment(id=data["id"], author=data.get("author", ""), body=data.get("body", ""),
                   created_at=data.get("created_at", ""))


def review_view(data: dict) -> Review:
    return Review(id=data["id"], author=data.get("author", ""), state=data.get("state", "COMMENTED"),
                  commit_id=data.get("commit_id", ""), body=data.get("body", ""),
                  submitted_at=data.get("submitted_at", ""))
