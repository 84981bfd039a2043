"""The remote as git plumbing sees it: refs, local-forge items, journals (on the memory branch).

The judge reads the bare repository directly (for-each-ref, cat-file --batch, ls-tree, merge-base
through the git layer), never through the forge classes or the agents' reports, so a bug in
those cannot hide a broken remote. Items are parsed from the documented storage format
(docs/local-forge.md, version 1): `refs/agentmesh/items/<n>` -> a commit whose tree holds
`meta.json`, `comments/*.json` and `reviews/*.json`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml

from agentmesh.core.memory import ref_writer
from agentmesh.core.pattern import LazyPattern
from agentmesh.git.cache import CacheClone, parse_tree
from agentmesh.git.run import Git
from agentmesh.host.config import DEFAULT_MEMORY_BRANCH

ITEMS = "refs/agentmesh/items/"
JOURNALS = "ai-memory/agents"
MESH_YAML = ".agentmesh/mesh.yaml"
DEFAULT_CLAIMS = "refs/heads/claim/"
DEFAULT_PRESENCE = "refs/heads/agentmesh/agents/"
WORK_BRANCH = LazyPattern(r"(?P<agent>[a-z0-9][a-z0-9-]{0,39})/(?P<issue>[1-9][0-9]{0,9})-(?P<slug>[a-z0-9-]{1,40})")
LESSON_BRANCH = LazyPattern(r"[a-z0-9][a-z0-9-]{0,39}/lessons/[a-z0-9-]{1,80}")
CLOSES = LazyPattern(r"\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s*:?\s+#([1-9][0-9]{0,9})\b", re.IGNORECASE)
JOURNAL_FILE = LazyPattern(rf"{JOURNALS}/(?P<agent>[^/]+)/journal/[^/]+\.jsonl")


@dataclass(frozen=True)
class Item:
    """One issue or PR as its ref's commit holds it; `meta` is {} when it could not be read."""

    number: int
    sha: str
    meta: dict
    comments: tuple[dict, ...] = ()
    reviews: tuple[dict, ...] = ()

    def _text(self, key: str) -> str:
        value = self.meta.get(key)
        return value if isinstance(value, str) else ""

    @property
    def kind(self) -> str:
        return self._text("kind")

    @property
    def state(self) -> str:
        return self._text("state")

    @property
    def author(self) -> str:
        return self._text("author")

    @property
    def head(self) -> str:
        return self._text("head")

    @property
    def head_sha(self) -> str:
        return self._text("head_sha")

    @property
    def merge_sha(self) -> str:
        return self._text("merge_sha")

    @property
    def labels(self) -> frozenset[str]:
        labels = self.meta.get("labels")
        return frozenset(x for x in labels if isinstance(x, str)) if isinstance(labels, list) else frozenset()

    @property
    def is_lesson(self) -> bool:
        return LESSON_BRANCH.fullmatch(self.head) is not None

    @property
    def closes(self) -> int | None:
        """The issue a work PR is for: named by its work branch, else by `Closes #N` in its body."""
        match = WORK_BRANCH.fullmatch(self.head)
        if match:
            return int(match["issue"])
        found = CLOSES.search(self._text("body"))
        return int(found[1]) if found and not self.is_lesson else None


@dataclass(frozen=True)
class JournalFile:
    path: str
    agent: str  # the folder it lives in: only that agent writes it
    data: bytes


@dataclass
class RemoteView:
    """Everything the invariants read, taken in one pass; `repo` answers the tree and history
    questions (ancestry, file contents) that need more than the snapshot."""

    repo: CacheClone
    refs: dict[str, str]
    base: str
    claims_prefix: str
    presence_prefix: str
    items: dict[int, Item]
    journals: tuple[JournalFile, ...] = ()
    memory_branch: str = DEFAULT_MEMORY_BRANCH
    unreadable: tuple[str, ...] = ()  # refs whose item did not parse
    _blobs: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def base_ref(self) -> str:
        return f"refs/heads/{self.base}"

    @property
    def main(self) -> str | None:
        return self.refs.get(self.base_ref)

    @property
    def issues(self) -> list[Item]:
        return sorted((i for i in self.items.values() if i.kind == "issue"), key=lambda i: i.number)

    @property
    def pulls(self) -> list[Item]:
        return sorted((i for i in self.items.values() if i.kind == "pull"), key=lambda i: i.number)

    @cached_property
    def pulls_by_issue(self) -> dict[int, list[Item]]:
        found: dict[int, list[Item]] = {}
        for pull in self.pulls:
            issue = pull.closes
            if issue is not None and not pull.is_lesson:
                found.setdefault(issue, []).append(pull)
        return found

    def is_ancestor(self, commit: str, of: str) -> bool:
        return bool(commit) and self.repo.merge_base(commit, of) == commit

    def blobs(self, commit: str) -> dict[str, str]:
        """path -> blob sha of every file in `commit`'s tree."""
        if commit not in self._blobs:
            names = self.repo.tree_names(commit, ".", recursive=True)
            objects = self.repo.cat_objects([f"{commit}:{name}" for name in names])
            self._blobs[commit] = {n: o.sha for n, o in zip(names, objects) if o is not None}
        return self._blobs[commit]

    def parents(self, commit: str) -> list[str]:
        header = self.repo.commit_message(commit).split("\n\n", 1)[0]
        return [line.split()[1] for line in header.splitlines() if line.startswith("parent ")]


