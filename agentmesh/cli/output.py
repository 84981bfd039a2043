"""Output helpers shared by commands: every byte the CLI prints goes through here.

What commands print holds forge text, journal fields and git paths that others wrote, so `echo`,
`table`, `emit_json` and `rich_text` pass it through core/terminal.py: no escape sequence,
control or invisible character reaches the terminal, and rich never reads data as markup.
`tests/unit/test_terminal.py` fails on a print in cli/ that bypasses them.
"""

from __future__ import annotations

import json
import sys

from agentmesh.core.terminal import json_safe, terminal_line, terminal_text

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the claim path
if TYPE_CHECKING:
    import click


def echo(text: object = "", *, err: bool = False) -> None:
    """Print one message (newlines and tabs kept) on stdout, or stderr with `err`.

    What `click.echo` does with a text, without importing click (cron's `claims acquire` never does):
    the stream looked up at each call, nothing written without one, and a stream whose encoding
    is ASCII (a misconfigured locale) written UTF-8 with replacement characters instead of failing.
    tests/unit/test_cli_fast.py holds the two to the same bytes.
    """
    stream = sys.stderr if err else sys.stdout
    if stream is None:  # no standard stream attached
        return
    line = terminal_text(text) + "\n"
    buffer = getattr(stream, "buffer", None)
    if buffer is not None and _is_ascii(getattr(stream, "encoding", None)):
        stream.flush()
        buffer.write(line.encode("utf-8", "replace"))
        buffer.flush()
    else:
        stream.write(line)
    stream.flush()


def _is_ascii(encoding: str | None) -> bool:
    import codecs

    try:
        return codecs.lookup(encoding or "ascii").name == "ascii"
    except LookupError:
        return False


def emit_json(data) -> None:
    echo(json_safe(json.dumps(data, indent=None, sort_keys=False, ensure_ascii=False)))


def rich_text(value: object, style: str = ""):
    """A rich Text of one clean line: Text is never parsed as markup, so `[link=...]` in data stays text."""
    from rich.text import Text

    return Text(terminal_line(value), style=style)


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def table(rows: list[list[str]], header: list[str]) -> str:
    """Aligned columns; each cell is one clean line, so data can neither break nor shift the table."""
    cells = [[terminal_line(c) for c in row] for row in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def emit_report(report, as_json: bool, *, idle_line: str | None = None) -> int:
    """Print a run's report (claim-task, monitor-prs): JSON, or one line per event."""
    if as_json:
        emit_json(report.to_json())
        return report.exit_code
    if report.reason:
        echo(f"{report.agent}: {report.status}: {terminal_line(report.reason)}")
    for event in report.events:
        echo(f"{report.agent}: {terminal_line(event)}")
    if idle_line and not report.events and not report.reason:
        echo(f"{report.agent}: {idle_line}")
    return report.exit_code


def remember_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    # main() reports a failure of this command as a JSON object too (emit_error)
    seen = getattr(ctx.find_root().obj, "seen", None)
    if value and seen is not None:
        seen.as_json = True
    return value


def emit_error(message: str, exit_code: int, *, as_json: bool) -> None:
    """A failed command's one line on stderr; with --json also `{"error", "exit_code"}` on stdout."""
    echo(f"agentmesh: {message}", err=True)
    if as_json:
        emit_json({"error": message, "exit_code": exit_code})


# Options every command family shares; click is imported by the commands that apply them, not here.
def json_option(command):
    import click

    return click.option("--json", "as_json", is_flag=True, callback=remember_json, help="Print JSON.")(command)


def number_argument(command):
    import click

    return click.argument("number", type=click.IntRange(min=1))(command)


def self_command() -> str:
    """How a shell runs this same agentmesh again, for hints: `agentmesh` only when PATH finds this one.

    After the README's `.venv/bin/agentmesh demo` a bare `agentmesh` is not on PATH (or is another install).
    """
    import shlex
    import shutil
    import sys
    from pathlib import Path

    script = Path(sys.argv[0])
    if script.name == "agentmesh" and script.is_file():  # the console script
        on_path = shutil.which("agentmesh")
        if on_path and Path(on_path).resolve() == script.resolve():
            return "agentmesh"
        return shlex.quote(str(script.absolute()))
    return f"{shlex.quote(sys.executable)} -m agentmesh"  # python -m agentmesh, scripts/*.py


class Screen:
    """A terminal redrawn in place (`status --watch`): the alternate screen, cursor hidden, until `close`, which
    gives the user's screen and cursor back. Frames are rendered by rich from `rich_text` cells, so the
    only escape sequences they hold are rich's own styles and these fixed ones."""

    ENTER = "\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J"  # alternate screen, hide the cursor, clear it
    LEAVE = "\x1b[?25h\x1b[?1049l"  # show the cursor, leave the alternate screen

    def __init__(self, stream) -> None:
        self.stream = stream
        self.open = False

    def draw(self, lines: list[str]) -> None:
        """Home the cursor and overwrite the screen with `lines`, clearing what the last frame left."""
        if not self.open:
            self.stream.write(self.ENTER)
            self.open = True
        self.stream.write("\x1b[H" + "".join(f"{line}\x1b[K\r\n" for line in lines) + "\x1b[J")
        self.stream.flush()

    def close(self) -> None:
        if self.open:
            self.stream.write(self.LEAVE)
            self.stream.flush()
            self.open = False
