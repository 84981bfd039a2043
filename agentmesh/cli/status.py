"""`agentmesh status`: the fleet dashboard: agents, claims, open PRs, performance, halt and budget."""

from __future__ import annotations

import io
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from agentmesh.cli.budget import window_title
from agentmesh.cli.output import Screen, age, echo, emit_json, json_option, rich_text, table
from agentmesh.core.errors import EXIT_OK, TemporaryError, UserError
from agentmesh.core.tablediff import RowDiff, count_changes, diff_rows
from agentmesh.core.terminal import terminal_line
from agentmesh.core.vocab import RowChange
from agentmesh.git.run import GitError

if TYPE_CHECKING:
    from agentmesh.ops.status import Status

# columns that tick by themselves: shown, never counted as a change by `--watch`
VOLATILE = frozenset({"seen", "heartbeat (its clock)", "lease left", "age"})
ALARMS = ("DEAD", "EXPIRED", "EXHAUSTED", "failure", "error")  # cells shown in red on a terminal


@dataclass(frozen=True)
class Section:
    title: str
    header: list[str]
    rows: list[list[str]]
    empty: str  # said instead of an empty table
    note: str = ""

    @property
    def volatile(self) -> frozenset[int]:
        return frozenset(i for i, name in enumerate(self.header) if name in VOLATILE)


def _cell(value) -> str:
    """Remote text (presence trailers, branch names, titles) made safe for a terminal: no escapes."""
    return terminal_line("-" if value is None else value)[:300] or "-"


def _num(value, suffix: str = "") -> str:
    return "-" if value is None else f"{value:g}{suffix}"


def _used(used, cap) -> str:
    return f"{used:g}/{_num(cap)}"


def sections(status) -> list[Section]:
    """The dashboard as titled tables, shared by the plain and the rich rendering."""
    # seen: how long this host has seen the presence unchanged (liveness is judged by it); heartbeat: the
    # presence commit's own age by the agent's clock, so a new observer can tell a stopped agent from a live one
    agents = [[a.agent, "alive" if a.alive else "DEAD", "yes" if a.verified else "NO", a.key or "-",
               age(a.age_seconds), age(a.committed_seconds), a.host, a.version, a.executor,
               ",".join(a.capabilities) or "-"]
              for a in status.agents]
    claims = [[f"#{c.issue}", c.holder or (f"FOREIGN (says {c.foreign})" if c.foreign else "(invalid)"),
               c.stage or "-", age(c.age_seconds),
               age(c.lease_left_seconds), "EXPIRED" if c.expired else "ok", c.work_branch or "-"]
              for c in status.claims]
    # the old scripts' lock branches hold their issues like claims (docs/migration.md)
    claims += [[f"#{lock.issue}", f"{lock.agent} (legacy lock)", "LEGACY-HELD", "-", "-",
                f"until PR #{lock.pr} closes" if lock.pr else "until its PR closes", lock.branch]
               for lock in status.legacy]
    pulls = [[f"#{p.number}", p.title, p.author, f"#{p.issue}" if p.issue else "-", age(p.age_seconds),
              ",".join(p.approved_by) or "-", ",".join(p.changes_requested_by) or "-", p.ci,
              ",".join(x.split(":", 1)[1] for x in p.labels) or "-"] for p in status.pulls]
    perf = [[agent, str(f.completed), str(f.failed), str(f.active), _num(f.avg_executor_seconds, "s"),
             _num(f.success_pct, "%")] for agent, f in status.performance.items()]
    budget = status.budget
    scopes = [*((f"agent {a}", r) for a, r in budget["agents"].items()), ("fleet", budget["fleet"])]
    spend = [[scope, *(_used(r["usage"][used], cap) for used, cap in zip(("tasks", "minutes", "cost_usd"),
                                                                          r["caps"].values(), strict=True)),
              "EXHAUSTED" if r["exhausted"] else "ok"] for scope, r in scopes]
    capped = (f"showing the {len(status.pulls)} newest of {status.pulls_open} open PRs"
              if status.pulls_capped else "")
    return [
        Section("Agents", ["agent", "state", "signed", "key", "seen", "heartbeat (its clock)", "host", "version",
                           "executor", "capabilities"],
                agents,
                "no agents have a presence ref yet"),
        Section("Claims", ["issue", "holder", "stage", "seen", "lease left", "lease", "work branch"], claims,
                "no claims"),
        Section("Open PRs", ["pr", "title", "author", "issue", "age", "approved by", "changes by", "ci", "labels"],
                pulls, "no open PRs", capped),
        Section("Performance (last 7 days)", ["agent", "completed", "failed", "active", "avg executor",
                                              "success"], perf, "no agents"),
        Section(f"Budget ({window_title(budget)})", ["scope", "tasks", "executor min", "cost usd", "state"], spend, "",
                budget.get("warning") or ""),
    ]


