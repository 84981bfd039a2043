"""Review policy: who reviews a PR, whether its head is approved, whether it may merge.

Pure: monitor-prs gathers the facts (ring, live agents, reviews, CI state,
changed paths) and the decisions are made here, the same on every host.

Ring rules (`review.ring` in the mesh policy; empty means the agents with a
presence ref, in name order):
- the reviewers of an agent's PR are the next live agents after it in the
  ring, skipping dead ones, so no PR waits forever on a dead host;
- an agent never reviews its own PR, and the agent that holds the issue's
  claim never counts as a reviewer;
- an approval counts only for the head sha it was given on: a new push makes
  it stale and the PR is reviewed again;
- only PRs opened by mesh agents are reviewed automatically; a human's PR
  never is.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from agentmesh.core.markers import PullMarker, parse_pull_marker
from agentmesh.core.model import PullRequest, Review, ReviewEvent, StatusContext
from agentmesh.core.sanitize import fence

OUTPUT_TAIL = 1500  # characters of a failing gate's output in the review body


def ring_order(ring: Sequence[str], present: Iterable[str], roster: Collection[str] | None = None) -> list[str]:
    """Who reviews whom, in order. With a roster, only its agents: `ring` orders (and may narrow) them,
    and a presence ref, which anyone can push, adds no one. Without one, the configured ring or
    every agent with a presence ref, in name order."""
    if roster is not None:
        return [name for name in dict.fromkeys(ring) if name in roster] if ring else sorted(set(roster))
    return list(dict.fromkeys(ring)) if ring else sorted(set(present))


def reviewers_for(ring: Sequence[str], author: str, *, alive: Collection[str], count: int,
                  exclude: Collection[str] = ()) -> list[str]:
    """The next `count` live agents after `author` in the ring (not the author, not `exclude`).

    An author outside the ring starts at the ring's beginning.
    """
    if count <= 0 or not ring:
        return []
    start = ring.index(author) + 1 if author in ring else 0
    chosen: list[str] = []
    for k in range(len(ring)):
        candidate = ring[(start + k) % len(ring)]
        if candidate == author or candidate in exclude or candidate not in alive or candidate in chosen:
            continue
        chosen.append(candidate)
        if len(chosen) == count:
            break
    return chosen


def mesh_pull(pull: PullRequest, *, ring: Collection[str], bot_users: Collection[str],
              logins: Mapping[str, str] | None = None) -> PullMarker | None:
    """The PR's marker when a mesh agent opened it, else None (a human's PR, or a forged marker).

    The marker must name a ring agent, and the PR's forge author must be that agent's account or
    one of the forge accounts the mesh's agents use. `logins` (agent -> forge login, from the
    roster) names the agents' accounts, and then `bot_users` plays no part: the roster is the only
    list of whose account is whose. Without it, an account is named like its agent.
    """
    marker = parse_pull_marker(pull.body)
    if marker is None or marker.agent not in ring:
        return None
    if logins is not None:
        account, bot_users = logins.get(marker.agent, ""), ()
    else:
        account = marker.agent
    if pull.author.lower() != account.lower() and pull.author not in bot_users:  # logins are case-insensitive
        return None
    return marker


@dataclass(frozen=True)
class HeadReviews:
    """Reviews of one head sha, the latest per reviewer."""

    approved_by: frozenset[str]
    changes_requested_by: frozenset[str]
    reviewed_by: frozenset[str]


def head_reviews(reviews: Iterable[Review], head_sha: str) -> HeadReviews:
    latest: dict[str, Review] = {}
    for review in reviews:
        if review.commit_id == head_sha and review.state in ("APPROVED", "CHANGES_REQUESTED", "COMMENTED"):
            latest[review.author] = review  # reviews come oldest first
    return HeadReviews(
        frozenset(a for a, r in latest.items() if r.state == "APPROVED"),
        frozenset(a for a, r in latest.items() if r.state == "CHANGES_REQUESTED"),
        frozenset(latest),
    )


def counted_approvals(reviews: HeadReviews, *, author: str, claimer: str | None,
                      reviewers: Collection[str]) -> set[str]:
    """Approvals that count: from mesh reviewers, never the author or the claim holder."""
    return {a for a in reviews.approved_by if a in reviewers and a != author and a != claimer}


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern:
    """`**` spans directories, `*` and `?` stay within one; a pattern without `/` matches a name anywhere."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    body = "".join(out)
    return re.compile(body if "/" in pattern else f"(?:.*/)?{body}")


def glob_match(pattern: str, path: str) -> bool:
    return _glob(pattern.strip().lstrip("/")).fullmatch(path) is not None


def protected_hits(paths: Iterable[str], patterns: Iterable[str], files: Collection[str] = ()) -> list[str]:
    """The changed paths that fall under a protected pattern or are one of `files` (exact paths)."""
    pats = list(patterns)
    return [p for p in paths if p in files or any(glob_match(g, p) for g in pats)]


# The mesh's own trust: protected whatever `protected_paths` says, so no policy edit can unprotect them.
ALWAYS_PROTECTED = frozenset({".agentmesh/mesh.yaml", ".agentmesh/roster.yaml"})
_WORD_EDGES = "'\"`;&|()<>{}"  # quotes and shell punctuation around a word of a `sh -c` string


