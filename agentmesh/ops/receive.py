"""`agentmesh hook pre-receive`: judge one push to a plain git server before git takes it.

Reads the push in the bare repository (git/receive.py): the roster and the policy from the default
branch as it was before the push, the commits each ref's rule looks at, the local-forge items they
hold (forge/local's own readers); verifies every signature in one batch; and leaves every decision
to core/receive.py. A push is all or nothing: one refused ref refuses it whole.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from agentmesh.core.errors import AgentmeshError, ConfigError
from agentmesh.core.memory import ATTRIBUTES_PATH
from agentmesh.core.pattern import LazyPattern
from agentmesh.core.receive import (
    ITEMS_PREFIX,
    ItemState,
    Layout,
    PullMerge,
    RefFacts,
    RefKind,
    Verdict,
    judge,
    refuse_guarded,
    short,
)
from agentmesh.forge.local.schema import CorruptItem, Item
from agentmesh.forge.local.store import ItemStore
from agentmesh.git.receive import Receiving, receiving_git
from agentmesh.git.signing import allowed_signers, ensure_allowed_signers, verified_signers
from agentmesh.host.config import HALT_REF, MESH_POLICY_PATH, PAUSE_REF, MeshPolicy, parse_mesh_policy
from agentmesh.host.roster import ROSTER_PATH, Roster, parse_roster

_ZERO = LazyPattern(r"0{40}(0{24})?")
_SHA = LazyPattern(r"[0-9a-f]{40}([0-9a-f]{24})?")
WARNING = "agentmesh hook: warning: "


@dataclass(frozen=True)
class Update:
    ref: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class Outcome:
    verdicts: list[Verdict]
    warnings: list[str]

    @property
    def refused(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.ok]


def parse_updates(text: str) -> list[Update]:
    """The `<old> <new> <ref>` lines git gives a pre-receive hook; the zero id means none."""
    found = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split(" ", 2)
        if len(parts) != 3 or not all(_SHA.fullmatch(p) for p in parts[:2]):
            raise ConfigError(f"not a pre-receive line: {line[:200]!r} (this command is run by git)")
        old, new, ref = parts
        found.append(Update(ref, None if _ZERO.fullmatch(old) else old, None if _ZERO.fullmatch(new) else new))
    return found


def pre_receive(repo: Path, stdin: str, env: Mapping[str, str], *, ssh_keygen: str | None = None) -> Outcome:
    """The verdict on each ref of the push git describes on `stdin`, in the repository at `repo`."""
    updates = parse_updates(stdin)
    bare = Receiving(receiving_git(repo, env, ssh_keygen=ssh_keygen), repo, ssh_keygen=ssh_keygen)
    try:
        return _judged(bare, updates)
    finally:
        bare.close()


def _judged(bare: Receiving, updates: list[Update]) -> Outcome:
    accepted = [Verdict(u.ref, True) for u in updates]
    head = bare.head_ref()
    head_sha = bare.resolve(head) if head else None
    if head is None or head_sha is None:
        return Outcome(accepted, [f"{WARNING}no default branch yet: every push is accepted until it has {ROSTER_PATH}"])
    warnings: list[str] = []
    policy = _policy(bare, head_sha, warnings)
    default_ref = f"refs/heads/{policy.default_branch}" if policy.default_branch else head
    base = bare.resolve(default_ref)
    roster_text = bare.files([(base, ROSTER_PATH)])[(base, ROSTER_PATH)] if base else None
    if base is None or roster_text is None:
        bootstrap = (f"{WARNING}no {ROSTER_PATH} on {default_ref.removeprefix('refs/heads/')}: every push is "
                     "accepted, and agents trust no signature (docs/security.md)")
        return Outcome(accepted, [*warnings, bootstrap])
    layout = Layout(default_ref, policy.claims.ref_prefix, policy.presence.ref_prefix,
                    f"refs/heads/{policy.memory.branch}", HALT_REF, PAUSE_REF)
    try:
        roster = parse_roster(roster_text, f"{ROSTER_PATH} on {layout.default_branch}")
    except ConfigError as exc:
        facts = [RefFacts(u.ref, u.old, u.new) for u in updates]
        return Outcome(refuse_guarded(facts, layout, f"{exc}: fix it on the server"), warnings)
    store = ItemStore(bare.objects, user="agentmesh-hook")
    guarded = [u for u in updates if u.new and layout.kind(u.ref) not in (RefKind.OTHER, RefKind.PROBE)]
    commits = {sha for sha, kind in bare.types(u.new for u in guarded if u.new).items() if kind == "commit"}
    facts = [ref_facts(bare, store, layout, u) if u.new is None or u.new in commits
             else RefFacts(u.ref, u.old, u.new, problem=f"{short(u.new)} is not a commit") for u in updates]
    merges = pull_merges(bare, store, layout, facts)
    wanted = [sha for f in facts if layout.kind(f.ref) not in (RefKind.OTHER, RefKind.PROBE)
              for sha in (*(c.sha for c in f.commits), *([f.new] if f.new else []))]
    wanted += [sha for m in merges for sha in (m.opened_in, *(r.recorded_in for r in m.reviews if r.recorded_in))]
    found = _verify(bare, roster, wanted)
    return Outcome(judge(facts, merges, layout, found, required_approvals=policy.review.required_approvals), warnings)


def _policy(bare: Receiving, head: str, warnings: list[str]) -> MeshPolicy:
    """The mesh policy on the default branch (as agents read it: from HEAD); its defaults when unreadable."""
    text = bare.files([(head, MESH_POLICY_PATH)])[(head, MESH_POLICY_PATH)]
    try:
        return parse_mesh_policy(text, f"{MESH_POLICY_PATH} on the default branch")
    except ConfigError as exc:
        warnings.append(f"{WARNING}{exc}; judging with the default policy")
        return MeshPolicy()


def _verify(bare: Receiving, roster: Roster, shas: Sequence[str]) -> Mapping[str, str | None]:
    """Every signature of the push against the roster's allowed signers, as the agents check them
    (git/signing.verified_signers: one `ssh-keygen -Y verify` per signed commit of a roster key)."""
    commits = bare.objects.commit_objects(shas)
    with tempfile.TemporaryDirectory(prefix="agentmesh-hook-") as scratch:
        allowed = ensure_allowed_signers(Path(scratch), allowed_signers(roster.signers()))
        return verified_signers(bare.git, commits, allowed, program=bare.ssh_keygen)


def ref_facts(bare: Receiving, store: ItemStore, layout: Layout, update: Update) -> RefFacts:
    """What the rule of this ref's kind looks at, read from the repository."""
    kind = layout.kind(update.ref)
    facts = RefFacts(update.ref, update.old, update.new)
    new = update.new
    if new is None or kind in (RefKind.OTHER, RefKind.PROBE):
        return facts
    if kind in (RefKind.CLAIM, RefKind.PRESENCE):
        tip = bare.commits([new]).get(new)
        return replace(facts, commits=(tip,) if tip else ())
    walk = bare.walk(update.old, new)
    facts = replace(facts, commits=walk.commits, fast_forward=walk.fast_forward)
    journals = kind in (RefKind.MEMORY, RefKind.JOURNAL)
    if journals or (kind is RefKind.DEFAULT and layout.memory_ref == layout.default_ref):
        facts = _with_paths(bare, facts)
    if kind is RefKind.DEFAULT:
        facts = replace(facts, problem=_unreadable(bare, new))
    if update.ref.startswith(ITEMS_PREFIX):
        shas = [update.old, *(c.sha for c in facts.commits), *(c.parents[0] for c in facts.commits if c.parents)]
        facts = replace(facts, items=item_states(store, [s for s in shas if s]))
        if update.old is None:
            fresh = bare.fresh(new)
            facts = replace(facts, reused=tuple(c.sha for c in facts.commits if c.sha not in fresh))
    return facts


