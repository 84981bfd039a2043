"""What every agent command run holds: the mesh, its forge, its report, and the trust cache."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Generic, TypeVar

from agentmesh.agent.halt import halt_issue, switch_halt
from agentmesh.agent.journaling import flush_journal, journal_listener
from agentmesh.agent.legacy import drop_mesh_locks, within_branches
from agentmesh.agent.mesh import Mesh
from agentmesh.agent.notify import notify_listener
from agentmesh.agent.report import Report
from agentmesh.agent.stages import set_stage
from agentmesh.agent.trust import verified_comments, verified_reviews
from agentmesh.core.errors import NotHolder
from agentmesh.core.model import Comment, Issue, LabelEvent, PullRequest, Review
from agentmesh.core.public import public_text
from agentmesh.core.review import protected_changes, ring_order
from agentmesh.core.vocab import Event, Label
from agentmesh.forge.base import Forbidden, Forge, NotFound
from agentmesh.git.remote import RefUpdate, RemoteRefs, push
from agentmesh.host.lock import host_lock
from agentmesh.host.roster import MAINTAINER_PREFIX
from agentmesh.memory.journal import Journal
from agentmesh.refs.claims import ClaimStore
from agentmesh.refs.presence import PresenceView

R = TypeVar("R", bound=Report)
Listed = tuple[list[Issue], list[PullRequest]]  # the open issues and the open PRs, as one step listed them


@contextmanager
def journaled(mesh: Mesh, report: Report, *, dry_run: bool, forge: Forge | None = None,
              env: Mapping[str, str] | None = None, flush: bool = True) -> Iterator[Journal | None]:
    """Queue the run's outcomes in the journal as they happen, and with `forge` notify those a person
    must hear of (agent/notify.py); publish the journal when the run ends (`flush`: unless the caller
    publishes what is queued itself, with another run's flush)."""
    if dry_run:
        yield None
        return
    journal = mesh.journal()
    report.listeners.append(journal_listener(journal))
    notify = notify_listener(mesh, forge, report, os.environ if env is None else env) if forge is not None else None
    if notify is not None:
        report.listeners.append(notify)
    try:
        yield journal
    finally:
        if flush:
            flush_journal(journal, report)


def sandbox_warning(mesh: Mesh) -> str | None:
    """What every report of a host whose executors and gates cannot be sandboxed says (None: they can,
    or the host turned the sandbox off on purpose)."""
    mode = mesh.host.executor.sandbox
    problem = mesh.sandbox_problem(mode)
    if problem is None:
        return None
    effect = ("executors cannot run" if mode == "required"
              else "executors run unsandboxed, with the host user's files in reach")
    return (f"no sandbox: {problem} (executor.sandbox: {mode}); {effect}, and review gates refuse to run. "
            "Install bubblewrap, or set executor.sandbox: off to accept unsandboxed executors and gates")


@contextmanager
def guarded_run(mesh: Mesh, forge: Forge, command: str, *, dry_run: bool, issues: bool = False, pulls: bool = False,
                check: Callable[[], object] | None = None) -> Iterator[tuple[bool, str | None, Listed | None,
                                                                              RemoteRefs | None]]:
    """Steps 1-2 of every tick, held for the whole run: (whether this run holds the host lock of
    `command`, why the mesh is halted or None, what the halt check listed for the run to reuse: with
    `issues` the open issues and the open PRs listed with them (`Forge.list_open`: on the local forge,
    from the same listing), with `pulls` the halt issues alone and the open PRs (`Forge.pulls_and_labelled`);
    None when a switch halted it first, or neither was asked for; and the run's listing, see below).
    Presence is refreshed even when halted: the agent is alive, and ring reviewers are chosen among the
    living.

    The run's listing: HEAD, every branch and the forge's items (`item_prefixes`), in one round trip once
    the lock is held (so what this command's last run pushed is in it), is all the run's set-up reads: the
    switches, this agent's presence ref (as it is after its refresh), the open PRs' heads, and for the run
    itself the claims, the presence refs and the branches. The cache clone's mirror of the default branch, the
    claims, the presence refs and the items is brought to it first, in one fetch of what changed
    (`Plumbing.mirror_run`), so those reads fetch nothing. `check` runs right after it, before anything is
    written (claim-task's executor check, whose policy it reads)."""
    with host_lock(mesh.state, command) as held:
        if not held:
            yield False, None, None, None
            return
        heads = mesh.list_run(forge.item_prefixes())
        mesh.mirror_run(heads, forge.item_prefixes())  # the run's reads of them fetch nothing after this
        if check is not None:
            check()
        presence = mesh.presence()
        own = within_branches(heads, presence.prefix)
        if not dry_run:
            presence.refresh(listing=own)
            if own is not None and presence.pushed is not None:
                heads = heads.moved(presence.ref, presence.pushed)
        halted = switch_halt(mesh, listing=heads)
        if halted is not None:
            yield True, halted, None, heads
            return
        listed: Listed | None = None
        if issues:
            listed = forge.list_open(listing=heads)
        elif pulls:
            open_pulls, halting = forge.pulls_and_labelled(Label.HALT, listing=heads)
            listed = (halting, open_pulls)
        yield True, halt_issue(forge, listed[0] if listed is not None else None), listed, heads


class AgentRun(Generic[R]):
    """The parts one command run works with. Parts of one run share its claim store and trust cache."""

    def __init__(self, mesh: Mesh, forge: Forge, report: R, *, dry_run: bool, env: Mapping[str, str],
                 journal: Journal | None = None, share: AgentRun | None = None):
        self.mesh = mesh
        self.journal = journal
        self.forge = forge
        self.report = report
        self.dry_run = dry_run
        self.env = env
        self.policy = mesh.policy
        self.agent = mesh.host.agent
        self.store: ClaimStore = share.store if share else mesh.claims(mirror=True)
        self.known_secrets = mesh.known_secrets
        self._permissions: dict[str, bool] = share._permissions if share else {}
        self._present: set[str] = share._present if share else set()  # commits known to be in the cache clone

    def public(self, text: str) -> str:
        """Text that came from an executor or a gate, fit for the forge: no secret of this host in any
        form core/secrets.py knows, no command line the agent echoed, no host path."""
        return public_text(text, known_secrets=self.known_secrets, places=self.mesh.places)

    def recorded(self, key: str) -> bool:
        """Whether the journal has the entry of `key` (a dry run records nothing, so: yes)."""
        return self.journal is None or self.journal.seen(key)

    def fetched(self, branch: str, sha: str) -> bool:
        """Whether commit `sha` is in the cache clone, fetching `branch` once if it is not. A commit found
        there stays there for the run (the clone is never pruned while a run holds it): asked once."""
        if sha in self._present:
            return True
        if not self.mesh.cache.has_object(sha):
            self.mesh.cache.fetch([f"refs/heads/{branch}"])
        if self.mesh.cache.has_object(sha):
            self._present.add(sha)
            return True
        return False

    def all_mine(self, base: str, head: str, *, signer: str | None = None) -> bool:
        """Whether every commit from `base` to `head` (and at least one) verifies as this agent's (or
        agent `signer`'s): no message, trailer or branch name makes a commit an agent's."""
        return self.mesh.identity.all_signed_by(self.mesh.cache.commits_between(base, head), signer or self.agent)

    def reviews(self, number: int, *, listing: RemoteRefs | None = None) -> list[Review]:
        """The PR's reviews that the roster vouches for, authors named by roster principal (agent/trust.py).
        `listing`: the run's, read instead of listing the PR's item again (Forge.as_listed)."""
        return verified_reviews(self.forge.as_listed(listing).list_reviews(number), roster=self.mesh.roster,
                                identity=self.mesh.identity, local=self.forge.kind == "local")

    def comments(self, number: int, *, listing: RemoteRefs | None = None) -> list[Comment]:
        """The comments on issue or PR `number`, each author the roster does not vouch for marked unverified
        (agent/trust.py): every decision on comments reads them from here, never from the forge directly.
        `listing` as for `reviews`."""
        return verified_comments(self.forge.as_listed(listing).list_comments(number), roster=self.mesh.roster,
                                 identity=self.mesh.identity, local=self.forge.kind == "local")

    def label_events(self, number: int) -> list[LabelEvent]:
        """Who added and removed the issue's labels, each author the roster does not vouch for marked
        unverified, as `comments` does (on the local forge: by the signature of the item commit)."""
        return verified_comments(self.forge.label_events(number), roster=self.mesh.roster,
                                 identity=self.mesh.identity, local=self.forge.kind == "local")

    def ensure_comment(self, number: int, marker: str, body: str) -> Comment:
        """Post `body` once per `marker`: only this agent's own verified comment counts as posted already,
        never one a writer forged in its name."""
        return self.forge.ensure_comment(number, marker, body, comments=self.comments(number))

    def ring(self, presence: Sequence[PresenceView]) -> list[str]:
        """The mesh's agents in ring order (core/review.py): the roster's, the configured ring, or every
        agent with a presence ref."""
        roster = self.mesh.roster
        return ring_order(self.policy.review.ring, [p.agent for p in presence] + [self.agent],
                          roster=roster.names if roster else None)

    def protected(self, paths: list[str]) -> list[str]:
        """The paths of a change only a human may make (the policy's patterns, its gates' files, the
        policy and roster): claim-task never pushes them, and no reviewer approves them."""
        return protected_changes(paths, self.policy.protected_paths, [gate.run for gate in self.policy.gates])

    def trusted(self, user: str) -> bool:
        """Whether `user` may steer agents: with a roster, its agents and maintainers (by roster principal
        or login) only; without one, anyone with write access (cached per run). A review's or comment's
        author is only as good as the list it came from: `reviews` and `comments` judge them first."""
        roster = self.mesh.roster
        if roster is not None:
            return (roster.agent(user) is not None or roster.agent_by_login(user) is not None
                    or roster.is_maintainer(user.removeprefix(MAINTAINER_PREFIX)))
        if user not in self._permissions:
            try:
                self._permissions[user] = self.forge.permission(user) in ("admin", "write")
            except (NotFound, Forbidden):  # unknown or unreadable permission: not trusted
                self._permissions[user] = False
        return self._permissions[user]

    # --- ending a piece of work on the remote --------------------------------------------

    def issue_open(self, number: int, *, listing: RemoteRefs | None = None) -> bool:
        """A deleted issue counts as closed: its PR is withdrawn, not merged. `listing` as for `reviews`."""
        try:
            return self.forge.as_listed(listing).get_issue(number).state == "open"
        except NotFound:
            return False

    def withdraw(self, pull: PullRequest, issue: int, claim_sha: str | None, why: str, *,
                 issue_closed: bool) -> None:
        """Close this agent's PR instead of merging a second piece of work for one issue. The stage
        labels are cleared only on a closed issue: an open one's belong to the agent redoing it."""
        self.ensure_comment(pull.number, f"withdrawn/{pull.head_sha}",
                            f"agentmesh: `{self.agent}` closed this PR unmerged: {why}. "
                            f"Its work stays at `{pull.head_sha[:12]}`.")
        self.forge.close_pull(pull.number)
        if issue_closed:
            with suppress(NotFound):  # a deleted issue has no labels left to clear
                set_stage(self.forge, issue, None)
        self.delete_branch(pull.head, pull.head_sha)
        if claim_sha is not None:
            self.let_go(issue, claim_sha)
        self.report.add(Event.WITHDRAWN, issue=issue, pr=pull.number, key=f"withdrawn-{pull.number}", detail=why)

    def let_go(self, issue: int, sha: str) -> None:
        """Release a claim whose work is finished (merged, closed or withdrawn)."""
        try:
            self.store.release(issue, sha)
        except NotHolder:
            try:  # this agent's claim-task renewed it since the listing: still ours, and still done with
                self.store.release(issue)
            except NotHolder as exc:
                self.report.add(Event.CLAIM_LOST, issue=issue, detail=str(exc))
                return
        if self.policy.migration.lock_branches:
            drop_mesh_locks(self.mesh, [issue])

    def delete_branch(self, branch: str, sha: str) -> bool:
        """Delete a branch pinned to `sha` (a PR's head, an orphan's observed sha): a push after it (a
        human's, or a new attempt's) keeps the branch, and a branch already gone is left alone.
        Whether this run deleted it."""
        ref = f"refs/heads/{branch}"
        return push(self.mesh.git, self.mesh.cache.path, self.mesh.remote, [RefUpdate(ref, None, sha)]).ok
