"""What a plain git server accepts: the rules of agentmesh's pre-receive hook (`agentmesh hook`), pure.

ops/receive.py reads one push (each ref's old and new sha, the commits the rules look at, the
local-forge items those commits hold) and the roster and policy on the default branch as they were
before the push; every signature in the push is verified in one batch (`signers`: sha -> roster
principal, or None). `judge` turns those facts into one verdict per ref. Nothing in the pushed data
chooses a rule: the roster, the policy and the default branch are read from before the push.

The rules, by namespace (docs/security.md, "The pre-receive hook"):
- claims and presence refs: a new value is a commit signed by the agent it names; deleting is free
  (release and reaping delete claims, and a deleted claim only fences its holder out);
- a journal branch, `agentmesh/journals/<writer>`: fast-forwards only, every new commit signed by that
  writer (the agent of that name, or for `maintainer.<login>` that maintainer), no merge, touching
  only its own journal directory; never deleted;
- the shared memory branch of earlier versions: the same, each commit signed by an agent and touching
  only that agent's own directory (and the union-merge line a first flush adds to `.gitattributes`);
- the kill switch and the budget pause: fast-forwards only (a rewind could bring back an old
  resume), every new commit signed by an agent or a maintainer; never deleted;
- `refs/agentmesh/`, the local forge: commits signed by a roster key; an outsider may only open an
  issue (no labels, no assignees) or add comments; never deleted, items only fast-forward;
- the default branch: a fast-forward to the merge of a PR that this same push marks merged and that
  a roster agent other than its author (or a maintainer) approved on its head, the merge commit
  signed by a roster key; or commits all signed by maintainers;
- everything else (agents' work branches, people's branches, tags): accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from agentmesh.core.identity import MAINTAINER_PREFIX
from agentmesh.core.lease import issue_of_ref, parse_claim
from agentmesh.core.memory import (
    AGENTS_DIR,
    ATTRIBUTES_PATH,
    JOURNALS_PREFIX,
    journal_attributes,
    journal_writer,
    ref_writer,
)
from agentmesh.core.model import Review
from agentmesh.core.review import head_reviews

FORGE_PREFIX = "refs/agentmesh/"
PROBE_PREFIX = "refs/agentmesh/doctor/"  # doctor's scratch refs: read by nobody
ITEMS_PREFIX = "refs/agentmesh/items/"
PULL_HEADS_PREFIX = "refs/agentmesh/pull-heads/"  # moves from one PR's first commit to the next one's


class RefKind(StrEnum):
    DEFAULT = "the default branch"
    CLAIM = "a claim"
    PRESENCE = "a presence ref"
    MEMORY = "the memory branch"
    JOURNAL = "a journal branch"
    HALT = "the kill switch"
    PAUSE = "the budget pause"
    PROBE = "a doctor probe"
    FORGE = "the local forge"
    OTHER = "another ref"


@dataclass(frozen=True)
class Layout:
    """Where the mesh keeps what, as the default branch's policy says."""

    default_ref: str  # refs/heads/main
    claims_prefix: str
    presence_prefix: str
    memory_ref: str
    halt_ref: str
    pause_ref: str

    def kind(self, ref: str) -> RefKind:
        # the default branch wins: `memory.branch` may name it (journals where earlier versions wrote them)
        exact = {self.memory_ref: RefKind.MEMORY, self.halt_ref: RefKind.HALT, self.pause_ref: RefKind.PAUSE,
                 self.default_ref: RefKind.DEFAULT}
        if ref in exact:
            return exact[ref]
        for prefix, kind in ((self.claims_prefix, RefKind.CLAIM), (self.presence_prefix, RefKind.PRESENCE),
                             (PROBE_PREFIX, RefKind.PROBE), (FORGE_PREFIX, RefKind.FORGE),
                             (JOURNALS_PREFIX, RefKind.JOURNAL)):
            if ref.startswith(prefix):
                return kind
        return RefKind.OTHER

    @property
    def default_branch(self) -> str:
        return self.default_ref.removeprefix("refs/heads/")


@dataclass(frozen=True)
class Commit:
    sha: str
    parents: tuple[str, ...] = ()
    message: str = ""  # read for claims only
    paths: tuple[str, ...] = ()  # read for journal branches only: what it changes against its parent


