"""The pre-receive hook's rules (core/receive.py) on tables: facts and signers in, one verdict per ref.

Signers map a commit to the roster principal that signed it: an agent's name, `maintainer:<login>`,
or nothing (unsigned, or signed by a key the roster does not list).
"""

from __future__ import annotations

import pytest

from agentmesh.core.lease import Claim, claim_message
from agentmesh.core.memory import ATTRIBUTES_LINE, ATTRIBUTES_PATH, journal_attributes
from agentmesh.core.model import Review
from agentmesh.core.receive import (
    Commit,
    ItemState,
    Layout,
    PullMerge,
    RefFacts,
    RefKind,
    approvals,
    judge,
    outsider_may,
    refuse_guarded,
)

LAYOUT = Layout("refs/heads/main", "refs/heads/claim/", "refs/heads/agentmesh/agents/", "refs/heads/agentmesh/memory",
                "refs/heads/agentmesh/halt", "refs/heads/agentmesh/pause")
OLD, NEW, HEAD = "o" * 40, "n" * 40, "h" * 40
SIGNERS = {"ada1": "ada", "bob1": "bob", "grace1": "maintainer:grace", "eve1": None}


def verdict(facts: RefFacts, signers=None, merges=(), layout=LAYOUT, required=1):
    [found] = judge([facts], list(merges), layout, signers or SIGNERS, required_approvals=required)
    assert found.ref == facts.ref
    return found


def ok(facts, **kw) -> bool:
    return verdict(facts, **kw).ok


@pytest.mark.parametrize("ref, kind", [
    ("refs/heads/main", RefKind.DEFAULT),
    ("refs/heads/claim/3", RefKind.CLAIM),
    ("refs/heads/claim/x", RefKind.CLAIM),
    ("refs/heads/agentmesh/agents/ada", RefKind.PRESENCE),
    ("refs/heads/agentmesh/memory", RefKind.MEMORY),
    ("refs/heads/agentmesh/journals/ada", RefKind.JOURNAL),
    ("refs/heads/agentmesh/journals/maintainer.grace", RefKind.JOURNAL),
    ("refs/heads/agentmesh/halt", RefKind.HALT),
    ("refs/heads/agentmesh/pause", RefKind.PAUSE),
    ("refs/agentmesh/items/7", RefKind.FORGE),
    ("refs/agentmesh/labels", RefKind.FORGE),
    ("refs/agentmesh/doctor/ada-0a1b", RefKind.PROBE),
    ("refs/heads/ada/3-fix", RefKind.OTHER),
    ("refs/heads/agentmesh/other", RefKind.OTHER),
    ("refs/tags/v1", RefKind.OTHER),
])
def test_every_ref_has_one_kind(ref, kind):
    assert LAYOUT.kind(ref) is kind


def test_the_policy_moves_the_namespaces():
    layout = Layout("refs/heads/trunk", "refs/agentmesh/claims/", "refs/heads/alive/", "refs/heads/ops/journals",
                    "refs/heads/agentmesh/halt", "refs/heads/agentmesh/pause")
    assert layout.kind("refs/agentmesh/claims/4") is RefKind.CLAIM  # before the local forge's own prefix
    assert layout.kind("refs/heads/alive/ada") is RefKind.PRESENCE
    assert layout.kind("refs/heads/ops/journals") is RefKind.MEMORY
    assert layout.kind("refs/heads/main") is RefKind.OTHER and layout.default_branch == "trunk"


# --- claims and presence ----------------------------------------------------------------------


def claim_commit(sha: str, agent: str = "ada", issue: int = 3) -> Commit:
    return Commit(sha, (OLD,), claim_message(Claim(issue, agent, "host-a", "0123456789abcdef", 1800)))


