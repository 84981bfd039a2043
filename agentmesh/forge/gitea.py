"""The Gitea backend: Gitea's REST API v1 mapped into the shared model.

Quirks absorbed here: `limit` is capped by the server (50 by default) so
lists page until a short page; issue labels are added and removed by id;
the issue list needs `type=issues`; reviews say APPROVED/REQUEST_CHANGES/
COMMENT; the merge call answers 405 while mergeability is being computed.
Gitea has no conditional GETs: the open issues are polled with `since=` over
a cache in the state dir (forge/issue_cache.py), and a branch's PR is asked
for by base and head rather than found in a listing of every PR ever opened.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Literal

import requests

from agentmesh.forge.base import (
    Conflict,
    Issue,
    IssueState,
    LabelEvent,
    NotFound,
    NotMergeableYet,
    PullRequest,
    ReviewEvent,
)
from agentmesh.forge.http import (
    Reply,
    RestForge,
    Transport,
    json_mapper,
    numbered_pages,
    page_items,
    pull_from,
    segment,
    tail,
    utc_iso,
)
from agentmesh.forge.issue_cache import IssueCache

PAGE_LIMIT = 50  # Gitea's default MAX_RESPONSE_ITEMS; asking for more is silently capped


def served_at(reply: Reply) -> datetime | None:
    try:
        return parsedate_to_datetime(reply.headers.get("Date", ""))
    except (TypeError, ValueError):
        return None


@json_mapper("timeline entry")
def label_event(d: dict) -> LabelEvent:
    # Gitea's label comment: body "1" when the label was added, "" when it was removed
    return LabelEvent(label=str(d["label"]["name"]), added=d.get("body") == "1",
                      author=str((d.get("user") or {}).get("login") or ""))


class GiteaForge(RestForge):
    kind = "gitea"
    review_events: Mapping[ReviewEvent, str] = {
        "approve": "APPROVED", "request_changes": "REQUEST_CHANGES", "comment": "COMMENT"}
    label_color = "#ededed"
    issue_list_params: ClassVar[Mapping[str, str]] = MappingProxyType({"type": "issues"})
    paged_comments = False

    def __init__(self, base_url: str, repo: str, token: str | None, *, token_env: str = "AGENTMESH_TOKEN",
                 cache_dir: Path | None = None, session: requests.Session | None = None, timeout: float = 30.0):
        transport = Transport(base_url.rstrip("/") + "/api/v1", token=token, token_env=token_env,
                              auth_scheme="token", headers={"Accept": "application/json"},
                              session=session, timeout=timeout)
        super().__init__(transport, repo)
        self.issue_cache = IssueCache(cache_dir, f"{transport.api_url}{self.repo_path}")

    def list_issues(self, *, state: IssueState | Literal["all"] = "open", labels: Sequence[str] = (),
                    since: datetime | None = None) -> list[Issue]:
        """Open issues come from the cache, brought up to date by a `since=` poll; the label filter is
        applied here (Gitea drops unknown labels from its own, so it would list every issue)."""
        if state != "open" or since is not None:
            return super().list_issues(state=state, labels=labels, since=since)
        return self.filtered(self.open_issues(), labels)

    def open_issues(self) -> list[dict]:
        cached, now = self.issue_cache.load(), time.time()
        after = cached.since()
        if after is None or cached.stale(now):
            listed, served = self.poll({"state": "open", **self.issue_list_params})
            fresh = cached.merged(listed, served=served, full_at=now)
        else:
            listed, served = self.poll({"state": "all", "since": utc_iso(after), **self.issue_list_params})
            fresh = cached.merged(listed, served=served)
        self.issue_cache.save(fresh)
        return fresh.listing()

    def poll(self, params: Mapping[str, Any]) -> tuple[list[dict], datetime | None]:
        """Every page of an issue listing, and the forge's time when it answered the first."""
        items: list[dict] = []
        served = None
        for reply in self.iter_pages(self.repo_path + "/issues", params, None):
            served = served or served_at(reply)
            items.extend(page_items(reply))
        return items, served

    def pulls_for_head(self, head: str, *, base: str) -> list[PullRequest]:
        """Gitea's PR by base and head: one request, one PR of the branch (whichever its database finds
        first, in practice the oldest). agentmesh opens one PR per work branch; an open PR is found in
        the listing of open PRs, which its callers read first."""
        try:
            return [pull_from(self.get(f"/pulls/{segment(base)}/{tail(head)}"))]
        except NotFound:
            return []

    def iter_pages(self, path: str, params: Mapping[str, Any], key: str | None) -> Iterator[Reply]:
        return numbered_pages(self.http, path, params, key, size=PAGE_LIMIT)

    def label_ref(self, label: dict) -> int:
        return int(label["id"])

    def label_events(self, number: int) -> list[LabelEvent]:
        return [label_event(d) for d in self.list_all(f"/issues/{int(number)}/timeline")
                if d.get("type") == "label" and d.get("label")]

    def merge_once(self, number: int, sha: str, method: Literal["merge", "squash"]) -> None:
        payload = {"do": method, "head_commit_id": sha}
        try:
            self.send("POST", f"/pulls/{number}/merge", payload, statuses={405: NotMergeableYet})
        except NotMergeableYet as exc:
            # Gitea also answers 405 for a PR that is no longer open: no point waiting
            state = pull_from(self.get(f"/pulls/{number}")).state
            if state != "open":
                raise Conflict(f"{exc}; PR #{number} is {state}") from None
            raise

    def delete_branch_once(self, branch: str) -> None:
        self.send("DELETE", f"/branches/{tail(branch)}")
