"""Commit one file change onto a remote branch with a compare-and-swap push.

Used for small shared writes on the default branch (`.agentmesh/HALT`) that
must never overwrite someone else's concurrent commit: the push is pinned to
the head it was built on, and a lost race re-reads, re-applies and retries
with jitter.
"""

from __future__ import annotations

import random
import time

from agentmesh.errors import TemporaryError, UserError
from agentmesh.git.cache import CacheClone, mirror_ref
from agentmesh.git.remote import RefUpdate, ls_refs, push

ATTEMPTS = 8
LOST_RACE = ("stale info", "fetch first", "non-fast-forward", "failed to update ref", "cannot lock ref")


def edit_file_on_branch(cache: CacheClone, branch_ref: str, path: str, data: bytes | None, message: str) -> str | None:
    """Set (or with None remove) `path` on `branch_ref`; the new head, or None when nothing changed."""
    for attempt in range(ATTEMPTS):
        head = ls_refs(cache.git, cache.url, [branch_ref]).get(branch_ref)
        if head is None:
            raise UserError(f"{branch_ref} does not exist on the remote")
        if not cache.has_object(head):
            cache.fetch([branch_ref])
        base_tree = cache.tree_of(head)
        tree = cache.edit_tree(base_tree, path, data)
        if tree == base_tree:
            return None
        commit = cache.commit_tree(tree, [head], message)
        result = push(cache.git, cache.path, cache.url, [RefUpdate(branch_ref, commit, head)])
        if result.ok:
            cache.run("update-ref", mirror_ref(branch_ref), commit)
            return commit
        status = result.statuses[branch_ref]
        if not any(reason in status.reason for reason in LOST_RACE):
            raise UserError(f"push to {branch_ref} was refused: {status.summary} "
                            "(a protected branch? use an issue labelled agentmesh:halt instead)")
        time.sleep(random.uniform(0, min(0.05 * 2 ** attempt, 1.0)))
    raise TemporaryError(f"{branch_ref} kept moving; gave up after {ATTEMPTS} attempts")
