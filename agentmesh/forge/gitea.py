"""The Gitea backend: Gitea's REST API v1 mapped into the shared model.

Quirks absorbed here: `limit` is capped by the server (50 by default) so
lists page until a short page; issue labels are added and removed by id;
the issue list needs `type=issues`; reviews say APPROVED/REQUEST_CHANGES/
COMMENT; the merge call answers 405 while mergeability is being computed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Literal

import requests

from agentmesh.forge.base import Conflict, LabelEvent, NotMergeableYet, ReviewEvent
from agentmesh.forge.http import Reply, RestForge, Transport, json_mapper, numbered_pages, pull_from, tail

PAGE_LIMIT = 50  # Gitea's default MAX_RESPONSE_ITEMS; asking for more is silently capped


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
                 session: requests.Session | None = None, timeout: float = 30.0):
        transport = Transport(base_url.rstrip("/") + "/api/v1", token=token, token_env=token_env,
                              auth_scheme="token", headers={"Accept": "application/json"},
                              session=session, timeout=timeout)
        super().__init__(transport, repo)

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
