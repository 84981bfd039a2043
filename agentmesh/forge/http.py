"""The HTTP half shared by the Gitea and GitHub backends.

`Transport` is a thin layer over a `requests.Session`: timeouts, retries that
honour `Retry-After` for idempotent methods only (a POST is never replayed
blindly: callers check-then-adopt), an optional ETag cache, and one-line
error mapping into the typed errors of forge/base.py.

`RestForge` holds what the two REST APIs really share (Gitea copied most of
GitHub's v3 shapes); each backend overrides only where its forge differs.
The token lives in the transport only and is redacted from every message.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import re
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import quote, urlsplit

import requests
from requests.structures import CaseInsensitiveDict
from requests.utils import parse_header_links

from agentmesh.core.deps import with_tasks
from agentmesh.core.digest import sha256
from agentmesh.core.errors import ConfigError, UserError
from agentmesh.forge.base import (
    CIStateName,
    CIStatus,
    Comment,
    Conflict,
    Exists,
    Forbidden,
    Forge,
    ForgeError,
    Issue,
    IssueState,
    NotFound,
    NotMergeableYet,
    Permission,
    PullRequest,
    PullState,
    RateLimited,
    Review,
    ReviewEvent,
    ReviewState,
    StatusContext,
    Unavailable,
    combine_states,
)
from agentmesh.host.files import write_atomic

log = logging.getLogger(__name__)
T = TypeVar("T")

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})
_REASON_MAX = 160


class Rejected(ForgeError, UserError):
    """The forge refused the request as invalid (400/422 that is not "exists")."""


# --- small helpers --------------------------------------------------------------------


def segment(value: object) -> str:
    """One path segment: a slash inside it is data, so it is percent-encoded."""
    return quote(str(value), safe="")


def tail(value: str) -> str:
    """A trailing multi-segment parameter (file path, ref): slashes stay separators."""
    return quote(value, safe="/")


def utc_iso(moment: datetime) -> str:
    if moment.tzinfo is None:  # naive datetimes are taken as UTC, like the forges do
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def split_repo(repo: str) -> tuple[str, str]:
    owner, _, name = repo.partition("/")
    if not owner or not name or "/" in name:
        raise ConfigError(f"forge repo must be 'owner/name', got {repo!r}")
    return owner, name


# --- replies and the ETag cache ---------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    where: str  # "GET /path", for messages
    status: int
    data: Any
    headers: Mapping[str, str]

    def next_url(self) -> str | None:
        for link in parse_header_links(self.headers.get("Link", "")):
            if link.get("rel") == "next":
                return link.get("url")
        return None


class EtagCache:
    """ETag + body per URL, so an unchanged poll costs a 304 (GitHub does not count those).

    On disk when given a directory (one JSON file per URL, written atomically),
    otherwise in memory for the lifetime of one forge object.
    """

    def __init__(self, directory: Path | None = None):
        self.directory = directory
        self._memory: dict[str, dict] = {}

    def _file(self, url: str) -> Path:
        assert self.directory is not None
        return self.directory / (sha256(url.encode()).hexdigest() + ".json")

    def get(self, url: str) -> dict | None:
        if self.directory is None:
            return self._memory.get(url)
        try:
            entry = json.loads(self._file(url).read_text(encoding="utf-8"))
            json.loads(entry["body"])
        except (OSError, ValueError, KeyError, TypeError):
            return None  # missing or torn: a cache miss, never an error
        # a 304 answers with this entry's body and link: a file missing either is a miss, not a crash later
        return entry if entry.get("url") == url and all(isinstance(entry.get(k), str) for k in ("etag", "link")) \
            else None

    def put(self, url: str, etag: str, body: str, link: str) -> None:
        entry = {"url": url, "etag": etag, "body": body, "link": link}
        if self.directory is None:
            self._memory[url] = entry
            return
        try:
            write_atomic(self._file(url), json.dumps(entry))
        except OSError:  # the cache is an optimisation; a full disk must not fail the poll
            pass


# --- error mapping ----------------------------------------------------------------------


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
            except (TypeError, ValueError):
                return None
    if resp.headers.get("x-ratelimit-remaining") == "0":
        try:
            return max(0.0, float(resp.headers.get("x-ratelimit-reset", "")) - time.time())
        except ValueError:
            return 60.0
    return None


def _body_json(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def _reason(resp: requests.Response) -> str:
    data = _body_json(resp)
    if isinstance(data, dict):
        parts = [str(data.get("message") or "")]
        for err in data.get("errors") or ():
            if isinstance(err, dict):
                parts.append(str(err.get("message") or err.get("code") or ""))
            elif isinstance(err, str):
                parts.append(err)
        text = ": ".join(p for p in parts if p)
    elif "html" in resp.headers.get("Content-Type", "") or resp.text.lstrip().startswith("<"):
        text = "HTML body instead of JSON"
    else:
        text = resp.text
    text = " ".join(text.split()) or (resp.reason or "")
    return text[:_REASON_MAX]


class Transport:
    """One forge API root, one token, one session."""

    def __init__(self, api_url: str, *, token: str | None, token_env: str, auth_scheme: str,
                 headers: Mapping[str, str] | None = None, session: requests.Session | None = None,
                 timeout: float = 30.0, etags: EtagCache | None = None, retries: int = 2,
                 backoff: float = 0.1, max_wait: float = 30.0):
        self.api_url = api_url.rstrip("/")
        self.token_env = token_env
        self.session = session or requests.Session()
        self.timeout = timeout
        self.etags = etags
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self._token = (token or "").strip() or None  # a token file's trailing newline is harmless
        if self._token and any(c.isspace() or not c.isprintable() for c in self._token):
            raise ConfigError(f"the token in ${token_env} contains whitespace or control characters")
        self._headers = dict(headers or {})
        if self._token:
            self._headers["Authorization"] = f"{auth_scheme} {self._token}"

    def __repr__(self) -> str:
        return f"Transport({self.api_url!r}, token_env={self.token_env!r})"

    def redact(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    # the one place a request is sent
    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                json_body: Any = None, idempotent: bool | None = None,
                statuses: Mapping[int, type[ForgeError]] | None = None) -> Reply:
        """`path` is relative to the API root, or an absolute URL from a Link header.
        `statuses` maps a status code to the error a backend means by it."""
        method = method.upper()
        url = path if path.startswith(("http://", "https://")) else self.api_url + path
        where = f"{method} {urlsplit(url).path}"
        retryable = method in IDEMPOTENT if idempotent is None else idempotent
        headers = dict(self._headers)
        cached = cache_key = None
        if method == "GET" and self.etags is not None:
            cache_key = requests.Request("GET", url, params=params).prepare().url or url
            cached = self.etags.get(cache_key)
            if cached:
                headers["If-None-Match"] = cached["etag"]
        for attempt in range(self.retries + 1):
            hint = None
            try:
                resp = self.session.request(method, url, params=params, json=json_body, headers=headers,
                                            timeout=self.timeout)
            except requests.Timeout:
                err: ForgeError = Unavailable(f"{where}: timed out after {self.timeout:g}s")
            except requests.ConnectionError:
                err = Unavailable(f"{where}: connection failed ({urlsplit(url).netloc} unreachable)")
            except requests.RequestException as exc:
                # the exception text may quote request headers, so only its type is reported
                err = Unavailable(f"{where}: {type(exc).__name__}")
            else:
                log.debug("%s -> %s", where, resp.status_code)
                if resp.status_code == 304 and cached:
                    return Reply(where, 304, json.loads(cached["body"]), CaseInsensitiveDict({"Link": cached["link"]}))
                if resp.status_code < 300:
                    return self._success(where, resp, cache_key)
                err = self.error_for(where, resp, statuses or {})
                hint = _retry_after(resp)  # a 503 may carry Retry-After too
            if not (retryable and isinstance(err, (Unavailable, RateLimited)) and attempt < self.retries):
                raise err
            wait = self.backoff * 2 ** attempt if hint is None else hint
            if wait > self.max_wait:
                raise err  # a long rate-limit window: let the next tick retry
            log.debug("%s: retrying in %.1fs after: %s", where, wait, err)
            time.sleep(wait)
        raise AssertionError("unreachable")

    def _success(self, where: str, resp: requests.Response, cache_key: str | None) -> Reply:
        if resp.status_code == 204 or not resp.content:
            return Reply(where, resp.status_code, None, resp.headers)
        try:
            data = resp.json()
        except ValueError:
            kind = resp.headers.get("Content-Type", "").split(";")[0] or "no content type"
            raise Unavailable(f"{where}: HTTP {resp.status_code} answered a non-JSON body ({kind})") from None
        etag = resp.headers.get("ETag")
        if cache_key and etag and self.etags is not None:
            self.etags.put(cache_key, etag, resp.text, resp.headers.get("Link", ""))
        return Reply(where, resp.status_code, data, resp.headers)

    def error_for(self, where: str, resp: requests.Response,
                  statuses: Mapping[int, type[ForgeError]]) -> ForgeError:
        status = resp.status_code
        reason = self.redact(_reason(resp))
        head = f"{where}: HTTP {status}"
        if status in statuses:
            return statuses[status](f"{head}: {reason}")
        if status == 401:
            if not self._token:
                return Forbidden(f"{head}: no token; set ${self.token_env}")
            return Forbidden(f"{head}: the token in ${self.token_env} was rejected ({reason})")
        wait = _retry_after(resp)
        if status == 429 or (status == 403 and (wait is not None or "rate limit" in reason.lower())):
            return RateLimited(f"{head}: rate limited ({reason})", retry_after=wait if wait is not None else 60.0)
        if status == 403:
            return Forbidden(f"{head}: forbidden ({reason}); check the token in ${self.token_env}")
        if status == 404:
            return NotFound(f"{head}: not found ({reason})")
        if status in (409, 422) and re.search(r"already[ _]exist", reason, re.IGNORECASE):
            return Exists(f"{head}: already exists ({reason})")
        if status in (405, 409, 412, 423):
            return Conflict(f"{head}: refused in this state ({reason})")
        if status >= 500:
            return Unavailable(f"{head}: forge error ({reason})")
        return Rejected(f"{head}: rejected ({reason})")


def page_items(reply: Reply, key: str | None = None) -> list[dict]:
    page = reply.data.get(key) if key and isinstance(reply.data, dict) else reply.data
    if not isinstance(page, list):
        raise Unavailable(f"{reply.where}: expected a JSON list{f' under {key!r}' if key else ''}, "
                          f"got {type(page).__name__}")
    return page


def numbered_pages(http: Transport, path: str, params: Mapping[str, Any], key: str | None, *,
                   size: int, page_param: str = "page", size_param: str = "limit") -> Iterator[Reply]:
    """page=1,2,... until a page ends the list. The server may cap `size` silently (Gitea's
    MAX_RESPONSE_ITEMS), so a short page is the end only when no X-Total-Count says otherwise."""
    page, seen = 1, 0
    while True:
        reply = http.request("GET", path, params={**params, page_param: page, size_param: size})
        yield reply
        count = len(page_items(reply, key))
        seen += count
        total = reply.headers.get("X-Total-Count", "")
        if count == 0 or (seen >= int(total) if total.isdigit() else count < size):
            return
        page += 1


def linked_pages(http: Transport, path: str, params: Mapping[str, Any], *, size: int,
                 size_param: str = "per_page") -> Iterator[Reply]:
    """The first page, then each `Link: rel="next"` URL (which carries the query itself)."""
    reply = http.request("GET", path, params={**params, size_param: size})
    yield reply
    while (url := reply.next_url()) is not None:
        reply = http.request("GET", url)
        yield reply


# --- mapping into the shared model ------------------------------------------------------


def json_mapper(what: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """A JSON answer of the wrong shape is forge garbage (Unavailable), not an agentmesh bug."""

    def wrap(func: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(func)
        def mapped(data: Any, *args: Any) -> T:
            try:
                return func(data, *args)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise Unavailable(f"the forge answered a malformed {what} ({type(exc).__name__}: {exc})") from None
        return mapped

    return wrap


def _login(user: Any) -> str:
    return str(user.get("login") or "") if isinstance(user, dict) else ""


def _names(items: Any, key: str) -> tuple[str, ...]:
    return tuple(str(i[key]) for i in items or () if isinstance(i, dict) and i.get(key))


@json_mapper("issue")
def issue_from(d: dict) -> Issue:
    return Issue(number=int(d["number"]), title=d.get("title") or "", body=d.get("body") or "",
                 state="closed" if d.get("state") == "closed" else "open", labels=_names(d.get("labels"), "name"),
                 author=_login(d.get("user")), assignees=_names(d.get("assignees"), "login"),
                 created_at=d.get("created_at") or "", updated_at=d.get("updated_at") or "",
                 url=d.get("html_url") or "")


@json_mapper("pull request")
def pull_from(d: dict, reviews: Sequence[Review] = ()) -> PullRequest:
    state: PullState = "merged" if d.get("merged") or d.get("merged_at") else (
        "closed" if d.get("state") == "closed" else "open")
    head, base = d.get("head") or {}, d.get("base") or {}
    return PullRequest(number=int(d["number"]), title=d.get("title") or "", body=d.get("body") or "", state=state,
                       head=head.get("ref") or "", base=base.get("ref") or "", head_sha=head.get("sha") or "",
                       author=_login(d.get("user")), labels=_names(d.get("labels"), "name"), reviews=tuple(reviews),
                       requested_reviewers=_names(d.get("requested_reviewers"), "login"),
                       mergeable=d.get("mergeable"), merge_sha=d.get("merge_commit_sha") or None,
                       created_at=d.get("created_at") or "", updated_at=d.get("updated_at") or "",
                       url=d.get("html_url") or "")


# Gitea says REQUEST_CHANGES/COMMENT where GitHub says CHANGES_REQUESTED/COMMENTED.
_REVIEW_STATES: dict[str, ReviewState] = {
    "APPROVED": "APPROVED", "CHANGES_REQUESTED": "CHANGES_REQUESTED", "REQUEST_CHANGES": "CHANGES_REQUESTED",
    "COMMENTED": "COMMENTED", "COMMENT": "COMMENTED", "DISMISSED": "DISMISSED", "PENDING": "PENDING",
}


@json_mapper("review")
def review_from(d: dict) -> Review | None:
    """None for entries that are not reviews (Gitea lists review requests as REQUEST_REVIEW)."""
    state = _REVIEW_STATES.get(str(d.get("state") or "").upper())
    if state is None:
        return None
    if d.get("dismissed"):
        state = "DISMISSED"
    return Review(id=int(d["id"]), author=_login(d.get("user")), state=state, commit_id=d.get("commit_id") or "",
                  body=d.get("body") or "", submitted_at=d.get("submitted_at") or "")


@json_mapper("comment")
def comment_from(d: dict) -> Comment:
    return Comment(id=int(d["id"]), author=_login(d.get("user")), body=d.get("body") or "",
                   created_at=d.get("created_at") or "")


_STATUS_STATES: dict[str, CIStateName] = {
    "success": "success", "pending": "pending", "failure": "failure", "error": "error",
    "warning": "success", "skipped": "success",  # Gitea-only states that do not block
}


@json_mapper("commit status")
def status_context_from(d: dict) -> StatusContext:
    raw = str(d.get("state") or d.get("status") or "pending").lower()  # Gitea names the field `status`
    return StatusContext(context=d.get("context") or "", state=_STATUS_STATES.get(raw, "error"),
                         description=d.get("description") or "", target_url=d.get("target_url") or "")


_PERMISSIONS: dict[str, Permission] = {
    "owner": "admin", "admin": "admin", "maintain": "write", "write": "write", "triage": "read", "read": "read",
}


# --- the shared REST backend ------------------------------------------------------------


class RestForge(Forge):
    """Everything Gitea and GitHub do alike; subclasses set the quirks."""

    review_events: Mapping[ReviewEvent, str]
    label_color: str
    issue_list_params: ClassVar[Mapping[str, str]] = MappingProxyType({})  # Gitea needs type=issues
    paged_comments = True  # Gitea's comment list takes no page parameters

    def __init__(self, transport: Transport, repo: str):
        owner, name = split_repo(repo)
        self.http = transport
        self.repo = repo
        self.repo_path = f"/repos/{segment(owner)}/{segment(name)}"
        self._me: str | None = None
        self._labels: dict[str, dict] | None = None  # the repository's labels, listed once per run

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.http.api_url!r}, repo={self.repo!r}, token_env={self.http.token_env!r})"

    # hooks
    def iter_pages(self, path: str, params: Mapping[str, Any], key: str | None) -> Iterator[Reply]:
        """Every page of a list; `key` names the list inside an object reply."""
        raise NotImplementedError

    def label_ref(self, label: dict) -> int | str:
        """How the forge names a label in issue-label calls (Gitea: id, GitHub: name)."""
        raise NotImplementedError

    merge_backoff: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0)  # seconds between merge tries

    def merge_once(self, number: int, sha: str, method: Literal["merge", "squash"]) -> None:
        raise NotImplementedError

    def check_runs(self, sha: str) -> list[StatusContext]:
        return []
    def delete_branch_once(self, branch: str) -> None:
        raise NotImplementedError

    # plumbing
    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.http.request("GET", self.repo_path + path, params=params).data

    def send(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        return self.http.request(method, self.repo_path + path, json_body=body, **kw).data

    def list_all(self, path: str, params: Mapping[str, Any] | None = None, *, key: str | None = None,
                 paged: bool = True) -> list[dict]:
        full = self.repo_path + path if path.startswith("/") else path
        replies = self.iter_pages(full, params or {}, key) if paged else [self.http.request("GET", full, params=params)]
        items: list[dict] = []
        for reply in replies:
            items.extend(page_items(reply, key))
        return items

    # issues
    def list_issues(self, *, state: IssueState | Literal["all"] = "open", labels: Sequence[str] = (),
                    since: datetime | None = None) -> list[Issue]:
        params: dict[str, Any] = {"state": state, **self.issue_list_params}
        if labels:
            params["labels"] = ",".join(labels)
        if since is not None:
            params["since"] = utc_iso(since)
        return self.filtered(self.list_all("/issues", params), labels)

    @staticmethod
    def filtered(listed: Sequence[dict], labels: Sequence[str]) -> list[Issue]:
        """The issues (not PRs) of an issue listing carrying all of `labels`: Gitea ignores unknown labels
        in its filter, so the filter is applied here too."""
        wanted = set(labels)
        issues = (issue_from(d) for d in listed if not d.get("pull_request"))
        return [i for i in issues if wanted <= set(i.labels)]

    def get_issue(self, number: int) -> Issue:
        # GitHub answers 410 Gone for a deleted issue: gone is not found
        reply = self.http.request("GET", f"{self.repo_path}/issues/{int(number)}", statuses={410: NotFound})
        return issue_from(reply.data)

    def create_issue(self, title: str, body: str = "", labels: Sequence[str] = ()) -> Issue:
        payload: dict[str, Any] = {"title": title, "body": body}
        if labels:
            payload["labels"] = self._label_refs(labels)
        return issue_from(self.send("POST", "/issues", payload))

    def close_issue(self, number: int) -> None:
        self.send("PATCH", f"/issues/{int(number)}", {"state": "closed"}, idempotent=True)

    def edit_issue(self, number: int, *, title: str | None = None, body: str | None = None,
                   add_tasks: Sequence[int] = ()) -> Issue:
        """These forges have no compare-and-swap on an issue: `add_tasks` reads the body first, so an
        edit landing in between is overwritten."""
        payload: dict[str, Any] = {} if title is None else {"title": title}
        if body is not None or add_tasks:
            payload["body"] = with_tasks(self.get_issue(number).body if body is None else body, add_tasks)
        if not payload:
            return self.get_issue(number)
        return issue_from(self.send("PATCH", f"/issues/{int(number)}", payload, idempotent=True))

    def list_comments(self, number: int) -> list[Comment]:
        return [comment_from(d) for d in self.list_all(f"/issues/{int(number)}/comments", paged=self.paged_comments)]

    def comment(self, number: int, body: str) -> Comment:
        return comment_from(self.send("POST", f"/issues/{int(number)}/comments", {"body": body}))

    def _repo_labels(self, *, fresh: bool = False) -> dict[str, dict]:
        """The repository's labels by name, listed once per forge object (one run): labels are created
        far more rarely than they are set, and a label missing here is created or re-listed on use."""
        if fresh or self._labels is None:
            self._labels = {d["name"]: d for d in self.list_all("/labels")}
        return self._labels

    def _label_refs(self, names: Sequence[str]) -> list[int | str]:
        """Refs for `names`, creating labels the repository lacks (a lost creation race is adopted)."""
        known = self._repo_labels()
        for name in dict.fromkeys(names):
            if name in known:
                continue
            try:
                known[name] = self.send("POST", "/labels", {"name": name, "color": self.label_color})
            except (Exists, Rejected):
                known = self._repo_labels(fresh=True)  # created by someone else since the run listed them
                if name not in known:
                    raise
        return [self.label_ref(known[n]) for n in dict.fromkeys(names)]

    def relabel(self, number: int, *, add: Sequence[str] = (), remove: Collection[str] = (),
                open_only: bool = False) -> None:
        """One read of the issue's labels, then one replace call (or none, when nothing changes). Neither
        forge has a compare-and-swap on labels: one set by someone else in between is overwritten (and an
        `open_only` change judges the state that read shows)."""
        issue = self.get(f"/issues/{int(number)}")
        if open_only and issue.get("state") != "open":
            add = ()
        current = [d for d in issue.get("labels") or () if isinstance(d, dict)]
        names = [str(d["name"]) for d in current]
        wanted = [n for n in names if n not in remove or n in add] + [n for n in dict.fromkeys(add) if n not in names]
        if wanted == names:
            return
        if not wanted:  # GitHub's replace call takes no empty list
            self.send("DELETE", f"/issues/{int(number)}/labels")
            return
        refs = {str(d["name"]): self.label_ref(d) for d in current}
        missing = [n for n in wanted if n not in refs]
        refs.update(zip(missing, self._label_refs(missing), strict=True))
        self.send("PUT", f"/issues/{int(number)}/labels", {"labels": [refs[n] for n in wanted]})

    def add_labels(self, number: int, labels: Sequence[str]) -> None:
        if labels:
            self.send("POST", f"/issues/{int(number)}/labels", {"labels": self._label_refs(labels)}, idempotent=True)

    def remove_labels(self, number: int, labels: Sequence[str]) -> None:
        present = {d["name"]: d for d in self.get(f"/issues/{int(number)}").get("labels") or ()}
        for name in dict.fromkeys(labels):
            if name in present:
                try:
                    self.send("DELETE", f"/issues/{int(number)}/labels/{segment(self.label_ref(present[name]))}")
                except NotFound:
                    pass  # removed meanwhile: the goal is reached

    def set_assignees(self, number: int, assignees: Sequence[str]) -> None:
        self.send("PATCH", f"/issues/{int(number)}", {"assignees": list(assignees)}, idempotent=True)

    # pull requests
    def list_pulls(self, *, state: PullState | Literal["all"] = "open") -> list[PullRequest]:
        query = "closed" if state == "merged" else state
        pulls = [pull_from(d) for d in self.list_all("/pulls", {"state": query})]
        return pulls if state in ("open", "all") else [p for p in pulls if p.state == state]

    def get_pull(self, number: int) -> PullRequest:
        return pull_from(self.get(f"/pulls/{int(number)}"), self.list_reviews(number))

    def create_pull(self, *, head: str, base: str, title: str, body: str = "", labels: Sequence[str] = ()
                    ) -> PullRequest:
        try:
            pull = pull_from(self.send("POST", "/pulls", {"head": head, "base": base, "title": title, "body": body}))
        except Exists:
            existing = self.find_pull_for_head(head)
            if existing is None:
                raise
            pull = existing
        if labels:
            self.add_labels(pull.number, labels)
            pull = replace(pull, labels=(*pull.labels, *(n for n in dict.fromkeys(labels) if n not in pull.labels)))
        return pull

    def request_reviewers(self, number: int, reviewers: Sequence[str]) -> None:
        if reviewers:
            self.send("POST", f"/pulls/{int(number)}/requested_reviewers", {"reviewers": list(reviewers)},
                      idempotent=True)

    def list_reviews(self, number: int) -> list[Review]:
        reviews = (review_from(d) for d in self.list_all(f"/pulls/{int(number)}/reviews"))
        return [r for r in reviews if r is not None]

    def submit_review(self, number: int, *, event: ReviewEvent, body: str, commit_id: str) -> Review:
        # neither forge refuses a review of an old commit, so the binding is checked here
        head = (self.get(f"/pulls/{int(number)}").get("head") or {}).get("sha")
        if head != commit_id:
            raise Conflict(f"PR #{number}: head is {str(head)[:12]}, not the reviewed {commit_id[:12]}")
        payload = {"event": self.review_events[event], "body": body, "commit_id": commit_id}
        review = review_from(self.send("POST", f"/pulls/{int(number)}/reviews", payload))
        if review is None:
            raise Unavailable(f"POST {self.repo_path}/pulls/{number}/reviews: answered no review state")
        return review

    def merge_pull(self, number: int, *, sha: str, method: Literal["merge", "squash"] = "merge") -> None:
        """The one retry layer for merges: while the forge computes mergeability (NotMergeableYet),
        wait `merge_backoff` between tries; then the caller reports the merge as pending."""
        for delay in (*self.merge_backoff, None):
            try:
                self.merge_once(int(number), sha, method)
                return
            except (Conflict, NotMergeableYet) as exc:
                current = pull_from(self.get(f"/pulls/{int(number)}"))
                if current.state == "merged" and current.head_sha == sha:
                    return  # a retried or concurrent merge of the same head already landed
                if isinstance(exc, Conflict) or delay is None:
                    raise
            time.sleep(delay)

    def close_pull(self, number: int) -> None:
        if pull_from(self.get(f"/pulls/{int(number)}")).state == "open":
            self.send("PATCH", f"/pulls/{int(number)}", {"state": "closed"}, idempotent=True)

    # CI
    def ci_status(self, sha: str) -> CIStatus:
        seen: dict[str, StatusContext] = {}
        for d in self.list_all(f"/commits/{segment(sha)}/status", key="statuses"):
            ctx = status_context_from(d)
            seen.setdefault(ctx.context, ctx)  # newest first: keep the latest per context
        contexts = (*seen.values(), *self.check_runs(sha))
        return CIStatus(sha=sha, state=combine_states(c.state for c in contexts), contexts=tuple(contexts))

    def set_status(self, sha: str, *, context: str, state: CIStateName, description: str = "",
                   target_url: str = "") -> None:
        if state == "none":
            raise ValueError("a status cannot be set to 'none'")
        payload = {"state": state, "context": context, "description": description}
        if target_url:
            payload["target_url"] = target_url
        self.send("POST", f"/statuses/{segment(sha)}", payload)

    # content and identity
    def read_file(self, path: str, ref: str) -> str | None:
        try:
            data = self.get(f"/contents/{tail(path.lstrip('/'))}", {"ref": ref})
        except NotFound:
            return None
        if not isinstance(data, dict) or data.get("type") != "file":
            return None  # a directory or a submodule is not a file
        if data.get("encoding") != "base64":
            raise Rejected(f"GET {self.repo_path}/contents/{path}: no inline content (encoding "
                           f"{data.get('encoding')!r}; file too large?)")
        try:
            return base64.b64decode(data.get("content") or "").decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unavailable(f"GET {self.repo_path}/contents/{path}: content is not base64 UTF-8 text") from None

    def delete_branch(self, branch: str) -> None:
        try:
            self.delete_branch_once(branch)
        except NotFound:
            pass

    def current_user(self) -> str:
        if self._me is None:
            self._me = _login(self.http.request("GET", "/user").data)
        return self._me

    def permission(self, user: str) -> Permission:
        try:
            data = self.get(f"/collaborators/{segment(user)}/permission")
        except NotFound:
            return "none"
        return _PERMISSIONS.get(str(data.get("permission") or "").lower(), "none")
