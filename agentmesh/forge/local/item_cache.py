"""Item metadata cached by commit sha, in the host's cache clone.

An item's commit never changes, so the meta read from it is valid for as long as the commit is an
item's head: a listing whose shas are all known reads nothing more (no fetch, no `cat-file`). The
file holds only the heads of the last listing (and the commits this host wrote since), so it stays
the size of the backlog. A missing, unreadable or foreign file is an empty cache: it is only a cache.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Collection
from pathlib import Path

from agentmesh.host.files import write_atomic

CACHE_NAME = "agentmesh-items.json"
_VERSION = 1


def json_copy(value):
    """A deep copy of JSON data (an item's meta, a document): copy.deepcopy's result at a quarter of its cost
    (no memo, no dispatch per scalar); a listing copies every item's meta."""
    if isinstance(value, dict):
        return {key: json_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_copy(item) for item in value]
    if isinstance(value, tuple):
        return tuple(json_copy(item) for item in value)
    return value  # str, int, float, bool, None: immutable, as deepcopy leaves them


class ItemCache:
    """Shared by claim-task's seats, which run in threads: every method holds one lock (a save iterates
    the metas while another seat's PR puts one)."""

    def __init__(self, path: Path):
        self.path = path
        self._metas: dict[str, dict] | None = None
        self._dirty = False
        self._lock = threading.Lock()

    def _load(self) -> dict[str, dict]:
        if self._metas is None:
            try:
                doc = json.loads(self.path.read_text())
            except (OSError, ValueError):
                doc = {}
            metas = doc.get("metas") if isinstance(doc, dict) and doc.get("version") == _VERSION else None
            self._metas = {k: v for k, v in metas.items() if isinstance(v, dict)} if isinstance(metas, dict) else {}
        return self._metas

    def get(self, sha: str) -> dict | None:
        """A copy of the meta item commit `sha` holds, None when not cached (callers may change it)."""
        with self._lock:
            meta = self._load().get(sha)
            return json_copy(meta) if meta is not None else None

    def __contains__(self, sha: object) -> bool:
        with self._lock:
            return sha in self._load()

    def put(self, sha: str, meta: dict, *, save: bool = False) -> None:
        """Remember a meta. `save`: write the file now (a commit this host wrote: the next run must know
        it even when no listing follows in this one); otherwise the next `keep` writes it."""
        with self._lock:
            metas = self._load()
            if sha not in metas:
                metas[sha] = json_copy(meta)
                self._dirty = True
                if save:
                    self._save(metas)

    def keep(self, heads: Collection[str]) -> None:
        """Forget every commit that is not one of `heads`, and save when anything changed."""
        with self._lock:
            metas = self._load()
            gone = [sha for sha in metas if sha not in heads]
            for sha in gone:
                del metas[sha]
            if gone or self._dirty:
                self._save(metas)

    def _save(self, metas: dict[str, dict]) -> None:
        try:
            write_atomic(self.path, json.dumps({"version": _VERSION, "metas": metas}, separators=(",", ":")))
        except OSError:
            return  # a full disk: the next listing reads again
        self._dirty = False
