"""Issue selection: eligibility with reasons, dependencies, capabilities, ranking."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from agentmesh.core.deps import open_graph
from agentmesh.core.model import Issue
from agentmesh.core.overrides import counted
from agentmesh.core.select import (
    AGE_CAP_DAYS,
    DEAL_SECONDS,
    DEFAULT_WEIGHTS,
    TIE_BAND,
    Reason,
    Weights,
    Why,
    age_days,
    deal,
    deal_round,
    dealt,
    dependencies,
    dependency_map,
    exclusion_reasons,
    fleet_members,
    free_agents,
    is_priority_label,
    priority_value,
    rank_issues,
    rank_key,
    tie_order,
)

NOW = datetime(2024, 6, 1, tzinfo=UTC)
ME = "host1-a"
ELIGIBLE = ["task", "bug"]


def issue(number=1, *, labels=("task",), body="", state="open", assignees=(), created_at="2024-05-31T00:00:00Z"):
    return Issue(number, f"issue {number}", body, state, tuple(labels), "someone", tuple(assignees), created_at)


def rank(issues, **kwargs):
    return rank_issues(issues, **{"agent": ME, "eligible_labels": ELIGIBLE, "now": NOW, **kwargs})


def reasons(one, **kwargs):
    return exclusion_reasons(one, **{"agent": ME, "eligible_labels": ELIGIBLE, **kwargs})


def codes(one, **kwargs):
    return [r.code for r in reasons(one, **kwargs)]


# --- eligibility ----------------------------------------------------------------


def test_an_open_issue_with_an_eligible_label_is_a_candidate():
    selection = rank([issue(1)])
    assert [c.number for c in selection.candidates] == [1] and selection.excluded == ()


@pytest.mark.parametrize(("one", "kwargs", "expected"), [
    (issue(state="closed"), {}, Reason(Why.NOT_OPEN, "closed")),
    (issue(labels=("question",)), {}, Reason(Why.NO_ELIGIBLE_LABEL)),
    (issue(labels=()), {}, Reason(Why.NO_ELIGIBLE_LABEL)),
    (issue(), {"claimed": {1}}, Reason(Why.CLAIMED)),
    (issue(), {"open_pr_issues": {1}}, Reason(Why.OPEN_PR)),
    (issue(assignees=("alice",)), {}, Reason(Why.ASSIGNED_TO_OTHER, "alice")),
    (issue(labels=("task", "agentmesh:blocked")), {}, Reason(Why.BLOCKING_LABEL, "agentmesh:blocked")),
    (issue(labels=("task", "agentmesh:dead-letter")), {}, Reason(Why.BLOCKING_LABEL, "agentmesh:dead-letter")),
    (issue(labels=("task", "agentmesh:needs-human")), {}, Reason(Why.BLOCKING_LABEL, "agentmesh:needs-human")),
    (issue(body="Depends on #7"), {"dependency_states": {7: "open"}}, Reason(Why.DEPENDS_ON_OPEN, "#7")),
    (issue(labels=("task", "needs:gpu")), {"capabilities": {"docker"}}, Reason(Why.MISSING_CAPABILITY, "gpu")),
], ids=["closed", "other-label", "no-label", "claimed", "open-pr", "assigned", "blocked", "dead-letter",
        "needs-human", "depends", "capability"])
def test_each_exclusion_reason(one, kwargs, expected):
    assert reasons(one, **kwargs) == (expected,)
    selection = rank([one], **kwargs)
    assert selection.candidates == () and selection.excluded[0].reasons == (expected,)


def test_all_reasons_are_reported_and_print_machine_readably():
    one = issue(labels=("task", "agentmesh:blocked", "needs:gpu"), body="Blocked by #2")
    found = reasons(one, claimed={1}, open_pr_issues={1})
    assert [str(r) for r in found] == [
        "claimed", "open_pr", "blocking_label:agentmesh:blocked", "depends_on_open:#2", "missing_capability:gpu",
    ]


def test_assigned_to_this_agent_is_eligible():
    assert reasons(issue(assignees=("alice", ME))) == ()


def test_labels_and_capabilities_compare_case_insensitively():
    assert reasons(issue(labels=("Task", "Needs:GPU")), capabilities={"gpu"}) == ()
    assert codes(issue(labels=("task", "AgentMesh:Blocked"))) == [Why.BLOCKING_LABEL]


def test_needs_gpu_is_skipped_by_an_agent_without_gpu_and_taken_by_one_with_it():
    gpu_issue = issue(5, labels=("task", "needs:gpu"))
    without = rank([gpu_issue], capabilities={"docker", "python"})
    assert without.candidates == () and without.excluded[0].reasons == (Reason(Why.MISSING_CAPABILITY, "gpu"),)
    assert [c.number for c in rank([gpu_issue], capabilities={"gpu"}).candidates] == [5]


def test_every_missing_capability_is_named():
    assert reasons(issue(labels=("task", "needs:gpu", "needs:arm64", "needs:docker")), capabilities={"docker"}) == (
        Reason(Why.MISSING_CAPABILITY, "arm64"), Reason(Why.MISSING_CAPABILITY, "gpu"),
    )


# --- dependencies -----------------------------------------------------------------


@pytest.mark.parametrize(("body", "expected"), [
    ("Depends on #12", {12}),
    ("depends on #12", {12}),
    ("BLOCKED BY #3", {3}),
    ("Blocked by: #3", {3}),
    ("Depends on #4, #5 and #6", {4, 5, 6}),
    ("Depends on #4 & #5", {4, 5}),
    ("Some text.\nDepends on #1\nMore text, blocked by #2.\n", {1, 2}),
    ("- [ ] #8\n- [x] #9\n- [X] #10\n* [ ] #11 with a note", {8, 11}),
    ("  - [ ] #21\n  + [ ] #22", {21, 22}),
    ("Related to #5; see #6", set()),
    ("depends on other/repo#5", set()),
    ("Depends on #0", set()),
    ("Depends on #12345678901234", set()),
    ("- [ ] fix #12 later", set()),
    ("", set()),
])
def test_dependency_parsing(body, expected):
    assert dependencies(issue(100, body=body)) == expected


def test_an_issue_does_not_depend_on_itself():
    assert dependencies(issue(3, body="Depends on #3, #4")) == {4}


def test_dependency_states_decide_eligibility_and_unknown_counts_as_open():
    one = issue(1, body="Depends on #2\nBlocked by #3\n- [ ] #4\n- [x] #5")
    assert dependencies(one) == {2, 3, 4}
    assert reasons(one, dependency_states={2: "closed", 3: "closed", 4: "closed"}) == ()
    assert reasons(one, dependency_states={2: "closed", 3: "closed"}) == (Reason(Why.DEPENDS_ON_OPEN, "#4"),)
    assert reasons(one, dependency_states={2: "closed", 3: "open", 4: "weird"}) == (
        Reason(Why.DEPENDS_ON_OPEN, "#3"), Reason(Why.DEPENDS_ON_OPEN, "#4"),
    )
    assert len(reasons(one)) == 3


def test_dependencies_computed_once_are_the_ones_decided_on():
    """A tick scans each body once (`dependency_map`) and every decision takes that map, not a new scan."""
    issues = [issue(1, body="Depends on #2"), issue(2), issue(3, body="- [ ] #1")]
    depends = dependency_map(issues)
    assert depends == {1: {2}, 2: set(), 3: {1}}
    assert rank(issues, depends=depends) == rank(issues)
    assert open_graph(issues, depends) == open_graph(issues) == {1: {2}, 2: set(), 3: {1}}
    told = {1: set(), 2: {3}, 3: {1}}  # what the map says wins over the bodies
    assert [c.number for c in rank(issues, depends=told).candidates] == [1]
    assert open_graph(issues, told) == told


def test_a_parent_waits_for_unchecked_open_children_only():
    parent = issue(1, body="Tasks:\n- [ ] #2\n- [x] #3\n")
    assert reasons(parent, dependency_states={2: "open", 3: "open"}) == (Reason(Why.DEPENDS_ON_OPEN, "#2"),)
    assert reasons(parent, dependency_states={2: "closed"}) == ()


@given(st.text(max_size=3000))
def test_dependency_parsing_never_crashes(body):
    found = dependencies(issue(1, body=body))
    assert all(n >= 1 for n in found)


def test_dependency_parsing_stays_linear_on_hostile_bodies():
    body = (
        "Depends on #1" + " " * 200_000 + "x\n" + "- [ ] " * 50_000 + "depends on " * 50_000
        + "\nblocked by" + " " * 200_000 + "x\n" + "Depends on #2," + " " * 200_000 + "x"
    )
    assert dependencies(issue(99, body=body)) == {1, 2}


# --- ranking ----------------------------------------------------------------------


def test_critical_ranks_first_given_equal_other_inputs():
    issues = [issue(n, labels=("task", f"priority:{p}")) for n, p in
              [(1, "low"), (2, "medium"), (3, "critical"), (4, "high")]] + [issue(5)]
    assert [c.number for c in rank(issues).candidates] == [3, 4, 2, 5, 1]


TRUSTED = {"ada", "maintainer:grace"}.__contains__


@pytest.mark.parametrize(("labels", "setters", "value"), [
    (("task", "priority:critical"), {"priority:critical": "maintainer:grace"}, 4.0),
    (("task", "priority:critical"), {"priority:critical": "ada"}, 4.0),  # a roster agent
    (("task", "priority:critical"), {"priority:critical": "unverified:eve"}, 1.5),  # an outsider: no priority
    (("task", "priority:critical"), {}, 1.5),  # no one known set it (removed and re-added by a bot, unread)
    (("task", "Priority:High"), {"Priority:High": "unverified:eve"}, 1.5),
    (("task", "priority:low"), {"priority:low": "unverified:eve"}, 1.5),  # a lowered rank is steering too
    (("task", "priority:critical", "priority:low"), {"priority:critical": "unverified:eve", "priority:low": "ada"},
     1.0),
    (("task", "needs:gpu"), {}, 1.5),  # not a priority label: kept whoever set it
])
def test_a_priority_label_ranks_only_from_a_maintainer_or_roster_agent(labels, setters, value):
    kept, dropped = counted(labels, is_priority_label, setters, TRUSTED)
    assert "task" in kept and sorted(kept + dropped) == sorted(labels)
    assert priority_value(issue(labels=kept)) == value
    assert ("needs:gpu" in kept) is ("needs:gpu" in labels)


def test_priority_values():
    assert priority_value(issue(labels=("priority:critical", "priority:low"))) == 4.0  # the highest wins
    assert priority_value(issue(labels=("Priority:High",))) == 3.0
    assert priority_value(issue(labels=("priority:whenever",))) == 1.5
    assert priority_value(issue(labels=())) == 1.5


def order(agent, numbers, **kwargs):
    return [c.number for c in rank([issue(n) for n in numbers], agent=agent, **kwargs).candidates]


# ties are broken by sha256(agent NUL number): pinned, so a change of the hash shows here
@pytest.mark.parametrize(("agent", "expected"), [
    ("host1-a", [4, 6, 7, 2, 8, 1, 3, 5]),
    ("host2-b", [4, 2, 1, 6, 5, 7, 3, 8]),
])
def test_ties_break_by_a_stable_hash_of_agent_and_issue(agent, expected):
    assert order(agent, range(1, 9)) == expected
    assert order(agent, reversed(range(1, 9))) == expected  # the input order does not matter
    assert [n for n in expected if n in (2, 5, 7)] == order(agent, [7, 2, 5])  # nor the other issues


def test_scores_within_the_tie_band_tie_and_wider_gaps_rank():
    close = issue(1, created_at=(NOW - timedelta(days=TIE_BAND / DEFAULT_WEIGHTS.age / 4)).isoformat())
    far = issue(2, created_at=(NOW - timedelta(days=3 * TIE_BAND / DEFAULT_WEIGHTS.age)).isoformat())
    fresh = [issue(n, created_at=NOW.isoformat()) for n in (3, 4, 5, 6)]
    for agent in ("host1-a", "host2-b", "host3-c"):
        ranked = [c.number for c in rank([close, far, *fresh], agent=agent).candidates]
        assert ranked[0] == 2  # 1.5 points older: ranks first for everyone
        assert ranked[1:] == [c.number for c in sorted(
            (c for c in rank([close, *fresh]).candidates), key=lambda c: tie_order(agent, c.number))]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 10_000), min_size=8, max_size=30, unique=True),
       st.text(st.characters(codec="ascii", categories=("L", "N")), min_size=1, max_size=12),
       st.text(st.characters(codec="ascii", categories=("L", "N")), min_size=1, max_size=12))
def test_agents_spread_over_ties_and_each_keeps_its_order(numbers, one, other):
    assume(one != other)
    mine = order(one, numbers)
    assert sorted(mine) == sorted(numbers)
    assert order(one, list(reversed(numbers))) == mine  # stable for one agent, whatever the input order
    assert order(other, numbers) != mine  # two agents' orders of 8+ tied issues differ


def test_older_issues_rank_higher_within_a_priority():
    old = issue(9, created_at=(NOW - timedelta(days=20)).isoformat())
    new = issue(3, created_at=(NOW - timedelta(days=1)).isoformat())
    assert [c.number for c in rank([new, old]).candidates] == [9, 3]


def test_age_never_outweighs_a_priority_step_with_default_weights():
    ancient = issue(1, labels=("task", "priority:medium"), created_at="2000-01-01T00:00:00Z")
    fresh = issue(2, labels=("task", "priority:high"), created_at=NOW.isoformat())
    assert [c.number for c in rank([ancient, fresh]).candidates] == [2, 1]
    assert rank([ancient]).candidates[0].score.age == pytest.approx(DEFAULT_WEIGHTS.age * AGE_CAP_DAYS)


def test_previous_attempts_are_penalised():
    ranked = rank([issue(1), issue(2)], attempts={1: 2})
    assert [c.number for c in ranked.candidates] == [2, 1]
    assert ranked.candidates[1].score.attempts == -2 * DEFAULT_WEIGHTS.attempts


def test_a_satisfied_capability_need_is_a_bonus():
    ranked = rank([issue(1), issue(2, labels=("task", "needs:gpu"))], capabilities={"gpu"})
    assert [c.number for c in ranked.candidates] == [2, 1]
    assert ranked.candidates[0].score.capability == DEFAULT_WEIGHTS.capability
    assert ranked.candidates[1].score.capability == 0.0


def test_score_breakdown_adds_up():
    one = issue(1, labels=("task", "priority:high", "needs:gpu"), created_at=(NOW - timedelta(days=2)).isoformat())
    score = rank([one], capabilities={"gpu"}, attempts={1: 1}).candidates[0].score
    assert (score.priority, score.age, score.attempts, score.capability) == pytest.approx((30.0, 0.2, -2.0, 1.0))
    assert score.total == pytest.approx(29.2)


def test_custom_weights():
    weights = Weights.from_mapping({"priority": 0, "age": 1})
    old_low = issue(1, labels=("task", "priority:low"), created_at=(NOW - timedelta(days=5)).isoformat())
    new_critical = issue(2, labels=("task", "priority:critical"), created_at=NOW.isoformat())
    assert [c.number for c in rank([new_critical, old_low], weights=weights).candidates] == [1, 2]
    assert weights.attempts == DEFAULT_WEIGHTS.attempts
    with pytest.raises(ValueError, match="unknown weight"):
        Weights.from_mapping({"prioirty": 1})


@pytest.mark.parametrize(("created_at", "expected"), [
    ("2024-05-31T00:00:00Z", 1.0),
    ("2024-05-31T00:00:00z", 1.0),
    ("2024-05-31T00:00:00+00:00", 1.0),
    ("2024-05-31T02:00:00+02:00", 1.0),
    ("2024-05-31T00:00:00", 1.0),  # naive: UTC
    ("2024-05-31", 1.0),
    ("2024-05-31T12:00:00.123456Z", 0.5 - 0.123456 / 86400),
    ("2025-01-01T00:00:00Z", 0.0),  # in the future
    ("yesterday", 0.0),
    ("", 0.0),
    ("9999-99-99", 0.0),
])
def test_age_parsing(created_at, expected):
    assert age_days(created_at, NOW) == pytest.approx(expected)


def test_now_may_be_an_epoch_float_or_a_naive_datetime():
    created = "2024-05-31T00:00:00Z"
    assert age_days(created, NOW.timestamp()) == pytest.approx(1.0)
    assert age_days(created, NOW.replace(tzinfo=None)) == pytest.approx(1.0)


def test_excluded_issues_keep_input_order_and_ranking_ignores_input_order():
    issues = [issue(n, labels=("task", "priority:high") if n % 2 else ("task",)) for n in range(1, 9)]
    first = rank(issues, claimed={3, 4})
    again = rank(list(reversed(issues)), claimed={4, 3})
    assert [e.number for e in first.excluded] == [3, 4]
    assert [c.number for c in first.candidates] == [c.number for c in again.candidates] == [7, 1, 5, 6, 2, 8]


# --- a fleet is dealt the backlog like cards (core/select.deal) ----------------------------------------

FLEET = [f"agent{k}" for k in range(8)]
ROUND = deal_round(NOW)


def aged(n, days, labels=("task",)):
    """Issue n, `days` old: a backlog filed over weeks, each issue in a score band of its own."""
    return issue(n, labels=labels, created_at=(NOW - timedelta(days=days)).isoformat())


BACKLOG = [aged(n, 6 * (15 - n)) for n in range(1, 15)]  # 1 is the oldest (84 days); 6 days = 0.6 points apart


def order_of(agent, backlog=BACKLOG, free=FLEET, **kwargs):
    return [c.number for c in rank(backlog, agent=agent, free=free, **kwargs).candidates]


def first_picks(free, backlog=BACKLOG, **kwargs):
    return [order_of(agent, backlog, free, **kwargs)[0] for agent in FLEET]


def test_alone_every_agent_goes_for_the_oldest_issue_first():
    assert first_picks(free=()) == [1] * 8  # the herd: 7 of 8 claims in a round would lose


def test_a_fleet_starting_together_claims_the_oldest_issues_one_each():
    assert sorted(first_picks(free=FLEET)) == list(range(1, 9))  # no race: 8 agents, 8 different issues


def test_an_agent_tries_its_card_then_the_undealt_then_the_others_cards():
    for agent in FLEET:
        ranked = order_of(agent)
        assert sorted(ranked) == list(range(1, 15))
        assert ranked[1:7] == list(range(9, 15))  # after its card, what nobody was dealt, oldest first
        assert sorted(ranked[7:]) == sorted(set(range(1, 9)) - {ranked[0]})


def test_a_listing_that_lags_by_a_claim_deals_the_other_cards_the_same():
    before = {agent: order_of(agent)[0] for agent in FLEET}
    taker = FLEET[3]
    rest = [a for a in FLEET if a != taker]
    after = {agent: order_of(agent, [i for i in BACKLOG if i.number != before[taker]], rest)[0] for agent in rest}
    assert after == {agent: before[agent] for agent in rest}


def test_priority_still_comes_first_and_a_run_never_mixes_priorities_or_attempts():
    high = aged(30, 0, labels=("task", "priority:high"))  # the newest, a priority step above the rest
    assert first_picks(free=FLEET, backlog=[*BACKLOG, high]) == [30] * 8  # urgent work is still everyone's first
    for agent in FLEET:
        ranked = order_of(agent, BACKLOG[:6], attempts={1: 3, 2: 3})
        assert set(ranked[:4]) == {3, 4, 5, 6} and set(ranked[4:]) == {1, 2}  # three failed attempts: below


def test_a_card_dealt_to_an_agent_that_never_comes_is_dealt_to_another_in_a_later_round():
    free = [*FLEET, "gone"]  # a ring member that never started
    holders = {dealt(rank(BACKLOG).candidates, free, r)[1] for r in range(ROUND, ROUND + 12)}
    assert len(holders) > 1  # the oldest issue does not wait for "gone" forever
    assert deal_round(NOW.timestamp() + DEAL_SECONDS) == ROUND + 1
    assert deal_round(NOW.timestamp() + DEAL_SECONDS - 1) in (ROUND, ROUND + 1)


@pytest.mark.parametrize(("branches", "known", "expected"), [
    ([], [], {ME}),  # alone, or nobody has pushed presence yet
    (["agentmesh/agents/ada", "agentmesh/agents/bob", "main", "claim/3", "ada/3-fix"], [], {"ada", "bob", ME}),
    (["agentmesh/agents/ada", "agentmesh/agents/host1-a"], ["ada", "cy"], {"ada", "cy", ME}),  # a holder
    ([], ["ada", "bob", "cy", "host1-a"], {"ada", "bob", "cy", ME}),  # the configured ring, before any presence
    (["agentmesh/agents/Not..A-name", "agentmesh/agents/", "agentmeshx/agents/dee"], [], {ME}),  # not an agent's
], ids=["alone", "presence", "holders", "ring", "not-agents"])
def test_the_fleet_is_the_presence_branches_and_known_agents(branches, known, expected):
    assert fleet_members(branches, "agentmesh/agents/", known, ME) == expected


@pytest.mark.parametrize(("claims", "in_review", "expected"), [
    ([], [], {"ada", "bob", ME}),
    ([(3, "ada")], [], {"bob", ME}),  # working on #3: no card
    ([(3, "ada")], [3], {"ada", "bob", ME}),  # #3 in review: its seat is free
    ([(3, ME), (4, "cy")], [], {"ada", "bob", ME}),  # the chooser is free, whatever it holds
], ids=["nobody-works", "working", "in-review", "chooser"])
def test_agents_working_on_a_claim_are_dealt_no_card(claims, in_review, expected):
    assert free_agents({"ada", "bob", ME}, claims, in_review, ME) == expected


AGENT = st.text(st.characters(codec="ascii", categories=("Ll", "Nd")), min_size=1, max_size=6)


@st.composite
def backlogs(draw):
    """Candidates of a few priorities and attempt counts, differing in age, and the free agents."""
    numbers = draw(st.lists(st.integers(1, 500), min_size=1, max_size=24, unique=True))
    issues = [aged(n, draw(st.integers(0, 120)), labels=("task", *draw(st.sampled_from(
        [(), (), ("priority:high",), ("priority:low",)])))) for n in numbers]
    attempts = {n: draw(st.integers(0, 2)) for n in numbers}
    agents = draw(st.lists(AGENT, min_size=1, max_size=10, unique=True))
    return rank(issues, attempts=attempts).candidates, agents, draw(st.integers(0, 10**6))


@settings(max_examples=150, deadline=None)
@given(backlogs())
def test_the_deal_gives_the_best_candidates_one_each(drawn):
    candidates, agents, round_ = drawn
    cards = dealt(candidates, agents, round_)
    assert len(set(cards.values())) == len(cards) == min(len(candidates), len(agents))  # one card an agent
    best = sorted(candidates, key=lambda c: (-c.score.total, c.number))
    assert set(cards) == {c.number for c in best[:len(cards)]}  # the best, in the shared order
    assert dealt(list(reversed(candidates)), list(reversed(agents)), round_) == cards  # no input order matters


@settings(max_examples=150, deadline=None)
@given(backlogs(), st.data())
def test_taking_a_card_leaves_the_others_where_they_were(drawn, data):
    candidates, agents, round_ = drawn
    cards = dealt(candidates, agents, round_)
    taken = data.draw(st.sampled_from(sorted(cards)))
    after = dealt([c for c in candidates if c.number != taken], [a for a in agents if a != cards[taken]], round_)
    assert after == {n: a for n, a in cards.items() if n != taken}


def runs_of(ranked):
    """The index of each candidate's run: consecutive candidates whose scores differ in age alone."""
    index, last, out = -1, None, {}
    for c in ranked:
        kind = (c.score.priority, c.score.attempts, c.score.capability)
        index += kind != last
        last = kind
        out[c.number] = index
    return out


@settings(max_examples=150, deadline=None)
@given(backlogs())
def test_each_agent_keeps_the_score_runs_and_tries_its_card_then_the_undealt_then_the_others(drawn):
    candidates, agents, round_ = drawn
    cards = dealt(candidates, agents, round_)
    for agent in agents:
        ranked = sorted(candidates, key=lambda c: rank_key(c, agent))  # by score alone
        if agents == [agent]:
            assert deal(candidates, agent, agents, round_) == ranked  # alone: the ranking
            continue
        runs = runs_of(ranked)
        tried = [c.number for c in deal(candidates, agent, agents, round_)]
        assert sorted(tried) == sorted(runs)
        assert [runs[n] for n in tried] == sorted(runs[n] for n in tried)  # no run before a higher-ranked one

        def part(n, agent=agent):
            return 0 if cards.get(n) == agent else 1 if n not in cards else 2

        for run in set(runs.values()):
            expected = sorted((c.number for c in ranked if runs[c.number] == run), key=part)  # stable: rank order
            assert [n for n in tried if runs[n] == run] == expected