@dataclass(frozen=True)
class ItemState:
    """A local-forge item as one item commit holds it (read by forge/local/schema.py)."""

    meta: Mapping[str, object] | None  # None: not a valid item
    comments: Mapping[str, str] = field(default_factory=dict)  # file name -> blob id
    reviews: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RefFacts:
    ref: str
    old: str | None
    new: str | None
    fast_forward: bool = True  # old is an ancestor of new (a creation is one)
    commits: tuple[Commit, ...] = ()  # what the rule of its kind looks at, oldest first (claims, presence: the tip)
    items: Mapping[str, ItemState] = field(default_factory=dict)  # item refs: each new commit and its parent
    attributes: Mapping[str, str | None] = field(default_factory=dict)  # memory: sha -> its .gitattributes
    problem: str | None = None  # why it is refused whatever it holds: no commit; a roster or policy that does not parse
    reused: tuple[str, ...] = ()  # a new item ref: its commits that the repository held before the push

    @property
    def tip(self) -> Commit | None:
        return self.commits[-1] if self.commits else None


@dataclass(frozen=True)
class PullMerge:
    """A PR item that this push marks merged: what its new item commit holds."""

    ref: str
    before: Mapping[str, object] | None  # its meta before the push
    after: Mapping[str, object]
    opened_in: str  # the item's first commit: its signer is the PR's author
    reviews: tuple[Review, ...]  # each with the item commit that last wrote it (`recorded_in`)
    tree_matches: bool  # the merge commit's tree is the default branch merged with the PR's head


@dataclass(frozen=True)
class Verdict:
    ref: str
    ok: bool
    reason: str = ""

    @property
    def line(self) -> str:
        return f"agentmesh hook: refused {self.ref}: {self.reason}"


def is_agent(principal: str | None) -> bool:
    return principal is not None and not principal.startswith(MAINTAINER_PREFIX)


def is_maintainer(principal: str | None) -> bool:
    return principal is not None and principal.startswith(MAINTAINER_PREFIX)


def short(sha: str | None) -> str:
    return (sha or "")[:12]


def unsigned(sha: str | None, by: str = "a roster key") -> str:
    return f"commit {short(sha)} is not signed by {by}"


@dataclass(frozen=True)
class _Push:
    """What every rule may look at besides its own ref."""

    merges: Sequence[PullMerge]
    layout: Layout
    signers: Mapping[str, str | None]
    required_approvals: int


def judge(refs: Sequence[RefFacts], merges: Sequence[PullMerge], layout: Layout,
          signers: Mapping[str, str | None], *, required_approvals: int = 1) -> list[Verdict]:
    """One verdict per ref of the push."""
    push = _Push(merges, layout, signers, required_approvals)
    return [_judge_ref(facts, push) for facts in refs]


def refuse_guarded(refs: Iterable[RefFacts], layout: Layout, reason: str) -> list[Verdict]:
    """Every ref agentmesh guards refused for `reason` (a roster that cannot be read); others accepted."""
    return [Verdict(f.ref, False, reason) if layout.kind(f.ref) not in (RefKind.OTHER, RefKind.PROBE)
            else Verdict(f.ref, True) for f in refs]


def _judge_ref(facts: RefFacts, push: _Push) -> Verdict:
    kind = push.layout.kind(facts.ref)
    if kind in (RefKind.OTHER, RefKind.PROBE):
        return Verdict(facts.ref, True)
    if facts.new is None:
        if kind in (RefKind.CLAIM, RefKind.PRESENCE):
            return Verdict(facts.ref, True)
        return Verdict(facts.ref, False, f"{kind} cannot be deleted")
    why = facts.problem or _RULES[kind](facts, push)
    return Verdict(facts.ref, why is None, why or "")


# Each rule returns why the update is refused, or None.


def _claim(facts: RefFacts, push: _Push) -> str | None:
    tip = facts.tip
    issue = issue_of_ref(facts.ref, push.layout.claims_prefix)
    claim = parse_claim(tip.message) if tip else None
    if tip is None or issue is None or claim is None or claim.issue != issue:
        return f"commit {short(facts.new)} is not a claim of issue {issue or '?'}"
    if push.signers.get(tip.sha) != claim.agent:
        return unsigned(tip.sha, f"the roster key of {claim.agent}, whom its trailers name")
    return None


