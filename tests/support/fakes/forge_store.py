"""The in-memory repository and request router shared by the Gitea and GitHub fakes.

A fake forge is a `FakeForge` subclass: it keeps one repository's state
(issues and PRs in one number sequence, labels, comments, reviews, statuses,
commits and branches with file trees, users) and answers requests through
`responses` callbacks. Subclasses add the routes and JSON shapes of their
forge, including its quirks.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import responses
from requests import PreparedRequest

Answer = tuple[int, Any, dict[str, str]]
Handler = Callable[..., Answer]


def answer(status: int, body: Any = None, **headers: str) -> Answer:
    return status, body, {k.replace("_", "-"): v for k, v in headers.items()}


@dataclass
class Item:
    """An issue, or a PR (which is an issue with a head and base)."""

    number: int
    title: str
    body: str
    author: str
    created_at: str
    updated_at: str
    state: str = "open"
    labels: list[int] = field(default_factory=list)  # label ids
    assignees: list[str] = field(default_factory=list)
    head: str | None = None
    base: str | None = None
    last_head_sha: str = ""
    merged: bool = False
    merged_at: str | None = None
    merge_sha: str | None = None
    requested_reviewers: list[str] = field(default_factory=list)
    checking: bool = False  # Gitea: mergeability still being computed

    @property
    def is_pull(self) -> bool:
        return self.head is not None


@dataclass
class Injected:
    method: str
    pattern: re.Pattern
    status: int
    body: str
    headers: dict[str, str]
    times: int


class FakeForge:
    """One repository `owner/name` served at `api_url`; `me` is the token's user. `add_account` adds
    users with tokens of their own: each request acts as the user its token belongs to."""

    def __init__(self, api_url: str, owner: str = "mesh", name: str = "work", me: str = "agent-1",
                 token: str = "fake-token"):
        self.api_url = api_url.rstrip("/")
        self.owner, self.name, self.me, self.token = owner, name, me, token
        self.default_branch = "main"
        self.users: dict[str, str] = {me: "admin", "reviewer-bot": "write", "reader": "read"}
        self.user_ids = {login: i + 1 for i, login in enumerate(self.users)}
        self.tokens: dict[str, str] = {token: me}  # token -> login
        self.commits: dict[str, dict[str, str]] = {}
        self.branches: dict[str, str] = {}
        self.labels: dict[int, dict] = {}
        self.items: dict[int, Item] = {}
        self.comments: dict[int, list[dict]] = {}
        self.label_log: dict[int, list[dict]] = {}  # issue -> each label added or removed, oldest first
        self.reviews: dict[int, list[dict]] = {}
        self.statuses: dict[str, list[dict]] = {}  # newest first
        self.check_runs: dict[str, list[dict]] = {}
        self.injected: list[Injected] = []
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status) as answered
        self._clock = 0
        self._ids = 0
        self.branches[self.default_branch] = self.commit({"README.md": "# work\n"})
        self.routes: list[tuple[str, re.Pattern, Handler]] = []
        self.add_routes()

    # --- state helpers ---------------------------------------------------------------------------

    def add_account(self, login: str, permission: str = "write") -> str:
        """A user of the forge with `permission` on the repository; returns their token."""
        self.users[login] = permission
        self.user_ids.setdefault(login, len(self.user_ids) + 1)
        token = f"token-of-{login}"
        self.tokens[token] = login
        return token

    def now(self) -> str:
        self._clock += 1
        return f"2026-01-01T{self._clock // 3600:02d}:{self._clock // 60 % 60:02d}:{self._clock % 60:02d}Z"

    def new_id(self) -> int:
        self._ids += 1
        return self._ids

    def commit(self, files: dict[str, str]) -> str:
        sha = hashlib.sha1(f"{len(self.commits)}:{sorted(files.items())}".encode()).hexdigest()
        self.commits[sha] = dict(files)
        return sha

    def push_branch(self, name: str, files: dict[str, str]) -> str:
        """Create or update `name` (off the default branch) with `files` committed."""
        tree = dict(self.commits[self.branches.get(name) or self.branches[self.default_branch]])
        tree.update(files)
        sha = self.branches[name] = self.commit(tree)
        for item in self.items.values():
            if item.head == name and item.state == "open":
                item.last_head_sha, item.checking = sha, True
        return sha

    def head_sha(self, item: Item) -> str:
        return (self.branch_head(item.head or "") or item.last_head_sha) if item.state == "open" else item.last_head_sha

    def branch_head(self, name: str) -> str | None:
        return self.branches.get(name)

    def resolve(self, ref: str | None) -> dict[str, str] | None:
        ref = ref or self.default_branch
        sha = self.branches.get(ref.removeprefix("heads/"), ref)
        return self.commits.get(sha)

    def new_item(self, title: str, body: str, **kw: Any) -> Item:
        number = len(self.items) + 1
        stamp = self.now()
        item = self.items[number] = Item(number, title, body, self.me, stamp, stamp, **kw)
        self.log_labels(item, item.labels, added=True)
        return item

    def log_labels(self, item: Item, label_ids: list[int], *, added: bool) -> None:
        """Record, as the request's user, a change of labels for the issue's events or timeline."""
        for label_id in label_ids:
            self.label_log.setdefault(item.number, []).append(
                {"id": self.new_id(), "label_id": label_id, "added": added, "login": self.me, "at": self.now()})

    def replace_labels(self, item: Item, label_ids: list[int]) -> None:
        """Make `label_ids` the item's labels, logging only what changed, as both forges do."""
        wanted = list(dict.fromkeys(label_ids))
        self.log_labels(item, [i for i in item.labels if i not in wanted], added=False)
        self.log_labels(item, [i for i in wanted if i not in item.labels], added=True)
        if wanted != item.labels:
            item.labels = wanted
            item.updated_at = self.now()

    def clear_issue_labels(self, q, body, request, number: str) -> Answer:
        item = self.item(number)
        if item is None:
            return answer(404, {"message": "Not Found"})
        self.replace_labels(item, [])
        return answer(204)

    def item(self, number: str | int, *, pull: bool | None = None) -> Item | None:
        item = self.items.get(int(number))
        if item is None or (pull is not None and item.is_pull != pull):
            return None
        return item

    def label_by_name(self, name: str) -> dict | None:
        return next((lab for lab in self.labels.values() if lab["name"] == name), None)

    def create_label(self, name: str, color: str = "ededed") -> dict:
        label_id = self.new_id()
        label = self.labels[label_id] = {"id": label_id, "name": name, "color": color.lstrip("#"), "description": ""}
        return label

    def merge(self, item: Item, method: str) -> None:
        head = self.head_sha(item)
        item.merge_sha = self.merge_commit(item.base or self.default_branch, head, method, item.number)
        item.last_head_sha, item.state, item.merged = head, "closed", True
        item.merged_at = item.updated_at = self.now()

    def merge_commit(self, base: str, head: str, method: str, number: int) -> str:
        """Move `base` to a commit with `head`'s changes; its sha."""
        tree = {**self.commits[self.branches[base]], **self.commits[head]}
        sha = self.branches[base] = self.commit(tree)
        return sha

    def review_entry(self, state: str, body: str, commit_id: str, user: str | None = None) -> dict:
        return {"id": self.new_id(), "user": self.user(user or self.me), "state": state, "body": body,
                "commit_id": commit_id, "submitted_at": self.now()}

    # --- fault injection -------------------------------------------------------------------------

    def inject(self, method: str, path_regex: str, status: int, body: Any = None, *, times: int = 1,
               raw: str | None = None, **headers: str) -> None:
        """Answer the next `times` requests matching (`method` or "*", path regex) with `status`."""
        text = raw if raw is not None else json.dumps(body if body is not None else {"message": "injected"})
        self.injected.append(Injected(method.upper(), re.compile(path_regex), status, text,
                                      {k.replace("_", "-"): v for k, v in headers.items()}, times))

    # --- routing --------------------------------------------------------------------------------

    def add_routes(self) -> None:
        raise NotImplementedError

    def route(self, method: str, template: str, handler: Handler) -> None:
        """`template` is relative to /repos/{owner}/{repo} unless it starts with //."""
        pattern = template[1:] if template.startswith("//") else f"/repos/{self.owner}/{self.name}{template}"
        regex = re.sub(r"\\\{(\w+)\\\}", lambda m: f"(?P<{m.group(1)}>[^/]+)", re.escape(pattern))
        regex = regex.replace("(?P<rest>[^/]+)", "(?P<rest>.+)")  # {rest}: a multi-segment parameter
        self.routes.append((method, re.compile(regex + r"\Z"), handler))

    def install(self, rsps: responses.RequestsMock) -> None:
        pattern = re.compile(re.escape(self.api_url) + r"/.*")
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            rsps.add_callback(method, pattern, callback=self.dispatch)

    def dispatch(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        parts = urlsplit(request.url or "")
        path = parts.path[len(urlsplit(self.api_url).path):]
        method = request.method or "GET"
        for inj in self.injected:
            if inj.times > 0 and inj.method in ("*", method) and inj.pattern.search(path):
                inj.times -= 1
                self.requests.append((method, path, inj.status))
                return inj.status, {"Content-Type": "application/json", **inj.headers}, inj.body
        status, body, headers = self.serve(request, method, path, parts.query)
        self.requests.append((method, path, status))
        text = "" if body is None else json.dumps(body)
        return status, {"Content-Type": "application/json", **headers}, text

    def serve(self, request: PreparedRequest, method: str, path: str, query: str) -> Answer:
        sent = request.headers.get("Authorization")
        login = next((who for token, who in self.tokens.items() if sent == self.auth_header(token)), None)
        if login is None:
            return answer(401, {"message": "Bad credentials"})
        q = {k: v[-1] for k, v in parse_qs(query).items()}
        body = json.loads(request.body) if request.body else {}
        owner, self.me = self.me, login  # what this request writes, its token's user wrote
        try:
            for verb, pattern, handler in self.routes:
                found = pattern.match(path)
                if found and verb == method:
                    args = {k: unquote(v) for k, v in found.groupdict().items()}
                    return handler(q=q, body=body, request=request, **args)
            return answer(404, {"message": "Not Found"})
        finally:
            self.me = owner

    def auth_header(self, token: str) -> str:
        raise NotImplementedError

    # --- JSON shapes shared by both forges --------------------------------------------------------

    def user(self, login: str) -> dict:
        return {"login": login, "id": self.user_ids.get(login, 0)}

    def html(self, kind: str, number: int) -> str:
        return f"https://forge.test/{self.owner}/{self.name}/{kind}/{number}"

    def label_json(self, label_id: int) -> dict:
        return dict(self.labels[label_id])

    def issue_json(self, item: Item) -> dict:
        return {"id": 1000 + item.number, "number": item.number, "title": item.title, "body": item.body,
                "state": item.state, "labels": [self.label_json(i) for i in item.labels],
                "user": self.user(item.author), "assignees": [self.user(a) for a in item.assignees],
                "created_at": item.created_at, "updated_at": item.updated_at,
                "html_url": self.html("pulls" if item.is_pull else "issues", item.number)}

    def pull_json(self, item: Item, single: bool = False) -> dict:
        sha = self.head_sha(item)
        base = item.base or self.default_branch
        return {"id": 2000 + item.number, "number": item.number, "title": item.title, "body": item.body,
                "state": item.state, "user": self.user(item.author),
                "labels": [self.label_json(i) for i in item.labels],
                "head": {"ref": item.head, "sha": sha, "label": f"{self.owner}:{item.head}"},
                "base": {"ref": base, "sha": self.branch_head(base) or "", "label": f"{self.owner}:{base}"},
                "requested_reviewers": [self.user(r) for r in item.requested_reviewers],
                "merged_at": item.merged_at, "merge_commit_sha": item.merge_sha,
                "created_at": item.created_at, "updated_at": item.updated_at,
                "html_url": self.html("pulls", item.number)}

    def comment_json(self, comment: dict) -> dict:
        return dict(comment)

    def contents_json(self, path: str, files: dict[str, str]) -> Any:
        if path in files:
            content = base64.b64encode(files[path].encode()).decode()
            return {"type": "file", "encoding": "base64", "content": content, "path": path,
                    "name": path.rsplit("/", 1)[-1], "size": len(files[path].encode()),
                    "sha": hashlib.sha1(files[path].encode()).hexdigest()}
        prefix = path.rstrip("/") + "/"
        if any(p.startswith(prefix) for p in files):
            return [{"type": "file", "path": p, "name": p.rsplit("/", 1)[-1]} for p in sorted(files)
                    if p.startswith(prefix)]
        return None

    def latest_statuses(self, sha: str) -> list[dict]:
        seen: dict[str, dict] = {}
        for status in self.statuses.get(sha, ()):
            seen.setdefault(status["context"], status)
        return list(seen.values())

    # --- handlers shared by both forges (Gitea mirrors GitHub's shapes here) ----------------------

    def add_shared_routes(self) -> None:
        n = "{number}"
        self.route("GET", "//user", lambda **kw: answer(200, self.user(self.me)))
        self.route("GET", f"/issues/{n}", self.get_issue)
        self.route("PATCH", f"/issues/{n}", self.patch_issue)
        self.route("GET", f"/issues/{n}/comments", self.list_comments)
        self.route("POST", f"/issues/{n}/comments", self.post_comment)
        self.route("GET", f"/pulls/{n}", self.get_pull)
        self.route("PATCH", f"/pulls/{n}", self.patch_pull)
        self.route("POST", f"/pulls/{n}/requested_reviewers", self.request_reviewers)
        self.route("POST", f"/pulls/{n}/reviews", self.post_review)
        self.route("POST", "/statuses/{sha}", self.post_status)
        self.route("GET", "/contents/{rest}", self.get_contents)
        self.route("GET", "/collaborators/{login}/permission", self.get_permission)

    def get_issue(self, q, body, request, number: str) -> Answer:
        item = self.item(number)
        return answer(200, self.issue_json(item)) if item else answer(404, {"message": "Not Found"})

    def patch_issue(self, q, body, request, number: str) -> Answer:
        item = self.item(number)
        if item is None:
            return answer(404, {"message": "Not Found"})
        if "assignees" in body:
            unknown = [a for a in body["assignees"] if a not in self.users]
            if unknown:
                return answer(422, {"message": f"user does not exist [name: {unknown[0]}]"})
            item.assignees = list(body["assignees"])
        if body.get("state") in ("open", "closed") and not item.merged:
            item.state = body["state"]
        item.title = body.get("title", item.title)
        item.body = body.get("body", item.body)
        item.updated_at = self.now()
        return answer(self.edit_status, self.issue_json(item))

    edit_status = 200

    def list_comments(self, q, body, request, number: str) -> Answer:
        if int(number) not in self.items:
            return answer(404, {"message": "Not Found"})
        return self.page([self.comment_json(c) for c in self.comments.get(int(number), [])], q, request)

    def post_comment(self, q, body, request, number: str) -> Answer:
        if int(number) not in self.items:
            return answer(404, {"message": "Not Found"})
        comment = {"id": self.new_id(), "user": self.user(self.me), "body": body["body"], "created_at": self.now()}
        self.comments.setdefault(int(number), []).append(comment)
        return answer(201, self.comment_json(comment))

    def get_pull(self, q, body, request, number: str) -> Answer:
        item = self.item(number, pull=True)
        return answer(200, self.pull_json(item, single=True)) if item else answer(404, {"message": "Not Found"})

    def patch_pull(self, q, body, request, number: str) -> Answer:
        item = self.item(number, pull=True)
        if item is None:
            return answer(404, {"message": "Not Found"})
        if body.get("state") == "closed" and item.state == "open":
            item.last_head_sha = self.head_sha(item)
            item.state, item.updated_at = "closed", self.now()
        return answer(self.edit_status, self.pull_json(item, single=True))

    def request_reviewers(self, q, body, request, number: str) -> Answer:
        item = self.item(number, pull=True)
        if item is None:
            return answer(404, {"message": "Not Found"})
        for login in body.get("reviewers", []):
            if login not in self.users:
                return answer(422, {"message": f"user does not exist [name: {login}]"})
            if login not in item.requested_reviewers:
                item.requested_reviewers.append(login)
                self.on_review_requested(item, login)
        return answer(201, self.pull_json(item, single=True))

    def on_review_requested(self, item: Item, login: str) -> None:
        pass

    def post_review(self, q, body, request, number: str) -> Answer:
        item = self.item(number, pull=True)
        if item is None:
            return answer(404, {"message": "Not Found"})
        state = self.review_state_for(body.get("event", ""))
        if state is None:
            return answer(422, {"message": f"invalid review event {body.get('event')!r}"})
        review = self.review_entry(state, body.get("body", ""), body.get("commit_id") or self.head_sha(item))
        self.reviews.setdefault(item.number, []).append(review)
        return answer(200, self.review_json(review))

    def review_state_for(self, event: str) -> str | None:
        raise NotImplementedError

    def review_json(self, review: dict) -> dict:
        return dict(review)

    def post_status(self, q, body, request, sha: str) -> Answer:
        status = {"id": self.new_id(), "context": body.get("context", "default"), "state": body["state"],
                  "description": body.get("description", ""), "target_url": body.get("target_url") or "",
                  "created_at": self.now()}
        self.statuses.setdefault(sha, []).insert(0, status)
        return answer(201, self.status_json(status))

    def status_json(self, status: dict) -> dict:
        return dict(status)

    def get_contents(self, q, body, request, rest: str) -> Answer:
        files = self.resolve(q.get("ref"))
        found = self.contents_json(rest, files) if files is not None else None
        return answer(404, {"message": "Not Found"}) if found is None else answer(200, found)

    def get_permission(self, q, body, request, login: str) -> Answer:
        if login not in self.users:
            return answer(404, {"message": "Not Found"})
        return answer(200, {"permission": self.users[login], "user": self.user(login)})

    def page(self, items: list, q: dict, request: PreparedRequest) -> Answer:
        raise NotImplementedError