def _with_paths(bare: Receiving, facts: RefFacts) -> RefFacts:
    """The paths each new commit changes, and `.gitattributes` where one does and in its parent."""
    assert facts.new is not None
    paths = bare.changed_paths(facts.old, facts.new)
    commits = tuple(replace(c, paths=paths.get(c.sha, ())) for c in facts.commits)
    specs = [(sha, ATTRIBUTES_PATH) for c in commits if ATTRIBUTES_PATH in c.paths for sha in (c.sha, *c.parents[:1])]
    attributes = {sha: text for (sha, _), text in bare.files(specs).items()}
    return replace(facts, commits=commits, attributes=attributes)


def _unreadable(bare: Receiving, new: str) -> str | None:
    """Why the default branch at `new` would hold a roster or a policy that does not parse, or None: the
    hook reads both from there, so a broken one would lock everybody out."""
    texts = bare.files([(new, ROSTER_PATH), (new, MESH_POLICY_PATH)])
    try:
        if texts[(new, ROSTER_PATH)] is not None:
            parse_roster(texts[(new, ROSTER_PATH)] or "", f"{ROSTER_PATH} at {short(new)}")
        parse_mesh_policy(texts[(new, MESH_POLICY_PATH)], f"{MESH_POLICY_PATH} at {short(new)}")
    except ConfigError as exc:
        return str(exc)
    return None