def _presence(facts: RefFacts, push: _Push) -> str | None:
    agent = facts.ref[len(push.layout.presence_prefix):]
    if push.signers.get(facts.new or "") != agent:
        return unsigned(facts.new, f"the roster key of {agent}")
    return None


def _memory(facts: RefFacts, push: _Push) -> str | None:
    if not facts.fast_forward:
        return "not a fast-forward"
    for commit in facts.commits:
        why = _journal_commit(commit, facts.attributes, push.signers)
        if why:
            return why
    return None


def _journal(facts: RefFacts, push: _Push) -> str | None:
    """A writer's own journal branch (memory/journal.py): only that writer grows it."""
    writer = ref_writer(facts.ref)
    if writer is None:
        return f"{facts.ref} names no journal writer"
    if not facts.fast_forward:
        return "not a fast-forward"
    own = f"{AGENTS_DIR}/{writer}/"
    for commit in facts.commits:
        principal = push.signers.get(commit.sha)
        if principal is None or journal_writer(principal) != writer:
            return unsigned(commit.sha, f"the roster key of {writer}, whose journal it is")
        if len(commit.parents) > 1:
            return f"commit {short(commit.sha)} is a merge; a journal only grows by its writer's own commits"
        outside = next((path for path in commit.paths if not path.startswith(own)), None)
        if outside is not None:
            return f"commit {short(commit.sha)} changes {outside}, outside {own}"
    return None


def _journal_commit(commit: Commit, attributes: Mapping[str, str | None], signers: Mapping[str, str | None]) \
        -> str | None:
    agent = signers.get(commit.sha)
    if agent is None or not is_agent(agent):
        return unsigned(commit.sha, "a roster agent's key")
    if len(commit.parents) > 1:
        return f"commit {short(commit.sha)} is a merge; journals only grow by their agents' own commits"
    own = f"{AGENTS_DIR}/{agent}/"
    parent = commit.parents[0] if commit.parents else None
    for path in commit.paths:
        if path.startswith(own):
            continue
        written = attributes.get(commit.sha)
        if path == ATTRIBUTES_PATH and written is not None \
                and written == journal_attributes(attributes.get(parent) if parent else None):
            continue
        return f"commit {short(commit.sha)} by {agent} changes {path}, outside {own}"
    return None


def _switch(facts: RefFacts, push: _Push) -> str | None:
    """The kill switch and the budget pause (agent/switch.py)."""
    if not facts.fast_forward:  # sets and resumes only go on top: a rewind could bring back an old resume
        return "not a fast-forward"
    return _all_signed(facts, push.signers)


def _all_signed(facts: RefFacts, signers: Mapping[str, str | None]) -> str | None:
    """Every new commit, and the new value itself, signed by a roster key (agent or maintainer)."""
    for sha in [*(c.sha for c in facts.commits), facts.new]:
        if signers.get(sha or "") is None:
            return unsigned(sha)
    return None


def _forge(facts: RefFacts, push: _Push) -> str | None:
    if facts.ref.startswith(PULL_HEADS_PREFIX):  # moves from one PR to the next: no fast-forward
        return _all_signed(facts, push.signers)
    if not facts.fast_forward:
        return "not a fast-forward"
    if not facts.ref.startswith(ITEMS_PREFIX):
        return _all_signed(facts, push.signers)
    if facts.reused:  # another item's history (or one staged on a branch), signed reviews and all
        return f"a new item starts from a first commit of its own, not from commit {short(facts.reused[-1])}"
    history = {facts.old} if facts.old else set()  # the item's states so far: an outsider edits only those
    for commit in facts.commits:
        if push.signers.get(commit.sha) is None and not _outsider_edit(commit, facts, history):
            return (f"commit {short(commit.sha)} is not signed by a roster key, and an outsider may only open an "
                    "issue without labels or assignees, or add comments")
        history.add(commit.sha)
    return None


def _outsider_edit(commit: Commit, facts: RefFacts, history: set[str]) -> bool:
    """An unsigned commit on an item ref: a new issue's first commit, or comments added to the state
    before it (never another item's history, whose signed reviews would come along)."""
    after = facts.items.get(commit.sha)
    if after is None or len(commit.parents) > 1:
        return False
    if not commit.parents:
        return facts.old is None and not history and outsider_may(None, after, creates=True)
    parent = commit.parents[0]
    return parent in history and outsider_may(facts.items.get(parent), after, creates=False)


