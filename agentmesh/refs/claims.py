"""The claim protocol against a real remote (docs/design/protocol.md), built on the pure core.

Every write is a compare-and-swap push; every uncertain outcome is settled
by reading the ref back. The claim commit's sha is the fencing token.
"""

from __future__ import annotations

import builtins
import json
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from enum import Enum
from pathlib import Path

from agentmesh.core.errors import NotHolder, OutcomeUnknown, TemporaryError, UserError
from agentmesh.core.lease import (
    Claim,
    ClaimPush,
    Clock,
    Observation,
    ReapDecision,
    claim_message,
    effective_lease,
    is_expired,
    issue_of_ref,
    observed_seconds,
    parse_claim,
    reap_decisions,
    renewal_due,
    update_observations,
)
from agentmesh.core.record import Record, replace
from agentmesh.git.cache import CacheClone, mirror_ref
from agentmesh.git.remote import PushResult, RefStatus, RefUpdate, RemoteRefs, ls_refs, push
from agentmesh.host.files import write_atomic
from agentmesh.host.state import StateDir
from agentmesh.refs.identity import Identity, enforced_signers

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the claim path
if TYPE_CHECKING:  # the policy's shape, for annotations only
    from typing import Protocol

    class _Prefix(Protocol):
        @property
        def ref_prefix(self) -> str: ...

    class _Lease(Protocol):
        @property
        def seconds(self) -> int: ...
        @property
        def grace_seconds(self) -> int: ...
        @property
        def max_seconds(self) -> int: ...

    class ClaimPolicy(Protocol):
        """What the claim protocol reads of the mesh policy: a MeshPolicy, or the ClaimRules kept of one
        (host/basics.py), which need no pydantic."""

        @property
        def claims(self) -> _Prefix: ...
        @property
        def lease(self) -> _Lease: ...
        @property
        def default_branch(self) -> str | None: ...


class DefaultBranch(Record):
    """The remote's default branch as a command listed it: claim commits build on its head."""

    ref: str  # refs/heads/main
    head: str
    tree: str


class AcquireResult(Record):
    issue: int
    won: bool
    sha: str | None
    holder: Claim | None
    recovered: bool = False  # won earlier, by a run of this agent that did not see the outcome
    carried: bool = False  # the updates `acquire` was given to carry landed with the claim

    def to_json(self) -> dict:
        return {
            "issue": self.issue,
            "won": self.won,
            "holder": self.holder.agent if self.holder else None,
            "sha": self.sha,
            "work_branch": self.holder.work_branch if self.holder else None,
            "recovered": self.recovered,
        }


class ClaimView(Record):
    """One claim ref as this host sees it now."""

    ref: str
    issue: int
    sha: str
    claim: Claim | None  # None: the commit is not a valid claim, or not signed by the agent it names
    lease_seconds: int
    observed_seconds: float
    expired: bool
    foreign: str | None = None  # the agent an unsigned or forged claim names: never adopted, reaped as usual

    def to_json(self) -> dict:
        c = self.claim
        return {
            "issue": self.issue,
            "agent": c.agent if c else None,
            "host": c.host if c else None,
            "sha": self.sha,
            "renewal": c.renewal if c else None,
            "lease_seconds": self.lease_seconds,
            "work_branch": c.work_branch if c else None,
            "observed_seconds": round(self.observed_seconds, 1),
            "expired": self.expired,
            "foreign": self.foreign,
        }


class ReapResult(Record):
    issue: int
    sha: str
    holder: str | None
    observed_seconds: float
    reaped: bool
    note: str

    def to_json(self) -> dict:
        return {
            "issue": self.issue,
            "sha": self.sha,
            "holder": self.holder,
            "observed_seconds": round(self.observed_seconds, 1),
            "reaped": self.reaped,
            "note": self.note,
        }


