"""The report's figures (core/report.py) on tables: windows, throughput, latency, spend, incidents, the board."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from itertools import count

from hypothesis import given, settings
from hypothesis import strategies as st

from agentmesh.core.memory import Caps, JournalEntry, entry_day, parse_journal
from agentmesh.core.model import Issue
from agentmesh.core.report import (
    HaltRecord,
    OpenPull,
    board,
    budget_series,
    halt_issues,
    ignored_lines,
    ignored_note,
    incidents,
    latency,
    throughput,
    window_dates,
)
from agentmesh.core.vocab import BudgetWindow
from agentmesh.core.writers import MAX_AGENTS, OTHER, writer_key

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC).timestamp()  # a Sunday noon, UTC
_ids = count()


def entry(agent: str, event: str, ts: str, *, issue: int | None = None, pr: int | None = None, outcome: str = "",
          duration_s: float = 0.0, cost_usd: float | None = None, summary: str = "") -> JournalEntry:
    return JournalEntry(id=f"e{next(_ids)}", ts=ts, agent=agent, host="h", event=event, issue=issue, pr=pr,
                        outcome=outcome, duration_s=duration_s, cost_usd=cost_usd, summary=summary)


def test_the_window_is_n_utc_dates_ending_today():
    assert window_dates(3, NOW) == [date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 22)]
    late = datetime(2026, 11, 22, 23, 59, 59, tzinfo=UTC).timestamp()  # still the 22nd in UTC, whatever the zone
    assert window_dates(1, late) == [date(2026, 11, 22)]
    assert window_dates(1, late + 1) == [date(2026, 11, 23)]


@settings(max_examples=80, deadline=None)
@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)),
       st.sampled_from(["Z", "+00:00", "+05:30", "-11:00"]))
def test_the_day_off_the_text_is_the_parsed_stamps_day(moment, zone):
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S") + zone
    parsed = entry("ada", "claimed", stamp).moment
    assert entry_day(entry("ada", "claimed", stamp)) == parsed.date()


def test_writer_keys_are_agent_names_or_maintainers_else_other():
    assert [writer_key(n) for n in ("ada", "agent-7", "maintainer.alice", "maintainer.", "Ada", "a\x1b[31m",
                                    "a/b", "", "x" * 41, "maintainer.Al ice")] == [
        "ada", "agent-7", "maintainer.alice", OTHER, OTHER, OTHER, OTHER, OTHER, OTHER, OTHER]


def test_throughput_per_day_and_agent():
    entries = [
        entry("ada", "merged", "2026-11-20T23:59:00Z", issue=1, pr=2, outcome="merged"),
        entry("ada", "cleaned-up", "2026-11-21T00:01:00Z", issue=1, pr=2, outcome="merged"),  # the same PR: once
        entry("ada", "cleaned-up", "2026-11-21T08:00:00Z", issue=3, pr=4, outcome="merged"),  # a person merged it
        entry("ada", "cleaned-up", "2026-11-21T09:00:00Z", issue=5, pr=6, outcome="released"),  # not a merge
        entry("bob", "failed", "2026-11-22T01:00:00Z", issue=7, outcome="dead-letter"),
        entry("bob", "failed", "2026-11-19T23:59:59Z", issue=8, outcome="failed"),  # the day before the window
        entry("bob", "reworked", "2026-11-23T05:00:00Z", issue=9, pr=10, outcome="pushed"),  # a fast clock: today
        entry("evil\u202e", "failed", "2026-11-22T02:00:00Z", issue=11),  # not an agent's name
        entry("cy", "claimed", "2026-11-22T03:00:00Z", issue=12),  # counted nowhere here
    ]
    data = throughput(entries, window_dates(3, NOW), NOW, agents=["dee"])
    assert data["dates"] == ["2026-11-20", "2026-11-21", "2026-11-22"]
    assert data["agents"] == {
        OTHER: {"completed": [0, 0, 0], "failed": [0, 0, 1], "reworked": [0, 0, 0]},
        "ada": {"completed": [1, 1, 0], "failed": [0, 0, 0], "reworked": [0, 0, 0]},
        "bob": {"completed": [0, 0, 0], "failed": [0, 0, 1], "reworked": [0, 0, 1]},
        "cy": {"completed": [0, 0, 0], "failed": [0, 0, 0], "reworked": [0, 0, 0]},
        "dee": {"completed": [0, 0, 0], "failed": [0, 0, 0], "reworked": [0, 0, 0]},  # present, idle
    }
    assert data["fleet"] == {"completed": [1, 1, 0], "failed": [0, 0, 2], "reworked": [0, 0, 1]}


def test_latency_median_and_p90_of_claim_to_pr_and_pr_to_merge():
    entries = []
    for n, (to_pr, to_merge) in enumerate([(60, 600), (120, 1200), (180, 1800), (240, 2400), (3600, 36000)],
                                          start=1):
        claimed = NOW - 100_000 + n * 1000
        entries += [entry("ada", "claimed", _ts(claimed), issue=n),
                    entry("ada", "pr-opened", _ts(claimed + to_pr), issue=n, pr=100 + n, outcome="opened"),
                    entry("ada", "merged", _ts(claimed + to_pr + to_merge), issue=n, pr=100 + n, outcome="merged"),
                    entry("ada", "cleaned-up", _ts(claimed + to_pr + to_merge + 999), issue=n, pr=100 + n,
                          outcome="merged")]  # the same completion: its first entry counts
    # a PR adopted after a crash was opened before: no claim-to-PR figure, but its merge counts
    entries += [entry("bob", "claimed", _ts(NOW - 5000), issue=9), entry("bob", "pr-opened", _ts(NOW - 10), issue=9,
                                                                        pr=109, outcome="adopted"),
                entry("bob", "merged", _ts(NOW), issue=9, pr=109, outcome="merged"),
                entry("cy", "pr-opened", _ts(NOW - 50), issue=10, pr=110, outcome="opened")]  # its claim: before
    assert latency(list(reversed(entries))) == {
        "claim_to_pr": {"count": 5, "median_seconds": 180.0, "p90_seconds": 3600.0},
        "pr_to_merge": {"count": 6, "median_seconds": 1500.0, "p90_seconds": 36000.0},
    }
    assert latency([]) == {"claim_to_pr": {"count": 0, "median_seconds": None, "p90_seconds": None},
                           "pr_to_merge": {"count": 0, "median_seconds": None, "p90_seconds": None}}


def test_a_reclaim_measures_from_the_last_claim():
    entries = [entry("ada", "claimed", _ts(NOW - 1000), issue=1), entry("ada", "claimed", _ts(NOW - 100), issue=1),
               entry("ada", "pr-opened", _ts(NOW), issue=1, pr=2, outcome="opened")]
    assert latency(entries)["claim_to_pr"] == {"count": 1, "median_seconds": 100.0, "p90_seconds": 100.0}


def test_a_flood_of_writer_names_is_bounded_and_still_adds_up():
    # one pushed journal branch with a line per made-up agent name once made the document (and the page's
    # work) grow with names x days: the named agents are bounded, the given ones first, the rest are OTHER
    flood = [entry(f"w{i:04d}", "failed", "2026-11-22T02:00:00Z", issue=i) for i in range(MAX_AGENTS + 50)]
    entries = [*flood, entry("zed", "failed", "2026-11-22T03:00:00Z", issue=1),
               entry("zed", "executed", "2026-11-22T03:00:00Z", issue=1, cost_usd=2.0)]
    dates = window_dates(2, NOW)
    flow = throughput(entries, dates, NOW, agents=["zed", "idle"])
    spend = budget_series(entries, dates, NOW, agent_caps=Caps(), fleet_caps=Caps(), window=BudgetWindow.DAY,
                          agents=["zed", "idle"])
    for data, key in ((flow, "failed"), (spend, "cost_usd")):
        assert len(data["agents"]) == MAX_AGENTS + 1 and OTHER in data["agents"]
        assert {"zed", "idle"} <= set(data["agents"])
        assert [sum(s[key][i] for s in data["agents"].values()) for i in range(2)] == data["fleet"][key]
    assert flow["agents"]["zed"]["failed"] == [0, 1] and spend["agents"]["zed"]["cost_usd"] == [0.0, 2.0]
    assert flow["agents"][OTHER]["failed"] == [0, 52]


def test_spend_per_day_against_the_caps():
    entries = [entry("ada", "claimed", "2026-11-21T10:00:00Z", issue=1),
               entry("ada", "executed", "2026-11-21T10:30:00Z", issue=1, duration_s=90, cost_usd=0.25),
               entry("bob", "executed", "2026-11-22T11:00:00Z", issue=2, duration_s=30, cost_usd=0.5),
               entry("bob", "executed", "2026-11-25T00:00:00Z", issue=2, duration_s=60),  # a fast clock: today
               entry("bob", "executed", "2026-11-19T00:00:00Z", issue=2, duration_s=6000)]  # before the window
    data = budget_series(entries, window_dates(2, NOW), NOW, agent_caps=Caps(tasks=5), fleet_caps=Caps(minutes=60.0),
                         window=BudgetWindow.WEEK)
    assert data == {
        "dates": ["2026-11-21", "2026-11-22"], "window": "week",
        "caps": {"agent": {"tasks": 5, "minutes": None, "cost_usd": None},
                 "fleet": {"tasks": None, "minutes": 60.0, "cost_usd": None}},
        "agents": {"ada": {"tasks": [1, 0], "minutes": [1.5, 0.0], "cost_usd": [0.25, 0.0]},
                   "bob": {"tasks": [0, 0], "minutes": [0.0, 1.5], "cost_usd": [0.0, 0.5]}},
        "fleet": {"tasks": [1, 0], "minutes": [1.5, 1.5], "cost_usd": [0.25, 0.5]},
    }


def test_forged_huge_figures_add_up_to_finite_json_that_still_shows_the_spend():
    # finite one by one (a journal line with NaN or inf is skipped), but two of 1e308 once added up to inf:
    # `report --json` printed Infinity (no JSON) and the page showed that day's spend as none
    lines = [json.dumps({"id": f"x{i}", "ts": "2026-11-22T10:00:00Z", "agent": agent, "event": "executed",
                         "duration_s": 1e308, "cost_usd": 1e308}) for i, agent in enumerate(("ada", "ada", "bob"))]
    entries = [*parse_journal("\n".join(lines)), entry("cy", "executed", "2026-11-22T11:00:00Z", cost_usd=0.5)]
    data = budget_series(entries, window_dates(1, NOW), NOW, agent_caps=Caps(), fleet_caps=Caps(cost_usd=10.0),
                         window=BudgetWindow.DAY)
    json.dumps(data, allow_nan=False)
    assert data["agents"]["cy"]["cost_usd"] == [0.5]
    assert all(0 < v[0] < math.inf for v in (data["fleet"]["cost_usd"], data["agents"]["ada"]["minutes"]))
    assert data["fleet"]["cost_usd"][0] > 10.0  # the spend is there: over any cap


def test_incidents_newest_first_with_their_reasons():
    entries = [entry("ada", "reaped", "2026-11-21T10:00:00Z", issue=3, outcome="reaped", summary="lease expired"),
               entry("bob", "failed", "2026-11-22T10:00:00Z", issue=4, outcome="dead-letter", summary="3 attempts"),
               entry("bob", "failed", "2026-11-22T10:05:00Z", issue=5, outcome="failed", summary="one more"),
               entry("cy", "handed-over", "2026-11-22T11:00:00Z", issue=6, pr=7, outcome="needs-human",
                     summary="protected path"),
               entry("cy", "handed-over", "2026-11-22T11:30:00Z", issue=8, outcome="human-pushed"),
               entry("ada", "reaped", "2026-11-19T10:00:00Z", issue=9, outcome="reaped")]  # before `since`
    halts = [HaltRecord(datetime(2026, 11, 22, 9, 0, tzinfo=UTC).timestamp(), "bad deploy"),
             HaltRecord(datetime(2026, 11, 1, tzinfo=UTC).timestamp(), "long ago"),
             *halt_issues([Issue(30, "Stop <b>now</b>", "", "open", ("agentmesh:halt",),
                                 created_at="2026-11-21T12:00:00Z"),
                           Issue(31, "Not a halt", "", "open", ("task",), created_at="2026-11-21T12:00:00Z")])]
    found = incidents(entries, halts, since=date(2026, 11, 20), now=NOW)
    assert found == [
        {"at": "2026-11-22T11:00:00Z", "kind": "needs-human", "issue": 6, "agent": "cy", "reason": "protected path"},
        {"at": "2026-11-22T10:00:00Z", "kind": "dead-letter", "issue": 4, "agent": "bob", "reason": "3 attempts"},
        {"at": "2026-11-22T09:00:00Z", "kind": "halt", "issue": None, "agent": None, "reason": "bad deploy"},
        {"at": "2026-11-21T12:00:00Z", "kind": "halt", "issue": 30, "agent": None, "reason": "Stop <b>now</b>"},
        {"at": "2026-11-21T10:00:00Z", "kind": "reap", "issue": 3, "agent": "ada", "reason": "lease expired"},
    ]
    assert incidents(entries, halts, since=date(2026, 11, 20), now=NOW, limit=2) == found[:2]


def test_an_incident_stamped_ahead_counts_now_and_every_stamp_shows_in_utc():
    # a line stamped next year (journals are read that far ahead) once sat first on every page for a year
    entries = [entry("ada", "reaped", "2027-06-01T00:00:00Z", issue=1, outcome="reaped", summary="ahead"),
               entry("bob", "reaped", "2026-11-22T13:30:00+02:00", issue=2, outcome="reaped", summary="offset"),
               entry("cy", "reaped", "2026-11-22T11:00:00Z", issue=3, outcome="reaped", summary="plain")]
    halts = [HaltRecord(1e12, "year 33658"), HaltRecord(datetime(2026, 11, 22, 10, tzinfo=UTC).timestamp(), "ok")]
    found = incidents(entries, halts, since=date(2026, 11, 20), now=NOW)
    assert [(i["at"], i["reason"]) for i in found] == [
        ("2026-11-22T12:00:00Z", "ahead"), ("2026-11-22T12:00:00Z", "year 33658"),
        ("2026-11-22T11:30:00Z", "offset"), ("2026-11-22T11:00:00Z", "plain"), ("2026-11-22T10:00:00Z", "ok")]


def issue(number: int, labels=("task",), body="", title=None, url="") -> Issue:
    return Issue(number, title or f"issue {number}", body, "open", tuple(labels), url=url)


def test_the_board_puts_each_open_issue_in_one_column():
    issues = [issue(1), issue(2, ("task", "agentmesh:claimed")), issue(3, ("task", "agentmesh:working")),
              issue(4, ("task", "agentmesh:review")), issue(5, ("task", "agentmesh:review", "agentmesh:needs-human")),
              issue(6, ("task", "agentmesh:failed")), issue(7, ("task", "agentmesh:failed", "agentmesh:dead-letter")),
              issue(8, ("question",)),  # not for agents
              issue(9, body="Depends on #1"),  # waits for an open issue
              issue(10, body="Depends on #99"),  # on one that is not open: eligible
              issue(11, ("task", "agentmesh:blocked")),
              issue(12),  # claimed, not labelled yet
              issue(13, ("task", "needs:gpu"), url="https://forge.example/o/r/issues/13")]  # eligible for some agent
    pulls = [OpenPull(20, 4, "bob", "https://forge.example/o/r/pulls/20"), OpenPull(21, 4, "bob", None),
             OpenPull(22, None, None, None)]
    columns = board(issues, claims={2: "ada", 3: "ada", 4: "bob", 12: None}, pulls=pulls,
                    eligible_labels=["task"])
    assert {name: [card["issue"] for card in cards] for name, cards in columns.items()} == {
        "eligible": [1, 10, 13], "claimed": [2, 12], "working": [3], "review": [4], "needs_human": [5],
        "failed": [6], "dead_letter": [7]}
    assert columns["review"] == [{"issue": 4, "title": "issue 4", "url": None, "agent": "bob", "pr": 21,
                                  "pr_url": None}]  # the newest PR of the issue
    assert columns["eligible"][2]["url"] == "https://forge.example/o/r/issues/13"
    assert columns["claimed"][1]["agent"] is None  # a claim ref that is not a valid claim


def _ts(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


AGENTS = st.sampled_from(["ada", "bob", "maintainer.al", "bad name", "\x00"])
EVENTS = st.sampled_from(["claimed", "executed", "failed", "reworked", "merged", "cleaned-up", "reaped"])
ENTRIES = st.lists(st.builds(
    lambda agent, event, offset, pr, seconds, cost: entry(agent, event, _ts(NOW + offset), issue=pr, pr=pr,
                                                          outcome="merged", duration_s=seconds, cost_usd=cost),
    AGENTS, EVENTS, st.integers(-40 * 86400, 86400), st.integers(1, 6), st.floats(0, 5000),
    st.one_of(st.none(), st.floats(0, 10))), max_size=40)


@settings(max_examples=60, deadline=None)
@given(ENTRIES, st.integers(1, 40))
def test_every_series_has_n_points_and_the_agents_add_up_to_the_fleet(entries, days):
    dates = window_dates(days, NOW)
    flow = throughput(entries, dates, NOW)
    spend = budget_series(entries, dates, NOW, agent_caps=Caps(), fleet_caps=Caps(), window=BudgetWindow.DAY)
    assert len(flow["dates"]) == len(spend["dates"]) == days
    for data, names in ((flow, ("completed", "failed", "reworked")), (spend, ("tasks", "minutes", "cost_usd"))):
        for name in names:
            assert len(data["fleet"][name]) == days
            assert all(len(series[name]) == days for series in data["agents"].values())
            for i in range(days):
                total = sum(series[name][i] for series in data["agents"].values())
                assert abs(total - data["fleet"][name][i]) < 1e-6 * (1 + len(entries)) + 0.01 * len(data["agents"])
    start = datetime.combine(dates[0], datetime.min.time(), UTC).timestamp()
    inside = [e for e in entries if e.moment and e.moment.timestamp() >= start]
    assert sum(flow["fleet"]["failed"]) == sum(e.event == "failed" for e in inside)
    assert sum(flow["fleet"]["reworked"]) == sum(e.event == "reworked" for e in inside)
    assert sum(spend["fleet"]["tasks"]) == sum(e.event == "claimed" for e in inside)
    assert set(flow["agents"]) <= {"ada", "bob", "maintainer.al", OTHER}


def test_the_forges_web_url_is_the_base_of_links():
    from agentmesh.host.config import ForgeConfig
    from agentmesh.ops.report import web_url

    def url(**config):
        return web_url(ForgeConfig.model_validate(config))

    assert url(kind="local") is None
    assert url(kind="github", repo="team/app") == "https://github.com/team/app"
    assert url(kind="github", url="https://api.github.com/", repo="team/app") == "https://github.com/team/app"
    assert url(kind="github", url="https://ghe.example.com/api/v3", repo="team/app") == "https://ghe.example.com/team/app"
    assert url(kind="gitea", url="https://gitea.example.com/", repo="team/app") == "https://gitea.example.com/team/app"


def test_the_ignored_journal_lines_and_what_a_person_reads_of_them():
    doc = ignored_lines(unreadable=2, unsigned=1)
    assert doc == {"ignored_journal_lines": 3, "ignored_journal_reasons": {"unreadable": 2, "unsigned": 1}}
    assert ignored_note(doc["ignored_journal_lines"], doc["ignored_journal_reasons"]) == (
        "3 journal lines ignored: 2 unreadable, 1 not signed by their agent")
    assert ignored_note(1, {"unsigned": 1, "unreadable": 0}) == "1 journal line ignored: 1 not signed by their agent"
    # the page renders documents it did not make: nothing, or nonsense, says nothing or only the count
    assert [ignored_note(c, r) for c, r in ((0, {}), (None, None), (True, {}), (-3, {}), ("9", {}))] == [None] * 5
    assert ignored_note(4, {"unreadable": "x", "unsigned": 1.5, "evil\x1b": 9}) == "4 journal lines ignored"
