"""Keep a claim alive while its executor runs, and notice at once when it is lost.

`beat()` is polled by the executor loop. Every `renew_seconds` it renews the
claim with a CAS pinned to the sha it last wrote; a rejection means the claim
was reaped or released, so the executor must be killed and nothing published.
A renewal that fails for a temporary reason is retried on the next poll, but
once the last good renewal is older than the lease minus one renew interval,
observers may reap it any moment: treat it as lost rather than race them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from agentmesh.core.errors import NotHolder, TemporaryError
from agentmesh.refs.claims import ClaimStore


class Keeper:
    """Keeps this agent's waiting claims (PRs in review) alive while the process is busy elsewhere.

    claim-task renews them once per tick, but a tick that runs an executor for longer than lease +
    grace would let siblings reap them, and a merged PR whose claim is gone is left half cleaned.
    Every heartbeat beats the keeper too; one renewal round runs at a time, whichever job's thread
    gets there first, and a claim that is lost is dropped.

    monitor-prs keeps them too while its gates run (a daemon runs no claim-task meanwhile). Its
    `guard` yields whether renewing is this process's job: only while no claim-task runs on the
    host, whose own pinned renewals would otherwise race ours.
    """

    def __init__(self, store: ClaimStore, *, renew_seconds: float, now: Callable[[], float] = time.monotonic,
                 guard: Callable[[], AbstractContextManager[bool]] = lambda: nullcontext(True)):
        self.store = store
        self.renew_seconds = renew_seconds
        self.now = now
        self.guard = guard
        self.claims: dict[int, str] = {}
        self.last = now()
        self._lock = threading.Lock()

    def keep(self, issue: int, sha: str) -> None:
        with self._lock:
            self.claims[issue] = sha

    def beat(self) -> None:
        if not self.claims or self.now() - self.last < self.renew_seconds or not self._lock.acquire(blocking=False):
            return
        try:
            self.last = self.now()
            with self.guard() as mine:
                if mine:
                    self._renew_all()
        except OSError:
            pass  # the guard's lock file is unwritable (a read-only state dir): the next beat retries
        finally:
            self._lock.release()

    def _renew_all(self) -> None:
        for issue, sha in list(self.claims.items()):
            try:
                renewed = self.store.renew(issue, sha)
                assert renewed.sha is not None
                self.claims[issue] = renewed.sha
            except NotHolder:
                del self.claims[issue]
            except TemporaryError:
                pass  # the next beat retries; the claim's own lease covers the gap


class Heartbeat:
    def __init__(self, store: ClaimStore, issue: int, sha: str, *, renew_seconds: float, lease_seconds: float,
                 retry_seconds: float = 5.0, now: Callable[[], float] = time.monotonic, keeper: Keeper | None = None):
        self.keeper = keeper
        self.store = store
        self.issue = issue
        self.sha = sha
        self.renew_seconds = renew_seconds
        self.lease_seconds = lease_seconds
        self.retry_seconds = retry_seconds
        self.now = now
        self.last_ok = self.last_try = now()
        self.renewals = 0
        self.lost: str | None = None

    def beat(self) -> str | None:
        """Renew when due. Returns why the work must stop (the claim is lost), or None."""
        if self.keeper is not None:
            self.keeper.beat()
        if self.lost:
            return self.lost
        now = self.now()
        if now - self.last_ok < self.renew_seconds or now - self.last_try < min(self.retry_seconds,
                                                                                 self.renew_seconds):
            return None
        self.last_try = now
        try:
            renewed = self.store.renew(self.issue, self.sha)
            assert renewed.sha is not None  # renew returns the claim with its new commit's sha
            self.sha = renewed.sha
        except NotHolder as exc:
            self.lost = f"claim lost: {exc}"
            return self.lost
        except TemporaryError as exc:
            if now - self.last_ok >= self.lease_seconds - self.renew_seconds:
                self.lost = f"claim presumed lost: no renewal for {now - self.last_ok:.0f}s ({exc})"
            return self.lost
        self.last_ok = self.now()
        self.renewals += 1
        return None