def _repo_path(word: str) -> str | None:
    """`word` as a path inside the repository, or None when it cannot be one."""
    word = word.strip(_WORD_EDGES)
    while word.startswith("./"):
        word = word[2:].lstrip("/")
    word = re.sub("/+", "/", word).rstrip("/")
    if not word or word == "." or word.startswith(("/", "~", "$", "-")) or ".." in word.split("/"):
        return None
    return word


def gate_files(runs: Iterable[Sequence[str]]) -> frozenset[str]:
    """Every repository path a gate's `run` could execute or read as its input.

    A PR that changed one could write its own verdict (`check.py` replaced by `print('ok')`), so
    these are protected. The rule is literal and needs no checkout: each word of the argv, and each
    whitespace-separated word inside one (`sh -c "python3 check.py"`), names the path it spells,
    whether the file exists yet or not: `python3 check.py` names `check.py`, `./ci/lint.sh` names
    `ci/lint.sh`, `--config=ci/lint.toml` names `ci/lint.toml`, and `-m pkg.check` names
    `pkg/check.py`, `pkg/check/__init__.py` and `pkg/check/__main__.py`. Options, absolute paths and
    paths leaving the repository name nothing; a directory (`pytest tests`) is not protected as a
    whole, only a file of that exact name would be.
    """
    found: set[str] = set()
    for run in runs:
        words = [w for arg in run for w in arg.split()]
        for i, word in enumerate(words):
            if word.startswith("-") and "=" in word:
                word = word.split("=", 1)[1]
            path = _repo_path(word)
            if path is None:
                continue
            found.add(path)
            if i > 0 and words[i - 1] == "-m":
                module = path.replace(".", "/")
                found |= {f"{module}.py", f"{module}/__init__.py", f"{module}/__main__.py"}
    return frozenset(found)


def protected_changes(paths: Iterable[str], patterns: Iterable[str], gate_runs: Iterable[Sequence[str]]) -> list[str]:
    """The changed paths only a human may change: under a protected pattern, the mesh's policy and
    roster, and every file a gate runs (`gate_files`)."""
    return protected_hits(paths, patterns, ALWAYS_PROTECTED | gate_files(gate_runs))


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    summary: str  # one line
    output: str = ""  # tail of the output, shown when failed


def gate_report(results: Sequence[GateResult]) -> tuple[str, str]:
    """("N of M checks passed.", one line per gate and the output tail of each failed one)."""
    failed = [r for r in results if not r.passed]
    lines = "\n".join(f"- {'✓' if r.passed else '✗'} **{r.name}**: {r.summary}" for r in results)
    for r in failed:
        if r.output.strip():
            tail = r.output[-OUTPUT_TAIL:]
            lines += f"\n\n**{r.name}** output (tail):\n\n{fence(tail.rstrip())}"
    return f"{len(results) - len(failed)} of {len(results)} checks passed.", lines


def verdict(results: Sequence[GateResult]) -> tuple[ReviewEvent, str]:
    """(event, body) of the review: approve only if every gate passed."""
    failed = any(not r.passed for r in results)
    event: ReviewEvent = "request_changes" if failed else "approve"
    passed, lines = gate_report(results)
    return event, ("Changes requested: " if failed else "Approved: ") + passed + "\n\n" + lines


def unmet_checks(contexts: Iterable[StatusContext], required: Sequence[str]) -> list[str]:
    """The required checks (`review.required_checks`) not green on a head, each with why: a check the
    forge does not report yet is `missing`, not green. A name reported twice (a status and a check run)
    is green only when every report is."""
    states: dict[str, set[str]] = {}
    for c in contexts:
        states.setdefault(c.context, set()).add(c.state)
    unmet = []
    for name in required:
        seen = states.get(name, set())
        if seen != {"success"}:
            worst = next((s for s in ("error", "failure", "pending") if s in seen), "missing")
            unmet.append(f"{name} ({worst})")
    return unmet


def failing_checks(contexts: Iterable[StatusContext], required: Sequence[str]) -> list[str]:
    """The required checks that failed on a head (failure or error), each with why: what `pr ship`
    refuses. A pending or missing one is the wait that shipping skips."""
    return [check for check in unmet_checks(contexts, required) if not check.endswith(("(pending)", "(missing)"))]


@dataclass(frozen=True)
class MergeDecision:
    merge: bool
    reason: str


def merge_decision(*, auto: bool, approvals: int, required: int, ci_state: str, protected: Sequence[str],
                   changes_requested: bool, unmet_checks: Sequence[str] = ()) -> MergeDecision:
    """Merge only what the policy allows: approved on the current head, CI green, every required check
    reported and green (`unmet_checks` lists those that are not), nothing protected. No CI at all is
    green only while no check is required."""
    if not auto:
        return MergeDecision(False, "merge.auto is off")
    if protected:
        return MergeDecision(False, f"touches protected paths: {', '.join(protected[:5])}")
    if changes_requested:
        return MergeDecision(False, "changes requested on the current head")
    if approvals < required:
        return MergeDecision(False, f"{approvals} of {required} approvals on the current head")
    if ci_state not in ("success", "none"):
        return MergeDecision(False, f"CI is {ci_state}")
    if unmet_checks:
        return MergeDecision(False, f"required checks not green: {', '.join(unmet_checks[:5])}")
    return MergeDecision(True, "approved and green")
