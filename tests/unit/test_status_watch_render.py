"""How `status --watch` shows a redraw (cli/status.py `Watch`), on hand-made fleets: the marker column, the
highlighted cells, the summary line, a failure over the last good tables; on a terminal and on a pipe."""

from __future__ import annotations

import io
import re

from rich.console import Console

from agentmesh.cli.output import Screen
from agentmesh.cli.status import Watch
from agentmesh.core.errors import RemoteUnavailable
from agentmesh.ops.status import AgentRow, ClaimRow, Status

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
USAGE = {"usage": {"tasks": 0, "minutes": 0.0, "cost_usd": 0.0},
         "caps": {"tasks_per_day": None, "executor_minutes_per_day": None, "cost_usd_per_day": None},
         "exhausted": []}
BUDGET = {"window": {"label": "2026-11-27", "kind": "day"}, "agents": {}, "fleet": USAGE}


def agent(name, alive=True, seen=5.0):
    return AgentRow(name, f"host-{name}", "0.1.0", "demo", [], seen, alive, True, None, seen + 1)


def claim(issue, holder, seen=5.0):
    return ClaimRow(issue, holder, "h", None, seen, 1800 - seen, False, None)


def fleet(agents, claims):
    return Status("obs", "file:///mesh.git", agents, claims, [], 0, 50, {}, None, BUDGET)


FLEETS = [
    fleet([agent("a"), agent("b")], [claim(5, "a")]),
    # ages tick, b dies, claim 5 goes, claim 6 comes: three changes
    fleet([agent("a", seen=9.0), agent("b", alive=False, seen=9.0)], [claim(6, "b")]),
]


def feeder(*outcomes):
    queue = list(outcomes)

    def gather_once():
        outcome = queue.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome
    return gather_once


def row(text: str, first: str) -> list[str]:
    line = next(line for line in ANSI.sub("", text).splitlines() if f" {first} " in line)
    return [cell.strip() for cell in re.split(r"[│|]", line)[1:-1]]


def test_a_terminal_redraw_marks_new_changed_and_gone_rows_and_keeps_tables_under_an_error():
    screen_out = io.StringIO()
    watch = Watch(1, Console(file=io.StringIO(), force_terminal=True, width=200, height=80))
    screen = Screen(screen_out)
    gather_once = feeder(*FLEETS, RemoteUnavailable("remote file:///mesh.git is unreachable: down"))
    watch.tick(gather_once, screen)
    first = screen_out.getvalue()
    assert "first look, redrawn every 1s" in first and first.startswith(Screen.ENTER)
    assert row(first, "#5")[0] == "" and "43m" not in first  # nothing is marked on the first redraw

    screen_out.seek(0), screen_out.truncate()
    watch.tick(gather_once, screen)
    second = screen_out.getvalue()
    assert re.search(r"3 changes since \d\d:\d\d:\d\d", second)
    assert row(second, "a")[0] == "" and row(second, "b")[:3] == ["*", "b", "DEAD"]
    assert row(second, "#6")[0] == "+" and row(second, "#5")[0] == "-"
    b_line = next(line for line in second.splitlines() if " b " in ANSI.sub("", line))
    highlighted = re.findall(r"\x1b\[[0-9;]*43m([^\x1b]*)", b_line)
    assert [cell.strip() for cell in highlighted] == ["DEAD"]  # the changed cell only; not its ticking age

    screen_out.seek(0), screen_out.truncate()
    watch.tick(gather_once, screen)
    failed = ANSI.sub("", screen_out.getvalue())
    assert failed.splitlines()[0].endswith("failed, retrying every 1s: remote file:///mesh.git is unreachable: down")
    assert " #6 " in failed  # the last good tables stay under the error line
    screen.close()
    assert screen_out.getvalue().endswith(Screen.LEAVE)


def test_on_a_pipe_each_redraw_is_a_plain_snapshot_after_a_line(capsys):
    watch = Watch(10, Console(file=io.StringIO(), force_terminal=False))
    gather_once = feeder(*FLEETS, RemoteUnavailable("remote is unreachable: down"))
    for _ in range(3):
        watch.tick(gather_once, None)
    out = capsys.readouterr().out
    assert "\x1b" not in out
    heads = [line for line in out.splitlines() if line.startswith("--- ")]
    assert "first look" in heads[0] and "3 changes since" in heads[1]
    assert heads[2].endswith("failed, retrying every 10s: remote is unreachable: down")
    second = out[out.index(heads[1]):out.index(heads[2])]
    assert [line.split()[:3] for line in second.splitlines() if line.startswith(("* ", "+ ", "- "))] == [
        ["*", "b", "DEAD"], ["+", "#6", "b"], ["-", "#5", "a"]]
