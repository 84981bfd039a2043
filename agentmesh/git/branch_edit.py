"""Commit file changes onto a remote branch with a compare-and-swap push.

Used for small shared writes on the default branch (`.agentmesh/HALT`, the
ai-memory journals) that must never overwrite someone else's concurrent
commit: the push is pinned to the head it was built on, and a lost race
re-reads, re-applies and retries with jitter.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping

from agentmesh.core.errors import TemporaryError, UserError
from agentmesh.git.cache import CacheClone, mirror_ref
from agentmesh.git.remote import RefUpdate, ls_refs, push

ATTEMPTS = 8
LOST_RACE = ("stale info", "fetch first", "non-fast-forward", "failed to update ref", "cannot lock ref")

# Given the head commit (None: a branch being created), the files to change: path -> bytes, or None to remove.
Change = Callable[[str | None], Mapping[str, bytes | None]]


def commit_on_branch(cache: CacheClone, branch_ref: str, change: Change, message: str, *,
                     attempts: int = ATTEMPTS, max_sleep: float = 1.0, refused_hint: str = "",
                     create: bool = False) -> str | None:
    """Apply `change` on top of the remote head of `branch_ref` and push it pinned to that head,
    re-reading the head after each lost race. The new head, or None when nothing changed.
    With `create`, a missing branch starts as a root commit (pushed only if still missing)."""
    for attempt in range(attempts):
        head = ls_refs(cache.git, cache.url, [branch_ref]).get(branch_ref)
        if head is None and not create:
            raise UserError(f"{branch_ref} does not exist on the remote")
        if head is not None and not cache.has_object(head):
            cache.fetch([branch_ref])
        base_tree = cache.tree_of(head) if head is not None else cache.empty_tree()
        tree = base_tree
        for path, data in change(head).items():
            tree = cache.edit_tree(tree, path, data)
        if tree == base_tree:
            return None
        commit = cache.commit_tree(tree, [head] if head is not None else [], message)
        result = push(cache.git, cache.path, cache.url, [RefUpdate(branch_ref, commit, head)])
        if result.ok:
            try:
                cache.update_ref(mirror_ref(branch_ref), commit)
            except TemporaryError:
                pass  # the push landed; a stale mirror ref is only a cache, and the next fetch moves it
            return commit
        status = result.statuses[branch_ref]
        if not any(reason in status.reason for reason in LOST_RACE):
            raise UserError(f"push to {branch_ref} was refused: {status.summary} "
                            f"({refused_hint or 'a protected branch?'})")
        time.sleep(random.uniform(0, min(0.05 * 2 ** attempt, max_sleep)))
    raise TemporaryError(f"{branch_ref} kept moving; gave up after {attempts} attempts")


def edit_file_on_branch(cache: CacheClone, branch_ref: str, path: str, data: bytes | None, message: str, *,
                        refused_hint: str = "") -> str | None:
    """Set (or with None remove) `path` on `branch_ref`; the new head, or None when nothing changed."""
    return commit_on_branch(cache, branch_ref, lambda _head: {path: data}, message, refused_hint=refused_hint)