def outsider_may(before: ItemState | None, after: ItemState, *, creates: bool) -> bool:
    """Whether a commit no roster key signed may turn `before` into `after`: open an issue (no labels,
    no assignees, nothing else) or add comments, changing nothing else but the item's `updated_at`."""
    if after.meta is None:
        return False
    if creates:
        meta = after.meta
        return (meta.get("kind") == "issue" and meta.get("state") == "open" and not meta.get("labels")
                and not meta.get("assignees") and not after.comments and not after.reviews)
    if before is None or before.meta is None:
        return False
    same = {k: v for k, v in before.meta.items() if k != "updated_at"} == \
        {k: v for k, v in after.meta.items() if k != "updated_at"}
    kept = all(after.comments.get(name) == blob for name, blob in before.comments.items())
    return same and kept and dict(before.reviews) == dict(after.reviews)


def _default(facts: RefFacts, push: _Push) -> str | None:
    if not facts.fast_forward:
        return "not a fast-forward"
    merge = next((m for m in push.merges if m.after.get("merge_sha") == facts.new), None)
    unmerged = _merge(facts, merge, push) if merge is not None else None
    if merge is not None and unmerged is None:
        return None
    layout = push.layout
    if layout.memory_ref == layout.default_ref and _memory(facts, push) is None:
        return None  # journals configured onto the default branch (memory.branch), as earlier versions wrote them
    for commit in facts.commits:  # a maintainer may also merge an unapproved PR made of maintainers' commits
        if not is_maintainer(push.signers.get(commit.sha)):
            return unmerged or (f"commit {short(commit.sha)} is not signed by a maintainer's key, and the push merges "
                                "no approved pull request")
    return None


def _merge(facts: RefFacts, merge: PullMerge, push: _Push) -> str | None:
    meta, tip, branch = merge.after, facts.tip, push.layout.default_branch
    head = str(meta.get("head_sha") or "")
    what = f"the merge of PR #{merge.ref.removeprefix(ITEMS_PREFIX)}"
    if meta.get("kind") != "pull" or meta.get("state") != "merged" or meta.get("base") != branch:
        return f"{what}: the item is not a pull request into {branch} marked merged"
    if not merge.before or merge.before.get("state") != "open":
        return f"{what}: the pull request was not open"
    if tip is None or tip.sha != facts.new or push.signers.get(tip.sha) is None:
        return f"{what}: {unsigned(facts.new)}"
    if tip.parents not in ((facts.old,), (facts.old, head)) or not merge.tree_matches:
        return f"{what}: commit {short(tip.sha)} is not {branch} merged with the pull request's head {short(head)}"
    approvers = approvals(merge.reviews, head, push.signers.get(merge.opened_in), push.signers)
    needed = max(1, push.required_approvals)
    if len(approvers) < needed:
        return (f"{what}: {len(approvers)} of {needed} approvals of its head {short(head)} signed by a roster "
                "agent other than its author, or by a maintainer")
    return None


def approvals(reviews: Iterable[Review], head: str, author: str | None, signers: Mapping[str, str | None]) -> set[str]:
    """The principals whose latest review of `head` approves it, each counted only when the item commit
    that wrote the review is signed by the reviewer it names: an agent other than the author, or a
    maintainer."""
    verified = []
    for review in reviews:
        signer = signers.get(review.recorded_in or "")
        if signer is None or signer not in (review.author, MAINTAINER_PREFIX + review.author):
            continue
        if is_maintainer(signer) or signer != author:
            verified.append(Review(review.id, signer, review.state, review.commit_id))
    return set(head_reviews(verified, head).approved_by)


_RULES: dict[RefKind, Callable[[RefFacts, _Push], str | None]] = {
    RefKind.DEFAULT: _default,
    RefKind.CLAIM: _claim,
    RefKind.PRESENCE: _presence,
    RefKind.MEMORY: _memory,
    RefKind.JOURNAL: _journal,
    RefKind.HALT: _switch,
    RefKind.PAUSE: _switch,
    RefKind.FORGE: _forge,
}
