"""Per-agent performance figures from journal entries (core/performance.py)."""

from __future__ import annotations

from itertools import count

from agentmesh.core.memory import JournalEntry
from agentmesh.core.performance import AgentPerformance, performance

_ids = count()


def entry(agent: str, event: str, *, issue: int | None = None, pr: int | None = None, outcome: str = "",
          duration_s: float = 0.0) -> JournalEntry:
    return JournalEntry(id=f"{agent}-{next(_ids)}", ts="2026-11-22T10:00:00Z", agent=agent, host=f"h-{agent}",
                        event=event, issue=issue, pr=pr, outcome=outcome, duration_s=duration_s)


def test_nothing_at_all_is_no_agents():
    assert performance([]) == {}


def test_merged_and_cleaned_up_of_one_pr_count_once():
    figures = performance([
        entry("a", "claimed", issue=1), entry("a", "executed", issue=1, outcome="ok", duration_s=10.0),
        entry("a", "pr-opened", issue=1, pr=2), entry("a", "merged", issue=1, pr=2, outcome="merged"),
        entry("a", "cleaned-up", issue=1, pr=2, outcome="merged"),
        entry("a", "cleaned-up", issue=3, pr=4, outcome="merged"),  # merged by a human
    ])
    assert figures == {"a": AgentPerformance(completed=2, failed=0, active=0, executor_runs=1,
                                             avg_executor_seconds=10.0, success_pct=100.0)}


def test_failures_executor_time_and_success_rate():
    figures = performance([
        entry("a", "executed", issue=1, outcome="failed", duration_s=3.0),
        entry("a", "failed", issue=1, outcome="failed"),
        entry("a", "executed", issue=5, outcome="ok", duration_s=4.5),
        entry("a", "merged", issue=5, pr=6, outcome="merged"),
        entry("a", "failed", issue=7, pr=8, outcome="pr-closed"),
        entry("a", "failed", issue=9, outcome="dead-letter"),
    ])
    assert figures["a"] == AgentPerformance(completed=1, failed=3, active=0, executor_runs=2,
                                            avg_executor_seconds=3.8, success_pct=25.0)


def test_each_agent_is_credited_with_what_it_wrote():
    figures = performance([
        entry("b", "reviewed", pr=2, outcome="approved"),  # a review is not a completion
        entry("a", "merged", issue=1, pr=2, outcome="merged"),
    ])
    assert figures["a"].completed == 1 and figures["b"].completed == 0
    assert figures["b"].success_pct is None and figures["b"].avg_executor_seconds is None


def test_active_claims_and_known_agents_appear_without_entries():
    figures = performance([entry("b", "claimed", issue=1)], active={"b": 1, "c": 2}, agents=["d"])
    assert list(figures) == ["b", "c", "d"]
    assert (figures["b"].active, figures["c"].active, figures["d"].active) == (1, 2, 0)
    assert figures["d"] == AgentPerformance()


def test_completions_without_numbers_are_not_merged_into_one():
    figures = performance([entry("a", "cleaned-up", outcome="merged"), entry("a", "cleaned-up", outcome="merged")])
    assert figures["a"].completed == 2


def test_to_json_is_plain():
    assert AgentPerformance(completed=1, success_pct=50.0).to_json() == {
        "completed": 1, "failed": 0, "active": 0, "executor_runs": 0, "avg_executor_seconds": None,
        "success_pct": 50.0}


def test_writers_past_the_limit_or_without_an_agents_name_are_one_row_that_adds_up():
    from agentmesh.core.writers import OTHER

    entries = [entry(f"w{i}", "failed", issue=i) for i in range(6)]
    entries += [entry("x\x1b[2J", "merged", pr=5), entry("Y Z", "merged", pr=5),  # two writers' PR 5: two merges
                entry("busy", "executed", duration_s=10.0), entry("busy", "executed", duration_s=20.0),
                entry("busy", "failed", issue=9)]
    figures = performance(entries, active={"holder": 1, "q\x00": 2}, agents=["idle"], limit=4)
    # the given names first (an agent with a presence, a claim's holder), then the writers of the most lines
    assert list(figures) == [OTHER, "busy", "holder", "idle", "w0"]
    assert figures[OTHER] == AgentPerformance(completed=2, failed=5, active=2, success_pct=28.6)
    assert figures["busy"].avg_executor_seconds == 15.0 and figures["holder"].active == 1
    assert sum(f.failed for f in figures.values()) == 7