def _headline(status) -> list[str]:
    halted = f"HALTED: {_cell(status.halted)}" if status.halted else "running (not halted)"
    paused = status.budget.get("paused")
    spending = f"PAUSED: {_cell(paused)}" if paused else "not paused"
    return [f"mesh {_cell(status.remote)}, seen by {status.agent}", f"State: {halted}", f"Spending: {spending}"]


def marked_rows(section: Section, marks: list[RowDiff] | None) -> tuple[list[str], list[RowDiff]]:
    """The header and rows to show: as they are, or after a marker column when `--watch` compares redraws."""
    if marks is None:
        return section.header, [RowDiff(RowChange.SAME, row) for row in section.rows]
    return ["", *section.header], [RowDiff(d.change, [d.change.value, *d.cells], frozenset(i + 1 for i in d.changed))
                                   for d in marks]


def render_plain(status, marks: list[list[RowDiff]] | None = None) -> str:
    out = _headline(status)
    for i, s in enumerate(sections(status)):
        header, rows = marked_rows(s, None if marks is None else marks[i])
        out += ["", f"{s.title}:"]
        cells = [[_cell(c) if c else "" for c in d.cells] for d in rows]
        out.append(table(cells, header) if cells else f"  {s.empty}")
        if s.note:
            out.append(f"  ({s.note})")
    return "\n".join(out)


def _style(cell: str, index: int, row: RowDiff) -> str:
    if row.change is RowChange.GONE:
        return "dim strike"
    if row.change is RowChange.NEW or index in row.changed:
        return "bold black on yellow"
    return "red" if cell in ALARMS else ""


def render_rich(status, console, marks: list[list[RowDiff]] | None = None) -> None:
    from rich.table import Table

    # rich_text, never str: forge text must not be read as rich markup
    for line in _headline(status):
        console.print(rich_text(line, "bold red" if line.startswith(("State: HALTED", "Spending: PAUSED")) else "bold"))
    for i, s in enumerate(sections(status)):
        header, rows = marked_rows(s, None if marks is None else marks[i])
        if not rows:
            console.print(rich_text(f"{s.title}: {s.empty}"))
            continue
        grid = Table(title=rich_text(s.title, "bold"), title_justify="left",
                     caption=rich_text(s.note) if s.note else None)
        for name in header:
            grid.add_column(rich_text(name))
        for row in rows:
            grid.add_row(*(rich_text(_cell(c) if c else "", _style(c, j, row)) for j, c in enumerate(row.cells)))
        console.print(grid)


def status(mesh, forge, as_json: bool, now: float, console=None) -> int:
    from agentmesh.ops.status import gather

    data = gather(mesh, forge, now)
    if as_json:
        emit_json(data.to_json())
        return EXIT_OK
    if console is None:
        from rich.console import Console

        console = Console(highlight=False)
    if console.is_terminal:
        render_rich(data, console)
    else:
        echo(render_plain(data))
    return EXIT_OK


def _clock(moment: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(moment))