@pytest.mark.parametrize("commit, signers, accepted", [
    (claim_commit("ada1"), SIGNERS, True),
    (claim_commit("bob1"), SIGNERS, False),  # bob's key, ada's trailers
    (claim_commit("eve1", agent="eve"), SIGNERS, False),  # an outsider signing its own claim
    (claim_commit("x1"), {}, False),  # unsigned
    (claim_commit("ada1", issue=4), SIGNERS, False),  # ada's real claim of #4, replayed onto #3
    (Commit("ada1", (OLD,), "not a claim"), SIGNERS, False),
    (claim_commit("grace1", agent="grace"), SIGNERS, False),  # maintainers hold no claims
])
def test_a_claim_is_a_claim_of_its_issue_signed_by_the_agent_it_names(commit, signers, accepted):
    facts = RefFacts("refs/heads/claim/3", None, commit.sha, commits=(commit,))
    assert ok(facts, signers=signers) is accepted


def test_a_refused_claim_says_which_commit_and_why():
    facts = RefFacts("refs/heads/claim/3", None, "x1" + "0" * 38, commits=(claim_commit("x1" + "0" * 38),))
    assert verdict(facts).line == ("agentmesh hook: refused refs/heads/claim/3: commit x10000000000 is not signed by "
                                   "the roster key of ada, whom its trailers name")


def test_claims_and_presence_may_be_deleted_by_anyone():
    for ref in ("refs/heads/claim/3", "refs/heads/agentmesh/agents/ada"):
        assert ok(RefFacts(ref, OLD, None))


@pytest.mark.parametrize("ref, sha, accepted", [
    ("refs/heads/agentmesh/agents/ada", "ada1", True),
    ("refs/heads/agentmesh/agents/ada", "bob1", False),
    ("refs/heads/agentmesh/agents/eve", "eve1", False),
    ("refs/heads/agentmesh/agents/ada", "unsigned", False),
])
def test_presence_is_signed_by_the_agent_its_ref_names(ref, sha, accepted):
    assert ok(RefFacts(ref, None, sha, commits=(Commit(sha),))) is accepted


# --- the memory branch -------------------------------------------------------------------------


def journal(sha: str, *paths: str, parents=(OLD,)) -> Commit:
    return Commit(sha, tuple(parents), paths=paths)


MEMORY = "refs/heads/agentmesh/memory"
ADA_JOURNAL = "ai-memory/agents/ada/journal/2026-05.jsonl"


@pytest.mark.parametrize("commits, attributes, accepted", [
    ([journal("ada1", ADA_JOURNAL)], {}, True),
    ([journal("ada1", ADA_JOURNAL, ATTRIBUTES_PATH)], {"ada1": journal_attributes(None), OLD: None}, True),
    ([journal("ada1", "ai-memory/agents/bob/journal/2026-05.jsonl")], {}, False),  # another agent's journal
    ([journal("ada1", ADA_JOURNAL, "check.py")], {}, False),
    ([journal("ada1", ADA_JOURNAL, ATTRIBUTES_PATH)], {"ada1": "* filter=evil\n", OLD: None}, False),
    ([journal("eve1", "ai-memory/agents/eve/journal/2026-05.jsonl")], {}, False),  # an outsider
    ([journal("grace1", ADA_JOURNAL)], {}, False),  # a maintainer writes no journal
    ([journal("ada1", ADA_JOURNAL), journal("x", ADA_JOURNAL, parents=("ada1",))], {}, False),  # one unsigned
    ([journal("ada1", parents=(OLD, HEAD))], {}, False),  # a merge
])
def test_memory_commits_are_each_agents_own_journal(commits, attributes, accepted):
    facts = RefFacts(MEMORY, OLD, commits[-1].sha, commits=tuple(commits), attributes=attributes)
    assert ok(facts) is accepted


def test_the_first_flush_creates_the_memory_branch_with_its_attributes():
    root = journal("ada1", ADA_JOURNAL, ATTRIBUTES_PATH, parents=())
    assert ok(RefFacts(MEMORY, None, "ada1", commits=(root,), attributes={"ada1": ATTRIBUTES_LINE + "\n"}))


