"""Rework: re-run the executor on an open PR whose last push got changes requested or failed CI.

monitor-prs decides (it reads the reviews and CI of the agent's own PRs) and
leaves a request in the host's state directory; claim-task carries it out on
its next tick, because claim-task owns the executor seats, the pidfiles and
the claim's heartbeat (two processes renewing one claim would fence each
other out). The request is keyed by the head it answers: once that head has
moved, by a rework push or a human's, the request is void.

How many reworks a PR had is written in its head commit (`Agentmesh-Rework:`
trailer), so every run on every host counts the same, crash or not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from agentmesh.agent.work import REWORK_TRAILER
from agentmesh.core.model import Review, StatusContext
from agentmesh.core.pattern import LazyPattern
from agentmesh.host.files import write_atomic
from agentmesh.host.state import StateLayout

_ROUND = LazyPattern(rf"^{REWORK_TRAILER}: (\d+)$", re.M)
REVIEW_TEXT_MAX = 6000


@dataclass(frozen=True)
class ReworkRequest:
    issue: int
    pull: int
    head: str  # the head sha the feedback is about
    round: int  # the rework this will be (1 = first)
    feedback: tuple[tuple[str, str], ...]  # (source, untrusted text)

    def to_json(self) -> dict:
        return asdict(self)


def rework_round(head_message: str | None) -> int:
    """How many reworks produced this head commit (0: the original work or unknown)."""
    found = _ROUND.findall(head_message or "")
    return int(found[-1]) if found else 0


def feedback_for(reviews: Iterable[Review], head_sha: str, reviewers: set[str],
                 failing: Sequence[StatusContext]) -> tuple[tuple[str, str], ...]:
    """What the rework must address: the head's change requests by `reviewers`, then failing CI."""
    items = [(f"Review by {r.author}: changes requested", r.body[:REVIEW_TEXT_MAX] or "(no text)")
             for r in reviews
             if r.commit_id == head_sha and r.state == "CHANGES_REQUESTED" and r.author in reviewers]
    if failing:
        lines = [f"{c.context}: {c.state}" + (f" ({c.description})" if c.description else "")
                 + (f" {c.target_url}" if c.target_url else "") for c in failing[:20]]
        items.append(("CI: failing checks", "\n".join(lines)))
    return tuple(items)


class ReworkRequests:
    """One JSON file per issue under `<state>/rework/`: written by monitor-prs, consumed by claim-task."""

    def __init__(self, state_root: Path):
        self.root = StateLayout(state_root).rework

    def path(self, issue: int) -> Path:
        return self.root / f"issue-{int(issue)}.json"

    def load(self, issue: int) -> ReworkRequest | None:
        try:
            data = json.loads(self.path(issue).read_text())
            return ReworkRequest(int(data["issue"]), int(data["pull"]), str(data["head"]), int(data["round"]),
                                 tuple((str(s), str(t)) for s, t in data["feedback"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            self.path(issue).unlink(missing_ok=True)  # unreadable: monitor-prs writes it again if still due
            return None

    def save(self, request: ReworkRequest) -> None:
        write_atomic(self.path(request.issue), json.dumps(request.to_json(), indent=1) + "\n")

    def drop(self, issue: int, head: str) -> None:
        """Remove the request for `head` (a newer request for another head stays)."""
        current = self.load(issue)
        if current is not None and current.head == head:
            self.path(issue).unlink(missing_ok=True)
