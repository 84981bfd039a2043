"""Per-agent performance from the memory journals (`agentmesh status`). Pure: entries in, figures out. Agents are
keyed as core/writers.py keys journal writers: at most MAX_AGENTS of them, the others under OTHER.

- completed: PRs of the agent that were merged, counted once per PR. Only the author's monitor-prs
  merges its PR (`merged`) and cleans up after a merge, also one a human made (`cleaned-up`), so
  both events are credited to the agent that wrote them;
- failed: `failed` entries (an executor or publish failure, a dead letter, a PR closed unmerged);
- active: claims held now, from the claims listing (the caller's count, not the journals);
- avg_executor_seconds: mean `duration_s` of `executed` entries, None without any;
- success_pct: completed / (completed + failed) in percent, None when both are 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from agentmesh.core.memory import JournalEntry
from agentmesh.core.vocab import JournalEvent, Outcome
from agentmesh.core.writers import MAX_AGENTS, writer_keys

COMPLETED_EVENTS = (JournalEvent.MERGED, JournalEvent.CLEANED_UP)
FAILED_EVENT = JournalEvent.FAILED
EXECUTED_EVENT = JournalEvent.EXECUTED


@dataclass(frozen=True)
class AgentPerformance:
    completed: int = 0
    failed: int = 0
    active: int = 0
    executor_runs: int = 0
    avg_executor_seconds: float | None = None
    success_pct: float | None = None

    def to_json(self) -> dict:
        return asdict(self)


def _merge_key(entry: JournalEntry) -> tuple[str, object]:
    # `merged` and `cleaned-up` of one PR are one completion; without numbers each entry stands alone
    if entry.pr is not None:
        return ("pr", entry.pr)
    if entry.issue is not None:
        return ("issue", entry.issue)
    return ("entry", entry.id)


def is_completion(entry: JournalEntry) -> bool:
    """A merge of the writer's PR: `merged`, or `cleaned-up` after a merge (also one a human made)."""
    return entry.event in COMPLETED_EVENTS and (entry.event == JournalEvent.MERGED or entry.outcome == Outcome.MERGED)


def completions(entries: Iterable[JournalEntry]) -> list[JournalEntry]:
    """The first entry of each completion (per writer and PR), in the order given: a PR merged and cleaned up
    counts once, at its first entry."""
    first: dict[tuple[str, tuple[str, object]], JournalEntry] = {}
    for entry in entries:
        if is_completion(entry):
            first.setdefault((entry.agent, _merge_key(entry)), entry)
    return list(first.values())


def performance(entries: Sequence[JournalEntry], *, active: Mapping[str, int] | None = None,
                agents: Iterable[str] = (), limit: int = MAX_AGENTS) -> dict[str, AgentPerformance]:
    """Figures per agent, in name order, for every agent in `entries`, `active` or `agents`, keyed as
    core/writers.py keys them: a writer whose name is no agent's, or past the first `limit`, is under OTHER
    (`agents`, then the holders in `active`, first)."""
    active = dict(active or {})
    keys = writer_keys(entries, [*agents, *active], limit)
    merged: dict[str, set[tuple[str, tuple[str, object]]]] = {}
    failed: dict[str, int] = {}
    durations: dict[str, list[float]] = {}
    held: dict[str, int] = {}
    for name, count in active.items():
        held[keys[name]] = held.get(keys[name], 0) + count
    for entry in entries:
        key = keys[entry.agent]
        if is_completion(entry):  # per writer and PR, as completions() counts: two writers' PR 5 are two
            merged.setdefault(key, set()).add((entry.agent, _merge_key(entry)))
        elif entry.event == FAILED_EVENT:
            failed[key] = failed.get(key, 0) + 1
        elif entry.event == EXECUTED_EVENT:
            durations.setdefault(key, []).append(entry.duration_s)
    result = {}
    for agent in sorted(set(keys.values())):
        done, lost, runs = len(merged.get(agent, ())), failed.get(agent, 0), durations.get(agent, [])
        result[agent] = AgentPerformance(
            completed=done, failed=lost, active=held.get(agent, 0), executor_runs=len(runs),
            avg_executor_seconds=round(sum(runs) / len(runs), 1) if runs else None,
            success_pct=round(100.0 * done / (done + lost), 1) if done + lost else None)
    return result