@dataclass
class Watch:
    """`status --watch`: gather every `every` seconds with one StatusMemo, so each redraw reads only what changed,
    and show what changed since the last good redraw. A failed gather (the remote or the forge down, a rate
    limit) is shown and retried at the next tick, as often as it takes; Ctrl-C ends it with exit 0."""

    every: float
    console: Any  # rich Console on stdout
    now: Callable[[], float] = time.time
    previous: list[list[list[str]]] | None = None  # each section's rows at the last good redraw
    last: float | None = None  # when that was
    frame: list[str] = field(default_factory=list)  # the last good redraw, kept on screen under an error line
    busy: bool = False  # a redraw is under way
    stop_asked: bool = False  # Ctrl-C or `kill` came during it

    def run(self, gather_once: Callable[[], Status]) -> int:
        screen = Screen(self.console.file) if self.console.is_terminal else None
        # `kill` stops a watch as Ctrl-C does: the terminal is given back either way
        before = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not self.stop_asked:
                self.busy = True
                self.tick(gather_once, screen)
                self.busy = False
                if not self.stop_asked:
                    time.sleep(self.every)
            return EXIT_OK
        except KeyboardInterrupt:
            return EXIT_OK
        finally:
            for sig, handler in before.items():
                signal.signal(sig, handler)
            if screen is not None:
                screen.close()

    def _stop(self, _signum, _frame) -> None:
        """Between redraws the watch stops at once; during one, once it is drawn, so that no frame is left half
        written to the terminal (an interrupted write left its rest in the buffer, flushed after the screen was
        given back) and no read is cut short. A second Ctrl-C stops a slow redraw at once."""
        if self.busy and not self.stop_asked:
            self.stop_asked = True
            return
        raise KeyboardInterrupt

    def tick(self, gather_once: Callable[[], Status], screen: Screen | None) -> None:
        started = self.now()
        try:
            data = gather_once()
        except (TemporaryError, GitError) as exc:  # a remote's or forge's failure: shown, tried again next tick
            line = f"{_clock(started)}: failed, retrying every {self.every:g}s: {_first_line(exc)}"
            if screen is None:
                echo(f"--- {line}")
            else:  # one line, cut to the width: the tables under it stay where they were
                screen.draw(self._fit([self._rich_line(line, "bold red"), *self.frame[1:]]))
            return
        shown = sections(data)
        marks = [diff_rows(None if self.previous is None else self.previous[i], s.rows, s.volatile)
                 for i, s in enumerate(shown)]
        changes = sum(count_changes(m) for m in marks)
        summary = (f"{_clock(started)}: first look, redrawn every {self.every:g}s (Ctrl-C to stop)"
                   if self.last is None else
                   f"{_clock(started)}: {changes} change{'' if changes == 1 else 's'} since {_clock(self.last)}")
        self.previous, self.last = [s.rows for s in shown], started
        if screen is None:
            echo(f"--- {summary}")
            echo(render_plain(data, marks))
            return

        def draw(out) -> None:
            out.print(rich_text(summary, "bold"))
            render_rich(data, out, marks)

        self.frame = self._render(draw).splitlines()
        screen.draw(self._fit(self.frame))

    def _render(self, draw: Callable[[Any], None]) -> str:
        """What rich prints for the terminal, as text with its styles, to be drawn in one write."""
        from rich.console import Console

        buffer = io.StringIO()
        draw(Console(file=buffer, force_terminal=True, width=self.console.width, highlight=False,
                     color_system=self.console.color_system or "standard"))
        return buffer.getvalue()

    def _rich_line(self, line: str, style: str) -> str:
        return self._render(lambda out: out.print(rich_text(line, style), end="", no_wrap=True, overflow="ellipsis"))

    def _fit(self, lines: list[str]) -> list[str]:
        """What fits the terminal's height: a longer frame would scroll and break the next redraw."""
        room = max(2, self.console.height - 1)
        if len(lines) <= room:
            return lines
        return [*lines[:room - 1], self._rich_line(f"... {len(lines) - room + 1} more lines: enlarge the terminal",
                                                   "dim")]


def _first_line(exc: Exception) -> str:
    return terminal_line(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)


WATCH_DEFAULT = 10.0


@click.command("status")
@json_option
@click.option("--watch", "every", type=click.FloatRange(min=1), is_flag=False, flag_value=WATCH_DEFAULT,
              default=None, metavar="[SECONDS]",
              help=f"Redraw every SECONDS (default {WATCH_DEFAULT:g}), marking what changed; Ctrl-C stops.")
@click.pass_obj
def command(g, as_json, every):
    """Show the fleet: agents, claims, open PRs, 7-day performance, the kill switch and budgets.

    \b
    Everything is read from the remote and the forge: presence and claim refs,
    open issues and PRs (the newest 50 are examined: reviews on the head, CI),
    and the journals on their branches. "seen" is how long this host has seen
    a ref unchanged (liveness and leases are judged by it); "heartbeat (its
    clock)" is the age of the agent's last presence commit by the agent's own
    clock. A failed listing is an error (exit 75), never an empty fleet.
    --json prints the schema of docs/operations.md ("Status").

    \b
    --watch [SECONDS] redraws the tables in place every SECONDS (default 10):
      + a new row, * a changed row (its changed cells highlighted),
      - a row gone since the last redraw; ages and leases tick without
      counting as changes. Each redraw lists the remote's branches once and
      re-reads only refs whose sha moved (forge listings use the ETag cache
      on GitHub). A remote or forge failure is shown at the top and retried
      at the next redraw, however long it lasts (a bad config or refused
      credentials exit 1). Ctrl-C or SIGTERM exits with 0. Not on a terminal
      (a pipe, a file), each snapshot is printed after a `---` line.

    \b
    Examples:
      agentmesh status                 # once
      agentmesh status --watch         # every 10 s
      agentmesh status --watch 30 | tee status.log
    """
    if every is not None:
        if as_json:
            raise UserError("--watch redraws tables; for JSON run `agentmesh status --json` as often as needed")
        from rich.console import Console

        from agentmesh.ops.status import StatusMemo, gather

        memo = StatusMemo()

        def gather_once() -> Status:
            with g.mesh(observer=True) as mesh:  # a new one each tick: its listing and policy are per command
                return gather(mesh, mesh.open_forge(), time.time(), memo=memo)

        return Watch(every, Console(highlight=False)).run(gather_once)
    mesh = g.mesh(observer=True)
    return status(mesh, mesh.open_forge(), as_json, time.time())