def test_the_memory_branch_only_fast_forwards_and_stays():
    assert not ok(RefFacts(MEMORY, OLD, "ada1", fast_forward=False, commits=(journal("ada1", ADA_JOURNAL),)))
    assert verdict(RefFacts(MEMORY, OLD, None)).reason == "the memory branch cannot be deleted"


# --- each writer's journal branch ---------------------------------------------------------------


JOURNALS = "refs/heads/agentmesh/journals/"
GRACE_JOURNAL = "ai-memory/agents/maintainer.grace/journal/2026-05.jsonl"


@pytest.mark.parametrize("ref, commits, accepted", [
    ("ada", [journal("ada1", ADA_JOURNAL)], True),
    ("ada", [journal("ada1", ADA_JOURNAL, parents=())], True),  # the first flush: a root commit
    ("ada", [journal("bob1", ADA_JOURNAL)], False),  # another agent writing her journal
    ("bob", [journal("ada1", ADA_JOURNAL)], False),  # her own lines, on another agent's branch
    ("ada", [journal("ada1", "ai-memory/agents/bob/journal/2026-05.jsonl")], False),  # outside her directory
    ("ada", [journal("ada1", ADA_JOURNAL, "check.py")], False),
    ("ada", [journal("ada1", ADA_JOURNAL, ATTRIBUTES_PATH)], False),  # no attributes: nothing is merged there
    ("ada", [journal("grace1", ADA_JOURNAL)], False),  # a maintainer does not write an agent's journal
    ("maintainer.grace", [journal("grace1", GRACE_JOURNAL)], True),  # but her own
    ("maintainer.grace", [journal("ada1", GRACE_JOURNAL)], False),
    ("eve", [journal("eve1", "ai-memory/agents/eve/journal/2026-05.jsonl")], False),  # an outsider
    ("ada", [journal("ada1", ADA_JOURNAL), journal("x", ADA_JOURNAL, parents=("ada1",))], False),  # one unsigned
    ("ada", [journal("ada1", parents=(OLD, HEAD))], False),  # a merge
    ("ada/x", [journal("ada1", "ai-memory/agents/ada/x/journal/2026-05.jsonl")], False),  # names no writer
])
def test_a_journal_branch_grows_only_by_its_own_writers_commits(ref, commits, accepted):
    facts = RefFacts(JOURNALS + ref, OLD, commits[-1].sha, commits=tuple(commits))
    assert ok(facts) is accepted


def test_a_journal_branch_only_fast_forwards_and_stays():
    ref = JOURNALS + "ada"
    assert verdict(RefFacts(ref, OLD, "ada1", fast_forward=False,
                            commits=(journal("ada1", ADA_JOURNAL),))).reason == "not a fast-forward"
    assert verdict(RefFacts(ref, OLD, None)).reason == "a journal branch cannot be deleted"


# --- the kill switch and the local forge -------------------------------------------------------


SWITCHES = ["refs/heads/agentmesh/halt", "refs/heads/agentmesh/pause"]


@pytest.mark.parametrize("switch", SWITCHES)
@pytest.mark.parametrize("sha, accepted", [("ada1", True), ("grace1", True), ("eve1", False), ("x", False)])
def test_the_kill_switch_and_the_pause_are_set_and_cleared_by_roster_keys_only(switch, sha, accepted):
    assert ok(RefFacts(switch, OLD, sha, commits=(Commit(sha),))) is accepted
    assert not ok(RefFacts(switch, OLD, None))


@pytest.mark.parametrize("switch", SWITCHES)
def test_the_kill_switch_and_the_pause_only_move_forward(switch):
    """A rewind to an older resume, signed by an agent once, would restart a halted or paused mesh."""
    assert verdict(RefFacts(switch, OLD, "ada1", fast_forward=False)).reason == "not a fast-forward"


