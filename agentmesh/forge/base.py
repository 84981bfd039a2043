"""One forge interface; every backend maps into the shared model (core/model.py) at its edge.

Backends: `local` (git-native, forge/local/), `gitea` and `github`
(forge/gitea.py, forge/github.py over forge/http.py). Each converts its
forge's data and quirks into these types, as Renovate's platform layer does:
callers never see a Gitea 409 or a GitHub 422, only `Exists`.

Writes are idempotent "ensure" operations where the forge allows it:
closing a closed issue, removing an absent label or deleting a deleted
branch succeeds; creating a PR for a head that already has an open PR
returns that PR.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from agentmesh.core.errors import AgentmeshError, TemporaryError, UserError
from agentmesh.core.markers import MARKER_PREFIX, marker_text  # noqa: F401  (re-exported)
from agentmesh.core.model import (  # noqa: F401  (re-exported: the forge API speaks the shared model)
    CIStateName,
    CIStatus,
    Comment,
    Issue,
    IssueState,
    LabelEvent,
    Permission,
    PullRequest,
    PullState,
    Review,
    ReviewEvent,
    ReviewState,
    StatusContext,
    combine_states,
)
from agentmesh.git.remote import RefUpdate, RemoteRefs


@dataclass(frozen=True)
class Relabel:
    """A label change of an issue or PR (`Forge.relabel`'s arguments), to land with another write."""

    number: int
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    open_only: bool = False  # add only while the item is open (removals always apply): see `Forge.relabel`


# --- errors ----------------------------------------------------------------------


class ForgeError(AgentmeshError):
    pass


class Exists(ForgeError, UserError):
    """The thing to create is already there (Gitea 409, GitHub 422)."""


class NotFound(ForgeError, UserError):
    pass


class Forbidden(ForgeError, UserError):
    """401/403 that is not a rate limit: the token lacks a scope or is invalid."""


class Conflict(ForgeError, UserError):
    """The forge refused because of the target's state (merge conflict, stale head)."""


class Stale(ForgeError, UserError):
    """A ref another write carried (`PullFence`) did not hold what it was pinned to: nothing landed."""

    def __init__(self, message: str, refs: Sequence[str]):
        super().__init__(message)
        self.refs = tuple(refs)


class RateLimited(ForgeError, TemporaryError):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class NotMergeableYet(ForgeError, TemporaryError):
    """The forge is still computing mergeability (Gitea answers 405); retry with backoff."""


class DecidedOnStale(NotMergeableYet):
    """What a merge was decided on changed before it landed (a review, an issue closed): the caller's next run
    decides again. Its text is ours, never the forge's."""


class Unavailable(ForgeError, TemporaryError):
    """The forge is unreachable or answered 5xx or garbage."""


# --- the interface -------------------------------------------------------------------


class PullFence(ABC):
    """Refs of the mesh's remote that a new PR must land with, in one atomic push, on a forge whose PRs are
    refs of that remote (the local forge): the claim's renewal, pinned to the claim (so a PR is never
    created by an agent whose claim was lost), the work branch and the journal (agent/jobs.py)."""

    refs: tuple[str, ...]  # read in the creation's own listing, before the PRs are listed
    head_sha: str  # the commit the updates put on the PR's head branch

    @abstractmethod
    def updates(self, listed: Mapping[str, str], number: int) -> Sequence[RefUpdate]:
        """The compare-and-swap updates to push with PR `number`, built on `listed` (the remote's refs of
        `refs` a moment ago); raising stops the creation, nothing pushed."""

    @abstractmethod
    def landed(self, number: int) -> None:
        """The push landed, PR `number` with it."""


class Carried(ABC):
    """Refs of the mesh's remote that a write lands with, in its one atomic push, on a forge whose items are refs of
    that remote (the local forge): the journal with the write's lines, say (agent/monitor.py)."""

    refs: tuple[str, ...]  # read in the write's own listing

    @abstractmethod
    def updates(self, listed: Mapping[str, str]) -> Sequence[RefUpdate]:
        """The compare-and-swap updates to push with the write, built on `listed` (the remote's refs of `refs` a
        moment ago); raising stops the write, nothing pushed. Called again after a lost race, on a new listing."""

    @abstractmethod
    def landed(self) -> None:
        """The push landed, the write with it."""


class MergeFence(Carried):
    """What a merge carries: the claim's release, pinned to the claim (so only its holder merges, and no moment
    shows the work merged under a held claim), and the journal with the merge's lines (agent/monitor.py)."""


class Forge(ABC):
    """Issues, pull requests, reviews, CI and content of one repository."""

    kind: str

    # issues
    @abstractmethod
    def list_issues(self, *, state: IssueState | Literal["all"] = "open", labels: Sequence[str] = (),
                    since: datetime | None = None) -> list[Issue]:
        """Issues only (never PRs) carrying all of `labels`, updated at or after `since`."""

    @abstractmethod
    def get_issue(self, number: int) -> Issue: ...

    @abstractmethod
    def create_issue(self, title: str, body: str = "", labels: Sequence[str] = ()) -> Issue: ...

    @abstractmethod
    def close_issue(self, number: int) -> None:
        """Idempotent."""

    @abstractmethod
    def edit_issue(self, number: int, *, title: str | None = None, body: str | None = None,
                   add_tasks: Sequence[int] = ()) -> Issue:
        """Set the title and/or body, then append a task-list item `- [ ] #N` for each of `add_tasks`
        not in the task list yet (core/deps.py). Who may edit is the forge's rule (the local forge: the
        issue's author or a writer)."""

    @abstractmethod
    def list_comments(self, number: int) -> list[Comment]:
        """Comments on an issue or PR, oldest first."""

    @abstractmethod
    def comment(self, number: int, body: str) -> Comment: ...

    @abstractmethod
    def add_labels(self, number: int, labels: Sequence[str]) -> None:
        """Add labels to an issue or PR, creating labels the repository lacks."""

    @abstractmethod
    def remove_labels(self, number: int, labels: Sequence[str]) -> None:
        """Idempotent: labels not on the issue are ignored."""

    def carried(self, change: Relabel) -> RefUpdate | None:
        """`change` as one compare-and-swap ref update for a push to the mesh's remote to carry (the local
        forge, whose items are refs of that remote, builds it on the item as it was listed a moment ago);
        None when this forge cannot (the REST forges), or has no fresh listing of the item: then `relabel`."""
        return None

    def relabel(self, number: int, *, add: Sequence[str] = (), remove: Collection[str] = (),
                open_only: bool = False) -> None:
        """Add `add` and remove `remove` (idempotent, labels the repository lacks are created): the REST
        forges do it in one label-replace call, so a stage change is one write. `open_only`: add nothing to a
        closed item, judged on the state the change is built on (a run that saw the issue open before it was
        closed and cleaned up must not put a stage back on it)."""
        if add and open_only and self.get_issue(number).state != "open":
            add = ()
        if add:
            self.add_labels(number, add)
        dropped = [label for label in remove if label not in add]
        if dropped:
            self.remove_labels(number, dropped)

    @abstractmethod
    def label_events(self, number: int) -> list[LabelEvent]:
        """Who added and removed each label of issue `number`, oldest first (GitHub: the issue's events;
        Gitea: its timeline; local: the item's commits)."""

    @abstractmethod
    def set_assignees(self, number: int, assignees: Sequence[str]) -> None: ...

    # pull requests
    @abstractmethod
    def list_pulls(self, *, state: PullState | Literal["all"] = "open") -> list[PullRequest]: ...

    def list_open(self, *, listing: RemoteRefs | None = None) -> tuple[list[Issue], list[PullRequest]]:
        """The open issues and the open PRs (the local forge lists its items once for both; `listing`: the
        caller's listing of `item_prefixes` and `refs/heads/`, the PRs' head branches, made a moment ago)."""
        return self.list_issues(state="open"), self.list_pulls(state="open")

    def pulls_and_labelled(self, label: str, *,
                           listing: RemoteRefs | None = None) -> tuple[list[PullRequest], list[Issue]]:
        """The open PRs and the open issues labelled `label` (the local forge reads both from one listing
        of its items; the REST forges ask for the labelled issues alone, not every open issue). `listing`
        as for `list_open`."""
        return self.list_pulls(state="open"), self.list_issues(state="open", labels=[label])

    def item_prefixes(self) -> tuple[str, ...]:
        """The refs of the mesh's remote that this forge's listing of its items reads (the local forge's items;
        none for the REST forges): a caller that lists that remote anyway lists them in the same round trip,
        and hands that listing to `issue_and_labelled`."""
        return ()

    def as_listed(self, listing: RemoteRefs | None) -> Forge:
        """This forge, its reads of items (an issue, a PR, their comments and reviews, the PR listing) as
        `listing` shows them, with no listing of their own: the local forge's, when the caller made one of
        `item_prefixes` a moment ago (or moved it since by its own push: `RemoteRefs.moved`). Writes still read
        the remote. The REST forges (and `listing` None): this forge itself."""
        return self

    def issue_and_labelled(self, number: int, label: str, *,
                           listing: RemoteRefs | None = None) -> tuple[Issue | None, list[Issue]]:
        """Issue `number` (None: there is none) and the open issues labelled `label` (the local forge reads
        both from one listing of its items: `listing`, when the caller just made one of `item_prefixes`)."""
        try:
            issue: Issue | None = self.get_issue(number)
        except NotFound:
            issue = None
        return issue, self.list_issues(state="open", labels=[label])

    @abstractmethod
    def get_pull(self, number: int) -> PullRequest:
        """With its reviews."""

    @abstractmethod
    def create_pull(self, *, head: str, base: str, title: str, body: str = "", labels: Sequence[str] = ()
                    ) -> PullRequest:
        """Open a PR, or return the open PR that already exists for `head`; either way with `labels` added
        (the local forge writes a new PR and its labels in one push)."""

    def create_fenced_pull(self, fence: PullFence, *, head: str, base: str, title: str, body: str = "",
                           labels: Sequence[str] = (), relabel: Sequence[Relabel] = (),
                           reviewers: Sequence[str] = ()) -> PullRequest | None:
        """`create_pull`, in the same atomic push as `fence`'s updates, which create the branch `head`: all
        land or none (`Stale` when one of the fence's refs moved), with a review requested from `reviewers`
        (logins). None when not done: this forge keeps its PRs outside git (the REST forges), or `head` has a
        PR already; then push the fence, and `create_pull`."""
        return None

    @abstractmethod
    def request_reviewers(self, number: int, reviewers: Sequence[str]) -> None: ...

    @abstractmethod
    def list_reviews(self, number: int) -> list[Review]: ...

    @abstractmethod
    def submit_review(self, number: int, *, event: ReviewEvent, body: str, commit_id: str) -> Review:
        """A review bound to `commit_id`; Conflict if the head moved past it."""

    def submit_review_with_status(self, number: int, *, event: ReviewEvent, body: str, commit_id: str,
                                  status: StatusContext, carried: Carried | None = None) -> Review:
        """`submit_review`, then `status` set on `commit_id`. The local forge: both in one atomic push, with
        `carried`'s updates (here, where PRs live outside git, `carried` is not pushed: its caller's own flush is)."""
        review = self.submit_review(number, event=event, body=body, commit_id=commit_id)
        self.set_status(commit_id, context=status.context, state=status.state, description=status.description,
                        target_url=status.target_url)
        return review

    @abstractmethod
    def merge_pull(self, number: int, *, sha: str, method: Literal["merge", "squash"] = "merge") -> None:
        """Merge only if the head is still `sha`. Conflict on conflicts or a moved head;
        NotMergeableYet while the forge computes mergeability."""

    def merge_fenced_pull(self, fence: MergeFence, number: int, *, sha: str,
                          method: Literal["merge", "squash"] = "merge", close: Sequence[int] = (),
                          relabel: Sequence[Relabel] = (), listing: RemoteRefs | None = None) -> bool:
        """`merge_pull` and its clean-up in one atomic push with `fence`'s updates: the head branch deleted
        (pinned to `sha`), the issues `close` closed, the label changes `relabel` made. All land or none; a lost
        race re-reads and tries again. `listing`: the caller's, of `item_prefixes` and the branches, that it
        decided on; the first round pins what it shows of those refs instead of listing them (when it shows
        them all). False when not done: this forge keeps its PRs outside git (the REST
        forges), or the PR is not open (merged already: the caller's `merge_pull` says so); then `merge_pull`,
        and clean up step by step. Errors as `merge_pull`'s, and whatever the fence raises (nothing pushed)."""
        return False

    @abstractmethod
    def close_pull(self, number: int) -> None:
        """Idempotent."""

    # CI
    @abstractmethod
    def ci_status(self, sha: str) -> CIStatus: ...

    @abstractmethod
    def set_status(self, sha: str, *, context: str, state: CIStateName, description: str = "",
                   target_url: str = "") -> None: ...

    # content and identity
    @abstractmethod
    def read_file(self, path: str, ref: str) -> str | None:
        """The file's text at ref, or None when it does not exist."""

    @abstractmethod
    def delete_branch(self, branch: str) -> None:
        """Idempotent. Never used for claim refs (docs/design/protocol.md, "The measurements behind it")."""

    @abstractmethod
    def current_user(self) -> str: ...

    @abstractmethod
    def permission(self, user: str) -> Permission: ...

    # shared behaviour, written once for every backend

    def ensure_comment(self, number: int, marker: str, body: str, *,
                       comments: Sequence[Comment] | None = None) -> Comment:
        """Post `body` once: if a comment of ours carrying `marker` exists, return it instead. `comments`:
        the ones to look in, when the caller judged their authors (agent/trust.py) [default: all]."""
        tag = marker_text(marker)
        me = self.current_user()
        for existing in self.list_comments(number) if comments is None else comments:
            if tag in existing.body and existing.author == me:
                return existing
        return self.comment(number, f"{tag}\n{body}")

    def pulls_for_head(self, head: str, *, base: str) -> list[PullRequest]:
        """The PRs from branch `head` into `base`, in any state, oldest first. The REST forges ask for the
        branch directly, so the cost does not grow with the repository's history of PRs. Gitea answers
        one PR per head and base, not necessarily the newest: callers look for an open PR in the open
        listing (find_pull_for_head) and use this for what closed."""
        return sorted((p for p in self.list_pulls(state="all") if p.head == head and p.base == base),
                      key=lambda p: p.number)

    def find_pull_for_head(self, head: str) -> PullRequest | None:
        """The open PR of `head`, if any, from the listing of open PRs."""
        for pull in self.list_pulls(state="open"):
            if pull.head == head:
                return pull
        return None

    def latest_pull_for_head(self, head: str, *, base: str) -> PullRequest | None:
        """The newest PR of `head` in any state: before opening one, a merged or closed PR of the
        same pushed work must be seen, or the work would get a second PR."""
        return max(self.pulls_for_head(head, base=base), key=lambda p: p.number, default=None)