def open_repo(path: Path) -> CacheClone:
    """A plumbing handle on the bare repository itself (nothing is fetched or written)."""
    return CacheClone(Git(), path, str(path))


def read_remote(path: Path) -> RemoteView:
    repo = open_repo(path)
    refs = repo.ref_shas("refs/")
    base = _base_branch(path)
    policy = _policy(repo, refs.get(f"refs/heads/{base}"))
    claims = policy.get("claims", {}).get("ref_prefix", DEFAULT_CLAIMS)
    presence = policy.get("presence", {}).get("ref_prefix", DEFAULT_PRESENCE)
    memory = policy.get("memory", {}).get("branch", DEFAULT_MEMORY_BRANCH)
    items, unreadable = _items(repo, refs)
    journals = _journals(repo, refs, memory)
    return RemoteView(repo, refs, base, claims, presence, items, journals, memory, unreadable)


def _base_branch(path: Path) -> str:
    try:
        head = (path / "HEAD").read_text().strip()
    except OSError:
        return "main"
    return head.removeprefix("ref: refs/heads/") if head.startswith("ref: refs/heads/") else "main"


def _policy(repo: CacheClone, main: str | None) -> dict:
    text = repo.read_file(main, MESH_YAML) if main else None
    try:
        data = yaml.safe_load(text or "") or {}
    except yaml.YAMLError:
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def _load(data: bytes | None) -> dict | None:
    try:
        value = json.loads(data) if data is not None else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _items(repo: CacheClone, refs: dict[str, str]) -> tuple[dict[int, Item], tuple[str, ...]]:
    numbered = {int(ref[len(ITEMS):]): sha for ref, sha in refs.items()
                if ref.startswith(ITEMS) and ref[len(ITEMS):].isdigit()}
    order = sorted(numbered)
    specs = [f"{numbered[n]}:{name}" for n in order for name in ("meta.json", "comments", "reviews")]
    objects = repo.cat_objects(specs)
    blob_specs: list[str] = []
    for i in range(len(order)):
        for tree in objects[3 * i + 1:3 * i + 3]:
            entries = parse_tree(tree.data) if tree is not None and tree.type == "tree" else []
            blob_specs += [e.sha for e in sorted(entries, key=lambda e: e.name) if e.name.endswith(".json")]
    blobs = dict(zip(blob_specs, repo.cat_objects(blob_specs)))
    items: dict[int, Item] = {}
    unreadable: list[str] = []
    for i, number in enumerate(order):
        meta_obj, comments_tree, reviews_tree = objects[3 * i:3 * i + 3]
        meta = _load(meta_obj.data if meta_obj is not None else None)
        if meta is None:
            unreadable.append(f"{ITEMS}{number}")
        items[number] = Item(number, numbered[number], meta or {},
                             _documents(comments_tree, blobs), _documents(reviews_tree, blobs))
    return items, tuple(unreadable)


def _documents(tree, blobs) -> tuple[dict, ...]:
    if tree is None or tree.type != "tree":
        return ()
    found = []
    for entry in sorted(parse_tree(tree.data), key=lambda e: e.name):
        obj = blobs.get(entry.sha)
        doc = _load(obj.data if obj is not None else None)
        if doc is not None:
            found.append(doc)
    return tuple(found)


def _journals(repo: CacheClone, refs: Mapping[str, str], memory: str) -> tuple[JournalFile, ...]:
    """Every writer's journal files on its own branch (its own folder only, as readers take them), and
    every agent's on the shared memory branch of earlier versions."""
    heads: list[tuple[str, str | None]] = [(sha, writer) for ref, sha in sorted(refs.items())
                                           if (writer := ref_writer(ref))]
    if (legacy := refs.get(f"refs/heads/{memory}")) is not None:
        heads.append((legacy, None))
    found = [(f"{head}:{n}", n, m["agent"]) for head, writer in heads
             for n in repo.tree_names(head, f"{JOURNALS}/{writer}" if writer else JOURNALS, recursive=True)
             if (m := JOURNAL_FILE.fullmatch(n)) and writer in (None, m["agent"])]
    objects = repo.cat_objects([spec for spec, _, _ in found])
    return tuple(JournalFile(name, agent, o.data) for (_, name, agent), o in zip(found, objects) if o is not None)
