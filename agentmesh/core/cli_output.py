"""What an executor's output says about its run, in the shapes the preset CLIs print.

- Claude Code with `--output-format json` ends with one result object: `is_error: true` is a failed
  run whatever the exit code (`claude -p` without a login exits 1 with "Not logged in"), and
  `total_cost_usd` is what the run cost.
- Codex prints `ERROR: ...` lines on stderr (`ERROR: unexpected status 401 Unauthorized: ...`), and
  log lines with a timestamp and `ERROR`.
- aider prints LiteLLM's exceptions (`litellm.AuthenticationError: ...`) and may still exit 0.

The message is the CLI's own words, for the failure's reason; only Claude Code's `is_error` turns a
run into a failure, the other shapes only explain one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from agentmesh.core.pattern import LazyPattern

MESSAGE_CHARS = 300
# `ERROR: ...`, and codex's log lines (`2026-11-26T21:41:51.823613Z ERROR codex_api::...: ...`)
_ERROR_LINE = LazyPattern(r"^(?:ERROR: |Error: |error: |litellm\.[A-Za-z]*Error: |\d{4}-\d\d-\d\dT[\d:.]+Z\s+ERROR\s)")


@dataclass(frozen=True)
class CliOutput:
    error: bool = False  # the CLI reported a failed run (even with exit 0)
    message: str | None = None  # its own words about the failure
    cost_usd: float | None = None


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MESSAGE_CHARS else line[:MESSAGE_CHARS - 1] + "…"


def _json_object(line: str) -> dict | None:
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _result_message(data: dict) -> str | None:
    for value in (data.get("result"), data.get("errors"), data.get("subtype")):
        if isinstance(value, list):
            value = "; ".join(str(v) for v in value if v)
        if isinstance(value, str) and value.strip():
            return _one_line(value)
    return None


def parse_cli_output(text: str) -> CliOutput:
    """Read the tail of an executor's log: the last result object or cost line, else the last error line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    cost = None
    for line in reversed(lines):
        data = _json_object(line)
        if data is None:
            continue
        if cost is None:
            cost = next((float(data[k]) for k in ("total_cost_usd", "cost_usd")
                         if isinstance(data.get(k), (int, float)) and not isinstance(data.get(k), bool)), None)
        if data.get("type") == "result" and isinstance(data.get("is_error"), bool):
            error = data["is_error"]
            return CliOutput(error, _result_message(data) if error else None, cost)
    return CliOutput(False, _last_error(text.splitlines()), cost)


def _last_error(lines: list[str]) -> str | None:
    """The last error line with the lines that continue it (aider wraps at 80 columns), up to a blank
    line or the next error line."""
    starts = [i for i, line in enumerate(lines) if _ERROR_LINE.match(line.strip())]
    if not starts:
        return None
    paragraph = [lines[starts[-1]]]
    for line in lines[starts[-1] + 1:]:
        if not line.strip() or _ERROR_LINE.match(line.strip()) or line.startswith("agentmesh: "):
            break
        paragraph.append(line)
    return _one_line(" ".join(paragraph))
