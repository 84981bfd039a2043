"""The GitHub backend: the REST API (2022-11-28) mapped into the shared model.

Quirks absorbed here: the issue list includes PRs (dropped by the shared
code); pagination follows `Link` headers; review events say APPROVE; CI is
commit statuses plus check runs; GETs are conditional (ETag cache) so an
unchanged poll costs a 304, which GitHub does not count against the rate limit;
a branch's PRs are asked for with `head=owner:branch`, never by listing every PR.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import requests

from agentmesh.forge.base import CIStateName, LabelEvent, PullRequest, ReviewEvent, StatusContext
from agentmesh.forge.http import (
    EtagCache,
    Rejected,
    Reply,
    RestForge,
    Transport,
    json_mapper,
    linked_pages,
    pull_from,
    segment,
    tail,
)

PER_PAGE = 100

_CONCLUSIONS: dict[str, CIStateName] = {
    "success": "success", "neutral": "success", "skipped": "success",
    "failure": "failure", "timed_out": "failure", "cancelled": "failure", "action_required": "failure",
    "startup_failure": "failure", "stale": "pending",
}


@json_mapper("check run")
def check_run_context(run: dict) -> StatusContext:
    state: CIStateName = "pending"
    if run.get("status") == "completed":
        state = _CONCLUSIONS.get(str(run.get("conclusion") or ""), "error")
    output = run.get("output") or {}
    return StatusContext(context=run.get("name") or "", state=state, description=output.get("title") or "",
                         target_url=run.get("details_url") or run.get("html_url") or "")


@json_mapper("issue event")
def label_event(d: dict) -> LabelEvent:
    return LabelEvent(label=str(d["label"]["name"]), added=d["event"] == "labeled",
                      author=str((d.get("actor") or {}).get("login") or ""))


class GitHubForge(RestForge):
    kind = "github"
    review_events: Mapping[ReviewEvent, str] = {
        "approve": "APPROVE", "request_changes": "REQUEST_CHANGES", "comment": "COMMENT"}
    label_color = "ededed"

    def __init__(self, base_url: str = "https://api.github.com", repo: str = "", token: str | None = None, *,
                 token_env: str = "AGENTMESH_TOKEN", cache_dir: Path | None = None,
                 session: requests.Session | None = None, timeout: float = 30.0):
        transport = Transport(base_url, token=token, token_env=token_env, auth_scheme="Bearer",
                              headers={"Accept": "application/vnd.github+json",
                                       "X-GitHub-Api-Version": "2022-11-28"},
                              session=session, timeout=timeout, etags=EtagCache(cache_dir))
        super().__init__(transport, repo)

    def iter_pages(self, path: str, params: Mapping[str, Any], key: str | None) -> Iterator[Reply]:
        return linked_pages(self.http, path, params, size=PER_PAGE)

    def label_ref(self, label: dict) -> str:
        return str(label["name"])

    def merge_once(self, number: int, sha: str, method: Literal["merge", "squash"]) -> None:
        # 405 (not mergeable) and 409 (head moved) map to Conflict in the transport
        self.send("PUT", f"/pulls/{number}/merge", {"sha": sha, "merge_method": method})

    def pulls_for_head(self, head: str, *, base: str) -> list[PullRequest]:
        params = {"head": f"{self.repo.partition('/')[0]}:{head}", "base": base, "state": "all"}
        return sorted((pull_from(d) for d in self.list_all("/pulls", params)), key=lambda p: p.number)

    def label_events(self, number: int) -> list[LabelEvent]:
        return [label_event(d) for d in self.list_all(f"/issues/{int(number)}/events")
                if d.get("event") in ("labeled", "unlabeled")]

    def check_runs(self, sha: str) -> list[StatusContext]:
        return [check_run_context(r) for r in self.list_all(f"/commits/{segment(sha)}/check-runs", key="check_runs")]

    def delete_branch_once(self, branch: str) -> None:
        try:
            self.send("DELETE", f"/git/refs/heads/{tail(branch)}")
        except Rejected as exc:
            if "does not exist" not in str(exc):
                raise  # 422 "Reference does not exist" is the idempotent case