ISSUE = {"version": 1, "kind": "issue", "title": "t", "body": "b", "state": "open", "labels": [], "assignees": [],
         "author": "eve", "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}


def item(meta=None, comments=None, reviews=None, **changes) -> ItemState:
    return ItemState({**(meta or ISSUE), **changes}, comments or {}, reviews or {})


@pytest.mark.parametrize("before, after, accepted", [
    (item(), item(updated_at="later", comments={"000001.json": "c1"}), True),
    (item(comments={"000001.json": "c1"}), item(comments={"000001.json": "c1", "000002.json": "c2"}), True),
    (item(comments={"000001.json": "c1"}), item(comments={"000001.json": "cX", "000002.json": "c2"}), False),
    (item(comments={"000001.json": "c1"}), item(), False),  # deletes a comment
    (item(), item(labels=["task"]), False),
    (item(labels=["agentmesh:needs-human"]), item(labels=[]), False),
    (item(), item(state="closed"), False),
    (item(), item(assignees=["eve"]), False),
    (item(), item(reviews={"000001.json": "r1"}), False),
    (item(), ItemState(None), False),  # not an item any more
    (None, item(), False),
])
def test_an_outsider_may_only_add_comments(before, after, accepted):
    assert outsider_may(before, after, creates=False) is accepted


@pytest.mark.parametrize("after, accepted", [
    (item(), True),
    (item(labels=["task"]), False),
    (item(assignees=["ada"]), False),
    (item(state="closed"), False),
    (item(kind="pull"), False),
    (item(comments={"000001.json": "c1"}), False),
    (ItemState(None), False),
])
def test_an_outsider_may_open_a_bare_issue(after, accepted):
    assert outsider_may(None, after, creates=True) is accepted


ITEM = "refs/agentmesh/items/5"


def test_item_commits_signed_by_roster_keys_change_anything_and_outsiders_only_comment():
    labelled = RefFacts(ITEM, OLD, "eve1", commits=(Commit("eve1", (OLD,)),),
                        items={OLD: item(), "eve1": item(labels=["task"])})
    commented = RefFacts(ITEM, OLD, "eve1", commits=(Commit("eve1", (OLD,)),),
                         items={OLD: item(), "eve1": item(comments={"000001.json": "c1"})})
    assert not ok(labelled) and ok(commented)
    assert ok(RefFacts(ITEM, OLD, "ada1", commits=(Commit("ada1", (OLD,)),),
                       items={OLD: item(), "ada1": item(labels=["task"])}))
    opened = RefFacts(ITEM, None, "x", commits=(Commit("x"),), items={"x": item()})
    assert ok(opened) and not ok(RefFacts(ITEM, None, "x", commits=(Commit("x"),), items={"x": item(labels=["a"])}))


def test_an_outsider_opens_an_item_from_its_own_first_commit_not_from_another_items_history():
    pull = ItemState({**ISSUE, "kind": "pull"}, {}, {"000001.json": "r1"})  # another item, with bob's approval
    copied = ItemState({**ISSUE, "kind": "pull"}, {"000001.json": "c1"}, {"000001.json": "r1"})
    facts = RefFacts(ITEM, None, "x", commits=(Commit("x", ("bob1",)),), items={"bob1": pull, "x": copied})
    assert not ok(facts)
    chain = RefFacts(ITEM, None, "x2", commits=(Commit("x1"), Commit("x2", ("x1",))),
                     items={"x1": item(), "x2": item(comments={"000001.json": "c1"})})
    assert ok(chain)  # a new issue and its first comment in one push
    assert not ok(RefFacts(ITEM, OLD, "x1", commits=(Commit("x1"),), items={"x1": item()}))  # a second first commit
    signed_copy = RefFacts(ITEM, None, "ada1", commits=(Commit("ada1"),), items={"ada1": item()}, reused=("ada1",))
    assert not ok(signed_copy)  # even an exact copy that a roster key signed: its reviews would count twice


def test_local_forge_refs_only_fast_forward_are_never_deleted_and_need_a_roster_key():
    assert not ok(RefFacts(ITEM, OLD, "ada1", fast_forward=False, commits=(Commit("ada1", (OLD,)),)))
    assert not ok(RefFacts(ITEM, OLD, None))
    labels = "refs/agentmesh/labels"
    assert ok(RefFacts(labels, OLD, "ada1", commits=(Commit("ada1", (OLD,)),)))
    assert not ok(RefFacts(labels, OLD, "eve1", commits=(Commit("eve1", (OLD,)),)))
    assert not ok(RefFacts(labels, OLD, "ada1", fast_forward=False))
    guard = "refs/agentmesh/pull-heads/" + "f" * 64  # moves from one PR's first commit to the next one's
    assert ok(RefFacts(guard, OLD, "ada1", fast_forward=False, commits=(Commit("ada1"),)))
    assert not ok(RefFacts(guard, OLD, "x", fast_forward=False, commits=(Commit("x"),)))
    assert not ok(RefFacts(guard, OLD, "x", fast_forward=False))  # back to a commit it had: the value is checked


def test_a_ref_that_holds_no_commit_is_refused_whatever_its_kind():
    for ref in ("refs/agentmesh/labels", "refs/heads/agentmesh/halt", "refs/heads/main"):
        found = verdict(RefFacts(ref, OLD, "b" * 40, problem="bbbbbbbbbbbb is not a commit"), signers={"b" * 40: "ada"})
        assert not found.ok and found.reason == "bbbbbbbbbbbb is not a commit"


def test_doctor_probes_and_other_branches_are_free():
    for ref in ("refs/agentmesh/doctor/eve-00", "refs/heads/eve/anything", "refs/tags/v1"):
        assert ok(RefFacts(ref, OLD, "x")) and ok(RefFacts(ref, OLD, None))


# --- the default branch -------------------------------------------------------------------------

PULL = {**ISSUE, "kind": "pull", "head": "ada/1-x", "base": "main", "head_sha": HEAD, "requested_reviewers": [],
        "merge_sha": None, "author": "ada"}


def review(author: str, recorded_in: str, state="APPROVED", commit=HEAD) -> Review:
    return Review(1, author, state, commit, recorded_in=recorded_in)


def merge(*reviews: Review, before=None, tree=True, opened_in="ada1", **after) -> PullMerge:
    return PullMerge("refs/agentmesh/items/5", {**PULL, **(before or {})},
                     {**PULL, "state": "merged", "merge_sha": "m", **after}, opened_in, tuple(reviews), tree)


def main_update(parents=(OLD, HEAD), **kw) -> RefFacts:
    return RefFacts("refs/heads/main", OLD, "m", commits=(Commit(HEAD, (OLD,)), Commit("m", tuple(parents))), **kw)


SIGNED = {**SIGNERS, "m": "ada", "r-bob": "bob", "r-ada": "ada", "r-grace": "maintainer:grace", "r-eve": None}


@pytest.mark.parametrize("pull, accepted", [
    (merge(review("bob", "r-bob")), True),
    (merge(review("grace", "r-grace")), True),  # a maintainer's approval
    (merge(), False),  # no approval
    (merge(review("ada", "r-ada")), False),  # the author approving herself
    (merge(review("bob", "r-ada")), False),  # an approval under bob's name written with ada's key
    (merge(review("bob", "r-eve")), False),  # ... with an outsider's key
    (merge(review("bob", "r-bob", commit=OLD)), False),  # approved another head
    (merge(review("bob", "r-bob"), review("bob", "r-bob", state="CHANGES_REQUESTED")), False),  # taken back
    (merge(review("bob", "r-bob"), tree=False), False),  # the merge commit's tree is not the PR's
    (merge(review("bob", "r-bob"), before={"state": "merged"}), False),  # merged once already
    (merge(review("bob", "r-bob"), base="release"), False),  # a PR into another branch
    (merge(review("bob", "r-bob"), opened_in="bob1"), False),  # bob opened it: his approval is his own
])
def test_the_default_branch_takes_a_merge_of_an_approved_pull_request(pull, accepted):
    assert ok(main_update(), signers=SIGNED, merges=[pull]) is accepted


def test_a_merge_commit_must_be_signed_and_sit_on_the_old_head():
    approved = merge(review("bob", "r-bob"))
    assert not ok(main_update(), signers={**SIGNED, "m": None}, merges=[approved])
    assert not ok(main_update(parents=(HEAD, OLD)), signers=SIGNED, merges=[approved])
    assert ok(main_update(parents=(OLD,)), signers=SIGNED, merges=[approved])  # a squash


def test_two_approvals_when_the_policy_asks_for_two():
    pull = merge(review("bob", "r-bob"), review("grace", "r-grace"))
    assert ok(main_update(), signers=SIGNED, merges=[pull], required=2)
    assert not ok(main_update(), signers=SIGNED, merges=[merge(review("bob", "r-bob"))], required=2)
    assert ok(main_update(), signers=SIGNED, merges=[merge(review("bob", "r-bob"))], required=0)  # one at least


@pytest.mark.parametrize("signers, accepted", [
    ({"c1": "maintainer:grace", "c2": "maintainer:lin"}, True),
    ({"c1": "maintainer:grace", "c2": "ada"}, False),  # an agent never writes main but by a merge
    ({"c1": "maintainer:grace", "c2": None}, False),
])
def test_maintainers_commit_to_the_default_branch(signers, accepted):
    facts = RefFacts("refs/heads/main", OLD, "c2", commits=(Commit("c1", (OLD,)), Commit("c2", ("c1",))))
    assert ok(facts, signers=signers) is accepted


def test_a_maintainer_may_merge_a_pull_request_of_maintainers_commits_without_approval():
    signed = {**SIGNED, HEAD: "maintainer:grace", "m": "maintainer:grace"}
    assert ok(main_update(), signers=signed, merges=[merge()])
    refused = verdict(main_update(), signers={**signed, HEAD: "ada"}, merges=[merge()])
    assert not refused.ok and "0 of 1 approvals" in refused.reason  # the merge's reason, not the maintainers'


def test_the_default_branch_only_fast_forwards_stays_and_keeps_a_readable_roster():
    signed = {"c1": "maintainer:grace"}
    assert not ok(RefFacts("refs/heads/main", OLD, "c1", fast_forward=False, commits=(Commit("c1"),)), signers=signed)
    assert not ok(RefFacts("refs/heads/main", OLD, None))
    broken = RefFacts("refs/heads/main", OLD, "c1", commits=(Commit("c1", (OLD,)),), problem="roster: bad key")
    assert verdict(broken, signers=signed).reason == "roster: bad key"


def test_journals_configured_onto_the_default_branch_are_taken_there():
    layout = Layout("refs/heads/main", "refs/heads/claim/", "refs/heads/agentmesh/agents/", "refs/heads/main",
                    "refs/heads/agentmesh/halt", "refs/heads/agentmesh/pause")
    facts = RefFacts("refs/heads/main", OLD, "ada1", commits=(journal("ada1", ADA_JOURNAL),))
    assert ok(facts, layout=layout) and not ok(facts)
    assert layout.kind("refs/heads/main") is RefKind.DEFAULT  # merges still land there
    assert ok(main_update(), layout=layout, signers=SIGNED, merges=[merge(review("bob", "r-bob"))])
    assert not ok(main_update(), layout=layout, signers=SIGNED, merges=[merge()])


def test_approvals_are_counted_by_principal_on_the_head():
    reviews = [review("bob", "r-bob"), review("bob", "r-bob"), review("grace", "r-grace"), review("ada", "r-ada")]
    assert approvals(reviews, HEAD, "ada", SIGNED) == {"bob", "maintainer:grace"}


def test_an_unreadable_roster_refuses_what_it_would_guard():
    facts = [RefFacts("refs/heads/main", OLD, NEW), RefFacts("refs/heads/eve/x", OLD, NEW),
             RefFacts("refs/agentmesh/doctor/p", None, NEW), RefFacts("refs/heads/claim/1", OLD, None)]
    assert [v.ok for v in refuse_guarded(facts, LAYOUT, "roster: broken")] == [False, True, True, False]
