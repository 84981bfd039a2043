"""Compare-and-swap writes of a shared remote ref: the kill switch, the budget pause.

Used for small shared writes that must never overwrite someone else's
concurrent one (the halt and pause refs): the push is
pinned to the value it was built on, and a lost race re-reads, re-builds and
retries with jitter.
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


def swap_ref(cache: CacheClone, ref: str, build: Callable[[str | None], str | None], *,
             attempts: int = ATTEMPTS, max_sleep: float = 1.0, refused_hint: str = "",
             first: Callable[[], str | None] | None = None) -> tuple[str | None, str | None]:
    """Set the remote `ref` to `build(current)` (None: delete it), pushed pinned to `current` and
    re-read after each lost race. (the value it replaced, the new value); nothing is pushed when
    they are equal. `first`: where the first attempt takes `current` from instead of a listing (a
    value this host cached; the push is pinned to it, so a stale one only loses that attempt)."""
    for attempt in range(attempts):
        current = first() if first is not None and attempt == 0 else ls_refs(cache.git, cache.url, [ref]).get(ref)
        new = build(current)
        if new == current:
            return current, new
        result = push(cache.git, cache.path, cache.url, [RefUpdate(ref, new, current)])
        if result.ok:
            if new is not None:
                try:
                    cache.update_ref(mirror_ref(ref), new)
                except TemporaryError:
                    pass  # the push landed; a stale mirror ref is only a cache, and the next fetch moves it
            return current, new
        status = result.statuses[ref]
        if not any(reason in status.reason for reason in LOST_RACE):
            said = "".join(f"; {line}" for line in result.messages)  # a hook's reasons
            hint = refused_hint or "a protected branch?"
            raise UserError(f"push to {ref} was refused: {status.summary}{said} ({hint})")
        time.sleep(random.uniform(0, min(0.05 * 2 ** attempt, max_sleep)))
    raise TemporaryError(f"{ref} kept moving; gave up after {attempts} attempts")


def commit_on_branch(cache: CacheClone, branch_ref: str, change: Change, message: str, *,
                     attempts: int = ATTEMPTS, max_sleep: float = 1.0, refused_hint: str = "",
                     create: bool = False) -> str | None:
    """Apply `change` on top of the remote head of `branch_ref` and push it pinned to that head,
    re-reading the head after each lost race. The new head, or None when nothing changed.
    With `create`, a missing branch starts as a root commit (pushed only if still missing)."""
    def build(head: str | None) -> str | None:
        if head is None and not create:
            raise UserError(f"{branch_ref} does not exist on the remote")
        if head is not None and not cache.has_object(head):
            cache.fetch([branch_ref])
        base_tree = cache.tree_of(head) if head is not None else cache.empty_tree()
        files = change(head)
        tree = cache.edit_tree_files(base_tree, files) if files else base_tree
        if tree == base_tree:
            return head
        return cache.commit_tree(tree, [head] if head is not None else [], message)

    old, new = swap_ref(cache, branch_ref, build, attempts=attempts, max_sleep=max_sleep, refused_hint=refused_hint)
    return new if new != old else None
