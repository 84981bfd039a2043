"""What must hold after a chaos run, judged from the remote (a `RemoteView`) and from this host.

Each check returns a `Verdict`: PASS or FAIL, a figure a human can compare between runs, and the
problems found (issue, PR or ref named). docs/chaos.md says what each one means and why.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from agentmesh.core.memory import ref_writer
from agentmesh.core.vocab import Label
from agentmesh.host.config import HALT_REF, PAUSE_REF
from agentmesh.ops.chaos.remote import LESSON_BRANCH, WORK_BRANCH, Item, RemoteView

STAGE_LABELS = (Label.CLAIMED, Label.WORKING, Label.REVIEW)  # a closed issue keeps none of these
PARK_LABELS = (Label.DEAD_LETTER, Label.NEEDS_HUMAN)
COVERED = ("claimed", "pr-opened", "reviewed", "merged", "cleaned-up")  # journal events per merged PR
SHOWN_PROBLEMS = 50


class Invariant(StrEnum):
    SETTLED = "issues-settled"
    ONE_MERGE = "one-merge-per-issue"
    SIBLING_APPROVED = "sibling-approved"
    NO_LEFTOVERS = "no-claims-or-orphans"
    MAIN_HOLDS_MERGES = "main-holds-merges"
    MAIN_ONLY_MERGES = "main-only-merges"
    JOURNALS = "journals"
    NO_STAGE_ON_CLOSED = "no-stage-on-closed"
    REF_NAMESPACES = "ref-namespaces"
    PROCESSES_EXIT = "processes-exit"
    NO_LOCKS = "no-locks-held"


@dataclass(frozen=True)
class Verdict:
    invariant: Invariant
    ok: bool
    figure: str
    problems: tuple[str, ...] = field(default=())

    def to_json(self) -> dict:
        return {"invariant": str(self.invariant), "ok": self.ok, "figure": self.figure,
                "problems": list(self.problems[:SHOWN_PROBLEMS]), "problem_count": len(self.problems)}


def verdict(invariant: Invariant, figure: str, problems: Iterable[str]) -> Verdict:
    found = tuple(problems)
    return Verdict(invariant, not found, figure, found)


def check_remote(view: RemoteView, *, agents: Sequence[str], issues: Sequence[int] = ()) -> list[Verdict]:
    """Every remote invariant, in the order docs/chaos.md lists them."""
    return [settled(view, issues), one_merge(view), sibling_approved(view, agents), no_leftovers(view),
            main_holds_merges(view), main_only_merges(view), journals(view), no_stage_on_closed(view),
            ref_namespaces(view, agents)]


# --- issues and PRs ----------------------------------------------------------------------------


def parked(view: RemoteView, issue: Item) -> bool:
    """Open with a reason: a park label and a comment, on the issue or on an open PR for it."""
    if issue.labels & set(PARK_LABELS) and issue.comments:
        return True
    return any(p.state == "open" and Label.NEEDS_HUMAN in p.labels and (p.comments or issue.comments)
               for p in view.pulls_by_issue.get(issue.number, []))


def settled(view: RemoteView, expected: Sequence[int] = ()) -> Verdict:
    issues = view.issues
    numbers = {i.number for i in issues}
    problems = [f"#{n}: issue missing from the remote" for n in expected if n not in numbers]
    problems += [f"{ref}: meta.json unreadable" for ref in view.unreadable]
    closed = [i for i in issues if i.state == "closed"]
    held = [i for i in issues if i.state != "closed" and parked(view, i)]
    problems += [f"#{i.number}: {i.state or 'unknown state'}, labels {sorted(i.labels)}, {len(i.comments)} comment(s)"
                 for i in issues if i.state != "closed" and i not in held]
    return verdict(Invariant.SETTLED, f"{len(closed) + len(held)}/{len(issues)} issues settled: "
                   f"{len(closed)} closed, {len(held)} parked", problems)


def one_merge(view: RemoteView) -> Verdict:
    problems = []
    merged_total = 0
    for number, pulls in sorted(view.pulls_by_issue.items()):
        merged = [p.number for p in pulls if p.state == "merged"]
        opened = [p.number for p in pulls if p.state == "open"]
        merged_total += len(merged)
        if len(merged) > 1:
            problems.append(f"#{number}: {len(merged)} merged PRs {_numbers(merged)}")
        if merged and opened:
            problems.append(f"#{number}: open PR(s) {_numbers(opened)} beside merged {_numbers(merged)}")
        if len(opened) > 1:
            problems.append(f"#{number}: {len(opened)} open PRs {_numbers(opened)}")
    return verdict(Invariant.ONE_MERGE, f"{merged_total} merged PRs over {len(view.pulls_by_issue)} issues with "
                   f"PRs, {len(problems)} problem(s)", problems)


def merged_pulls(view: RemoteView) -> list[Item]:
    return [p for p in view.pulls if p.state == "merged" and not p.is_lesson]


def merged_head(view: RemoteView, pull: Item) -> str:
    """The head the merge took: the merge commit's second parent, else the head meta.json kept."""
    parents = view.parents(pull.merge_sha) if pull.merge_sha else []
    return parents[1] if len(parents) == 2 else pull.head_sha