def item_states(store: ItemStore, shas: Iterable[str]) -> dict[str, ItemState]:
    """Each item commit as the local forge reads it; `meta` None where it holds no valid item."""
    numbered = dict(enumerate(dict.fromkeys(shas), 1))
    try:
        items = store.read_items(numbered, comments=True, reviews=True)
    except CorruptItem:  # one bad commit: read them one by one, so it alone counts as no item
        items = {n: _readable(store, n, sha) for n, sha in numbered.items()}
    return {sha: _state(items.get(n)) for n, sha in numbered.items()}


def _readable(store: ItemStore, number: int, sha: str) -> Item | None:
    try:
        return store.read_items({number: sha}, comments=True, reviews=True)[number]
    except CorruptItem:
        return None


def _state(item: Item | None) -> ItemState:
    if item is None:
        return ItemState(None)
    return ItemState(item.meta, {e.name: e.sha for e in item.comments}, {e.name: e.sha for e in item.reviews})


def pull_merges(bare: Receiving, store: ItemStore, layout: Layout, facts: Sequence[RefFacts]) -> list[PullMerge]:
    """The PR items this push marks merged at the new head of the default branch, with what decides
    whether that merge may land: their reviews, their first commit, the merge commit's tree."""
    default = next((f for f in facts if f.ref == layout.default_ref and f.new and f.old), None)
    if default is None:
        return []
    found = []
    for f in facts:
        after = f.items.get(f.new or "")
        meta = after.meta if after else None
        if not f.ref.startswith(ITEMS_PREFIX) or f.new is None or meta is None or meta.get("merge_sha") != default.new:
            continue
        before = f.items.get(f.old or "")
        number = int(f.ref.removeprefix(ITEMS_PREFIX)) if f.ref.removeprefix(ITEMS_PREFIX).isdigit() else 0
        item = store.read_items({number: f.new}, reviews=True)[number]
        found.append(PullMerge(
            f.ref, before.meta if before else None, meta, bare.first_commit(f.new),
            tuple(store.reviews(item)) if item else (),
            _merged_tree(bare, default, str(meta.get("head_sha") or ""))))
    return found


def _merged_tree(bare: Receiving, default: RefFacts, head: str) -> bool:
    """Whether the new head of the default branch holds exactly its old head merged with the PR's head
    (what `merge-tree` makes of them, as LocalForge.merge_pull made it)."""
    if not head or default.old is None or default.new is None:
        return False
    try:
        merged = bare.objects.merge_trees(default.old, head)
        return merged.tree is not None and merged.tree == bare.objects.tree_of(default.new)
    except AgentmeshError:  # the head is not in the repository, or is no commit
        return False
