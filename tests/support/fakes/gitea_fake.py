"""An in-memory Gitea (API v1) for one repository, served through `responses`.

It keeps Gitea's quirks: `limit` silently capped at 50 (with X-Total-Count),
the issue list mixing PRs in unless `type=issues`, the label filter ignoring
unknown labels, issue labels added by id or name and removed by id, a 409 for
a second open PR on the same head, the merge call answering 405 while
mergeability is being computed (after a PR opens or its head moves), review
requests listed as REQUEST_REVIEW reviews, statuses carrying `status`, one PR
(the oldest) for `GET /pulls/{base}/{head}`, and a Date header on the fake clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from tests.support.fakes.forge_store import Answer, FakeForge, Item, answer

MAX_RESPONSE_ITEMS = 50
DEFAULT_PAGING_NUM = 30


class GiteaFake(FakeForge):
    edit_status = 201  # Gitea answers an issue or PR edit with 201
    max_response_items = MAX_RESPONSE_ITEMS  # an admin may lower it in app.ini

    def __init__(self, base_url: str = "https://gitea.test", **kw):
        super().__init__(base_url.rstrip("/") + "/api/v1", **kw)

    def auth_header(self, token: str) -> str:
        return f"token {token}"

    def dispatch(self, request):
        """Every answer carries the fake clock's time in a Date header, as Go's HTTP server sends one."""
        status, headers, text = super().dispatch(request)
        moment = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=self._clock)
        return status, {**headers, "Date": format_datetime(moment, usegmt=True)}, text

    def add_routes(self) -> None:
        self.add_shared_routes()
        self.route("GET", "/issues", self.list_issues)
        self.route("POST", "/issues", self.create_issue)
        self.route("GET", "/issues/{number}/labels", self.issue_labels)
        self.route("POST", "/issues/{number}/labels", self.add_issue_labels)
        self.route("PUT", "/issues/{number}/labels", self.put_issue_labels)
        self.route("DELETE", "/issues/{number}/labels", self.clear_issue_labels)
        self.route("DELETE", "/issues/{number}/labels/{label_id}", self.remove_issue_label)
        self.route("GET", "/issues/{number}/timeline", self.timeline)
        self.route("GET", "/labels", lambda q, request, **kw: self.page(list(self.labels.values()), q, request))
        self.route("POST", "/labels", self.create_repo_label)
        self.route("GET", "/pulls", self.list_pulls)
        self.route("POST", "/pulls", self.create_pull)
        self.route("POST", "/pulls/{number}/merge", self.merge_pull)
        self.route("GET", "/pulls/{number}/reviews", self.list_reviews)
        self.route("GET", "/commits/{ref}/status", self.combined_status)
        self.route("DELETE", "/branches/{rest}", self.delete_branch)
        self.route("GET", "/pulls/{base}/{rest}", self.pull_by_base_head)  # last: /pulls/{n}/reviews goes first

    # --- shapes ---------------------------------------------------------------------------------

    def page(self, items: list, q: dict, request) -> Answer:
        limit = min(int(q.get("limit") or DEFAULT_PAGING_NUM), self.max_response_items)  # the silent cap
        page = max(int(q.get("page") or 1), 1)
        return answer(200, items[(page - 1) * limit: page * limit], X_Total_Count=str(len(items)))

    def issue_json(self, item: Item) -> dict:
        data = super().issue_json(item)
        data["assignees"] = data["assignees"] or None  # Gitea sends null, not []
        data["pull_request"] = {"merged": item.merged, "merged_at": item.merged_at,
                                "html_url": self.html("pulls", item.number)} if item.is_pull else None
        return data

    def pull_json(self, item: Item, single: bool = False) -> dict:
        data = super().pull_json(item)
        data["merged"] = item.merged
        data["mergeable"] = item.state == "open" and not item.checking
        return data

    def label_json(self, label_id: int) -> dict:
        label = super().label_json(label_id)
        label["color"] = "#" + label["color"]
        return label

    def status_json(self, status: dict) -> dict:
        data = dict(status)
        data["status"] = data.pop("state")
        return data

    def review_json(self, review: dict) -> dict:
        return {**review, "dismissed": False, "stale": False, "official": True}

    def review_state_for(self, event: str) -> str | None:
        return event if event in ("APPROVED", "REQUEST_CHANGES", "COMMENT") else None

    def on_review_requested(self, item: Item, login: str) -> None:
        self.reviews.setdefault(item.number, []).append(self.review_entry("REQUEST_REVIEW", "", "", login))

    # --- issues and labels ------------------------------------------------------------------------

    def list_issues(self, q, body, request) -> Answer:
        state, kind = q.get("state", "open"), q.get("type")
        # unknown label names are silently dropped from the filter
        wanted = {lab["id"] for name in (q.get("labels") or "").split(",") if (lab := self.label_by_name(name))}
        found = [i for i in self.items.values()
                 if (state == "all" or i.state == state)
                 and (kind is None or (kind == "pulls") == i.is_pull)
                 and wanted <= set(i.labels)
                 and (not q.get("since") or i.updated_at >= q["since"])]
        found.sort(key=lambda i: -i.number)
        return self.page([self.issue_json(i) for i in found], q, request)

    def create_issue(self, q, body, request) -> Answer:
        if any(lid not in self.labels for lid in body.get("labels", [])):
            return answer(422, {"message": "label does not exist"})
        item = self.new_item(body["title"], body.get("body", ""), labels=list(body.get("labels", [])))
        return answer(201, self.issue_json(item))

    def issue_labels(self, q, body, request, number: str) -> Answer:
        item = self.item(number)
        if item is None:
            return answer(404, {"message": "Not Found"})
        return answer(200, [self.label_json(i) for i in item.labels])

    def add_issue_labels(self, q, body, request, number: str) -> Answer:
        item = self.item(number)
        if item is None:
            return answer(404, {"message": "Not Found"})
        for ref in body.get("labels", []):
            label = self.labels.get(ref) if isinstance(ref, int) else self.label_by_name(ref)
            if label is None:
                return answer(404, {"message": f"label {ref!r} does not exist"})
            if label["id"] not in item.labels:
                item.labels.append(label["id"])
                self.log_labels(item, [label["id"]], added=True)
        item.updated_at = self.now()
        return answer(200, [self.label_json(i) for i in item.labels])

    def put_issue_labels(self, q, body, request, number: str) -> Answer:
        item = self.item(number)
        if item is None:
            return answer(404, {"message": "Not Found"})
        ids = []
        for ref in body.get("labels", []):
            label = self.labels.get(ref) if isinstance(ref, int) else self.label_by_name(ref)
            if label is None:
                return answer(422, {"message": f"label {ref!r} does not exist"})
            ids.append(label["id"])
        self.replace_labels(item, ids)
        return answer(200, [self.label_json(i) for i in item.labels])

    def remove_issue_label(self, q, body, request, number: str, label_id: str) -> Answer:
        item = self.item(number)
        if item is None or int(label_id) not in self.labels:
            return answer(404, {"message": "Not Found"})
        if int(label_id) in item.labels:
            item.labels.remove(int(label_id))
            self.log_labels(item, [int(label_id)], added=False)
            item.updated_at = self.now()
        return answer(204)

    def timeline(self, q, body, request, number: str) -> Answer:
        """Only the label entries (type `label`; body "1" for an added label, "" for a removed one)."""
        if self.item(number) is None:
            return answer(404, {"message": "Not Found"})
        entries = [{"id": e["id"], "type": "label", "body": "1" if e["added"] else "", "user": self.user(e["login"]),
                    "label": self.label_json(e["label_id"]), "created_at": e["at"], "updated_at": e["at"]}
                   for e in self.label_log.get(int(number), [])]
        return self.page(entries, q, request)

    def create_repo_label(self, q, body, request) -> Answer:
        label = self.create_label(body["name"], body["color"])
        return answer(201, self.label_json(label["id"]))

    # --- pull requests ---------------------------------------------------------------------------

    def list_pulls(self, q, body, request) -> Answer:
        state = q.get("state", "open")
        found = [i for i in self.items.values() if i.is_pull and (state == "all" or i.state == state)]
        found.sort(key=lambda i: -i.number)
        return self.page([self.pull_json(i) for i in found], q, request)

    def pull_by_base_head(self, q, body, request, base: str, rest: str) -> Answer:
        """One PR of `rest` into `base`, in any state: the first the database finds (here the oldest)."""
        found = [i for i in self.items.values() if i.is_pull and i.base == base and i.head == rest]
        if not found:
            return answer(404, {"message": "pull request does not exist"})
        return answer(200, self.pull_json(min(found, key=lambda i: i.number), single=True))

    def create_pull(self, q, body, request) -> Answer:
        head, base = body.get("head"), body.get("base")
        if self.branch_head(head) is None or self.branch_head(base) is None:
            return answer(404, {"message": "branch does not exist"})
        for item in self.items.values():
            if item.is_pull and item.state == "open" and item.head == head and item.base == base:
                return answer(409, {"message": f"pull request already exists for these targets "
                                               f"[id: {item.number}, issue_id: {item.number}, head_repo_id: 1, "
                                               f"base_repo_id: 1, head_branch: {head}, base_branch: {base}]"})
        item = self.new_item(body.get("title", ""), body.get("body", ""), head=head, base=base,
                             last_head_sha=self.branch_head(head) or "", checking=True)
        return answer(201, self.pull_json(item))

    def merge_pull(self, q, body, request, number: str) -> Answer:
        item = self.item(number, pull=True)
        if item is None:
            return answer(404, {"message": "Not Found"})
        if item.state != "open":
            return answer(405, {"message": "The PR is already merged" if item.merged else "PR is closed"})
        if item.checking:  # the first call after a change finds mergeability still being computed
            item.checking = False
            return answer(405, {"message": "Please try again later"})
        if body.get("head_commit_id") and body["head_commit_id"] != self.head_sha(item):
            return answer(409, {"message": "head out of date"})
        self.merge(item, body["do"])
        return answer(200)

    def list_reviews(self, q, body, request, number: str) -> Answer:
        if self.item(number, pull=True) is None:
            return answer(404, {"message": "Not Found"})
        return self.page([self.review_json(r) for r in self.reviews.get(int(number), [])], q, request)

    # --- CI and branches -------------------------------------------------------------------------

    def combined_status(self, q, body, request, ref: str) -> Answer:
        sha = self.branch_head(ref) or ref
        latest = self.latest_statuses(sha)
        limit = min(int(q.get("limit") or DEFAULT_PAGING_NUM), self.max_response_items)
        page = max(int(q.get("page") or 1), 1)
        states = {s["state"] for s in latest}
        state = next((s for s in ("error", "failure", "pending") if s in states), "success" if latest else "")
        return answer(200, {"sha": sha, "state": state, "total_count": len(latest),
                            "statuses": [self.status_json(s) for s in latest[(page - 1) * limit: page * limit]]})

    def delete_branch(self, q, body, request, rest: str) -> Answer:
        if rest not in self.branches:
            return answer(404, {"message": "branch does not exist"})
        del self.branches[rest]
        return answer(204)