def approvers(view: RemoteView, pull: Item, agents: Sequence[str]) -> set[str]:
    head = merged_head(view, pull)
    return {str(r.get("author")) for r in pull.reviews
            if r.get("state") == "APPROVED" and r.get("commit_id") == head and r.get("author") != pull.author
            and (not agents or r.get("author") in agents)}


def sibling_approved(view: RemoteView, agents: Sequence[str]) -> Verdict:
    merged = merged_pulls(view)
    problems = []
    for pull in merged:
        if not approvers(view, pull, agents):
            states = ", ".join(f"{r.get('author')} {r.get('state')} on {str(r.get('commit_id'))[:12]}"
                               for r in pull.reviews) or "no reviews"
            problems.append(f"PR #{pull.number} by {pull.author}, merged head {merged_head(view, pull)[:12]}: {states}")
    return verdict(Invariant.SIBLING_APPROVED, f"{len(merged) - len(problems)}/{len(merged)} merges approved by a "
                   f"sibling on the merged head", problems)


def no_leftovers(view: RemoteView) -> Verdict:
    claims = sorted(r for r in view.refs if r.startswith(view.claims_prefix))
    open_heads = {p.head for p in view.pulls if p.state == "open"}
    orphans = sorted(r for r in view.refs if r.startswith("refs/heads/")
                     and WORK_BRANCH.fullmatch(r[len("refs/heads/"):]) and r[len("refs/heads/"):] not in open_heads)
    return verdict(Invariant.NO_LEFTOVERS, f"{len(claims)} claim(s), {len(orphans)} orphan branch(es)",
                   [f"claim {r}" for r in claims] + [f"orphan {r}" for r in orphans])


def main_holds_merges(view: RemoteView) -> Verdict:
    main = view.main
    merged = merged_pulls(view)
    in_history = by_content = 0
    problems = []
    for pull in merged:
        if main and view.is_ancestor(pull.merge_sha, main):
            in_history += 1
            continue
        missing = _work_not_in(view, pull, main) if main else ["main is missing"]
        if missing:
            problems.append(f"PR #{pull.number} (merge {pull.merge_sha[:12] or 'none'}): not in main's history, "
                            f"and {', '.join(missing[:5])} differ")
        else:
            by_content += 1
    return verdict(Invariant.MAIN_HOLDS_MERGES, f"{in_history}/{len(merged)} merges in main's history"
                   + (f", {by_content} more by content only" if by_content else ""), problems)


def main_only_merges(view: RemoteView) -> Verdict:
    """Agents write to main only by merging a PR: every commit on main's first-parent line, but its
    root, is a merged PR's merge commit (journals and the kill switch live on their own branches)."""
    merges = {p.merge_sha for p in merged_pulls(view) if p.merge_sha}
    problems, line = [], 0
    commit = view.main
    while commit:
        parents = view.parents(commit)
        if not parents:
            break
        line += 1
        if commit not in merges:
            subject = view.repo.commit_message(commit).split("\n\n", 1)[-1].split("\n", 1)[0]
            problems.append(f"{commit[:12]} is no PR's merge: {subject[:80]}")
        commit = parents[0]
    return verdict(Invariant.MAIN_ONLY_MERGES, f"{line - len(problems)}/{line} commits on main are PR merges",
                   problems)


def _work_not_in(view: RemoteView, pull: Item, main: str) -> list[str]:
    """The PR's changed files (its head against where it forked from main) whose content main lacks."""
    head = merged_head(view, pull)
    if not head or not view.repo.has_object(head):
        return [f"head {head[:12] or 'none'} (missing)"]
    fork = view.repo.merge_base(head, main)
    before = view.blobs(fork) if fork else {}
    after, now = view.blobs(head), view.blobs(main)
    return [path for path, blob in sorted(after.items()) if before.get(path) != blob and now.get(path) != blob]


def no_stage_on_closed(view: RemoteView) -> Verdict:
    closed = [i for i in view.issues if i.state == "closed"]
    problems = [f"#{i.number}: {', '.join(sorted(i.labels & set(STAGE_LABELS)))}" for i in closed
                if i.labels & set(STAGE_LABELS)]
    return verdict(Invariant.NO_STAGE_ON_CLOSED, f"{len(problems)}/{len(closed)} closed issues keep a stage label",
                   problems)


