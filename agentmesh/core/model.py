"""The shared model: what issues, PRs, reviews and CI look like to agentmesh.

Every forge backend maps its own data into these types at its edge
(forge/*.py); the pure core makes its decisions on them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Literal

IssueState = Literal["open", "closed"]
PullState = Literal["open", "closed", "merged"]
ReviewState = Literal["APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED", "PENDING"]
ReviewEvent = Literal["approve", "request_changes", "comment"]
CIStateName = Literal["success", "pending", "failure", "error", "none"]
Permission = Literal["admin", "write", "read", "none"]


def to_plain(model) -> dict:
    """A model as JSON-ready data: nested dataclasses become dicts, tuples become lists."""
    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return plain(asdict(model))


@dataclass(frozen=True)
class Comment:
    id: int
    author: str
    body: str
    created_at: str = ""
    recorded_in: str | None = None  # local forge: the item commit that last wrote it; its signature says who

    def to_json(self) -> dict:
        return to_plain(self)


@dataclass(frozen=True)
class LabelEvent:
    """A label added to (or removed from) an issue, and by whom, oldest first in a listing."""

    label: str
    added: bool
    author: str
    recorded_in: str | None = None  # local forge: the item commit that made the change; its signature says who

    def to_json(self) -> dict:
        return to_plain(self)


@dataclass(frozen=True)
class Issue:
    number: int
    title: str
    body: str
    state: IssueState
    labels: tuple[str, ...] = ()
    author: str = ""
    assignees: tuple[str, ...] = ()
    created_at: str = ""
    updated_at: str = ""
    url: str = ""

    def to_json(self) -> dict:
        return to_plain(self)


@dataclass(frozen=True)
class Review:
    id: int
    author: str
    state: ReviewState
    commit_id: str
    body: str = ""
    submitted_at: str = ""
    recorded_in: str | None = None  # local forge: the item commit that last wrote it; its signature says who

    def to_json(self) -> dict:
        return to_plain(self)


@dataclass(frozen=True)
class PullRequest:
    number: int
    title: str
    body: str
    state: PullState
    head: str
    base: str
    head_sha: str
    author: str = ""
    labels: tuple[str, ...] = ()
    reviews: tuple[Review, ...] = ()
    requested_reviewers: tuple[str, ...] = ()
    mergeable: bool | None = None
    merge_sha: str | None = None
    created_at: str = ""
    updated_at: str = ""
    url: str = ""

    def to_json(self) -> dict:
        return to_plain(self)


@dataclass(frozen=True)
class StatusContext:
    context: str
    state: CIStateName
    description: str = ""
    target_url: str = ""


@dataclass(frozen=True)
class CIStatus:
    """Combined CI for one sha: statuses and (GitHub) check runs folded into one state."""

    sha: str
    state: CIStateName
    contexts: tuple[StatusContext, ...] = field(default_factory=tuple)

    def failing(self) -> list[StatusContext]:
        return [c for c in self.contexts if c.state in ("failure", "error")]

    def to_json(self) -> dict:
        return to_plain(self)


def combine_states(states: Iterable[CIStateName]) -> CIStateName:
    """failure/error beats pending beats success; no contexts at all is `none`."""
    states = list(states)
    if not states:
        return "none"
    for worst in ("error", "failure", "pending"):
        if worst in states:
            return worst
    return "success"