class RefMemo:
    """What a reader that lists the same refs again and again (`status --watch`) keeps between its reads, so an
    unchanged ref costs no git process: per prefix, the refs last read (ref -> (sha, message)); commit dates by sha.
    Held by that reader and handed in explicitly; a one-shot command has none."""

    def __init__(self) -> None:
        self.messages: dict[str, dict[str, tuple[str, str]]] = {}
        self.times: dict[str, float] = {}
        self.mirrored: set[str] = set()  # prefixes whose `messages` are the mirror as read just now (`of_mirror`)

    @classmethod
    def of_mirror(cls, cache: CacheClone, prefixes: Sequence[str]) -> RefMemo:
        """The mirror of `prefixes` as it is now, in one for-each-ref, for one run that observes them all (the
        claims and the presence refs): each prefix's observation reads no mirror of its own, and fetches only
        when the remote's listing differs."""
        memo = cls()
        mirrors = {prefix: mirror_ref(prefix) for prefix in prefixes}
        records = cache.ref_records(list(mirrors.values()))
        for prefix, mirror_prefix in mirrors.items():
            memo.messages[prefix] = {prefix + mref[len(mirror_prefix):]: (sha, message)
                                     for mref, (sha, message, _) in records.items() if mref.startswith(mirror_prefix)}
        memo.times = {sha: stamp for sha, _, stamp in records.values() if stamp is not None}
        memo.mirrored = set(prefixes)
        return memo


def observe_prefix(cache: CacheClone, state: StateDir, prefix: str, clock: Callable[[], Clock],
                   keep: Callable[[str], bool], *, listing: RemoteRefs | None = None, memo: RefMemo | None = None,
                   ) -> tuple[dict[str, tuple[str, str]], dict[str, Observation], Clock]:
    """The refs under `prefix` that `keep` accepts (ref -> (sha, message)), and this host's updated
    observations of them. One listing of the remote (`listing`: one the caller made, of a prefix that
    holds `prefix`); the mirror is fetched with --prune only when it differs, which makes it equal the
    remote, so the observations are updated from a complete listing or not at all. With a `memo` whose
    refs equal the listing, the mirror is not read at all."""
    listing = listing or ls_refs(cache.git, cache.url, [prefix])
    listed = {ref: sha for ref, sha in listing.refs.items() if ref.startswith(prefix)}
    mirror_prefix = mirror_ref(prefix)

    def mirrored() -> dict[str, tuple[str, str]]:
        records = cache.ref_records([mirror_prefix])
        if memo is not None:  # the commit dates too, for the memo's reader (presence)
            memo.times.update({sha: stamp for sha, _, stamp in records.values() if stamp is not None})
        return {prefix + mref[len(mirror_prefix):]: (sha, message) for mref, (sha, message, _) in records.items()}

    kept = memo.messages.get(prefix) if memo is not None else None
    if kept is not None and {ref: sha for ref, (sha, _) in kept.items()} == listed:
        refs = kept
    else:
        refs = kept if kept is not None and memo is not None and prefix in memo.mirrored else mirrored()
        if {ref: sha for ref, (sha, _) in refs.items()} != listed:
            cache.fetch([prefix + "*"], prune=True)
            refs = mirrored()
        if memo is not None:
            memo.messages[prefix] = refs
    refs = {ref: entry for ref, entry in refs.items() if keep(ref)}
    now = clock()
    with state.observations_lock():
        stored = state.load_observations()
        observations = update_observations(stored, {ref: sha for ref, (sha, _) in refs.items()}, now, prefix)
        state.save_observations(observations, stored)
    return refs, observations, now


def forged_by(claim: Claim | None, sha: str, signers: Mapping[str, str | None] | None) -> str | None:
    """The agent a claim names when that agent did not sign it (a roster is in force); else None."""
    if claim is None or signers is None or signers.get(sha) == claim.agent:
        return None
    return claim.agent


