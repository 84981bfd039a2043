"""Keep a claim alive while its executor runs, and notice at once when it is lost.

`beat()` is polled by the executor loop. It renews the claim when the renewal is
due (core/lease.renewal_due: renew_seconds after this host's last push of it, by
the store's clock, or at once when this host has no record of the sha), with a
CAS pinned to the sha it last wrote; a rejection means the claim was reaped or
released, so the executor must be killed and nothing published. A renewal that
fails for a temporary reason is retried on the next poll, but once the last good
renewal is older than the lease minus one renew interval, observers may reap it
any moment: treat it as lost rather than race them.
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
    host, whose own pinned renewals would otherwise race ours. It is taken only when a renewal is
    due, so a beat that finds none never stands in a starting claim-task's way.

    Every `poll_seconds` (by `now`) a beat asks the store which claims are due (core/lease.renewal_due,
    from this host's record of its last push, by the store's clock): one that claim-task renewed a
    minute ago is left alone, and one last pushed long ago is renewed at once.
    """

    def __init__(self, store: ClaimStore, *, renew_seconds: float, now: Callable[[], float] = time.monotonic,
                 guard: Callable[[], AbstractContextManager[bool]] = lambda: nullcontext(True),
                 poll_seconds: float = 5.0):
        self.store = store
        self.renew_seconds = renew_seconds
        self.poll_seconds = min(poll_seconds, renew_seconds)
        self.now = now
        self.guard = guard
        self.claims: dict[int, str] = {}
        self.last = now()
        self._lock = threading.Lock()

    def keep(self, issue: int, sha: str) -> None:
        with self._lock:
            self.claims[issue] = sha

    def beat(self) -> None:
        if not self.claims or self.now() - self.last < self.poll_seconds or not self._lock.acquire(blocking=False):
            return
        try:
            self.last = self.now()
            due = [issue for issue, sha in self.claims.items()
                   if self.store.renewal_due(issue, sha, renew_seconds=self.renew_seconds)]
            if due:
                with self.guard() as mine:
                    if mine:
                        self._renew(due)
        except OSError:
            pass  # the guard's lock file is unwritable (a read-only state dir): the next beat retries
        finally:
            self._lock.release()

    def _renew(self, issues: list[int]) -> None:
        for issue in issues:
            try:  # asked again under the guard: a claim-task that just ended may have renewed it
                self.claims[issue] = self.store.renew_if_due(issue, self.claims[issue],
                                                             renew_seconds=self.renew_seconds)
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
        if now - self.last_try < min(self.retry_seconds, self.renew_seconds):
            return None
        self.last_try = now
        try:
            sha = self.store.renew_if_due(self.issue, self.sha, renew_seconds=self.renew_seconds)
            if sha == self.sha:
                return None  # not due: nothing was pushed
            self.sha = sha
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
