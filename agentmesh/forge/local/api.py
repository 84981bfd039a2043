"""`LocalForge`: the forge interface (forge/base.py) over the git-native store.

Issues, PRs, reviews and statuses live in the remote itself (store.py, and
docs/local-forge.md for the format). Forge text only ever lands in JSON blobs
and commit messages; PR head and base names are validated branch names.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Literal

from agentmesh.core.deps import with_tasks
from agentmesh.core.errors import TemporaryError, UserError
from agentmesh.core.markers import closing_references
from agentmesh.core.moments import parse_ts
from agentmesh.forge.base import (
    Carried,
    CIStateName,
    CIStatus,
    Comment,
    Conflict,
    DecidedOnStale,
    Forbidden,
    Forge,
    Issue,
    IssueState,
    LabelEvent,
    MergeFence,
    NotFound,
    Permission,
    PullFence,
    PullRequest,
    PullState,
    Relabel,
    Review,
    ReviewEvent,
    StatusContext,
    combine_states,
)
from agentmesh.forge.local.schema import (
    CI_STATES,
    COMMENTS,
    FORMAT_VERSION,
    LABELS_FILE,
    LABELS_REF,
    PERMISSIONS,
    REVIEW_STATES,
    ROSTER_FILE,
    ROSTER_REF,
    SHA,
    STATUSES,
    STATUSES_FILE,
    Edit,
    InvalidName,
    Item,
    check_branch_name,
    check_label,
    check_sha,
    comment_view,
    issue_view,
    item_ref,
    load_json,
    pull_guard_ref,
    review_view,
)
from agentmesh.forge.local.store import MAX_ATTEMPTS, ItemStore, actor_of, backoff
from agentmesh.git.cache import CacheClone
from agentmesh.git.remote import RefUpdate, RemoteRefs
from agentmesh.git.signing import SIGNED_PER_PUSH
from agentmesh.host.files import write_atomic

KNOWN_LABELS = "agentmesh-labels.json"  # in the cache clone: the registry's names this host has seen


def utc_now() -> datetime:
    return datetime.now(UTC)


class LocalForge(Forge):
    kind = "local"

    def __init__(self, cache: CacheClone, *, user: str, clock: Callable[[], datetime] = utc_now):
        self.cache = cache
        self.git = cache.git
        self.url = cache.url
        self.user = user
        self.clock = clock
        self.store = ItemStore(cache, user=user, documents=[LABELS_REF])
        self._known_labels: set[str] = set()  # names seen in the labels registry (see _ensure_labels)

    def as_listed(self, listing: RemoteRefs | None) -> LocalForge:
        """This forge, reading its items (issues, PRs, their comments and reviews) as `listing` shows them."""
        if listing is None:
            return self
        view = copy.copy(self)
        view.store = self.store.as_listed(listing)
        return view

    def _now(self) -> str:
        return self.clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _meta(self, item: Item, **changes) -> dict:
        return {**item.meta, **changes, "updated_at": self._now()}

    # --- views ---------------------------------------------------------------------

    def _pulls(self, items: list[Item], *, with_reviews: bool, live: dict[str, str] | None = None) -> list[PullRequest]:
        """PR views; open PRs show their head branch's sha on the remote now (`live`: as the caller just
        listed them)."""
        open_heads = [f"refs/heads/{i.meta['head']}" for i in items if i.meta.get("state") == "open"]
        if live is None:
            live = self.store.remote(open_heads) if open_heads else {}
        reviews: dict[int, tuple[Review, ...]] = {}
        if with_reviews:
            # the listing read meta only: one more batch for the review trees, one for their blobs
            trees = self.store.read_items({i.number: i.sha for i in items}, reviews=True)
            entries = {n: t.reviews for n, t in trees.items() if t is not None}
            ordered = [e for n in entries for e in sorted(entries[n], key=lambda e: e.name)]
            blobs = self.cache.listed_objects(ordered, "reading the reviews")
            pos = 0
            for n, ents in entries.items():
                found = (load_json(b.data) for b in blobs[pos:pos + len(ents)])
                reviews[n] = tuple(review_view(d) for d in found if d is not None and isinstance(d.get("id"), int))
                pos += len(ents)
        pulls = []
        for item in items:
            m = item.meta
            head_sha = m.get("head_sha", "")
            if m.get("state") == "open":
                head_sha = live.get(f"refs/heads/{m['head']}", head_sha)
            pulls.append(PullRequest(
                number=item.number, title=m.get("title", ""), body=m.get("body", ""), state=m.get("state", "open"),
                head=m["head"], base=m["base"], head_sha=head_sha, author=m.get("author", ""),
                labels=tuple(m.get("labels", ())), reviews=reviews.get(item.number, ()),
                requested_reviewers=tuple(m.get("requested_reviewers", ())), merge_sha=m.get("merge_sha"),
                created_at=m.get("created_at", ""), updated_at=m.get("updated_at", ""),
            ))
        return pulls

    # --- issues ----------------------------------------------------------------------

    def list_issues(self, *, state: IssueState | Literal["all"] = "open", labels: Sequence[str] = (),
                    since: datetime | None = None) -> list[Issue]:
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        wanted = set(labels)
        found = []
        for item in self.store.all_items():
            if item.is_pull:
                continue
            issue = issue_view(item)
            if state != "all" and issue.state != state:
                continue
            if not wanted <= set(issue.labels):
                continue
            # an item's date is its writer's word (any text): one that is no moment in range is not filtered on
            if since is not None and ((parse_ts(issue.updated_at) or since) < since):
                continue
            found.append(issue)
        return found

    def get_issue(self, number: int) -> Issue:
        return issue_view(self.store.load(number))

    def create_issue(self, title: str, body: str = "", labels: Sequence[str] = ()) -> Issue:
        labels = list(dict.fromkeys(check_label(name) for name in labels))
        if labels:
            self._ensure_labels(labels)
        now = self._now()
        meta = {"version": FORMAT_VERSION, "kind": "issue", "title": title, "body": body, "state": "open",
                "labels": labels, "assignees": [], "author": self.user, "created_at": now, "updated_at": now}
        number = self.store.create_item(meta)
        assert number is not None  # only a guarded creation can lose
        return issue_view(Item(number, "", meta))

    def close_issue(self, number: int) -> None:
        self._close(number, kinds=("issue", "pull"))

    def edit_issue(self, number: int, *, title: str | None = None, body: str | None = None,
                   add_tasks: Sequence[int] = ()) -> Issue:
        """Task-list items are appended to the body as it is when the write lands: two agents growing one
        task list both land. Its author or a user with write access only, like GitHub; the hook
        (`agentmesh hook`) also refuses an edit no roster key signed."""
        allowed: list[bool] = []

        def change(item: Item) -> Edit | None:
            if item.meta.get("kind") != "issue":
                raise NotFound(f"#{number} is a pull request, not an issue")
            if item.meta.get("author") != self.user and not allowed:
                allowed.append(self.permission(self.user) in ("admin", "write"))
            if item.meta.get("author") != self.user and not allowed[0]:
                raise Forbidden(f"{self.user} may not edit #{number}: neither its author nor a writer")
            new = {"title": item.meta.get("title", "") if title is None else title,
                   "body": with_tasks(item.meta.get("body", "") if body is None else body, add_tasks)}
            changes = {k: v for k, v in new.items() if v != item.meta.get(k)}
            return Edit(self._meta(item, **changes, edited_by=self.user), "issue: edit") if changes else None

        self.store.update(number, change)
        return self.get_issue(number)

    def _close(self, number: int, kinds: Sequence[str]) -> None:
        def change(item: Item) -> Edit | None:
            if item.meta.get("kind") not in kinds or item.meta.get("state") != "open":
                return None
            return Edit(self._meta(item, state="closed", closed_by=self.user), f"{item.meta['kind']}: close")

        self.store.update(number, change)

    def list_comments(self, number: int) -> list[Comment]:
        """The comments, each with the item commit that last wrote it (see list_reviews)."""
        item = self.store.load(number, comments=True)
        return [replace(comment_view(data), recorded_in=writer)
                for writer, data in self.store.recorded(item, COMMENTS, item.comments)]

    def comment(self, number: int, body: str) -> Comment:
        def change(item: Item) -> Edit:
            data = {"id": Item.next_id(item.comments), "author": self.user, "body": body, "created_at": self._now()}
            return Edit(self._meta(item), "comment", comment=data)

        landed = self.store.update(number, change)
        assert landed is not None and landed.comment is not None  # `change` always adds a comment
        return comment_view(landed.comment)

    def add_labels(self, number: int, labels: Sequence[str]) -> None:
        self.relabel(number, add=labels)

    def remove_labels(self, number: int, labels: Sequence[str]) -> None:
        self.relabel(number, remove=labels)

    def relabel(self, number: int, *, add: Sequence[str] = (), remove: Collection[str] = (),
                open_only: bool = False) -> None:
        """One commit on the item (a stage change is one write, as on the REST forges), compare-and-swap
        on the item's ref like every item change (so `open_only` judges the state the commit replaces)."""
        change = self._label_change(add, remove, open_only)
        if change is not None:
            self.store.update(number, change)

    def carried(self, change: Relabel) -> RefUpdate | None:
        """The label change as the item's next commit, pinned to the head the last listing of this store
        saw less than GUESS_SECONDS ago (a stale one only fails the push that carries it)."""
        edit = self._label_change(change.add, change.remove, change.open_only)
        ref = item_ref(change.number)
        listed = self.store.listed(ref)
        if edit is None or listed is None:
            return None
        item = self.store.item_at(change.number, listed, comments=True, reviews=True)
        landed = edit(item)
        return None if landed is None else RefUpdate(ref, self.store.item_commit(item, landed), listed)

    def _label_change(self, add: Sequence[str], remove: Collection[str],
                      open_only: bool = False) -> Callable[[Item], Edit | None] | None:
        """The item edit of a label change (None when it changes nothing), the labels it adds registered;
        `open_only`: on a closed item it only removes."""
        added = list(dict.fromkeys(check_label(name) for name in add))
        dropped = {name for name in remove if name not in added}
        if not added and not dropped:
            return None
        if added:
            self._ensure_labels(added)

        def change(item: Item) -> Edit | None:
            current = list(item.meta.get("labels", []))
            adding = added if not open_only or item.meta.get("state") == "open" else []
            wanted = [name for name in current if name not in dropped] + [n for n in adding if n not in current]
            if wanted == current:
                return None
            verb = "add" if not dropped & set(current) else "remove" if set(wanted) <= set(current) else "set"
            return Edit(self._meta(item, labels=wanted), f"labels: {verb}")

        return change

    def label_events(self, number: int) -> list[LabelEvent]:
        """Each label change of the item's commits, its author the commit's actor: only the commit's
        signature (`recorded_in`) says who really made it."""
        events: list[LabelEvent] = []
        before: list[str] = []
        for sha, message, meta in self.store.meta_history(self.store.load(number).sha):
            labels = [str(name) for name in meta.get("labels", [])]
            actor = actor_of(message)
            events += [LabelEvent(name, True, actor, sha) for name in labels if name not in before]
            events += [LabelEvent(name, False, actor, sha) for name in before if name not in labels]
            before = labels
        return events

    def set_assignees(self, number: int, assignees: Sequence[str]) -> None:
        wanted = list(dict.fromkeys(assignees))

        def change(item: Item) -> Edit | None:
            if item.meta.get("assignees", []) == wanted:
                return None
            return Edit(self._meta(item, assignees=wanted), "assignees: set")

        self.store.update(number, change)

    # --- labels registry -------------------------------------------------------------

    def list_labels(self, *, recent: bool = False) -> dict[str, dict]:
        """The repository's labels: name -> {color, description}. (local only) `recent`: the registry as this
        store's last listing saw it, when that was a moment ago (see ItemStore.load_doc)."""
        labels = self.store.load_doc(LABELS_REF, LABELS_FILE, recent=recent).get("labels")
        return labels if isinstance(labels, dict) else {}

    def _ensure_labels(self, names: Sequence[str]) -> None:
        # the registry only grows: a name this host saw in it once is there still, and costs nothing (the
        # names seen are kept in the cache clone, so a stage change of a later run reads no registry either)
        if set(names) <= self._known_labels:
            return
        if not self._known_labels:
            self._known_labels.update(self._saved_labels())
            if set(names) <= self._known_labels:
                return
        # the registry only grows: as listed a moment ago (the items' listing holds it), it is read without
        # a listing of its own, and a name missing there is looked for again by `update_doc`, on the remote
        self._known_labels.update(self.list_labels(recent=True))
        self._save_labels()
        if set(names) <= self._known_labels:
            return  # one read, no push

        def change(doc: dict) -> dict | None:
            known = dict(doc["labels"]) if isinstance(doc.get("labels"), dict) else {}
            missing = [n for n in names if n not in known]
            if not missing:
                return None
            known.update({n: {"color": "ededed", "description": ""} for n in missing})
            return {"version": FORMAT_VERSION, "labels": known}

        self.store.update_doc(LABELS_REF, LABELS_FILE, change, "labels: create")
        self._known_labels.update(names)
        self._save_labels()

    def _saved_labels(self) -> list[str]:
        try:
            names = json.loads((self.cache.path / KNOWN_LABELS).read_text())
        except (OSError, ValueError):
            return []  # missing or damaged: it is only a cache
        return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []

    def _save_labels(self) -> None:
        try:
            write_atomic(self.cache.path / KNOWN_LABELS, json.dumps(sorted(self._known_labels)))
        except OSError:
            pass  # the next run reads the registry again

    # --- pull requests -----------------------------------------------------------------

    def list_pulls(self, *, state: PullState | Literal["all"] = "open") -> list[PullRequest]:
        items = [i for i in self.store.all_items() if i.is_pull and (state == "all" or i.meta.get("state") == state)]
        return self._pulls(items, with_reviews=True)

    def item_prefixes(self) -> tuple[str, ...]:
        return self.store.prefixes

    def issue_and_labelled(self, number: int, label: str, *,
                           listing: RemoteRefs | None = None) -> tuple[Issue | None, list[Issue]]:
        """Both from one listing of the items (`listing`: the caller's, of `item_prefixes` among its own refs)."""
        items = self.store.all_items(listing=listing)
        labelled = [view for item in items
                    if not item.is_pull and (view := issue_view(item)).state == "open" and label in view.labels]
        return next((issue_view(item) for item in items if item.number == number), None), labelled

    def list_open(self, *, listing: RemoteRefs | None = None) -> tuple[list[Issue], list[PullRequest]]:
        """Both from one listing of the items (`listing`: the caller's, of `item_prefixes` and of `refs/heads/`,
        which shows the PRs' heads too: it must hold both)."""
        items = self.store.all_items(listing=listing)
        issues = [view for item in items if not item.is_pull and (view := issue_view(item)).state == "open"]
        pulls = [i for i in items if i.is_pull and i.meta.get("state") == "open"]
        heads = [f"refs/heads/{i.meta['head']}" for i in pulls]
        live = None if listing is None else {ref: listing.refs[ref] for ref in heads if ref in listing.refs}
        return issues, self._pulls(pulls, with_reviews=True, live=live)

    def pulls_and_labelled(self, label: str, *,
                           listing: RemoteRefs | None = None) -> tuple[list[PullRequest], list[Issue]]:
        """Both from one listing of the items."""
        issues, pulls = self.list_open(listing=listing)
        return pulls, [issue for issue in issues if label in issue.labels]

    def get_pull(self, number: int) -> PullRequest:
        return self._pull(self.store.load_pull(number, reviews=True))

    def _pull(self, item: Item) -> PullRequest:
        pull = self._pulls([item], with_reviews=False)[0]
        pull_reviews = tuple(review_view(data) for data in self.store.blobs(item.reviews))
        return replace(pull, reviews=pull_reviews)

    def create_pull(self, *, head: str, base: str, title: str, body: str = "", labels: Sequence[str] = ()
                    ) -> PullRequest:
        """A new PR and its labels land in one push (a lost race re-reads them)."""
        labels, _ = self._pull_changes(head, base, labels, ())
        head_ref, base_ref, guard_ref = f"refs/heads/{head}", f"refs/heads/{base}", pull_guard_ref(head)
        for _ in range(MAX_ATTEMPTS):
            # The guard is read before the listing: a PR created after this read moves the guard, so
            # our create fails and the next round adopts it (read after, a PR created between the
            # listing and the read would be missed and a second one created).
            heads = self.store.remote([head_ref, base_ref, guard_ref])
            existing = self.find_pull_for_head(head)  # the PR listing, made afresh
            if existing is not None:
                missing = [name for name in labels if name not in existing.labels]
                if missing:
                    self.relabel(existing.number, add=missing)
                    existing = replace(existing, labels=(*existing.labels, *missing))
                return existing
            for branch, ref in ((head, head_ref), (base, base_ref)):
                if ref not in heads:
                    raise NotFound(f"branch {branch!r} does not exist on the remote")
            meta = self._pull_meta(head, base, title, body, labels, heads[head_ref])
            # The guard ref makes "adopt or create" atomic: of two racing creators for one head,
            # the loser sees the guard move and adopts the winner's PR on the next round.
            number = self.store.create_item(meta, guard=RefUpdate(guard_ref, None, heads.get(guard_ref)))
            if number is not None:
                return self._pulls([Item(number, "", meta)], with_reviews=False, live={head_ref: heads[head_ref]})[0]
        raise TemporaryError(f"PR for {head!r}: gave up after {MAX_ATTEMPTS} concurrent creations")

    def create_fenced_pull(self, fence: PullFence, *, head: str, base: str, title: str, body: str = "",
                           labels: Sequence[str] = (), relabel: Sequence[Relabel] = (),
                           reviewers: Sequence[str] = ()) -> PullRequest | None:
        # one ssh-keygen signs the push's commits (the PR, the items, the fence's claim and journal)
        with self.cache.signing(SIGNED_PER_PUSH):
            return self._create_fenced_pull(fence, head=head, base=base, title=title, body=body, labels=labels,
                                            relabel=relabel, reviewers=reviewers)

    def _create_fenced_pull(self, fence: PullFence, *, head: str, base: str, title: str, body: str,
                            labels: Sequence[str], relabel: Sequence[Relabel],
                            reviewers: Sequence[str]) -> PullRequest | None:
        """The new PR, its labels, the label changes `relabel` make and the fence's updates (which create
        the branch `head`) in one atomic push. One listing, of the guard, the base, the head and the fence's
        refs; when the guard or the head branch is there, the items too (after the guard, as in
        `create_pull`), and None when `head` has a PR in any state: the caller decides."""
        labels, changes = self._pull_changes(head, base, labels, relabel)
        head_ref, base_ref, guard_ref = f"refs/heads/{head}", f"refs/heads/{base}", pull_guard_ref(head)
        for _ in range(MAX_ATTEMPTS):
            heads = self.store.remote([guard_ref, base_ref, head_ref, *(item_ref(n) for n, _ in changes),
                                       *fence.refs], numbered=True)
            # every PR's creation moved the guard, and had its head branch: with neither there, `head` has no
            # PR (one created after this listing moves the guard, and our push fails), and the items need no
            # listing of their own
            if (guard_ref in heads or head_ref in heads) and \
                    any(i.is_pull and i.meta.get("head") == head for i in self.store.all_items()):
                return None
            if base_ref not in heads:
                raise NotFound(f"branch {base!r} does not exist on the remote")
            listed = {ref: heads[ref] for ref in fence.refs if ref in heads}

            def carry(number: int, listed: Mapping[str, str] = listed) -> Sequence[RefUpdate]:
                updates = fence.updates(listed, number)
                if not any(u.ref == head_ref and u.new == fence.head_sha for u in updates):
                    raise ValueError(f"the fence does not put {fence.head_sha} on {head_ref}")  # a caller's bug
                return updates

            meta = {**self._pull_meta(head, base, title, body, labels, fence.head_sha),
                    "requested_reviewers": list(dict.fromkeys(reviewers))}
            number = self.store.create_item(meta, guard=RefUpdate(guard_ref, None, heads.get(guard_ref)),
                                            also=self._edits(changes, heads), carry=carry, bases=[base_ref])
            if number is not None:
                fence.landed(number)
                return self._pulls([Item(number, "", meta)], with_reviews=False, live={head_ref: fence.head_sha})[0]
        raise TemporaryError(f"PR for {head!r}: gave up after {MAX_ATTEMPTS} concurrent creations")

    def _pull_changes(self, head: str, base: str, labels: Sequence[str],
                      relabel: Sequence[Relabel]) -> tuple[list[str], list[tuple[int, Callable[[Item], Edit | None]]]]:
        """A new PR's checked labels (registered) and the item edits of `relabel`."""
        check_branch_name(head)
        check_branch_name(base)
        if head == base:
            raise Conflict(f"head and base are the same branch {head!r}")
        checked = list(dict.fromkeys(check_label(name) for name in labels))
        if checked:
            self._ensure_labels(checked)
        return checked, self._relabel_changes(relabel)

    def _relabel_changes(self, relabel: Sequence[Relabel]) -> list[tuple[int, Callable[[Item], Edit | None]]]:
        """The item edits the label changes `relabel` make: (issue, its change), none for a change of nothing."""
        return [(r.number, change) for r in relabel
                if (change := self._label_change(r.add, r.remove, r.open_only)) is not None]

    def _pull_meta(self, head: str, base: str, title: str, body: str, labels: list[str], head_sha: str) -> dict:
        now = self._now()
        return {"version": FORMAT_VERSION, "kind": "pull", "title": title, "body": body, "state": "open",
                "labels": labels, "assignees": [], "author": self.user, "created_at": now, "updated_at": now,
                "head": head, "base": base, "head_sha": head_sha, "requested_reviewers": [], "merge_sha": None}

    def _edits(self, changes: Sequence[tuple[int, Callable[[Item], Edit | None]]],
               heads: Mapping[str, str]) -> list[RefUpdate]:
        """The item commits of `changes`, each built on (and pinned to) the head `heads` lists for it."""
        updates = []
        for number, change in changes:
            sha = heads.get(item_ref(number))
            if sha is None:
                raise NotFound(f"#{number} not found")
            item = self.store.item_at(number, sha, comments=True, reviews=True)
            edit = change(item)
            if edit is not None:
                updates.append(RefUpdate(item_ref(number), self.store.item_commit(item, edit), sha))
        return updates

    def request_reviewers(self, number: int, reviewers: Sequence[str]) -> None:
        def change(item: Item) -> Edit | None:
            if not item.is_pull:
                raise NotFound(f"#{number} is an issue, not a pull request")
            current = list(item.meta.get("requested_reviewers", []))
            added = [r for r in dict.fromkeys(reviewers) if r not in current]
            return Edit(self._meta(item, requested_reviewers=current + added), "reviewers: request") if added else None

        self.store.update(number, change)

    def list_reviews(self, number: int) -> list[Review]:
        """The reviews, each with the item commit that last wrote it: a review is only as trustworthy
        as that commit's signature (refs anyone can push are no account)."""
        return self.store.reviews(self.store.load_pull(number, reviews=True))

    def _head_sha(self, item: Item) -> str | None:
        """The PR head: the branch on the remote while open, the recorded sha afterwards."""
        if item.meta.get("state") != "open":
            return item.meta.get("head_sha")
        ref = f"refs/heads/{item.meta['head']}"
        return self.store.remote([ref]).get(ref)

    def submit_review(self, number: int, *, event: ReviewEvent, body: str, commit_id: str) -> Review:
        landed = self.store.update(number, self._review_change(number, event, body, commit_id))
        assert landed is not None and landed.review is not None  # the change always adds a review
        return review_view(landed.review)

    def submit_review_with_status(self, number: int, *, event: ReviewEvent, body: str, commit_id: str,
                                  status: StatusContext, carried: Carried | None = None) -> Review:
        """The review, the head's status and `carried`'s updates in one atomic push (one signing ssh-keygen for its
        commits)."""
        review = self._review_change(number, event, body, commit_id)
        status_ref, status_change = self._status_change(commit_id, status)
        pull_ref = item_ref(number)
        extra = carried.refs if carried is not None else ()
        landed: list[Edit] = []

        def recorded(item: Item) -> Edit:
            landed[:] = [edit := review(item)]
            return edit

        def build(current: Mapping[str, str | None]) -> list[RefUpdate]:
            listed = {ref: sha for ref, sha in current.items() if sha is not None}
            updates = self._edits([(number, recorded)], listed)
            doc = current[status_ref]
            if (new := self.store.doc_commit(status_ref, STATUSES_FILE, doc, status_change, "status: set")) is not None:
                updates.append(RefUpdate(status_ref, new, doc))
            if carried is not None:
                updates += carried.updates({ref: listed[ref] for ref in extra if ref in listed})
            return updates

        with self.cache.signing(3):
            self.store.cas_refs([pull_ref, status_ref, *extra], build, f"review of #{number}", guess=True)
        if carried is not None:
            carried.landed()
        assert landed[0].review is not None  # the change always adds a review
        return review_view(landed[0].review)

    def _review_change(self, number: int, event: ReviewEvent, body: str, commit_id: str) -> Callable[[Item], Edit]:
        if event not in REVIEW_STATES:
            raise UserError(f"unknown review event {event!r}")
        check_sha(commit_id)

        def change(item: Item) -> Edit:
            if not item.is_pull:
                raise NotFound(f"#{number} is an issue, not a pull request")
            head = self._head_sha(item)
            if head != commit_id:
                raise Conflict(f"PR #{number} head is {(head or 'gone')[:12]}, not {commit_id[:12]}: "
                               "review the new head")
            state = REVIEW_STATES[event]
            data = {"id": Item.next_id(item.reviews), "author": self.user, "state": state,
                    "commit_id": commit_id, "body": body, "submitted_at": self._now()}
            return Edit(self._meta(item), f"review: {state.lower()}", review=data)

        return change

    def merge_pull(self, number: int, *, sha: str, method: Literal["merge", "squash"] = "merge") -> None:
        """A real merge, pushed atomically with the PR's new state, pinned to base, head and item."""
        check_sha(sha)
        if method not in ("merge", "squash"):
            raise UserError(f"unknown merge method {method!r}")
        for attempt in range(MAX_ATTEMPTS):
            item = self.store.load_pull(number, comments=True, reviews=True)
            meta = item.meta
            if meta.get("state") == "merged" and meta.get("head_sha") == sha:
                return  # already done, by us or a racing merger
            if meta.get("state") != "open":
                raise Conflict(f"PR #{number} is {meta.get('state')}, not open")
            head_ref, base_ref = f"refs/heads/{meta['head']}", f"refs/heads/{meta['base']}"
            heads = self.store.remote([head_ref, base_ref])
            if heads.get(head_ref) != sha:
                raise Conflict(f"PR #{number} head is {heads.get(head_ref, 'gone')[:12]}, not {sha[:12]}: it moved")
            if base_ref not in heads:
                raise Conflict(f"PR #{number} base branch {meta['base']!r} is gone")
            base_sha = heads[base_ref]
            self.store.ensure_local(heads)
            merged = self._merge_commit(item, base_sha, sha, method)
            edit = Edit(self._meta(item, state="merged", head_sha=sha, merge_sha=merged, merged_by=self.user),
                        f"pull: merge ({method})")
            updates = [RefUpdate(base_ref, merged, base_sha), RefUpdate(head_ref, sha, sha),
                       RefUpdate(item_ref(number), self.store.item_commit(item, edit), item.sha),
                       *self._closings(item)]
            if self.store.push(updates, atomic=True):
                return
            backoff(attempt)
        raise TemporaryError(f"merge of PR #{number}: gave up after {MAX_ATTEMPTS} concurrent updates")

    def merge_fenced_pull(self, fence: MergeFence, number: int, *, sha: str,
                          method: Literal["merge", "squash"] = "merge", close: Sequence[int] = (),
                          relabel: Sequence[Relabel] = (), listing: RemoteRefs | None = None) -> bool:
        # one ssh-keygen signs the push's commits (the merge, the PR, the issues, the fence's claim and journal)
        with self.cache.signing(SIGNED_PER_PUSH):
            return self._merge_fenced_pull(fence, number, sha=sha, method=method, close=close, relabel=relabel,
                                           listing=listing)

    def _merge_fenced_pull(self, fence: MergeFence, number: int, *, sha: str, method: Literal["merge", "squash"],
                           close: Sequence[int], relabel: Sequence[Relabel], listing: RemoteRefs | None) -> bool:
        """The merge, the PR marked merged, its head branch deleted, the issues it closes (and `close`) closed,
        the label changes `relabel` and the fence's updates in one atomic push, each pinned to what one listing
        showed (of the PR, its head and base, those issues and the fence's refs: `listing` when it shows them
        all); a lost race (an issue someone commented on meanwhile, a claim renewed) lists them again and
        rebuilds on what moved."""
        check_sha(sha)
        if method not in ("merge", "squash"):
            raise UserError(f"unknown merge method {method!r}")
        changes = self._relabel_changes(relabel)
        pull_ref = item_ref(number)
        head, base = self._branches_of(number)  # a PR's head and base never change
        head_ref, base_ref = f"refs/heads/{head}", f"refs/heads/{base}"
        numbers = {*close, *(n for n, _ in changes)}
        merges: dict[tuple[str, str], str] = {}  # (base, head) -> the merge commit made for them: made once
        decided: tuple[Item, Mapping[str, str]] | None = None  # the PR and the refs the caller's listing showed
        attempt = 0
        while attempt < MAX_ATTEMPTS:
            heads = self._pinned([pull_ref, head_ref, base_ref, *(item_ref(n) for n in sorted(numbers)), *fence.refs],
                                 listing)
            if pull_ref not in heads:
                raise NotFound(f"#{number} not found")
            item = self.store.item_at(number, heads[pull_ref], comments=True, reviews=True)
            if not item.is_pull:
                raise NotFound(f"#{number} is an issue, not a pull request")
            decided = self._decided(decided, item, heads, close, pinned=listing is not None)
            state = item.meta.get("state")
            if state == "merged" and item.meta.get("head_sha") == sha:
                return False  # merged already, by us or a racing merger: the caller's `merge_pull` says so
            if state != "open":
                raise Conflict(f"PR #{number} is {state}, not open")
            closing = {n for n in closing_references(item.meta.get("body", "")) if n != number}
            if not closing <= numbers:
                numbers |= closing  # named by the body, not yet listed: list them with the rest
                continue
            if heads.get(head_ref) != sha:
                raise Conflict(f"PR #{number} head is {heads.get(head_ref, 'gone')[:12]}, not {sha[:12]}: it moved")
            if base_ref not in heads:
                raise Conflict(f"PR #{number} base branch {base!r} is gone")
            base_sha = heads[base_ref]
            if (base_sha, sha) not in merges:
                self.store.ensure_local({head_ref: sha, base_ref: base_sha})
                merges[(base_sha, sha)] = self._merge_commit(item, base_sha, sha, method)
            merged = merges[(base_sha, sha)]
            edit = Edit(self._meta(item, state="merged", head_sha=sha, merge_sha=merged, merged_by=self.user),
                        f"pull: merge ({method})")
            closes = set(close) | closing
            issues = [update for n in sorted(numbers)
                      if (update := self._finishing(n, heads, number, close=n in closes,
                                                    changes=[c for m, c in changes if m == n])) is not None]
            updates = [RefUpdate(base_ref, merged, base_sha), RefUpdate(head_ref, None, sha),
                       RefUpdate(pull_ref, self.store.item_commit(item, edit), item.sha), *issues,
                       *fence.updates({ref: heads[ref] for ref in fence.refs if ref in heads})]
            if self.store.push(updates, atomic=True):
                fence.landed()
                return True
            listing = None  # a lost race lists afresh
            backoff(attempt)
            attempt += 1
        raise TemporaryError(f"merge of PR #{number}: gave up after {MAX_ATTEMPTS} concurrent updates")

    def _decided(self, decided: tuple[Item, Mapping[str, str]] | None, item: Item, heads: Mapping[str, str],
                 close: Sequence[int], *, pinned: bool) -> tuple[Item, Mapping[str, str]] | None:
        """What the caller decided on (the PR and the refs of its listing, from the round pinned to that
        listing), checked against `item` and `heads` in each round after it (`_still_decided`)."""
        if decided is not None:
            self._still_decided(*decided, item, heads, close)
            return decided
        return (item, heads) if pinned else None

    def _still_decided(self, decided: Item, listed: Mapping[str, str], now: Item, heads: Mapping[str, str],
                       close: Sequence[int]) -> None:
        """After a lost race of a round pinned to the caller's listing (made at its run's start), what the
        caller decided on must still hold: no review came since (a change request must stop the merge), and
        no issue the merge closes was closed meanwhile (a maintainer's "won't do", or their own PR that
        closed it: a second merged PR for the issue). Else DecidedOnStale: the caller's next run decides
        again on what it lists then. A comment or a renewed claim, which changed none of that, is rebuilt on."""
        if [e.name for e in now.reviews] != [e.name for e in decided.reviews]:
            raise DecidedOnStale(f"PR #{now.number} was reviewed since this run decided to merge it")
        for n in sorted({*close, *closing_references(now.meta.get("body", ""))} - {now.number}):
            ref = item_ref(n)
            was, sha = listed.get(ref), heads.get(ref)
            if was is None or sha is None or was == sha:
                continue
            if self.store.item_at(n, was).meta.get("state") == "open" != self.store.item_at(n, sha).meta.get("state"):
                raise DecidedOnStale(f"issue #{n} was closed since this run decided to merge PR #{now.number}")

    def _pinned(self, refs: Sequence[str], listing: RemoteRefs | None) -> dict[str, str]:
        """What `listing` (a caller's, made a moment ago) shows of `refs` when it shows them all, else a listing of
        them now: a ref the caller's listing lacks is listed, never taken for gone."""
        if listing is not None and all(ref in listing.refs for ref in refs):
            return {ref: listing.refs[ref] for ref in refs}
        return self.store.remote(refs)

    def _branches_of(self, number: int) -> tuple[str, str]:
        """A PR's head and base branch names, from the item as this store's last listing saw it a moment ago
        when it did (they never change), else as listed now."""
        guess = self.store.listed(item_ref(number))
        item = self.store.read_items({number: guess}).get(number) if guess is not None else None
        if item is None:
            item = self.store.load(number)
        if not item.is_pull:
            raise NotFound(f"#{number} is an issue, not a pull request")
        return item.meta["head"], item.meta["base"]

    def _finishing(self, number: int, heads: Mapping[str, str], pull: int, *, close: bool,
                   changes: Sequence[Callable[[Item], Edit | None]]) -> RefUpdate | None:
        """Issue `number`'s next commit on the head `heads` lists for it: closed by PR `pull` (when `close` and
        it is an open issue), then `changes`; None when nothing changes or the issue is gone (a body may name
        anything)."""
        sha = heads.get(item_ref(number))
        if sha is None:
            return None
        issue = self.store.item_at(number, sha, comments=True, reviews=True)
        steps: list[Callable[[Item], Edit | None]] = list(changes)
        if close and issue.meta.get("kind") == "issue" and issue.meta.get("state") == "open":
            steps.insert(0, lambda item: Edit(self._meta(item, state="closed", closed_by=self.user),
                                              f"issue: closed by #{pull}"))
        meta: dict | None = None
        messages: list[str] = []
        for step in steps:
            edit = step(issue if meta is None else replace(issue, meta=meta))
            if edit is not None:
                meta, messages = edit.meta, [*messages, edit.message]
        if meta is None:
            return None
        return RefUpdate(item_ref(number), self.store.item_commit(issue, Edit(meta, "; ".join(messages))), sha)

    def _merge_commit(self, item: Item, base_sha: str, head_sha: str, method: str) -> str:
        merged = self.cache.merge_trees(base_sha, head_sha)
        if merged.tree is None:
            files = ", ".join(merged.conflicts[:5]) + (" ..." if len(merged.conflicts) > 5 else "")
            raise Conflict(f"PR #{item.number} conflicts with {item.meta['base']} in: {files or 'unknown files'}")
        title = item.meta.get("title", "")
        if method == "squash":
            message = f"{title} (#{item.number})\n\n{item.meta.get('body', '')}".strip()
            return self.store.commit(merged.tree, [base_sha], message)
        return self.store.commit(merged.tree, [base_sha, head_sha],
                                 f"Merge pull request #{item.number} from {item.meta['head']}\n\n{title}")

    def _closings(self, pull: Item) -> list[RefUpdate]:
        """The open issues the PR closes, closed in the merge's own atomic push: there is no moment
        when the work is on the base branch and its issue is still open for another agent to claim."""
        updates = []
        for number in closing_references(pull.meta.get("body", "")):
            if number == pull.number:
                continue
            try:
                issue = self.store.load(number, comments=True, reviews=True)
            except NotFound:
                continue  # a PR body may name anything
            if issue.meta.get("kind") == "issue" and issue.meta.get("state") == "open":
                edit = Edit(self._meta(issue, state="closed", closed_by=self.user), f"issue: closed by #{pull.number}")
                updates.append(RefUpdate(item_ref(number), self.store.item_commit(issue, edit), issue.sha))
        return updates

    def close_pull(self, number: int) -> None:
        def change(item: Item) -> Edit | None:
            if not item.is_pull:
                raise NotFound(f"#{number} is an issue, not a pull request")
            if item.meta.get("state") != "open":
                return None
            head = self._head_sha(item) or item.meta.get("head_sha")
            return Edit(self._meta(item, state="closed", head_sha=head, closed_by=self.user), "pull: close")

        self.store.update(number, change)

    # --- CI ----------------------------------------------------------------------------

    def ci_status(self, sha: str) -> CIStatus:
        stored = self.store.load_doc(STATUSES + check_sha(sha), STATUSES_FILE).get("contexts")
        contexts = tuple(
            StatusContext(name, c["state"] if c.get("state") in CI_STATES else "error",
                          str(c.get("description", "")), str(c.get("target_url", "")))
            for name, c in sorted(stored.items() if isinstance(stored, dict) else ())
            if isinstance(c, dict)
        )
        return CIStatus(sha, combine_states(c.state for c in contexts), contexts)

    def set_status(self, sha: str, *, context: str, state: CIStateName, description: str = "",
                   target_url: str = "") -> None:
        ref, change = self._status_change(sha, StatusContext(context, state, description, target_url))
        self.store.update_doc(ref, STATUSES_FILE, change, "status: set")

    def _status_change(self, sha: str, status: StatusContext) -> tuple[str, Callable[[dict], dict | None]]:
        """The statuses document of `sha` and the change that sets `status` in it (None: it holds it already)."""
        if status.state not in CI_STATES:
            raise UserError(f"unknown status state {status.state!r}")
        entry = {"state": status.state, "description": status.description, "target_url": status.target_url}

        def change(doc: dict) -> dict | None:
            contexts = dict(doc["contexts"]) if isinstance(doc.get("contexts"), dict) else {}
            if {k: contexts.get(status.context, {}).get(k) for k in entry} == entry:
                return None
            contexts[status.context] = {**entry, "author": self.user, "updated_at": self._now()}
            return {"version": FORMAT_VERSION, "sha": sha, "contexts": contexts}

        return STATUSES + check_sha(sha), change

    # --- content and identity --------------------------------------------------------------

    def read_file(self, path: str, ref: str) -> str | None:
        if "\n" in path or "\n" in ref:
            raise InvalidName("paths and refs must not contain newlines")
        if SHA.fullmatch(ref):
            sha = ref
            if self.cache.cat_objects([f"{sha}^{{commit}}"])[0] is None:
                self.cache.fetch(["refs/heads/*"])  # an arbitrary sha: look for it on every branch
        else:
            remote_ref = f"refs/heads/{check_branch_name(ref)}"
            heads = self.store.remote([remote_ref])
            if remote_ref not in heads:
                return None
            self.store.ensure_local(heads)
            sha = heads[remote_ref]
        obj = self.cache.cat_objects([f"{sha}:{path.lstrip('/')}"])[0]
        if obj is None or obj.type != "blob":
            return None
        return obj.data.decode("utf-8", "replace")

    def delete_branch(self, branch: str) -> None:
        ref = f"refs/heads/{check_branch_name(branch)}"
        for attempt in range(MAX_ATTEMPTS):
            current = self.store.remote([ref]).get(ref)
            if current is None or self.store.push([RefUpdate(ref, None, current)]):
                return
            backoff(attempt)
        raise TemporaryError(f"delete of branch {branch!r}: gave up after {MAX_ATTEMPTS} concurrent updates")

    def current_user(self) -> str:
        return self.user

    def permission(self, user: str) -> Permission:
        """From `refs/agentmesh/roster` when present; without it every user may write. Advisory: anyone who
        can push rewrites that ref, so agents never ask once `.agentmesh/roster.yaml` exists (AgentRun.trusted)."""
        doc = self.store.load_doc(ROSTER_REF, ROSTER_FILE)
        users = doc.get("users")
        if not isinstance(users, dict):
            users = {}
        value = users.get(user, doc.get("default", "write"))
        return value if value in PERMISSIONS else "none"

    def set_permission(self, user: str, permission: Permission) -> None:
        """Record `user`'s permission in the roster. (local only)"""
        if permission not in PERMISSIONS:
            raise UserError(f"unknown permission {permission!r}")

        def change(doc: dict) -> dict | None:
            users = dict(doc["users"]) if isinstance(doc.get("users"), dict) else {}
            if users.get(user) == permission:
                return None
            users[user] = permission
            return {"version": FORMAT_VERSION, "default": doc.get("default", "write"), "users": users}

        self.store.update_doc(ROSTER_REF, ROSTER_FILE, change, "roster: set")