def _unlink(record: Path) -> None:
    try:
        record.unlink(missing_ok=True)
    except OSError:
        pass  # a stale record names a sha the claim no longer has: its next renewal is due anyway


class Listed(Enum):
    """An expected value read with the claim, in the listing that checks it is held (one round trip)."""

    NOW = "now"


def new_nonce() -> str:
    return os.urandom(8).hex()  # secrets.token_hex(8), without importing secrets (random, hmac)


class ClaimStore:
    def __init__(
        self,
        cache: CacheClone,
        state: StateDir,
        policy: ClaimPolicy,
        *,
        agent: str,
        host: str,
        clock: Callable[[], Clock],
        nonce: Callable[[], str] = new_nonce,
        identity: Identity | None = None,
        default_branch: Callable[[], DefaultBranch | None] | None = None,
        mirror: bool = False,
    ):
        """`default_branch`: the remote's default branch as the caller listed it, so that a claim commit
        costs no git call to find its base; without it, the cache clone's mirror says. `mirror`: after
        each push of ours that landed, the mirror refs are moved too (by the push itself), so a later
        listing that finds the remote unchanged fetches nothing."""
        self.cache = cache
        self.git = cache.git
        self.url = cache.url
        self.state = state
        self.policy = policy
        self.agent = agent
        self.host = host
        self.clock = clock
        self.nonce = nonce
        self.identity = identity
        self.prefix = policy.claims.ref_prefix
        self._bases: list[str] | None = None  # remote refs claim commits build on
        self._default_branch = default_branch
        self._known: dict[str, Claim | None] = {}  # claim commit sha -> what `_claim_at` made of it
        self._mirror = mirror  # move the mirror refs after our own pushes (see `_push`)

    def ref(self, issue: int) -> str:
        if issue < 1:
            raise UserError(f"issue must be a positive number, not {issue}")
        return f"{self.prefix}{issue}"

    # --- reading ---------------------------------------------------------------

    def remote_sha(self, issue: int) -> str | None:
        ref = self.ref(issue)
        return ls_refs(self.git, self.url, [ref]).get(ref)

    def read(self, issue: int) -> tuple[str, Claim | None] | None:
        """(sha, claim) currently on the remote, or None when unclaimed."""
        current, _ = self._read(issue)
        return current

    def _read(self, issue: int, also: Sequence[str] = ()) -> tuple[tuple[str, Claim | None] | None, RemoteRefs]:
        """`read`, and the listing it made, which holds the refs `also` too (one round trip for both)."""
        ref = self.ref(issue)
        listing = ls_refs(self.git, self.url, [ref, *also])
        sha = listing.get(ref)
        return (None if sha is None else (sha, self._claim_at(ref, sha))), listing

    def _claim_at(self, ref: str, sha: str) -> Claim | None:
        """The claim commit `sha` holds, if its agent signed it; what a commit says never changes, so
        each is read and judged once per store (a fence reads the remote's sha, never this memo)."""
        if sha in self._known:
            return self._known[sha]
        commit = self.cache.cat_objects([sha])[0]
        if commit is None:
            self.cache.fetch([ref])
            commit = self.cache.cat_objects([sha])[0]
        if commit is None or commit.type != "commit":  # moved again meanwhile; that sha is history
            return None
        claim = parse_claim(commit.data.decode("utf-8", "replace").split("\n\n", 1)[-1], sha)
        if forged_by(claim, sha, enforced_signers(self.identity, [sha])) is not None:
            claim = None  # forged or unsigned: held by nobody we trust, so never ours
        self._known[sha] = claim
        return claim

    def list(self, *, listing: RemoteRefs | None = None, memo: RefMemo | None = None) -> list[ClaimView]:
        """All claims on the remote, with this host's observation of each (see `observe_prefix`;
        `listing`: a fresh listing of a prefix holding the claims prefix, when the caller made one;
        `memo`: what a repeated reader kept of its last read).
        """
        refs, observations, now = observe_prefix(self.cache, self.state, self.prefix, self.clock,
                                                 keep=lambda ref: issue_of_ref(ref, self.prefix) is not None,
                                                 listing=listing, memo=memo)
        found: list[tuple[str, int, str, Claim | None]] = []
        for ref, (sha, message) in refs.items():
            issue = issue_of_ref(ref, self.prefix)
            if issue is not None:  # always: `keep` dropped the others
                found.append((ref, issue, sha, parse_claim(message, sha)))
        signers = enforced_signers(self.identity, [sha for _, _, sha, _ in found])
        lease = self.policy.lease
        views = []
        for ref, issue, sha, claim in sorted(found, key=lambda f: f[1]):
            foreign = forged_by(claim, sha, signers)
            if foreign is not None:
                claim = None
            granted = effective_lease(claim.lease_seconds if claim else None, lease.seconds, lease.max_seconds)
            obs = observations[ref]
            views.append(
                ClaimView(ref, issue, sha, claim, granted, observed_seconds(obs, now),
                          is_expired(obs, now, granted, lease.grace_seconds), foreign)
            )
        return views


    # Below here `list` is the method above, so annotations name `builtins.list`.

    def mine(self) -> builtins.list[ClaimView]:
        """Claims this agent holds, including ones a crashed run left behind."""
        return [v for v in self.list() if v.claim is not None and v.claim.agent == self.agent]

    # --- writing ---------------------------------------------------------------

    def _base(self) -> tuple[str, builtins.list[str]]:
        """Tree and parents for a claim commit: the default branch head as last fetched."""
        if self._default_branch is not None:
            listed = self._default_branch()
            return (listed.tree, [listed.head]) if listed else (self.cache.empty_tree(), [])
        head = self.cache.default_head() or self.cache.fetch_default_branch(self.policy.default_branch)
        if head is None:  # the remote has no commits yet
            return self.cache.empty_tree(), []
        return self.cache.tree_of(head), [head]

    def _commit(self, claim: Claim) -> str:
        tree, parents = self._base()
        return self.cache.commit_tree(tree, parents, claim_message(claim))

    def _push(self, updates: Sequence[RefUpdate], *, atomic: bool = False) -> PushResult:
        """A CAS push whose unknown outcome is settled by reading the refs back."""
        if self._bases is None:
            if self._default_branch is not None:
                listed = self._default_branch()
                self._bases = [listed.ref] if listed else []
            else:
                self._bases = [ref for ref in [self.cache.default_branch_ref()] if ref]
        try:
            # what lands is mirrored by the push itself: the next claims listing that finds the remote
            # unchanged fetches nothing
            with self.cache.mirroring(self._mirror) as mirror:
                result = push(self.git, self.cache.path, self.url, updates, atomic=atomic, bases=self._bases,
                              mirror=mirror)
        except OutcomeUnknown:
            listing = ls_refs(self.git, self.url, [u.ref for u in updates])
            statuses = {}
            for u in updates:
                landed = listing.get(u.ref) == u.new
                statuses[u.ref] = RefStatus(u.ref, " " if landed else "!", "(read back after unknown outcome)")
            return PushResult(statuses)
        return result

    def acquire(self, issue: int, *, work_branch: str | None = None, attempt: int = 1,
                carry: Sequence[RefUpdate] = ()) -> AcquireResult:
        """Try to claim issue. Losing to another agent is a normal result, not an error.

        `carry`: other compare-and-swap updates to land with the claim in one atomic push (the
        issue's stage on the local forge); when one of them is stale, the claim is tried alone and
        the result says they did not land (`carried`).
        """
        ref = self.ref(issue)
        claim = Claim(issue, self.agent, self.host, self.nonce(), self.policy.lease.seconds,
                      0, attempt, work_branch)
        sha = self._commit(claim)
        at = self.clock()
        result = self._push([RefUpdate(ref, sha, None), *carry], atomic=bool(carry))
        # the create-only push landed: the ref was absent and is ours now; on a refusal the readback says
        # who holds it (our own sha: it landed after all, atomic: with what it carried)
        holder_sha = sha if result.ok else self.remote_sha(issue)
        if holder_sha == sha:
            self._record_push(issue, sha, at)
            if self.identity is None or not self.identity.enforced:  # no signature to judge: the fence reads no commit
                self._known[sha] = replace(claim, sha=sha)
            return AcquireResult(issue, True, sha, replace(claim, sha=sha), carried=bool(carry))
        if holder_sha is None and carry and not result.statuses[ref].declined:
            return self.acquire(issue, work_branch=work_branch, attempt=attempt)  # what it carried was stale
        if holder_sha is None:
            status = result.statuses[ref]
            if status.declined:  # the server's hook (`agentmesh hook`): no retry changes its mind
                why = "; ".join(result.messages) or status.summary
                raise UserError(f"claim #{issue} was refused by the remote: {why}")
            raise TemporaryError(f"claim #{issue} did not land and the remote holds no claim: {status.summary}")
        holder = self._claim_at(ref, holder_sha)
        if holder is not None and holder.agent == self.agent:
            return AcquireResult(issue, True, holder_sha, holder, recovered=True)
        return AcquireResult(issue, False, holder_sha, holder)

    def check_held(self, issue: int, expected: str | None = None) -> None:
        """NotHolder unless this agent's claim is on the remote at `expected` now: the fence for
        writes outside git (opening a PR, merging), read right before them."""
        self._held(issue, expected)

    def _held(self, issue: int, expected: str | None) -> tuple[str, Claim]:
        """The claim this agent holds on issue, or NotHolder (nothing is written)."""
        sha, claim, _ = self._held_listing(issue, expected)
        return sha, claim

    def _held_listing(self, issue: int, expected: str | None,
                      also: Sequence[str] = ()) -> tuple[str, Claim, RemoteRefs]:
        """`_held`, and the listing it read, which holds the refs `also` as the remote holds them now."""
        current, listing = self._read(issue, also)
        sha, claim = self._holding(issue, expected, current)
        return sha, claim, listing

    def _holding(self, issue: int, expected: str | None, current: tuple[str, Claim | None] | None) -> tuple[str, Claim]:
        """The claim `current` (sha, claim) when this agent holds it at `expected`, else NotHolder."""
        if current is None:
            raise NotHolder(f"claim #{issue} is not held by anyone")
        sha, claim = current
        if claim is None or claim.agent != self.agent:
            who = claim.agent if claim else "an invalid claim commit"
            raise NotHolder(f"claim #{issue} is held by {who}, not {self.agent}")
        if expected is not None and sha != expected:
            raise NotHolder(f"claim #{issue} moved from {expected[:12]} to {sha[:12]}")
        return sha, claim

    def renew(self, issue: int, expected: str | None = None) -> Claim:
        """Renew a held claim with a fresh unique commit, pinned to the current sha."""
        sha, claim = self._held(issue, expected)
        renewed = claim.renewed(self.nonce())
        new_sha = self._commit(renewed)
        at = self.clock()
        result = self._push([RefUpdate(self.ref(issue), new_sha, sha)])
        if not result.ok:
            raise NotHolder(f"claim #{issue} was lost: {result.statuses[self.ref(issue)].summary}")
        self._record_push(issue, new_sha, at)
        return replace(renewed, sha=new_sha)

    def renew_if_due(self, issue: int, sha: str, *, renew_seconds: float) -> str:
        """Renew the claim at `sha` when it is due (core/lease.renewal_due, from this host's record of
        its last push): the claim's sha afterwards, `sha` itself when nothing was due, at no git call.
        A due renewal is `renew(issue, sha)`: pinned to `sha`, read first, NotHolder when not ours."""
        if not self.renewal_due(issue, sha, renew_seconds=renew_seconds):
            return sha
        renewed = self.renew(issue, sha)
        assert renewed.sha is not None  # renew returns the claim with its new commit's sha
        return renewed.sha

    def renewal_due(self, issue: int, sha: str, *, renew_seconds: float) -> bool:
        """Whether the claim at `sha` must be renewed now, from this host's record alone (no git call)."""
        return renewal_due(self.last_push(issue), sha, self.clock(), renew_seconds)

    # --- this host's record of its claim pushes (core/lease.ClaimPush) -------------------

    def _push_record(self, issue: int) -> Path:
        return self.state.claim_pushes / f"{issue}.json"

    def last_push(self, issue: int) -> ClaimPush | None:
        """What this host last pushed to the claim of `issue`, and when; None when it has no (readable) record."""
        try:
            return ClaimPush.from_json(json.loads(self._push_record(issue).read_text()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None  # no record, or a damaged one: the renewal is due

    def _record_push(self, issue: int, sha: str, at: Clock) -> None:
        try:
            write_atomic(self._push_record(issue), json.dumps(ClaimPush(sha, at.wall, at.mono, at.boot_id).to_json()))
        except OSError:
            pass  # without the record the next run renews: only a cost

    def _forget_push(self, issue: int) -> None:
        _unlink(self._push_record(issue))

    def forget_pushes(self, keep: Collection[int] = ()) -> None:
        """Drop the records of claims other than `keep` (released, reaped, or not this agent's any more)."""
        try:
            records = list(self.state.claim_pushes.glob("*.json"))
        except OSError:
            return
        for record in records:
            if not (record.stem.isdigit() and int(record.stem) in keep):
                _unlink(record)

    def release(self, issue: int, expected: str | None = None) -> str:
        """Delete a held claim, pinned to its current sha. Returns the released sha."""
        sha, _ = self._held(issue, expected)
        result = self._push([RefUpdate(self.ref(issue), None, sha)])
        if not result.ok:
            raise NotHolder(f"claim #{issue} changed while releasing: {result.statuses[self.ref(issue)].summary}")
        self._forget_push(issue)
        return sha

    def fenced_push(self, issue: int, claim_sha: str, work_ref: str, work_sha: str,
                    work_expected: str | Listed | None = Listed.NOW) -> Claim:
        """Publish work and renew the claim in one atomic push: both refs move or neither.

        A holder whose claim was reaped or released cannot publish: the claim
        lease fails and the atomic push takes the work ref down with it.
        `work_expected`: what the work ref must hold (None: absent); by default
        what it holds now, read in the claim's own listing.
        """
        _, claim, listing = self._held_listing(issue, claim_sha, [work_ref])
        if isinstance(work_expected, Listed):
            work_expected = listing.get(work_ref)
        renewed = claim.renewed(self.nonce())
        new_sha = self._commit(renewed)
        at = self.clock()
        self._with_claim(issue, claim_sha, new_sha, RefUpdate(work_ref, work_sha, work_expected))
        self._record_push(issue, new_sha, at)
        # signed with the key the claim it renews was judged by: the fence that follows (the PR) reads no commit
        self._known[new_sha] = replace(renewed, sha=new_sha)
        return replace(renewed, sha=new_sha)

    def renewal(self, issue: int, claim_sha: str, listed: Mapping[str, str]) -> tuple[RefUpdate, Claim]:
        """The claim's renewal as an update pinned to `claim_sha`, for a push of another's to carry (the local
        forge's PR creation, forge/base.PullFence), and the renewed claim; NotHolder unless `listed` (the
        remote's refs a moment ago) shows this agent's claim at `claim_sha`. `renewed` once it landed."""
        ref = self.ref(issue)
        sha = listed.get(ref)
        _, claim = self._holding(issue, claim_sha, None if sha is None else (sha, self._claim_at(ref, sha)))
        renewed = claim.renewed(self.nonce())
        new_sha = self._commit(renewed)
        return RefUpdate(ref, new_sha, claim_sha), replace(renewed, sha=new_sha)

    def renewed(self, issue: int, claim: Claim, at: Clock) -> None:
        """A renewal (`renewal`) pushed at `at` landed."""
        assert claim.sha is not None
        self._record_push(issue, claim.sha, at)
        self._known[claim.sha] = claim  # signed with the key the claim it renews was judged by

    def release_update(self, issue: int, listed: Mapping[str, str]) -> RefUpdate:
        """The claim's release as an update pinned to the sha `listed` (the remote's refs a moment ago) shows,
        for a push of another's to carry (the local forge's merge, forge/base.MergeFence); NotHolder unless
        that is this agent's claim. `released` once it landed."""
        ref = self.ref(issue)
        sha = listed.get(ref)
        held, _ = self._holding(issue, None, None if sha is None else (sha, self._claim_at(ref, sha)))
        return RefUpdate(ref, None, held)

    def released(self, issue: int) -> None:
        """A release (`release_update`) landed."""
        self._forget_push(issue)

    def release_publishing(self, issue: int, claim_sha: str, work_ref: str, work_sha: str,
                           work_expected: str | Listed | None = Listed.NOW) -> None:
        """Publish work and release the claim in one atomic push (a preempted job's checkpoint): a crash
        never leaves the checkpoint under a held claim, where the next run would open a PR of it.
        `work_expected` as for `fenced_push`."""
        _, _, listing = self._held_listing(issue, claim_sha, [work_ref])
        if isinstance(work_expected, Listed):
            work_expected = listing.get(work_ref)
        self._with_claim(issue, claim_sha, None, RefUpdate(work_ref, work_sha, work_expected))
        self._forget_push(issue)

    def _with_claim(self, issue: int, claim_sha: str, new_claim: str | None, work: RefUpdate) -> None:
        """Move the claim from `claim_sha` to `new_claim` (None: delete it) and `work` atomically, or raise."""
        result = self._push([RefUpdate(self.ref(issue), new_claim, claim_sha), work], atomic=True)
        if result.ok:
            return
        if self.remote_sha(issue) != claim_sha:
            raise NotHolder(f"claim #{issue} was lost before the work was published")
        raise UserError(
            f"work branch {work.ref} changed on the remote: {result.statuses[work.ref].summary}; nothing was published"
        )

    def reap_due(self, views: builtins.list[ClaimView] | None = None) -> builtins.list[ReapDecision]:
        """Others' claims this host has seen unchanged past lease + grace (by its own clock); `views`: this
        run's `list()`, when it made one."""
        views = self.list() if views is None else views
        lease = self.policy.lease
        with self.state.observations_lock():
            observations = self.state.load_observations()
        return reap_decisions(
            [(v.ref, v.sha, v.claim) for v in views],
            observations,
            self.clock(),
            me=self.agent,
            prefix=self.prefix,
            policy_lease=lease.seconds,
            max_lease=lease.max_seconds,
            grace=lease.grace_seconds,
        )

    def reap_one(self, due: ReapDecision) -> ReapResult:
        """Delete one expired claim, pinned to the sha that was observed (a renewal meanwhile wins)."""
        outcome = self._push([RefUpdate(due.ref, None, due.sha)])
        note = "reaped" if outcome.ok else f"not reaped: claim changed ({outcome.statuses[due.ref].reason})"
        return ReapResult(due.issue, due.sha, due.holder, due.observed_seconds, outcome.ok, note)

    def reap(self, *, dry_run: bool = False) -> builtins.list[ReapResult]:
        """Delete others' claims this host has seen unchanged past lease + grace."""
        due = self.reap_due()
        if dry_run:
            return [ReapResult(d.issue, d.sha, d.holder, d.observed_seconds, False, "would reap") for d in due]
        return [self.reap_one(d) for d in due]