# --- journals ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    agent: str  # the journal folder's agent
    data: dict

    def get(self, key: str) -> object:
        return self.data.get(key)


def journal_entries(view: RemoteView) -> tuple[list[Entry], list[str]]:
    """Every line of every journal (each writer's branch, the legacy memory branch) as an object, and the
    lines that are not one."""
    entries, bad = [], []
    for journal in view.journals:
        for number, raw in enumerate(journal.data.split(b"\n"), 1):
            if not raw.strip():
                continue
            data = _line(raw)
            if data is None or not all(isinstance(data.get(k), str) and data.get(k) for k in ("id", "ts", "event")):
                bad.append(f"{journal.path}:{number}: not a journal entry")
            elif data.get("agent") != journal.agent:
                bad.append(f"{journal.path}:{number}: written for agent {data.get('agent')!r}")
            else:
                entries.append(Entry(journal.agent, data))
    return entries, bad


def _line(raw: bytes) -> dict | None:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def journals(view: RemoteView) -> Verdict:
    entries, bad = journal_entries(view)
    ids = Counter(str(e.get("id")) for e in entries)
    problems = bad + [f"id {i} appears {n} times" for i, n in sorted(ids.items()) if n > 1]
    gaps = journal_gaps(view, entries)
    merged = len(merged_pulls(view))
    return verdict(Invariant.JOURNALS, f"{len(view.journals)} journal(s), {len(entries)} entries: "
                   f"{sum(n - 1 for n in ids.values() if n > 1)} duplicate id(s), {len(bad)} bad line(s); "
                   f"{merged - len(gaps)}/{merged} merged PRs journaled", problems + gaps)


def journal_gaps(view: RemoteView, entries: list[Entry] | None = None) -> list[str]:
    """The merged PRs whose life the journals do not cover, and what is missing."""
    if entries is None:
        entries, _ = journal_entries(view)
    gaps = []
    for pull in merged_pulls(view):
        missing = _uncovered(view, pull, entries)
        if missing:
            gaps.append(f"PR #{pull.number} (#{pull.closes}): no {', '.join(missing)} entry")
    return gaps


def _uncovered(view: RemoteView, pull: Item, entries: list[Entry]) -> list[str]:
    issue, number = pull.closes, pull.number
    reviewers = approvers(view, pull, ())
    merger = str(pull.meta.get("merged_by") or pull.author)
    wanted: dict[str, Callable[[Entry], bool]] = {
        "claimed": lambda e: e.get("issue") == issue,
        "pr-opened": lambda e: e.get("pr") == number and e.agent == pull.author,
        "reviewed": lambda e: e.get("pr") == number and e.agent in reviewers,
        "merged": lambda e: e.get("pr") == number and e.agent == merger,
        "cleaned-up": lambda e: e.get("pr") == number or e.get("issue") == issue,
    }
    return [event for event in COVERED
            if not any(e.get("event") == event and wanted[event](e) for e in entries)]


# --- refs --------------------------------------------------------------------------------------


def expected_ref(view: RemoteView, ref: str, agents: Sequence[str]) -> bool:
    if ref in (view.base_ref, f"refs/heads/{view.memory_branch}", HALT_REF, PAUSE_REF):
        return True
    if (writer := ref_writer(ref)) is not None:
        return writer in agents if agents else True
    if ref.startswith(view.claims_prefix):
        return ref[len(view.claims_prefix):].isdigit()
    if ref.startswith(view.presence_prefix):
        name = ref[len(view.presence_prefix):]
        return name in agents if agents else bool(name)
    if ref.startswith("refs/heads/"):
        branch = ref[len("refs/heads/"):]
        return bool(WORK_BRANCH.fullmatch(branch) or LESSON_BRANCH.fullmatch(branch))
    rest = ref.removeprefix("refs/agentmesh/")
    if rest == ref:
        return False
    kind, _, name = rest.partition("/")
    hexed = all(c in "0123456789abcdef" for c in name)
    return {"items": name.isdigit(), "labels": not name, "roster": not name,
            "statuses": hexed and len(name) in (40, 64), "pull-heads": hexed and len(name) == 64}.get(kind, False)


def ref_namespaces(view: RemoteView, agents: Sequence[str]) -> Verdict:
    problems = [f"{ref} {sha[:12]}" for ref, sha in sorted(view.refs.items()) if not expected_ref(view, ref, agents)]
    return verdict(Invariant.REF_NAMESPACES, f"{len(problems)}/{len(view.refs)} refs outside the expected namespaces",
                   problems)


def _numbers(numbers: Iterable[int]) -> str:
    return ", ".join(f"#{n}" for n in numbers)
