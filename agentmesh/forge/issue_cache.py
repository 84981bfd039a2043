"""The open issues of a repository as of the last poll, so that a poll asks only for what changed.

Gitea has no conditional GETs, so an unchanged list of 1,000 open issues costs 20 pages on every run.
With this cache a run asks only for the issues updated since the last poll began, by the forge's own
clock (its Date header): `since=`, any state, so a closed issue leaves the cache; usually one empty
page. Gitea bumps an issue's `updated_at` on every change agentmesh reads (edits, state, comments,
labels: each is a timeline comment); a deleted or transferred issue is not listed as changed, so the
whole list is read again after `FULL_EVERY` seconds.

The cache lives in the state dir (one JSON file per API root and repository, written atomically);
without a directory it lasts for the forge object. A torn or foreign file is a miss, never an error,
and two processes writing it at once each leave a consistent entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from agentmesh.core.digest import sha256
from agentmesh.core.moments import parse_ts, shifted
from agentmesh.host.files import write_atomic

FULL_EVERY = 3600.0  # seconds between complete listings: the bound on how long a deleted issue lingers
OVERLAP = timedelta(seconds=10)  # a poll re-asks for this much before the last one: writes committed late


def _moment(stamp: Any) -> datetime | None:
    """A date of the forge's (an item's `updated_at`, its Date header) or of the cache file, in UTC; None when it
    is none, or out of range: either could be anything, and a bad one must cost a full read, never every run."""
    return parse_ts(str(stamp))


@dataclass
class IssueSnapshot:
    """The open issues (the forge's JSON, by number) and where the next poll starts."""

    full_at: float = 0.0  # when the complete list was last read (epoch seconds, this host's clock)
    polled: str = ""  # when the last poll started, by the forge's clock (its Date header)
    issues: dict[int, dict] = field(default_factory=dict)

    def since(self) -> datetime | None:
        polled = _moment(self.polled)
        return None if polled is None else shifted(polled, -OVERLAP)

    def stale(self, now: float) -> bool:
        return self.since() is None or not 0 <= now - self.full_at < FULL_EVERY

    def merged(self, changed: Iterable[dict], *, served: datetime | None,
               full_at: float | None = None) -> IssueSnapshot:
        """This snapshot with `changed` applied (a complete listing when `full_at` is given). `served`: the
        forge's time when the poll started; without it (no Date header), the newest change seen."""
        issues = {} if full_at is not None else dict(self.issues)
        newest = served
        for item in changed:
            number = int(item["number"])
            if item.get("state") == "open":
                issues[number] = item
            else:
                issues.pop(number, None)
            moment = _moment(item.get("updated_at"))
            if served is None and moment is not None and (newest is None or moment > newest):
                newest = moment
        if served is None and full_at is None:
            newest = max(filter(None, (newest, _moment(self.polled))), default=None)
        return IssueSnapshot(self.full_at if full_at is None else full_at,
                             newest.isoformat() if newest is not None else "", issues)

    def listing(self) -> list[dict]:
        """Newest issue first, as the forge lists them."""
        return [self.issues[n] for n in sorted(self.issues, reverse=True)]


class IssueCache:
    def __init__(self, directory: Path | None, key: str):
        self.key = key
        self.path = directory / f"issues-{sha256(key.encode()).hexdigest()[:32]}.json" if directory else None
        self._memory = IssueSnapshot()

    def load(self) -> IssueSnapshot:
        if self.path is None:
            return self._memory
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("key") != self.key:
                return IssueSnapshot()
            issues = data["issues"]
            if not isinstance(issues, Mapping) or not all(isinstance(v, dict) for v in issues.values()):
                return IssueSnapshot()
            return IssueSnapshot(float(data["full_at"]), str(data["polled"]), {int(k): v for k, v in issues.items()})
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return IssueSnapshot()  # missing or torn: a miss

    def save(self, snapshot: IssueSnapshot) -> None:
        if self.path is None:
            self._memory = snapshot
            return
        data = {"key": self.key, "full_at": snapshot.full_at, "polled": snapshot.polled,
                "issues": {str(k): v for k, v in snapshot.issues.items()}}
        try:
            write_atomic(self.path, json.dumps(data))
        except OSError:  # an optimisation: a full disk must not fail the poll
            pass
