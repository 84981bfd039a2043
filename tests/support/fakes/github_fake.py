"""An in-memory GitHub (REST 2022-11-28) for one repository, served through `responses`.

It keeps GitHub's behaviour: `per_page` (max 100) with `Link` headers, the
issue list including PRs (marked by `pull_request`), labels by name (missing
ones created on use), 422 for a duplicate label or a second open PR on the
same head, merges pinned with `sha` (409 when the head moved, 405 when not
mergeable), review states APPROVED/CHANGES_REQUESTED/COMMENTED, check runs
beside commit statuses, ETags honouring If-None-Match with 304, and 403
secondary rate limits with Retry-After (see `secondary_rate_limit`).
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tests.support.fakes.forge_store import Answer, FakeForge, Item, answer

MAX_PER_PAGE = 100
_REVIEW_STATES = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "COMMENT": "COMMENTED"}


def _validation_failed(resource: str, code: str, message: str = "") -> dict:
    error = {"resource": resource, "code": code, "field": "name"}
    if message:
        error["message"] = message
    return {"message": "Validation Failed", "errors": [error],
            "documentation_url": "https://docs.github.com/rest", "status": "422"}


class GitHubFake(FakeForge):
    def __init__(self, api_url: str = "https://api.github.com", **kw):
        super().__init__(api_url, **kw)
        self.deleted: set[int] = set()

    def auth_header(self, token: str) -> str:
        return f"Bearer {token}"

    def secondary_rate_limit(self, *, retry_after: int = 0, times: int = 1) -> None:
        self.inject("*", ".", 403, {"message": "You have exceeded a secondary rate limit. Please wait a few "
                                               "minutes before you try again."},
                    times=times, Retry_After=str(retry_after))

    def add_check_run(self, sha: str, name: str, status: str = "completed", conclusion: str | None = "success") -> None:
        self.check_runs.setdefault(sha, []).append({
            "id": self.new_id(), "name": name, "head_sha": sha, "status": status, "conclusion": conclusion,
            "details_url": f"https://ci.test/{name}", "output": {"title": f"{name}: {conclusion or status}"}})

    def delete_issue(self, number: int) -> None:
        """What an admin's delete leaves: reading the issue answers 410 Gone (the API description's "deleted
        from a repository where the authenticated user has read access")."""
        del self.items[number]
        self.deleted.add(number)

    def get_issue(self, q, body, request, number: str) -> Answer:
        if int(number) in self.deleted:
            return answer(410, {"message": "This issue was deleted",
                                "documentation_url": "https://docs.github.com/rest/issues/issues#get-an-issue",
                                "status": "410"})
        return super().get_issue(q, body, request, number)

    def add_routes(self) -> None:
        self.add_shared_routes()
        self.route("GET", "/issues", self.list_issues)
        self.route("POST", "/issues", self.create_issue)
        self.route("POST", "/issues/{number}/labels", self.add_issue_labels)
        self.route("PUT", "/issues/{number}/labels", self.put_issue_labels)
        self.route("DELETE", "/issues/{number}/labels", self.clear_issue_labels)
        self.route("DELETE", "/issues/{number}/labels/{name}", self.remove_issue_label)
        self.route("GET", "/issues/{number}/events", self.list_issue_events)
        self.route("GET", "/labels", lambda q, request, **kw: self.page(list(self.labels.values()), q, request))
        self.route("POST", "/labels", self.create_repo_label)
        self.route("GET", "/pulls", self.list_pulls)
        self.route("POST", "/pulls", self.create_pull)
        self.route("PUT", "/pulls/{number}/merge", self.merge_pull)
        self.route("GET", "/pulls/{number}/reviews", self.list_reviews)
        self.route("GET", "/commits/{ref}/status", self.combined_status)
        self.route("GET", "/commits/{ref}/check-runs", self.list_check_runs)
        self.route("DELETE", "/git/refs/{rest}", self.delete_ref)

    # --- conditional requests -------------------------------------------------------------------

    def serve(self, request, method: str, path: str, query: str) -> Answer:
        status, body, headers = super().serve(request, method, path, query)
        if method != "GET" or status != 200:
            return status, body, headers
        etag = 'W/"' + hashlib.sha1(json.dumps([body, headers.get("Link")]).encode()).hexdigest() + '"'
        if request.headers.get("If-None-Match") == etag:
            return answer(304, None, ETag=etag, **{k.replace("-", "_"): v for k, v in headers.items()})
        return status, body, {**headers, "ETag": etag}

    # --- shapes ---------------------------------------------------------------------------------

    def page(self, items: list, q: dict, request) -> Answer:
        per_page = min(int(q.get("per_page") or 30), MAX_PER_PAGE)
        page = max(int(q.get("page") or 1), 1)
        headers = {}
        if page * per_page < len(items):
            parts = urlsplit(request.url)
            query = dict(parse_qsl(parts.query))
            query["page"] = str(page + 1)
            headers["Link"] = f'<{urlunsplit(parts._replace(query=urlencode(query)))}>; rel="next"'
        return 200, items[(page - 1) * per_page: page * per_page], headers

    def issue_json(self, item: Item) -> dict:
        data = super().issue_json(item)
        if item.is_pull:  # the issue list includes PRs, marked like this
            data["pull_request"] = {"url": f"{self.api_url}/repos/{self.owner}/{self.name}/pulls/{item.number}",
                                    "html_url": self.html("pull", item.number), "merged_at": item.merged_at}
        return data

    def pull_json(self, item: Item, single: bool = False) -> dict:
        data = super().pull_json(item)
        if single:  # `merged` and `mergeable` only come with a single PR
            data["merged"] = item.merged
            data["mergeable"] = item.state == "open"
        return data

    def review_state_for(self, event: str) -> str | None:
        return _REVIEW_STATES.get(event)

    # --- issues and labels ------------------------------------------------------------------------

    def ensure_label_ids(self, names: list) -> list[int]:
        ids = []
        for ref in names:
            name = ref["name"] if isinstance(ref, dict) else str(ref)
            label = self.label_by_name(name) or self.create_label(name)
            ids.append(label["id"])
        return ids

    def list_issues(self, q, body, request) -> Answer:
        state = q.get("state", "open")
        names = [n for n in (q.get("labels") or "").split(",") if n]
        found = [i for i in self.items.values()
                 if (state == "all" or i.state == state)
                 and all((lab := self.label_by_name(n)) is not None and lab["id"] in i.labels for n in names)
                 and (not q.get("since") or i.updated_at >= q["since"])]
        found.sort(key=lambda i: -i.number)
        return self.page([self.issue_json(i) for i in found], q, request)

    def create_issue(self, q, body, request) -> Answer:
        item = self.new_item(body["title"], body.get("body", ""), labels=self.ensure_label_ids(body.get("labels", [])),
                             assignees=[a for a in body.get("assignees", []) if a in self.users])
        return answer(201, self.issue_json(item))

    def add_issue_labels(self, q, body, request, number: str) -> Answer:
        item = self.item(number)
        if item is None:
            return answer(404, {"message": "Not Found"})
        names = body.get("labels", []) if isinstance(body, dict) else body
        new = [label_id for label_id in dict.fromkeys(self.ensure_label_ids(names)) if label_id not in item.labels]
        item.labels += new
        self.log_labels(item, new, added=True)
        item.updated_at = self.now()
        return answer(200, [self.label_json(i) for i in item.labels])

    def put_issue_labels(self, q, body, request, number: str) -> Answer:
        item = self.item(number)
        if item is None:
            return answer(404, {"message": "Not Found"})
        names = body.get("labels", []) if isinstance(body, dict) else body
        self.replace_labels(item, self.ensure_label_ids(names))
        return answer(200, [self.label_json(i) for i in item.labels])

    def remove_issue_label(self, q, body, request, number: str, name: str) -> Answer:
        item = self.item(number)
        label = self.label_by_name(name)
        if item is None or label is None or label["id"] not in item.labels:
            return answer(404, {"message": "Label does not exist"})
        item.labels.remove(label["id"])
        self.log_labels(item, [label["id"]], added=False)
        item.updated_at = self.now()
        return answer(200, [self.label_json(i) for i in item.labels])

    def list_issue_events(self, q, body, request, number: str) -> Answer:
        """Only the label events: the others (assigned, closed, ...) are never read by agentmesh."""
        if self.item(number) is None:
            return answer(404, {"message": "Not Found"})
        events = [{"id": e["id"], "node_id": f"LE_{e['id']}", "url": f"{self.api_url}/events/{e['id']}",
                   "actor": self.user(e["login"]), "event": "labeled" if e["added"] else "unlabeled",
                   "commit_id": None, "commit_url": None, "created_at": e["at"], "performed_via_github_app": None,
                   "label": {"name": self.labels[e["label_id"]]["name"], "color": self.labels[e["label_id"]]["color"]}}
                  for e in self.label_log.get(int(number), [])]
        return self.page(events, q, request)

    def create_repo_label(self, q, body, request) -> Answer:
        if self.label_by_name(body["name"]):
            return answer(422, _validation_failed("Label", "already_exists"))
        label = self.create_label(body["name"], body.get("color", "ededed"))
        return answer(201, self.label_json(label["id"]))

    # --- pull requests ---------------------------------------------------------------------------

    def list_pulls(self, q, body, request) -> Answer:
        state = q.get("state", "open")
        owner, _, head = (q.get("head") or "").rpartition(":")  # head=owner:branch
        found = [i for i in self.items.values() if i.is_pull and (state == "all" or i.state == state)
                 and (not head or (owner == self.owner and i.head == head))
                 and (not q.get("base") or (i.base or self.default_branch) == q["base"])]
        found.sort(key=lambda i: -i.number)
        return self.page([self.pull_json(i) for i in found], q, request)

    def create_pull(self, q, body, request) -> Answer:
        head, base = body.get("head"), body.get("base")
        if self.branch_head(head) is None or self.branch_head(base) is None:
            return answer(422, _validation_failed("PullRequest", "invalid"))
        for item in self.items.values():
            if item.is_pull and item.state == "open" and item.head == head and item.base == base:
                return answer(422, _validation_failed(
                    "PullRequest", "custom", f"A pull request already exists for {self.owner}:{head}."))
        item = self.new_item(body.get("title", ""), body.get("body", ""), head=head, base=base,
                             last_head_sha=self.branch_head(head) or "")
        return answer(201, self.pull_json(item, single=True))

    def merge_pull(self, q, body, request, number: str) -> Answer:
        item = self.item(number, pull=True)
        if item is None:
            return answer(404, {"message": "Not Found"})
        if item.state != "open":
            return answer(405, {"message": "Pull Request is not mergeable"})
        if body.get("sha") and body["sha"] != self.head_sha(item):
            return answer(409, {"message": "Head branch was modified. Review and try the merge again."})
        self.merge(item, body.get("merge_method", "merge"))
        return answer(200, {"sha": item.merge_sha, "merged": True, "message": "Pull Request successfully merged"})

    def list_reviews(self, q, body, request, number: str) -> Answer:
        if self.item(number, pull=True) is None:
            return answer(404, {"message": "Not Found"})
        return self.page([self.review_json(r) for r in self.reviews.get(int(number), [])], q, request)

    # --- CI and refs ----------------------------------------------------------------------------

    def combined_status(self, q, body, request, ref: str) -> Answer:
        sha = self.branch_head(ref) or ref
        latest = self.latest_statuses(sha)
        states = {s["state"] for s in latest}
        state = next((s for s in ("error", "failure", "pending") if s in states), "success" if latest else "pending")
        return answer(200, {"sha": sha, "state": state, "total_count": len(latest), "statuses": latest})

    def list_check_runs(self, q, body, request, ref: str) -> Answer:
        sha = self.branch_head(ref) or ref
        runs = self.check_runs.get(sha, [])
        status, page, headers = self.page(runs, q, request)
        return status, {"total_count": len(runs), "check_runs": page}, headers

    def delete_ref(self, q, body, request, rest: str) -> Answer:
        branch = rest.removeprefix("heads/")
        if not rest.startswith("heads/") or branch not in self.branches:
            return answer(422, {"message": "Reference does not exist"})
        del self.branches[branch]
        return answer(204)
