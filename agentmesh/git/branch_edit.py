"""Compare-and-swap writes of a shared remote ref: the kill switch, the budget pause.

Used for small shared writes that must never overwrite someone else's
concurrent one (the halt and pause refs): the push is
pinned to the value it was built on, and a lost race re-reads, re-builds and
retries with jitter.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from agentmesh.core.errors import TemporaryError, UserError
from agentmesh.git.cache import CacheClone
from agentmesh.git.remote import RefUpdate, ls_refs, push

ATTEMPTS = 8
LOST_RACE = ("stale info", "fetch first", "non-fast-forward", "failed to update ref", "cannot lock ref")

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
        with cache.mirroring() as mirror:  # the push moves the mirror ref too (see `mirroring`)
            result = push(cache.git, cache.path, cache.url, [RefUpdate(ref, new, current)], mirror=mirror)
        if result.ok:
            return current, new
        status = result.statuses[ref]
        if not any(reason in status.reason for reason in LOST_RACE):
            said = "".join(f"; {line}" for line in result.messages)  # a hook's reasons
            hint = refused_hint or "a protected branch?"
            raise UserError(f"push to {ref} was refused: {status.summary}{said} ({hint})")
        time.sleep(random.uniform(0, min(0.05 * 2 ** attempt, max_sleep)))
    raise TemporaryError(f"{ref} kept moving; gave up after {attempts} attempts")
